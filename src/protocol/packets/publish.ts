/**
 * PUBLISH (§3.3), the hot path. Decoding returns the payload as a view of the input; encoding
 * writes straight into one Buffer of the exact size. `preparePublish` encodes a message once
 * so it can be written to many receivers; only the packet identifier (and DUP) differ.
 */
import { Buffer } from 'node:buffer';
import { PacketType, ProtocolVersion, type QoS } from '../constants.js';
import { MalformedPacketError, ProtocolError, TopicNameInvalidError } from '../errors.js';
import type { PublishPacket } from '../packets.js';
import type { Properties } from '../properties.js';
import { type Reader, utf8Length, validUtf8, varintLength, Writer, writeString, writeVarint } from '../primitives.js';
import { propertiesLength, readProperties, writeProperties } from '../properties.js';

export function decodePublish(r: Reader, flags: number, version: number): PublishPacket {
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) throw new MalformedPacketError('PUBLISH with QoS 3 [MQTT-3.3.1-4]');
  const dup = (flags & 0x08) !== 0;
  if (dup && qos === 0) throw new MalformedPacketError('DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]');
  const topic = readTopic(r);
  const packet: PublishPacket = {
    type: PacketType.Publish,
    topic,
    payload: EMPTY,
    qos: qos as QoS,
    retain: (flags & 0x01) !== 0,
    dup,
  };
  if (qos > 0) {
    const id = r.u16('packet identifier');
    if (id === 0) throw new MalformedPacketError('packet identifier 0 [MQTT-2.3.1-1] [MQTT-2.2.1-3]');
    packet.packetId = id;
  }
  if (version === ProtocolVersion.V5) {
    const props = readProperties(r, PacketType.Publish);
    if (props !== undefined) packet.properties = props;
    // [MQTT-3.3.2-1]: an empty topic is allowed only with a Topic Alias (5.0).
    if (topic.length === 0 && props?.topicAlias === undefined) {
      throw new ProtocolError('empty topic name without a topic alias [MQTT-3.3.2-1]');
    }
  } else if (topic.length === 0) {
    throw new TopicNameInvalidError('empty topic name [MQTT-4.7.3-1]');
  }
  packet.payload = r.rest();
  return packet;
}

const EMPTY = Buffer.alloc(0);

/** Reads the topic name and refuses wildcards [MQTT-3.3.2-2]; faster than the generic string reader. */
function readTopic(r: Reader): string {
  const len = r.u16('topic name');
  const start = r.pos;
  const end = start + len;
  if (end > r.end) throw new MalformedPacketError('packet ends inside the topic name');
  const buf = r.buf;
  let ascii = true;
  for (let i = start; i < end; i++) {
    const b = buf[i] as number;
    // A wildcard makes the name malformed (0x81); 0x90 is for well-formed names the receiver refuses.
    if (b === 0x2b || b === 0x23) throw new MalformedPacketError('topic name contains a wildcard [MQTT-3.3.2-2]');
    if (b === 0) throw new MalformedPacketError('topic name contains U+0000 [MQTT-1.5.4-2]');
    if (b >= 0x80) ascii = false;
  }
  if (!ascii && !validUtf8(buf, start, end)) throw new MalformedPacketError('topic name is not valid UTF-8 [MQTT-1.5.4-1]');
  r.pos = end;
  return ascii ? buf.toString('latin1', start, end) : buf.toString('utf8', start, end);
}

function firstByte(p: PublishPacket): number {
  return (PacketType.Publish << 4) | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 1 : 0);
}

export function encodePublish(p: PublishPacket, version: number): Buffer {
  return writePublish(p, version, p.packetId ?? 0);
}

/** Encodes into one Buffer of the exact size. */
function writePublish(p: PublishPacket, version: number, packetId: number): Buffer {
  const topic = p.topic;
  const topicLen = utf8Length(topic);
  const v5 = version === ProtocolVersion.V5;
  const propsLen = v5 ? propertiesLength(p.properties, PacketType.Publish) : 0;
  let remaining = 2 + topicLen + p.payload.length;
  if (p.qos > 0) remaining += 2;
  if (v5) remaining += varintLength(propsLen) + propsLen;
  const headerLen = 1 + varintLength(remaining);
  if (propsLen === 0) {
    const buf = Buffer.allocUnsafe(headerLen + remaining);
    buf[0] = firstByte(p);
    let pos = writeVarint(buf, 1, remaining);
    buf[pos++] = topicLen >>> 8;
    buf[pos++] = topicLen & 0xff;
    pos = writeString(buf, pos, topic, topicLen);
    if (p.qos > 0) {
      buf[pos++] = packetId >>> 8;
      buf[pos++] = packetId & 0xff;
    }
    if (v5) buf[pos++] = 0;
    p.payload.copy(buf, pos);
    return buf;
  }
  const w = new Writer(headerLen + remaining);
  w.u8(firstByte(p));
  w.varint(remaining);
  w.utf8(topic, topicLen);
  if (p.qos > 0) w.u16(packetId);
  writeProperties(w, p.properties, PacketType.Publish, propsLen);
  w.raw(p.payload);
  return w.buf;
}

/**
 * A PUBLISH encoded once for many receivers. For QoS 0 `bytes` is written as is; for QoS 1/2
 * each receiver needs its own packet identifier at `idOffset` (see `stampPublish`).
 */
export interface PreparedPublish {
  readonly bytes: Buffer;
  readonly qos: QoS;
  /** Offset of the two packet identifier bytes, or -1 for QoS 0. */
  readonly idOffset: number;
}

export function preparePublish(p: PublishPacket, version: number): PreparedPublish {
  const bytes = writePublish(p, version, 0);
  return { bytes, qos: p.qos, idOffset: publishIdOffset(bytes) };
}

/** Where the packet identifier of an encoded PUBLISH sits (after the fixed header and topic), or -1 for QoS 0. */
export function publishIdOffset(bytes: Buffer): number {
  if (((bytes[0] as number) & 0x06) === 0) return -1;
  let pos = 1;
  while (((bytes[pos++] as number) & 0x80) !== 0);
  return pos + 2 + (((bytes[pos] as number) << 8) | (bytes[pos + 1] as number));
}

// ---- 5.0 PUBLISH written per receiver -------------------------------------------------------
//
// A 5.0 receiver may need its own Topic Alias (and then an empty topic), remaining Message
// Expiry Interval and Subscription Identifiers. Everything else is the same for every receiver,
// so it is encoded once per message (`publishTemplate`); `writePublishHeader` then writes one
// receiver's fixed header, topic, packet identifier and properties straight into the output, and
// the caller copies the shared payload after it. Properties come out in identifier order, as
// `encode` writes them, so both produce the same bytes for the same packet.

/**
 * The per-message part of a 5.0 PUBLISH. `bytes` holds the topic (with its two byte length) and
 * then the forwarded properties in identifier order, split where the per-receiver ones go:
 * [topic][ids below 0x02][0x03 .. 0x09][0x26 user properties]. It depends only on the topic and
 * the properties, never on the payload.
 */
export interface PublishTemplate {
  readonly bytes: Buffer;
  /** End of the topic in `bytes` (2 + its UTF-8 length). */
  readonly topicEnd: number;
  /** End of the properties that go before a Message Expiry Interval (0x02). */
  readonly beforeExpiry: number;
  /** End of the properties that go before Subscription Identifiers (0x0B) and Topic Alias (0x23). */
  readonly beforeIds: number;
  /** Byte length of the forwarded properties (the whole of `bytes` after the topic). */
  readonly propsLength: number;
}

/** The properties a 5.0 PUBLISH carries per receiver (a template leaves them out): expiry, alias, subscription ids. */
export function isPerReceiverProperty(key: string): boolean {
  return key === 'messageExpiryInterval' || key === 'topicAlias' || key === 'subscriptionIdentifiers';
}

/** Encodes the per-message part; Message Expiry Interval, Topic Alias and Subscription Identifiers in `props` are left out. */
export function publishTemplate(topic: string, props: Properties | undefined): PublishTemplate {
  const topicLen = utf8Length(topic);
  // The message's own properties minus the per-receiver ones; none at all (the common case of an
  // expiry alone) allocates nothing.
  let shared: Properties | undefined;
  if (props !== undefined) {
    const from = props as Record<string, unknown>;
    for (const key in from) {
      if (isPerReceiverProperty(key) || from[key] === undefined) continue;
      ((shared ??= {}) as Record<string, unknown>)[key] = from[key];
    }
  }
  const propsLength = propertiesLength(shared, PacketType.Publish);
  const w = new Writer(2 + topicLen + varintLength(propsLength) + propsLength);
  w.utf8(topic, topicLen);
  const topicEnd = w.pos;
  writeProperties(w, shared, PacketType.Publish, propsLength);
  // Drop the Property Length writeProperties put in front: each receiver writes its own.
  const lengthBytes = varintLength(propsLength);
  w.buf.copy(w.buf, topicEnd, topicEnd + lengthBytes, w.pos);
  const bytes = w.buf.subarray(0, w.pos - lengthBytes);
  const before = shared?.payloadFormatIndicator === undefined ? 0 : 2;
  const users = shared?.userProperties === undefined ? 0 : propertiesLength({ userProperties: shared.userProperties }, PacketType.Publish);
  return { bytes, topicEnd, beforeExpiry: topicEnd + before, beforeIds: bytes.length - users, propsLength };
}

/** Byte length of one receiver's properties: the template's plus expiry (-1: none), subscription ids and alias (0: none). */
export function publishPropertiesLength(t: PublishTemplate, expiry: number, subIds: readonly number[] | undefined, alias: number): number {
  let len = t.propsLength;
  if (expiry >= 0) len += 5;
  if (alias > 0) len += 3;
  if (subIds !== undefined) for (let i = 0; i < subIds.length; i++) len += 1 + varintLength(subIds[i] as number);
  return len;
}

/** Length of the packet without its payload: fixed header, topic (or an empty one), packet identifier, properties. */
export function publishHeaderLength(t: PublishTemplate, withTopic: boolean, qos: QoS, propsLen: number, payloadLen: number): number {
  const remaining = publishRemaining(t, withTopic, qos, propsLen) + payloadLen;
  return 1 + varintLength(remaining) + remaining - payloadLen;
}

function publishRemaining(t: PublishTemplate, withTopic: boolean, qos: QoS, propsLen: number): number {
  return (withTopic ? t.topicEnd : 2) + (qos > 0 ? 2 : 0) + varintLength(propsLen) + propsLen;
}

/**
 * Writes one receiver's PUBLISH up to the payload at `pos` in `out`; returns the position where
 * the payload goes. `propsLen` comes from `publishPropertiesLength` with the same arguments.
 * `withTopic` false writes an empty topic (the receiver knows it by `alias`) [MQTT-3.3.2-12].
 */
export function writePublishHeader(
  out: Buffer, pos: number, t: PublishTemplate, withTopic: boolean, qos: QoS, retain: boolean, dup: boolean, packetId: number,
  payloadLen: number, propsLen: number, expiry: number, subIds: readonly number[] | undefined, alias: number,
): number {
  const src = t.bytes;
  out[pos++] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0);
  pos = writeVarint(out, pos, publishRemaining(t, withTopic, qos, propsLen) + payloadLen);
  if (withTopic) {
    pos = copyBytes(src, 0, t.topicEnd, out, pos);
  } else {
    out[pos++] = 0;
    out[pos++] = 0;
  }
  if (qos > 0) {
    out[pos++] = packetId >>> 8;
    out[pos++] = packetId & 0xff;
  }
  pos = writeVarint(out, pos, propsLen);
  // The template's properties are copied in as few pieces as the per-receiver ones allow.
  let from = t.topicEnd;
  if (expiry >= 0) {
    pos = copyBytes(src, from, t.beforeExpiry, out, pos);
    from = t.beforeExpiry;
    out[pos++] = 0x02;
    out[pos++] = expiry >>> 24;
    out[pos++] = (expiry >>> 16) & 0xff;
    out[pos++] = (expiry >>> 8) & 0xff;
    out[pos++] = expiry & 0xff;
  }
  if (subIds !== undefined || alias > 0) {
    pos = copyBytes(src, from, t.beforeIds, out, pos);
    from = t.beforeIds;
    if (subIds !== undefined) {
      for (let i = 0; i < subIds.length; i++) {
        out[pos++] = 0x0b;
        pos = writeVarint(out, pos, subIds[i] as number);
      }
    }
    if (alias > 0) {
      out[pos++] = 0x23;
      out[pos++] = alias >>> 8;
      out[pos++] = alias & 0xff;
    }
  }
  return copyBytes(src, from, src.length, out, pos);
}

/** Bytes up to this many are copied in JS, avoiding a native call. */
const SHORT_COPY = 48;

/** Copies `src[start, end)` to `out` at `pos`; returns the position after it. */
export function copyBytes(src: Buffer, start: number, end: number, out: Buffer, pos: number): number {
  const n = end - start;
  if (n > SHORT_COPY) return pos + src.copy(out, pos, start, end);
  for (let i = 0; i < n; i++) out[pos + i] = src[start + i] as number;
  return pos + n;
}

/**
 * Copies a prepared PUBLISH into `target` at `offset` with its own packet identifier and DUP
 * flag; returns the offset after it. Used by connections that batch output into one buffer.
 */
export function stampPublish(prepared: PreparedPublish, target: Buffer, offset: number, packetId: number, dup: boolean): number {
  const { bytes } = prepared;
  bytes.copy(target, offset);
  if (prepared.idOffset >= 0) {
    target[offset] = dup ? ((bytes[0] as number) | 0x08) : ((bytes[0] as number) & 0xf7);
    target[offset + prepared.idOffset] = packetId >>> 8;
    target[offset + prepared.idOffset + 1] = packetId & 0xff;
  }
  return offset + bytes.length;
}

/** A fresh Buffer holding `prepared` with its own packet identifier and DUP flag. */
export function publishWithId(prepared: PreparedPublish, packetId: number, dup: boolean): Buffer {
  if (prepared.idOffset < 0) return prepared.bytes;
  const out = Buffer.allocUnsafe(prepared.bytes.length);
  stampPublish(prepared, out, 0, packetId, dup);
  return out;
}
