/** DISCONNECT (§3.14), AUTH (§3.15), PINGREQ and PINGRESP (§3.12, §3.13): reason code + properties, or nothing. */
import { Buffer } from 'node:buffer';
import { PacketType, ProtocolVersion } from '../constants.js';
import { MalformedPacketError, ProtocolError } from '../errors.js';
import type { AuthPacket, DisconnectPacket } from '../packets.js';
import type { Reader } from '../primitives.js';
import { varintLength } from '../primitives.js';
import { propertiesLength, writeProperties } from '../properties.js';
import { readReasonTail, startPacket } from './header.js';

type CodedType = typeof PacketType.Disconnect | typeof PacketType.Auth;

/** DISCONNECT and AUTH: remaining length 0 means reason 0x00 without properties [MQTT-3.14.2-1]. */
export function decodeCoded<T extends CodedType>(r: Reader, type: T, version: number): { type: T; reasonCode?: number; properties?: DisconnectPacket['properties'] } {
  const packet: { type: T; reasonCode?: number; properties?: DisconnectPacket['properties'] } = { type };
  if (version !== ProtocolVersion.V5) {
    if (type === PacketType.Auth) throw new MalformedPacketError('AUTH exists only in MQTT 5.0');
    if (r.remaining() !== 0) throw new MalformedPacketError('DISCONNECT with a body [MQTT-3.14.1-1]');
    return packet;
  }
  readReasonTail(r, type, packet);
  if (r.remaining() !== 0) throw new MalformedPacketError('bytes after the packet');
  return packet;
}

export function decodeDisconnect(r: Reader, version: number): DisconnectPacket {
  return decodeCoded(r, PacketType.Disconnect, version);
}

export function decodeAuth(r: Reader, version: number): AuthPacket {
  return decodeCoded(r, PacketType.Auth, version);
}

export function encodeCoded(p: DisconnectPacket | AuthPacket, version: number): Buffer {
  if (version !== ProtocolVersion.V5) {
    if (p.type === PacketType.Auth) throw new ProtocolError('AUTH exists only in MQTT 5.0');
    return DISCONNECT_V3;
  }
  const code = p.reasonCode ?? 0;
  const propsLen = propertiesLength(p.properties, p.type);
  if (code === 0 && propsLen === 0) return p.type === PacketType.Auth ? AUTH_EMPTY : DISCONNECT_V3;
  const w = startPacket(p.type << 4, 1 + (propsLen > 0 ? varintLength(propsLen) + propsLen : 0));
  w.u8(code);
  if (propsLen > 0) writeProperties(w, p.properties, p.type, propsLen);
  return w.buf;
}

const DISCONNECT_V3 = Buffer.from([0xe0, 0x00]);
const AUTH_EMPTY = Buffer.from([0xf0, 0x00]);
export const PINGREQ_BYTES = Buffer.from([0xc0, 0x00]);
export const PINGRESP_BYTES = Buffer.from([0xd0, 0x00]);

export function checkEmpty(r: Reader, what: string): void {
  if (r.remaining() !== 0) throw new MalformedPacketError(`${what} with a body`);
}
