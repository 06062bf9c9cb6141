/** UNSUBSCRIBE (§3.10) and UNSUBACK (§3.11). */
import type { Buffer } from 'node:buffer';
import { PacketType, ProtocolVersion } from '../constants.js';
import { MalformedPacketError, ProtocolError } from '../errors.js';
import type { UnsubackPacket, UnsubscribePacket } from '../packets.js';
import type { Reader } from '../primitives.js';
import { utf8Length, varintLength } from '../primitives.js';
import { propertiesLength, readProperties, writeProperties } from '../properties.js';
import { AllowedReasonCodes } from '../reason-codes.js';
import { topicFilterProblem } from '../topic.js';
import { startPacket } from './header.js';

export function decodeUnsubscribe(r: Reader, version: number): UnsubscribePacket {
  const packetId = r.u16('packet identifier');
  if (packetId === 0) throw new MalformedPacketError('packet identifier 0 [MQTT-2.3.1-1] [MQTT-2.2.1-3]');
  const packet: UnsubscribePacket = { type: PacketType.Unsubscribe, packetId, topicFilters: [] };
  if (version === ProtocolVersion.V5) {
    const props = readProperties(r, PacketType.Unsubscribe);
    if (props !== undefined) packet.properties = props;
  }
  while (r.remaining() > 0) {
    const filter = r.utf8('topic filter');
    const problem = topicFilterProblem(filter);
    // An empty filter or misplaced wildcards make the packet malformed (0x81) [MQTT-4.7.3-1]
    // [MQTT-4.7.1-2] [MQTT-4.7.1-3]; 0x8F is for well-formed filters the broker refuses.
    if (problem !== undefined) throw new MalformedPacketError(problem);
    packet.topicFilters.push(filter);
  }
  // [MQTT-3.10.3-2]: at least one topic filter.
  if (packet.topicFilters.length === 0) throw new ProtocolError('UNSUBSCRIBE without topic filters [MQTT-3.10.3-2]');
  return packet;
}

export function encodeUnsubscribe(p: UnsubscribePacket, version: number): Buffer {
  const v5 = version === ProtocolVersion.V5;
  const propsLen = v5 ? propertiesLength(p.properties, PacketType.Unsubscribe) : 0;
  const lens = p.topicFilters.map(utf8Length);
  let len = 2 + (v5 ? varintLength(propsLen) + propsLen : 0);
  for (const l of lens) len += 2 + l;
  const w = startPacket((PacketType.Unsubscribe << 4) | 0x02, len);
  w.u16(p.packetId);
  if (v5) writeProperties(w, p.properties, PacketType.Unsubscribe, propsLen);
  p.topicFilters.forEach((f, i) => w.utf8(f, lens[i] as number));
  return w.buf;
}

export function decodeUnsuback(r: Reader, version: number): UnsubackPacket {
  const packetId = r.u16('packet identifier');
  if (packetId === 0) throw new MalformedPacketError('packet identifier 0 [MQTT-2.2.1-3]');
  const packet: UnsubackPacket = { type: PacketType.Unsuback, packetId };
  if (version === ProtocolVersion.V5) {
    const props = readProperties(r, PacketType.Unsuback);
    if (props !== undefined) packet.properties = props;
    const allowed = AllowedReasonCodes[PacketType.Unsuback] as ReadonlySet<number>;
    const codes: number[] = [];
    while (r.remaining() > 0) {
      const code = r.u8('reason code');
      if (!allowed.has(code)) throw new ProtocolError(`UNSUBACK code 0x${code.toString(16)} is not allowed`);
      codes.push(code);
    }
    if (codes.length === 0) throw new ProtocolError('UNSUBACK without reason codes');
    packet.reasonCodes = codes;
  }
  if (r.remaining() !== 0) throw new MalformedPacketError('bytes after the UNSUBACK');
  return packet;
}

export function encodeUnsuback(p: UnsubackPacket, version: number): Buffer {
  if (version !== ProtocolVersion.V5) {
    const w = startPacket(PacketType.Unsuback << 4, 2);
    w.u16(p.packetId);
    return w.buf;
  }
  const codes = p.reasonCodes ?? [];
  const propsLen = propertiesLength(p.properties, PacketType.Unsuback);
  const w = startPacket(PacketType.Unsuback << 4, 2 + varintLength(propsLen) + propsLen + codes.length);
  w.u16(p.packetId);
  writeProperties(w, p.properties, PacketType.Unsuback, propsLen);
  for (const code of codes) w.u8(code);
  return w.buf;
}
