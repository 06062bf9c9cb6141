/**
 * Random VALID packets for a protocol level, from a seeded Rng. `forMqttPacket` restricts the
 * generator where mqtt-packet cannot represent or round-trip something the specification
 * allows; each restriction says why.
 */
import { Buffer } from 'node:buffer';
import {
  type AckPacket, AllowedReasonCodes, type AuthPacket, type DisconnectPacket, type Packet, PacketType, type Properties, PropertyTable, type QoS, type Subscription, WillContext,
} from '../../src/protocol/index.js';
import type { Rng } from './codec-prng.js';

export interface GenOptions {
  /** Apply the restrictions mqtt-packet needs (see the comments where it is read). */
  forMqttPacket?: boolean;
}

const T = PacketType;
type Version = 3 | 4 | 5;
type AckType = typeof T.Puback | typeof T.Pubrec | typeof T.Pubrel | typeof T.Pubcomp;

// Characters of 1, 2, 3 and 4 UTF-8 bytes; no U+0000, no wildcards, no '/', no surrogate halves.
const CHARS = ['a', 'b', 'c', 'x', 'Z', '0', '9', '-', '_', ' ', '.', '$', 'é', 'ß', 'Ж', '€', '中', '😀', '𝄞'];

export function randomString(rng: Rng, max = 12): string {
  const n = rng.chance(0.02) ? rng.int(100, 400) : rng.int(0, max);
  let s = '';
  for (let i = 0; i < n; i++) s += rng.pick(CHARS);
  return s;
}

function nonEmpty(rng: Rng, max = 12): string {
  const s = randomString(rng, max);
  return s.length > 0 ? s : 'k';
}

function level(rng: Rng): string {
  return randomString(rng, 6);
}

export function randomTopicName(rng: Rng): string {
  const levels = rng.int(1, 5);
  const parts: string[] = [];
  for (let i = 0; i < levels; i++) parts.push(level(rng));
  const t = parts.join('/');
  return t.length > 0 ? t : 'topic';
}

export function randomTopicFilter(rng: Rng, allowShared: boolean): string {
  const levels = rng.int(1, 5);
  const parts: string[] = [];
  for (let i = 0; i < levels; i++) parts.push(rng.chance(0.2) ? '+' : level(rng));
  if (rng.chance(0.2)) parts.push('#');
  const f = parts.join('/');
  const filter = f.length > 0 ? f : '#';
  if (allowShared && rng.chance(0.1)) return `$share/${nonEmpty(rng, 6).replace(/[/+#]/g, 'g')}/${filter}`;
  return filter;
}

function payload(rng: Rng): Buffer {
  const r = rng.next();
  if (r < 0.1) return Buffer.alloc(0);
  if (r < 0.97) return rng.bytes(rng.int(1, 300));
  return rng.bytes(rng.int(16_000, 20_000)); // a three-byte remaining length
}

function userProperties(rng: Rng, forMqttPacket: boolean): Array<[string, string]> {
  // Names are grouped (all values of one name adjacent) and never look like array indexes:
  // mqtt-packet keeps user properties in an object, which cannot hold interleaved names and
  // puts integer-like keys first, so any other order could not survive its round trip.
  const out: Array<[string, string]> = [];
  const names = rng.int(1, 3);
  const used = new Set<string>();
  for (let i = 0; i < names; i++) {
    const name = `p${randomString(rng, 6)}`;
    if (used.has(name)) continue;
    used.add(name);
    const values = rng.chance(0.2) ? rng.int(2, 3) : 1;
    // mqtt-packet's parser tests an earlier value of a repeated name for truthiness, so a
    // first value "" is overwritten by the next one instead of becoming an array.
    const repeatedNonEmpty = forMqttPacket && values > 1;
    for (let j = 0; j < values; j++) out.push([name, repeatedNonEmpty ? nonEmpty(rng, 8) : randomString(rng, 8)]);
  }
  return out;
}

/** Random properties allowed in `context` (a packet type or WillContext), or undefined. */
export function randomProperties(rng: Rng, context: number, density = 0.25, forMqttPacket = false): Properties | undefined {
  if (rng.chance(0.3)) return undefined;
  const bag: Record<string, unknown> = {};
  for (const def of PropertyTable) {
    if ((def.allowed & (1 << context)) === 0 || !rng.chance(density)) continue;
    switch (def.type) {
      case 'bool': bag[def.name] = rng.bool(); break;
      case 'byte': bag[def.name] = rng.int(0, def.max ?? 255); break;
      case 'u16': bag[def.name] = def.name === 'topicAlias' ? rng.int(1, 65535) : rng.int(def.min ?? 0, 65535); break;
      case 'u32': bag[def.name] = Math.max(def.min ?? 0, rng.u32()); break;
      case 'varint': {
        const n = context === T.Publish ? rng.int(1, 3) : 1;
        bag[def.name] = Array.from({ length: n }, () => (rng.bool() ? rng.int(1, 127) : rng.int(1, 268_435_455)));
        break;
      }
      case 'utf8': bag[def.name] = randomString(rng); break;
      case 'binary': bag[def.name] = rng.bytes(rng.int(0, 20)); break;
      case 'pair': bag[def.name] = userProperties(rng, forMqttPacket); break;
    }
  }
  return Object.keys(bag).length > 0 ? (bag as Properties) : undefined;
}

function withProps<P extends { properties?: Properties }>(p: P, props: Properties | undefined): P {
  if (props !== undefined) p.properties = props;
  return p;
}

function packetId(rng: Rng): number {
  return rng.chance(0.1) ? rng.pick([1, 255, 256, 65535]) : rng.int(1, 65535);
}

function qos(rng: Rng): QoS {
  return rng.int(0, 2) as QoS;
}

function reasonCode(rng: Rng, type: number, zeroBias = 0.5): number {
  if (rng.chance(zeroBias)) return 0;
  return rng.pick([...(AllowedReasonCodes[type] ?? [0])]);
}

const V3_CONNACK_CODES = [0x00, 0x84, 0x85, 0x88, 0x86, 0x87]; // the images of fromV3ConnackCode

export function randomPacket(rng: Rng, version: Version, options: GenOptions = {}): Packet {
  const mp = options.forMqttPacket === true;
  const v5 = version === 5;
  const type = rng.int(1, v5 ? 15 : 14);
  switch (type) {
    case T.Connect: {
      const clean = rng.bool();
      // mqtt-packet's encoder refuses an empty client identifier in 3.1 and with clean = false.
      const clientId = mp && (version === 3 || !clean) ? nonEmpty(rng) : randomString(rng);
      const p: Packet = {
        type: T.Connect, protocolVersion: version, protocolName: version === 3 ? 'MQIsdp' : 'MQTT',
        clientId, clean, keepalive: rng.int(0, 65535),
      };
      if (v5) withProps(p, randomProperties(rng, T.Connect, 0.25, mp));
      if (rng.chance(0.4)) {
        p.will = { topic: randomTopicName(rng), payload: payload(rng), qos: qos(rng), retain: rng.bool() };
        if (v5) withProps(p.will, randomProperties(rng, WillContext, 0.25, mp));
      }
      const user = rng.chance(0.5);
      if (user) p.username = randomString(rng);
      // 5.0 allows a password without a user name; mqtt-packet's encoder refuses it.
      if ((user || (v5 && !mp)) && rng.chance(0.5)) p.password = rng.bytes(rng.int(0, 30));
      return p;
    }
    case T.Connack: {
      const code = v5 ? reasonCode(rng, T.Connack) : rng.pick(V3_CONNACK_CODES);
      // Session Present is 0 whenever the connection is refused [MQTT-3.2.2-4] [MQTT-3.2.2-6].
      const p: Packet = { type: T.Connack, sessionPresent: code === 0 && rng.bool(), reasonCode: code };
      return v5 ? withProps(p, randomProperties(rng, T.Connack, 0.25, mp)) : p;
    }
    case T.Publish: {
      const q = qos(rng);
      const p: Packet = { type: T.Publish, topic: randomTopicName(rng), payload: payload(rng), qos: q, retain: rng.bool(), dup: q > 0 && rng.bool() };
      if (q > 0) p.packetId = packetId(rng);
      if (v5) {
        withProps(p, randomProperties(rng, T.Publish, 0.25, mp));
        if (rng.chance(0.05)) {
          p.topic = '';
          p.properties = { ...p.properties, topicAlias: rng.int(1, 65535) };
        }
      }
      return p;
    }
    case T.Puback: case T.Pubrec: case T.Pubrel: case T.Pubcomp: {
      const ack: AckPacket<AckType> = { type: type as AckType, packetId: packetId(rng) };
      if (!v5) return ack;
      ack.reasonCode = reasonCode(rng, type);
      return withProps(ack, randomProperties(rng, type, 0.5, mp));
    }
    case T.Subscribe: {
      const n = rng.int(1, 5);
      const subscriptions: Subscription[] = [];
      for (let i = 0; i < n; i++) {
        const topicFilter = randomTopicFilter(rng, true);
        const sub: Subscription = { topicFilter, qos: qos(rng) };
        if (v5) {
          // No Local on a shared subscription is a Protocol Error [MQTT-3.8.3-4].
          sub.noLocal = !topicFilter.startsWith('$share/') && rng.bool();
          sub.retainAsPublished = rng.bool();
          sub.retainHandling = rng.int(0, 2) as 0 | 1 | 2;
        }
        subscriptions.push(sub);
      }
      const p: Packet = { type: T.Subscribe, packetId: packetId(rng), subscriptions };
      return v5 ? withProps(p, randomProperties(rng, T.Subscribe, 0.5, mp)) : p;
    }
    case T.Suback: {
      const n = rng.int(1, 5);
      const reasonCodes = Array.from({ length: n }, () => (v5 ? reasonCode(rng, T.Suback, 0.2) : rng.pick([0, 1, 2, 0x80])));
      const p: Packet = { type: T.Suback, packetId: packetId(rng), reasonCodes };
      return v5 ? withProps(p, randomProperties(rng, T.Suback, 0.5, mp)) : p;
    }
    case T.Unsubscribe: {
      const topicFilters = Array.from({ length: rng.int(1, 5) }, () => randomTopicFilter(rng, true));
      const p: Packet = { type: T.Unsubscribe, packetId: packetId(rng), topicFilters };
      return v5 ? withProps(p, randomProperties(rng, T.Unsubscribe, 0.5, mp)) : p;
    }
    case T.Unsuback: {
      const p: Packet = { type: T.Unsuback, packetId: packetId(rng) };
      if (!v5) return p;
      p.reasonCodes = Array.from({ length: rng.int(1, 5) }, () => reasonCode(rng, T.Unsuback, 0.3));
      return withProps(p, randomProperties(rng, T.Unsuback, 0.5, mp));
    }
    case T.Pingreq: return { type: T.Pingreq };
    case T.Pingresp: return { type: T.Pingresp };
    case T.Disconnect: {
      if (!v5) return { type: T.Disconnect };
      return withProps<DisconnectPacket>({ type: T.Disconnect, reasonCode: reasonCode(rng, T.Disconnect) }, randomProperties(rng, T.Disconnect, 0.5, mp));
    }
    default: {
      const p: AuthPacket = withProps<AuthPacket>({ type: T.Auth, reasonCode: reasonCode(rng, T.Auth) }, randomProperties(rng, T.Auth, 0.5, mp));
      // 5.0 §3.15.2.1 allows an AUTH with Remaining Length 0 (reason 0x00, no properties), which
      // Petrel writes for that case; mqtt-packet's parser always reads a reason code and fails on it.
      if (mp && p.reasonCode === 0 && p.properties === undefined) p.reasonCode = 0x18;
      return p;
    }
  }
}

/**
 * The form a packet takes after a decode: the reason code a 5.0 acknowledgement, DISCONNECT or
 * AUTH may omit is 0x00 when absent, and 3.1 / 3.1.1 packets carry no 5.0 fields.
 */
export function normalize(p: Packet, version: number): Packet {
  const v5 = version === 5;
  switch (p.type) {
    case T.Puback: case T.Pubrec: case T.Pubrel: case T.Pubcomp: case T.Disconnect: case T.Auth: {
      if (!v5) return { type: p.type, ...('packetId' in p ? { packetId: p.packetId } : {}) } as Packet;
      return { ...p, reasonCode: p.reasonCode ?? 0 };
    }
    default: return p;
  }
}
