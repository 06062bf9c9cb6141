/** SUBSCRIBE (§3.8) and SUBACK (§3.9). */
import type { Buffer } from 'node:buffer';
import { PacketType, ProtocolVersion, type QoS } from '../constants.js';
import { MalformedPacketError, ProtocolError } from '../errors.js';
import type { SubackPacket, SubscribePacket, Subscription } from '../packets.js';
import type { Reader } from '../primitives.js';
import { utf8Length, varintLength } from '../primitives.js';
import { propertiesLength, readProperties, writeProperties } from '../properties.js';
import { AllowedReasonCodes } from '../reason-codes.js';
import { topicFilterProblem } from '../topic.js';
import { startPacket } from './header.js';

export function decodeSubscribe(r: Reader, version: number): SubscribePacket {
  const packetId = r.u16('packet identifier');
  if (packetId === 0) throw new MalformedPacketError('packet identifier 0 [MQTT-2.3.1-1] [MQTT-2.2.1-3]');
  const packet: SubscribePacket = { type: PacketType.Subscribe, packetId, subscriptions: [] };
  const v5 = version === ProtocolVersion.V5;
  if (v5) {
    const props = readProperties(r, PacketType.Subscribe);
    if (props !== undefined) {
      if ((props.subscriptionIdentifiers?.length ?? 0) > 1) throw new ProtocolError('more than one subscription identifier');
      packet.properties = props;
    }
  }
  while (r.remaining() > 0) {
    const topicFilter = r.utf8('topic filter');
    const problem = topicFilterProblem(topicFilter);
    // An empty filter or misplaced wildcards make the packet malformed (0x81) [MQTT-4.7.3-1]
    // [MQTT-4.7.1-2] [MQTT-4.7.1-3]; 0x8F is for well-formed filters the broker refuses.
    if (problem !== undefined) throw new MalformedPacketError(problem);
    const options = r.u8('subscription options');
    const qos = options & 0x03;
    if (qos === 3) {
      // 5.0 §3.8.3.1: a Maximum QoS of 3 is a Protocol Error; 3.1.1 [MQTT-3-8.3-4]: malformed.
      if (v5) throw new ProtocolError('subscription QoS 3');
      throw new MalformedPacketError('subscription QoS 3 [MQTT-3-8.3-4]');
    }
    const sub: Subscription = { topicFilter, qos: qos as QoS };
    if (v5) {
      if (options & 0xc0) throw new MalformedPacketError('reserved subscription option bits set [MQTT-3.8.3-5]');
      const retainHandling = (options >> 4) & 0x03;
      if (retainHandling === 3) throw new ProtocolError('retain handling 3 [MQTT-3.8.3-5]');
      sub.noLocal = (options & 0x04) !== 0;
      sub.retainAsPublished = (options & 0x08) !== 0;
      sub.retainHandling = retainHandling as 0 | 1 | 2;
      // [MQTT-3.8.3-4]: No Local on a shared subscription is a Protocol Error.
      if (sub.noLocal && topicFilter.startsWith('$share/')) throw new ProtocolError('No Local on a shared subscription [MQTT-3.8.3-4]');
    } else if (options & 0xfc) {
      throw new MalformedPacketError('reserved subscription option bits set [MQTT-3-8.3-4]');
    }
    packet.subscriptions.push(sub);
  }
  // [MQTT-3.8.3-3] (3.1.1) / [MQTT-3.8.3-2] (5.0): at least one topic filter.
  if (packet.subscriptions.length === 0) throw new ProtocolError('SUBSCRIBE without topic filters [MQTT-3.8.3-3]');
  return packet;
}

export function encodeSubscribe(p: SubscribePacket, version: number): Buffer {
  const v5 = version === ProtocolVersion.V5;
  const propsLen = v5 ? propertiesLength(p.properties, PacketType.Subscribe) : 0;
  let len = 2 + (v5 ? varintLength(propsLen) + propsLen : 0);
  const lens = p.subscriptions.map((s) => utf8Length(s.topicFilter));
  for (const l of lens) len += 3 + l;
  const w = startPacket((PacketType.Subscribe << 4) | 0x02, len);
  w.u16(p.packetId);
  if (v5) writeProperties(w, p.properties, PacketType.Subscribe, propsLen);
  p.subscriptions.forEach((s, i) => {
    w.utf8(s.topicFilter, lens[i] as number);
    let options: number = s.qos;
    if (v5) {
      if (s.noLocal) options |= 0x04;
      if (s.retainAsPublished) options |= 0x08;
      options |= (s.retainHandling ?? 0) << 4;
    }
    w.u8(options);
  });
  return w.buf;
}

export function decodeSuback(r: Reader, version: number): SubackPacket {
  const packetId = r.u16('packet identifier');
  if (packetId === 0) throw new MalformedPacketError('packet identifier 0 [MQTT-2.2.1-3]');
  const packet: SubackPacket = { type: PacketType.Suback, packetId, reasonCodes: [] };
  const v5 = version === ProtocolVersion.V5;
  if (v5) {
    const props = readProperties(r, PacketType.Suback);
    if (props !== undefined) packet.properties = props;
  }
  const allowed = AllowedReasonCodes[PacketType.Suback] as ReadonlySet<number>;
  while (r.remaining() > 0) {
    const code = r.u8('reason code');
    // [MQTT-3.9.3-2] (3.1.1): 0x00, 0x01, 0x02 or 0x80 only.
    if (v5 ? !allowed.has(code) : code > 2 && code !== 0x80) throw new ProtocolError(`SUBACK code 0x${code.toString(16)} is not allowed`);
    packet.reasonCodes.push(code);
  }
  if (packet.reasonCodes.length === 0) throw new ProtocolError('SUBACK without return codes');
  return packet;
}

export function encodeSuback(p: SubackPacket, version: number): Buffer {
  const v5 = version === ProtocolVersion.V5;
  const propsLen = v5 ? propertiesLength(p.properties, PacketType.Suback) : 0;
  const w = startPacket(PacketType.Suback << 4, 2 + (v5 ? varintLength(propsLen) + propsLen : 0) + p.reasonCodes.length);
  w.u16(p.packetId);
  if (v5) writeProperties(w, p.properties, PacketType.Suback, propsLen);
  // 3.1.1 has one failure code: every 5.0 failure becomes 0x80.
  for (const code of p.reasonCodes) w.u8(v5 || code < 0x80 ? code : 0x80);
  return w.buf;
}
