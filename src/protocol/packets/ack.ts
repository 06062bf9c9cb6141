/**
 * PUBACK, PUBREC, PUBREL and PUBCOMP (§3.4 to §3.7) share one layout: packet identifier, then
 * in 5.0 an optional reason code and optional properties. One codec serves all four.
 */
import type { Buffer } from 'node:buffer';
import { PacketType, ProtocolVersion } from '../constants.js';
import { MalformedPacketError } from '../errors.js';
import type { AckPacket } from '../packets.js';
import type { Reader } from '../primitives.js';
import { varintLength } from '../primitives.js';
import { propertiesLength, writeProperties } from '../properties.js';
import { readReasonTail, startPacket } from './header.js';

type AckType = typeof PacketType.Puback | typeof PacketType.Pubrec | typeof PacketType.Pubrel | typeof PacketType.Pubcomp;

export function decodeAck<T extends AckType>(r: Reader, type: T, version: number): AckPacket<T> {
  const packetId = r.u16('packet identifier');
  if (packetId === 0) throw new MalformedPacketError('packet identifier 0 [MQTT-2.3.1-1] [MQTT-2.2.1-3]');
  const packet: AckPacket<T> = { type, packetId };
  if (version === ProtocolVersion.V5) readReasonTail(r, type, packet);
  if (r.remaining() !== 0) throw new MalformedPacketError('bytes after the acknowledgement');
  return packet;
}

export function encodeAck(p: AckPacket<AckType>, version: number): Buffer {
  const first = (p.type << 4) | (p.type === PacketType.Pubrel ? 0x02 : 0);
  const code = p.reasonCode ?? 0;
  if (version !== ProtocolVersion.V5) {
    const w = startPacket(first, 2);
    w.u16(p.packetId);
    return w.buf;
  }
  const propsLen = propertiesLength(p.properties, p.type);
  if (propsLen === 0 && code === 0) {
    const w = startPacket(first, 2);
    w.u16(p.packetId);
    return w.buf;
  }
  const withProps = propsLen > 0;
  const w = startPacket(first, 3 + (withProps ? varintLength(propsLen) + propsLen : 0));
  w.u16(p.packetId);
  w.u8(code);
  if (withProps) writeProperties(w, p.properties, p.type, propsLen);
  return w.buf;
}
