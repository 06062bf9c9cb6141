/**
 * Payloads and MQTT 5 properties as JSON carries them: text (`plain`, UTF-8), `hex` or `base64`,
 * checked strictly (a payload that does not decode is a 400 naming the field, never a guess).
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { type Properties, topicNameProblem } from '../../protocol/index.js';
import type { PublishOptions } from '../../broker/broker.js';
import { badField } from './route.js';

export type Encoding = 'plain' | 'hex' | 'base64';

const HEX = /^(?:[0-9a-fA-F]{2})*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function decode(text: string, encoding: Encoding, field: string): Buffer {
  if (encoding === 'plain') return Buffer.from(text, 'utf8');
  if (encoding === 'hex') {
    if (!HEX.test(text)) throw badField(field, 'not hex (an even number of 0-9, a-f digits)');
    return Buffer.from(text, 'hex');
  }
  if (!BASE64.test(text)) throw badField(field, 'not base64 (standard alphabet, with padding)');
  return Buffer.from(text, 'base64');
}

/** Bytes as JSON shows them: UTF-8 text when asked for `plain` (and it is valid UTF-8), else hex or base64. */
export function encode(bytes: Buffer, encoding: Encoding): { payload: string; encoding: Encoding } {
  if (encoding === 'hex') return { payload: bytes.toString('hex'), encoding };
  if (encoding === 'plain') {
    if (isUtf8(bytes)) return { payload: bytes.toString('utf8'), encoding };
  }
  return { payload: bytes.toString('base64'), encoding: 'base64' };
}

export interface PublishBody {
  topic: string;
  payload: string;
  encoding?: Encoding;
  qos?: 0 | 1 | 2;
  retain?: boolean;
  clientId?: string;
  properties?: PropertiesBody;
}

export interface PropertiesBody {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: string;
  correlationDataEncoding?: Encoding;
  userProperties?: Record<string, string> | [string, string][];
}

/** A checked publish request as the broker takes it; `at` prefixes field names ("body", "body[2]"). */
export function publishOf(b: PublishBody, at: string): PublishOptions {
  const problem = topicNameProblem(b.topic);
  if (problem !== undefined) throw badField(`${at}.topic`, problem);
  const payload = decode(b.payload, b.encoding ?? 'plain', `${at}.payload`);
  const properties = b.properties === undefined ? undefined : propertiesOf(b.properties, `${at}.properties`);
  // [MQTT-3.3.2-4]: a payload marked as UTF-8 (Payload Format Indicator 1) must be UTF-8.
  if (properties?.payloadFormatIndicator === true && !isUtf8(payload)) {
    throw badField(`${at}.payload`, 'not valid UTF-8, but properties.payloadFormatIndicator says it is');
  }
  return { topic: b.topic, payload, qos: b.qos ?? 0, retain: b.retain ?? false, ...(properties !== undefined ? { properties } : {}) };
}

function propertiesOf(p: PropertiesBody, at: string): Properties | undefined {
  const out: Properties = {};
  if (p.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator;
  if (p.messageExpiryInterval !== undefined) out.messageExpiryInterval = p.messageExpiryInterval;
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.responseTopic !== undefined) {
    // [MQTT-3.3.2-14]: the Response Topic is a Topic Name (no wildcards).
    const problem = topicNameProblem(p.responseTopic);
    if (problem !== undefined) throw badField(`${at}.responseTopic`, problem);
    out.responseTopic = p.responseTopic;
  }
  if (p.correlationData !== undefined) out.correlationData = decode(p.correlationData, p.correlationDataEncoding ?? 'plain', `${at}.correlationData`);
  else if (p.correlationDataEncoding !== undefined) throw badField(`${at}.correlationDataEncoding`, 'needs correlationData');
  if (p.userProperties !== undefined) {
    const pairs = Array.isArray(p.userProperties) ? p.userProperties : Object.entries(p.userProperties);
    if (pairs.length > 0) out.userProperties = pairs.map(([k, v]) => [k, v]);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

