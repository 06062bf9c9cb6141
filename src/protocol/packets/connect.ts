/** CONNECT (§3.1): protocol name and level, flags, keep alive, properties, payload. */
import type { Buffer } from 'node:buffer';
import { PacketType, ProtocolVersion, type ProtocolVersionValue, type QoS } from '../constants.js';
import { MalformedPacketError, TopicNameInvalidError, UnsupportedProtocolVersionError } from '../errors.js';
import type { ConnectPacket, WillMessage } from '../packets.js';
import type { Reader } from '../primitives.js';
import { utf8Length, varintLength } from '../primitives.js';
import { propertiesLength, readProperties, WillContext, writeProperties } from '../properties.js';
import { topicNameProblem } from '../topic.js';
import { startPacket } from './header.js';

/**
 * `headerFlags` are the fixed header's low four bits. MQTT 3.1 (`MQIsdp`, level 3) defines no
 * check of them nor of the reserved connect flag, and 3.1 clients that set them exist: they are
 * ignored there. 3.1.1 and 5.0 refuse both [MQTT-2.2.2-2] [MQTT-3.1.2-3].
 */
export function decodeConnect(r: Reader, headerFlags = 0): ConnectPacket {
  const protocolName = r.utf8('protocol name');
  const level = r.u8('protocol level');
  const v31 = protocolName === 'MQIsdp' && level === 3;
  if (headerFlags !== 0 && !v31) throw new MalformedPacketError('invalid fixed header flags for CONNECT [MQTT-2.2.2-2]');
  // [MQTT-3.1.2-1] [MQTT-3.1.2-2]: only the names and levels this codec speaks.
  const known = (protocolName === 'MQTT' && (level === 4 || level === 5)) || v31;
  if (!known) throw new UnsupportedProtocolVersionError(`unsupported protocol ${protocolName} level ${level}`);
  const protocolVersion = level as ProtocolVersionValue;
  const flags = r.u8('connect flags');
  if ((flags & 0x01) !== 0 && !v31) throw new MalformedPacketError('reserved connect flag is set [MQTT-3.1.2-3]');
  const hasWill = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 0x03;
  const willRetain = (flags & 0x20) !== 0;
  const hasPassword = (flags & 0x40) !== 0;
  const hasUsername = (flags & 0x80) !== 0;
  if (willQos === 3) throw new MalformedPacketError('will QoS 3 [MQTT-3.1.2-12]');
  if (!hasWill && (willQos !== 0 || willRetain)) {
    throw new MalformedPacketError('will QoS or retain set without the will flag [MQTT-3.1.2-11] [MQTT-3.1.2-13]');
  }
  if (protocolVersion !== ProtocolVersion.V5 && hasPassword && !hasUsername) {
    throw new MalformedPacketError('password flag without user name flag [MQTT-3.1.2-22]');
  }
  const packet: ConnectPacket = {
    type: PacketType.Connect,
    protocolVersion,
    protocolName,
    clientId: '',
    clean: (flags & 0x02) !== 0,
    keepalive: r.u16('keep alive'),
  };
  if (protocolVersion === ProtocolVersion.V5) {
    const props = readProperties(r, PacketType.Connect);
    if (props !== undefined) packet.properties = props;
  }
  packet.clientId = r.utf8('client identifier');
  if (hasWill) packet.will = readWill(r, protocolVersion, willQos as QoS, willRetain);
  if (hasUsername) packet.username = r.utf8('user name');
  if (hasPassword) packet.password = r.binary('password');
  if (r.remaining() !== 0) throw new MalformedPacketError('bytes after the CONNECT payload');
  return packet;
}

function readWill(r: Reader, version: number, qos: QoS, retain: boolean): WillMessage {
  const properties = version === ProtocolVersion.V5 ? readProperties(r, WillContext) : undefined;
  const topic = r.utf8('will topic');
  const problem = topicNameProblem(topic);
  if (problem !== undefined) throw new TopicNameInvalidError(`will ${problem}`);
  const payload = r.binary('will payload');
  const will: WillMessage = { topic, payload, qos, retain };
  if (properties !== undefined) will.properties = properties;
  return will;
}

export function encodeConnect(p: ConnectPacket): Buffer {
  const v5 = p.protocolVersion === ProtocolVersion.V5;
  const name = p.protocolVersion === ProtocolVersion.V31 ? 'MQIsdp' : 'MQTT';
  let len = 2 + name.length + 1 + 1 + 2;
  let propsLen = 0;
  if (v5) {
    propsLen = propertiesLength(p.properties, PacketType.Connect);
    len += varintLength(propsLen) + propsLen;
  }
  const idLen = utf8Length(p.clientId);
  len += 2 + idLen;
  let flags = p.clean ? 0x02 : 0;
  let willPropsLen = 0;
  let willTopicLen = 0;
  const will = p.will;
  if (will !== undefined) {
    flags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0);
    willTopicLen = utf8Length(will.topic);
    len += 2 + willTopicLen + 2 + will.payload.length;
    if (v5) {
      willPropsLen = propertiesLength(will.properties, WillContext);
      len += varintLength(willPropsLen) + willPropsLen;
    }
  }
  let userLen = 0;
  if (p.username !== undefined) {
    flags |= 0x80;
    userLen = utf8Length(p.username);
    len += 2 + userLen;
  }
  if (p.password !== undefined) {
    flags |= 0x40;
    len += 2 + p.password.length;
  }
  const w = startPacket(PacketType.Connect << 4, len);
  w.utf8(name, name.length);
  w.u8(p.protocolVersion);
  w.u8(flags);
  w.u16(p.keepalive);
  if (v5) writeProperties(w, p.properties, PacketType.Connect, propsLen);
  w.utf8(p.clientId, idLen);
  if (will !== undefined) {
    if (v5) writeProperties(w, will.properties, WillContext, willPropsLen);
    w.utf8(will.topic, willTopicLen);
    w.binary(will.payload);
  }
  if (p.username !== undefined) w.utf8(p.username, userLen);
  if (p.password !== undefined) w.binary(p.password);
  return w.buf;
}
