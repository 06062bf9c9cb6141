/**
 * PUBLISH (§3.3), the hot path. Decoding returns the payload as a view of the input; encoding
 * writes straight into one Buffer of the exact size. `preparePublish` encodes a message once
 * so it can be written to many receivers; only the packet identifier (and DUP) differ.
 */
import { Buffer } from 'node:buffer';
import { PacketType, ProtocolVersion, type QoS } from '../constants.js';
import { MalformedPacketError, ProtocolError, TopicNameInvalidError } from '../errors.js';
import type { PublishPacket } from '../packets.js';
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
  return writePublish(p, version, p.packetId ?? 0).buf;
}

/** Encodes into one Buffer of the exact size; also returns where the packet identifier sits (-1 for QoS 0). */
function writePublish(p: PublishPacket, version: number, packetId: number): { buf: Buffer; idOffset: number } {
  const topic = p.topic;
  const topicLen = utf8Length(topic);
  const v5 = version === ProtocolVersion.V5;
  const propsLen = v5 ? propertiesLength(p.properties, PacketType.Publish) : 0;
  let remaining = 2 + topicLen + p.payload.length;
  if (p.qos > 0) remaining += 2;
  if (v5) remaining += varintLength(propsLen) + propsLen;
  const headerLen = 1 + varintLength(remaining);
  const idOffset = p.qos > 0 ? headerLen + 2 + topicLen : -1;
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
    return { buf, idOffset };
  }
  const w = new Writer(headerLen + remaining);
  w.u8(firstByte(p));
  w.varint(remaining);
  w.utf8(topic, topicLen);
  if (p.qos > 0) w.u16(packetId);
  writeProperties(w, p.properties, PacketType.Publish, propsLen);
  w.raw(p.payload);
  return { buf: w.buf, idOffset };
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
  const { buf, idOffset } = writePublish(p, version, 0);
  return { bytes: buf, qos: p.qos, idOffset };
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
