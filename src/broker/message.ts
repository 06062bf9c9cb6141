/**
 * An application message inside the broker. It is created once per PUBLISH and shared by
 * every receiver: queues and inflight windows hold references, never copies. Its encodings
 * are cached per (protocol family, QoS, RETAIN flag) so that a fan-out encodes each variant
 * once and writes the same bytes to every receiver of that variant. 5.0 receivers that need
 * their own properties (Topic Alias, remaining expiry, Subscription Identifiers) are written
 * from a template (the topic and forwarded properties encoded once, see `templateFor`); the
 * first few distinct such encodings are cached too, since receivers often need the same one.
 */
import { Buffer } from 'node:buffer';
import {
  copyBytes, encode, isPerReceiverProperty, PacketType, publishIdOffset, ProtocolVersion, type PreparedPublish, type Properties, type PublishPacket,
  publishTemplate, type PublishTemplate, type QoS, writePublishHeader,
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
  /** Encoding cache, see `preparedFor`: one entry per variant used, most messages need one. */
  encoded: CachedPublish | undefined;
  /**
   * Subscriptions the message was routed to (an upper bound on its receivers); a message that
   * reaches one receiver gains nothing from a cached per-receiver encoding, which costs a copy.
   */
  receivers: number;
  /** `messageBytes` of this message, computed on first use (see `sizeOf`). */
  size: number;
  /**
   * The 5.0 per-receiver template, see `templateFor`. It depends on the topic and properties
   * only, never on the payload, so a copy of the message with the same properties may share it.
   */
  template: PublishTemplate | undefined;
  /** With a durable store: the message's stable id there (durability.ts), once it has one. */
  storeId: string | undefined;
  /** With a durable store: the stored entries (queue, inflight, retained) referencing it through this object. */
  storeRefs: number;
  /**
   * With a durable store: the publisher's withheld acknowledgement (durability.ts) that may go
   * before the commit once every stored entry of this object was acknowledged by its receiver.
   */
  ackWaiter: DeliveryWaiter | undefined;
}

/** See `Message.ackWaiter`. */
export interface DeliveryWaiter {
  /** Every stored entry of the message was acknowledged by its receiver. */
  delivered(): void;
}

/**
 * The `ackWaiter` of a message that some receiver got as a copy (a delivery interceptor changed
 * it): what is stored for that receiver is counted on the copy, not on this message, so its
 * publisher's acknowledgement waits for the commit.
 */
export const DELIVERED_AS_COPY: DeliveryWaiter = Object.freeze({ delivered(): void {} });

/**
 * A cached encoding of a message, linked to the next variant of the same message. Plain
 * variants (`key` < 16) have no per-receiver properties; receiver variants (`key` >= 16, 5.0)
 * carry the Topic Alias, remaining expiry and Subscription Identifiers they were written with.
 */
class CachedPublish implements PreparedPublish {
  readonly bytes: Buffer;
  readonly qos: QoS;
  readonly idOffset: number;
  /** Plain: 8 for 5.0, then QoS and RETAIN bits; receiver variants: 16 + QoS and RETAIN bits. */
  readonly key: number;
  readonly withTopic: boolean;
  readonly alias: number;
  readonly expiry: number;
  readonly subIds: readonly number[] | undefined;
  next: CachedPublish | undefined;
  constructor(
    bytes: Buffer, qos: QoS, key: number, next: CachedPublish | undefined,
    withTopic: boolean, alias: number, expiry: number, subIds: readonly number[] | undefined,
  ) {
    this.bytes = bytes;
    this.qos = qos;
    this.idOffset = publishIdOffset(bytes);
    this.key = key;
    this.withTopic = withTopic;
    this.alias = alias;
    this.expiry = expiry;
    this.subIds = subIds;
    this.next = next;
  }
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
    receivers: 0,
    size: -1,
    template: undefined,
    storeId: undefined,
    storeRefs: 0,
    ackWaiter: undefined,
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

/** `messageBytes` of a Message, computed once however many queues count it. */
export function sizeOf(m: Message): number {
  return m.size >= 0 ? m.size : (m.size = messageBytes(m));
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
  // 3.1 and 3.1.1 share an encoding; 5.0 adds the properties.
  const v5 = version === ProtocolVersion.V5;
  const key = (v5 ? 8 : 0) | (qos << 1) | (retain ? 1 : 0);
  for (let c = m.encoded; c !== undefined; c = c.next) if (c.key === key) return c;
  const packet: PublishPacket = {
    type: PacketType.Publish, topic: m.topic, payload: m.payload, qos, retain, dup: false,
  };
  if (v5 && m.properties !== undefined) packet.properties = m.properties;
  const c = new CachedPublish(encode(packet, version), qos, key, m.encoded, true, 0, -1, undefined);
  m.encoded = c;
  return c;
}

/**
 * Most receiver variants cached on one message. Receivers with the same alias for the topic,
 * the same remaining expiry and subscription ids get the same bytes (a fan-out at one instant to
 * clients that subscribed alike); past this many variants each receiver gets its own encoding.
 */
const RECEIVER_VARIANTS = 4;

function sameIds(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The cached 5.0 encoding of `m` with these per-receiver parts, if one was made. */
export function receiverVariant(
  m: Message, qos: QoS, retain: boolean, withTopic: boolean, alias: number, expiry: number, subIds: readonly number[] | undefined,
): PreparedPublish | undefined {
  const key = 16 | (qos << 1) | (retain ? 1 : 0);
  for (let c = m.encoded; c !== undefined; c = c.next) {
    if (c.key === key && c.alias === alias && c.withTopic === withTopic && c.expiry === expiry && sameIds(c.subIds, subIds)) return c;
  }
  return undefined;
}

/**
 * Encodes and caches a 5.0 variant of `m` (packet identifier 0, DUP clear: stamped per
 * receiver) of `size` bytes with properties of `propsLen` bytes, both computed from `t` with
 * the same parts; undefined when the message already has RECEIVER_VARIANTS of them.
 */
export function addReceiverVariant(
  m: Message, t: PublishTemplate, qos: QoS, retain: boolean, withTopic: boolean, alias: number, expiry: number,
  subIds: readonly number[] | undefined, propsLen: number, size: number,
): PreparedPublish | undefined {
  let n = 0;
  for (let c = m.encoded; c !== undefined; c = c.next) if (c.key >= 16 && ++n === RECEIVER_VARIANTS) return undefined;
  const bytes = Buffer.allocUnsafe(size);
  const payload = m.payload;
  const pos = writePublishHeader(bytes, 0, t, withTopic, qos, retain, false, 0, payload.length, propsLen, expiry, subIds, alias);
  copyBytes(payload, 0, payload.length, bytes, pos);
  const key = 16 | (qos << 1) | (retain ? 1 : 0);
  const c = new CachedPublish(bytes, qos, key, m.encoded, withTopic, alias, expiry, subIds);
  m.encoded = c;
  return c;
}

/**
 * Templates of messages that forward no properties of their own (none, or only the per-receiver
 * ones: a Message Expiry Interval), by topic. Such a template is the topic alone, the same for
 * every message on it: a stream of messages with an expiry to one receiver each (point to
 * point) encodes each topic once instead of once per message. Bounded: emptied when full.
 */
export class TemplateCache {
  static readonly MAX = 512;
  #byTopic = new Map<string, PublishTemplate>();

  get(topic: string): PublishTemplate {
    let t = this.#byTopic.get(topic);
    if (t === undefined) {
      // A new Map, not clear(): a cleared table would keep its successor, and every later one
      // with its templates, alive through young collections (session/rotating.ts).
      if (this.#byTopic.size >= TemplateCache.MAX) this.#byTopic = new Map();
      t = publishTemplate(topic, undefined);
      this.#byTopic.set(topic, t);
    }
    return t;
  }

  get size(): number {
    return this.#byTopic.size;
  }
}

/** Whether `p` holds nothing but per-receiver properties (which a template leaves out). */
function onlyPerReceiver(p: Properties | undefined): boolean {
  if (p === undefined) return true;
  const from = p as Record<string, unknown>;
  for (const key in from) {
    if (!isPerReceiverProperty(key) && from[key] !== undefined) return false;
  }
  return true;
}

/** The topic and forwarded properties of `m` encoded once for 5.0 receivers with their own properties. */
export function templateFor(m: Message, cache: TemplateCache): PublishTemplate {
  let t = m.template;
  if (t === undefined) {
    t = onlyPerReceiver(m.properties) ? cache.get(m.topic) : publishTemplate(m.topic, m.properties);
    m.template = t;
  }
  return t;
}

/** Seconds left of the Message Expiry Interval at `now` [MQTT-3.3.2-6]; -1: the message does not expire. */
export function remainingExpiry(m: Message, now: number): number {
  return m.expiresAt === undefined ? -1 : Math.max(0, Math.ceil((m.expiresAt - now) / 1000));
}
