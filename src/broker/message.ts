/**
 * An application message inside the broker. It is created once per PUBLISH and shared by
 * every receiver: queues and inflight windows hold references, never copies. Its encodings
 * are cached per (protocol family, QoS, RETAIN flag) so that a fan-out encodes each variant
 * once and writes the same bytes to every receiver of that variant.
 */
import { Buffer } from 'node:buffer';
import {
  encode, PacketType, preparePublish, ProtocolVersion, type PreparedPublish, type Properties, type PublishPacket, type QoS,
} from '../protocol/index.js';

export interface Message {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  /** 5.0 properties forwarded to receivers; never Topic Alias or Subscription Identifiers. */
  readonly properties: Properties | undefined;
  /** Clock time (ms) after which the message must not be delivered; undefined: never expires. */
  readonly expiresAt: number | undefined;
  /** Client id of the publisher (for No Local); undefined for messages from the broker itself. */
  readonly senderId: string | undefined;
  /** Encoding cache, see `preparedFor`. */
  encoded: (PreparedPublish | undefined)[] | undefined;
}

export interface MessageInit {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: Properties | undefined;
  senderId?: string | undefined;
  now: number;
}

/** Builds a Message; a Message Expiry Interval becomes an absolute deadline [MQTT-3.3.2-5]. */
export function createMessage(init: MessageInit): Message {
  let properties = init.properties;
  let expiresAt: number | undefined;
  if (properties !== undefined) {
    if (properties.topicAlias !== undefined || properties.subscriptionIdentifiers !== undefined) {
      const { topicAlias: _a, subscriptionIdentifiers: _s, ...rest } = properties;
      properties = Object.keys(rest).length > 0 ? rest : undefined;
    }
    const expiry = properties?.messageExpiryInterval;
    if (expiry !== undefined) expiresAt = init.now + expiry * 1000;
  }
  return {
    topic: init.topic,
    payload: init.payload,
    qos: init.qos,
    retain: init.retain,
    properties,
    expiresAt,
    senderId: init.senderId,
    encoded: undefined,
  };
}

/**
 * Properties that own their bytes: Correlation Data is decoded as a view of the network chunk,
 * so anything kept longer than a delivery (retained messages, wills) takes a copy.
 */
export function ownedProperties(props: Properties | undefined): Properties | undefined {
  const data = props?.correlationData;
  return data === undefined ? props : { ...props, correlationData: Buffer.from(data) };
}

/** Fixed charge per message for its object and encoding slots. */
const MESSAGE_BYTES = 64;

/**
 * What a message holds on to, in bytes, for the queue and retained-store bounds: payload, topic
 * and the variable-length properties (one byte per character: the topic and strings as sent).
 */
export function messageBytes(m: { readonly topic: string; readonly payload: Buffer; readonly properties?: Properties | undefined }): number {
  let n = MESSAGE_BYTES + m.topic.length + m.payload.length;
  const p = m.properties;
  if (p === undefined) return n;
  if (p.correlationData !== undefined) n += p.correlationData.length;
  if (p.responseTopic !== undefined) n += p.responseTopic.length;
  if (p.contentType !== undefined) n += p.contentType.length;
  const user = p.userProperties;
  if (user !== undefined) for (const [k, v] of user) n += 16 + k.length + v.length;
  return n;
}

export function isExpired(m: Message, now: number): boolean {
  return m.expiresAt !== undefined && now >= m.expiresAt;
}

/**
 * The PUBLISH of `m` for a receiver speaking `version` at `qos` with RETAIN `retain`, encoded
 * once and cached. Only valid when the receiver needs no per-receiver properties (no
 * Subscription Identifier, no Topic Alias) and the message has no expiry to count down.
 */
export function preparedFor(m: Message, version: number, qos: QoS, retain: boolean): PreparedPublish {
  const v5 = version === ProtocolVersion.V5 ? 1 : 0;
  const index = v5 * 6 + qos * 2 + (retain ? 1 : 0);
  let cache = m.encoded;
  if (cache === undefined) {
    cache = new Array<PreparedPublish | undefined>(12);
    m.encoded = cache;
  }
  let p = cache[index];
  if (p === undefined) {
    const packet: PublishPacket = {
      type: PacketType.Publish, topic: m.topic, payload: m.payload, qos, retain, dup: false,
    };
    if (v5 === 1 && m.properties !== undefined) packet.properties = m.properties;
    p = preparePublish(packet, version);
    cache[index] = p;
  }
  return p;
}

/** Properties for one receiver: the forwarded ones with the remaining expiry, subscription ids and alias. */
export function receiverProperties(m: Message, now: number, subIds: number[] | undefined, alias: number | undefined): Properties | undefined {
  if (m.expiresAt === undefined && subIds === undefined && alias === undefined) return m.properties;
  const props: Properties = { ...m.properties };
  // [MQTT-3.3.2-6]: forward the interval minus the time the message waited in the broker.
  if (m.expiresAt !== undefined) props.messageExpiryInterval = Math.max(0, Math.ceil((m.expiresAt - now) / 1000));
  if (subIds !== undefined) props.subscriptionIdentifiers = subIds;
  if (alias !== undefined) props.topicAlias = alias;
  return props;
}

/** Encodes a 5.0 PUBLISH of `m` for one receiver (its own topic or alias and properties). */
export function encodePublishFor(
  m: Message, topic: string, qos: QoS, retain: boolean, dup: boolean, packetId: number, properties: Properties | undefined,
): Buffer {
  const packet: PublishPacket = { type: PacketType.Publish, topic, payload: m.payload, qos, retain, dup };
  if (qos > 0) packet.packetId = packetId;
  if (properties !== undefined) packet.properties = properties;
  return encode(packet, ProtocolVersion.V5);
}
