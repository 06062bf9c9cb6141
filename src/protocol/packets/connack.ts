/** CONNACK (§3.2). `reasonCode` is always a 5.0 code; 3.1 / 3.1.1 use the mapped return code. */
import type { Buffer } from 'node:buffer';
import { PacketType, ProtocolVersion } from '../constants.js';
import { MalformedPacketError, ProtocolError } from '../errors.js';
import type { ConnackPacket } from '../packets.js';
import type { Reader } from '../primitives.js';
import { varintLength } from '../primitives.js';
import { propertiesLength, readProperties, writeProperties } from '../properties.js';
import { AllowedReasonCodes, fromV3ConnackCode, toV3ConnackCode } from '../reason-codes.js';
import { startPacket } from './header.js';

export function decodeConnack(r: Reader, version: number): ConnackPacket {
  const flags = r.u8('connack flags');
  if (flags & 0xfe) throw new MalformedPacketError('reserved connack flags are set [MQTT-3.2.2-1]');
  const code = r.u8('connack reason code');
  const packet: ConnackPacket = { type: PacketType.Connack, sessionPresent: flags === 1, reasonCode: 0 };
  if (version === ProtocolVersion.V5) {
    if (!(AllowedReasonCodes[PacketType.Connack] as ReadonlySet<number>).has(code)) {
      throw new ProtocolError(`CONNACK reason code 0x${code.toString(16)} is not defined`);
    }
    packet.reasonCode = code;
    const props = readProperties(r, PacketType.Connack);
    if (props !== undefined) packet.properties = props;
  } else {
    if (code > 5) throw new MalformedPacketError(`CONNACK return code ${code} is not defined`);
    packet.reasonCode = fromV3ConnackCode(code);
  }
  // [MQTT-3.2.2-4] (3.1.1) / [MQTT-3.2.2-6] (5.0): Session Present is 0 on a refused connection.
  if (packet.sessionPresent && code !== 0) throw new ProtocolError('session present on a refused connection [MQTT-3.2.2-6]');
  if (r.remaining() !== 0) throw new MalformedPacketError('bytes after the CONNACK');
  return packet;
}

export function encodeConnack(p: ConnackPacket, version: number): Buffer {
  // [MQTT-3.2.2-4] (3.1.1) / [MQTT-3.2.2-6] (5.0): Session Present is 0 on a refused connection.
  const flags = p.sessionPresent && p.reasonCode < 0x80 ? 1 : 0;
  if (version !== ProtocolVersion.V5) {
    const w = startPacket(PacketType.Connack << 4, 2);
    w.u8(flags);
    w.u8(toV3ConnackCode(p.reasonCode));
    return w.buf;
  }
  const propsLen = propertiesLength(p.properties, PacketType.Connack);
  const w = startPacket(PacketType.Connack << 4, 2 + varintLength(propsLen) + propsLen);
  w.u8(flags);
  w.u8(p.reasonCode);
  writeProperties(w, p.properties, PacketType.Connack, propsLen);
  return w.buf;
}
