/**
 * A message on the cluster bus: `<header length>:<header JSON><payload>`, the header being
 * [topic, qos, retain, properties (persistence/codec.ts text), senderId]. A Message Expiry
 * Interval is rewritten to what remains of it, so the hop does not extend a message's life.
 */
import { Buffer } from 'node:buffer';
import type { RemoteMessage } from '../broker/broker.js';
import type { Message } from '../broker/message.js';
import { decodeProperties, encodeProperties } from '../persistence/codec.js';
import type { Properties, QoS } from '../protocol/index.js';

export function encodeBusMessage(m: Message, now: number): Buffer {
  let props: Properties | undefined = m.properties;
  if (m.expiresAt !== undefined && props !== undefined) {
    props = { ...props, messageExpiryInterval: Math.max(0, Math.ceil((m.expiresAt - now) / 1000)) };
  }
  const header = Buffer.from(JSON.stringify([m.topic, m.qos, m.retain ? 1 : 0, encodeProperties(props), m.senderId ?? null]));
  const lead = Buffer.from(`${header.length}:`);
  return Buffer.concat([lead, header, m.payload], lead.length + header.length + m.payload.length);
}

export function decodeBusMessage(data: Buffer): RemoteMessage {
  const colon = data.indexOf(0x3a);
  const len = Number(data.toString('latin1', 0, colon));
  const start = colon + 1;
  const h = JSON.parse(data.toString('utf8', start, start + len)) as [string, QoS, number, string | null, string | null];
  return {
    topic: h[0], payload: data.subarray(start + len), qos: h[1], retain: h[2] === 1, properties: decodeProperties(h[3]), senderId: h[4] ?? undefined,
  };
}
