/**
 * Mapping between Petrel's packet model and mqtt-packet's object shapes, and a synchronous
 * one-packet parse with mqtt-packet. mqtt-packet names things differently: `cmd` for the type,
 * `messageId`, `returnCode` (3.1.1 CONNACK), `granted` (SUBACK / UNSUBACK), `unsubscriptions`,
 * `nl` / `rap` / `rh`, `subscriptionIdentifier` (a number, or an array when repeated),
 * `subscriptionIdentifiersAvailable`, and user properties as an object (repeated names as arrays).
 */
import { Buffer } from 'node:buffer';
import mqttPacket from 'mqtt-packet';
import type { Packet as MqttPacket } from 'mqtt-packet';
import {
  type AckPacket, type AuthPacket, type ConnackPacket, type DisconnectPacket, type SubackPacket, type SubscribePacket,
  type UnsubackPacket, type UnsubscribePacket, fromV3ConnackCode, type Packet, PacketType, PacketTypeName, type Properties, type QoS, toV3ConnackCode, type WillMessage,
} from '../../src/protocol/index.js';

type Obj = Record<string, unknown>;
const T = PacketType;
type AckType = typeof T.Puback | typeof T.Pubrec | typeof T.Pubrel | typeof T.Pubcomp;

// ---- Petrel -> mqtt-packet ----------------------------------------------------------------------

function propsOut(props: Properties | undefined, type: number): Obj | undefined {
  if (props === undefined) return undefined;
  const out: Obj = {};
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined) continue;
    if (key === 'userProperties') {
      const obj: Record<string, string | string[]> = {};
      for (const [k, v] of value as Array<[string, string]>) {
        const prev = obj[k];
        obj[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      }
      out.userProperties = obj;
    } else if (key === 'subscriptionIdentifiers') {
      const ids = value as number[];
      out.subscriptionIdentifier = type === T.Subscribe || ids.length === 1 ? ids[0] : ids;
    } else if (key === 'subscriptionIdentifierAvailable') {
      out.subscriptionIdentifiersAvailable = value;
    } else {
      out[key] = value;
    }
  }
  return out;
}

function put(o: Obj, key: string, value: unknown): void {
  if (value !== undefined) o[key] = value;
}

export function toMqttPacket(p: Packet, version: number): MqttPacket {
  const o: Obj = { cmd: PacketTypeName[p.type] };
  const v5 = version === 5;
  switch (p.type) {
    case T.Connect: {
      Object.assign(o, { protocolId: p.protocolName, protocolVersion: p.protocolVersion, clientId: p.clientId, clean: p.clean, keepalive: p.keepalive });
      put(o, 'username', p.username);
      put(o, 'password', p.password);
      if (p.will !== undefined) {
        const will: Obj = { topic: p.will.topic, payload: p.will.payload, qos: p.will.qos, retain: p.will.retain };
        put(will, 'properties', propsOut(p.will.properties, 0));
        o.will = will;
      }
      break;
    }
    case T.Connack:
      o.sessionPresent = p.sessionPresent;
      if (v5) o.reasonCode = p.reasonCode;
      else o.returnCode = toV3ConnackCode(p.reasonCode);
      break;
    case T.Publish:
      Object.assign(o, { topic: p.topic, payload: p.payload, qos: p.qos, dup: p.dup, retain: p.retain });
      put(o, 'messageId', p.packetId);
      break;
    case T.Puback: case T.Pubrec: case T.Pubrel: case T.Pubcomp:
      o.messageId = p.packetId;
      if (v5) o.reasonCode = p.reasonCode ?? 0;
      break;
    case T.Subscribe:
      o.messageId = p.packetId;
      o.subscriptions = p.subscriptions.map((s) => (v5
        ? { topic: s.topicFilter, qos: s.qos, nl: s.noLocal ?? false, rap: s.retainAsPublished ?? false, rh: s.retainHandling ?? 0 }
        : { topic: s.topicFilter, qos: s.qos }));
      break;
    case T.Suback:
      o.messageId = p.packetId;
      o.granted = p.reasonCodes;
      break;
    case T.Unsubscribe:
      o.messageId = p.packetId;
      o.unsubscriptions = p.topicFilters;
      break;
    case T.Unsuback:
      o.messageId = p.packetId;
      put(o, 'granted', p.reasonCodes);
      break;
    case T.Disconnect: case T.Auth:
      if (v5) o.reasonCode = p.reasonCode ?? 0;
      break;
    default:
      break;
  }
  if (v5 && 'properties' in p) put(o, 'properties', propsOut(p.properties, p.type));
  return o as unknown as MqttPacket;
}

// ---- mqtt-packet -> Petrel ----------------------------------------------------------------------

function field<K extends string>(o: Obj, key: K, kind: 'number' | 'string' | 'boolean'): unknown {
  const v = o[key];
  if (typeof v !== kind) throw new Error(`mqtt-packet field ${key} is ${typeof v}, expected ${kind}`);
  return v;
}
const num = (o: Obj, k: string): number => field(o, k, 'number') as number;
const str = (o: Obj, k: string): string => field(o, k, 'string') as string;
const bool = (o: Obj, k: string): boolean => field(o, k, 'boolean') as boolean;
function buf(o: Obj, k: string): Buffer {
  const v = o[k];
  if (!Buffer.isBuffer(v)) throw new Error(`mqtt-packet field ${k} is not a Buffer`);
  return v;
}
function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null) throw new Error(`mqtt-packet ${what} is not an object`);
  return v as Obj;
}
function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new Error(`mqtt-packet ${what} is not an array`);
  return v;
}

function propsIn(raw: unknown): Properties | undefined {
  if (raw === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj(raw, 'properties'))) {
    if (key === 'userProperties') {
      const pairs: Array<[string, string]> = [];
      for (const [k, v] of Object.entries(obj(value, 'userProperties'))) {
        for (const x of Array.isArray(v) ? v : [v]) pairs.push([k, String(x)]);
      }
      out.userProperties = pairs;
    } else if (key === 'subscriptionIdentifier') {
      out.subscriptionIdentifiers = Array.isArray(value) ? value : [value];
    } else if (key === 'subscriptionIdentifiersAvailable') {
      out.subscriptionIdentifierAvailable = value;
    } else {
      out[key] = value;
    }
  }
  return Object.keys(out).length > 0 ? (out as Properties) : undefined;
}

function withProps<P extends { properties?: Properties }>(p: P, raw: unknown, v5: boolean): P {
  const props = v5 ? propsIn(raw) : undefined;
  if (props !== undefined) p.properties = props;
  return p;
}

export function fromMqttPacket(raw: unknown, version: number): Packet {
  const o = obj(raw, 'packet');
  const v5 = version === 5;
  const cmd = str(o, 'cmd');
  switch (cmd) {
    case 'connect': {
      const level = num(o, 'protocolVersion') as 3 | 4 | 5;
      const p: Packet = {
        type: T.Connect, protocolVersion: level, protocolName: str(o, 'protocolId'), clientId: str(o, 'clientId'),
        clean: bool(o, 'clean'), keepalive: num(o, 'keepalive'),
      };
      withProps(p, o.properties, level === 5);
      if (o.will !== undefined) {
        const w = obj(o.will, 'will');
        const will: WillMessage = { topic: str(w, 'topic'), payload: buf(w, 'payload'), qos: num(w, 'qos') as QoS, retain: bool(w, 'retain') };
        p.will = withProps(will, w.properties, level === 5);
      }
      if (o.username !== undefined) p.username = str(o, 'username');
      if (o.password !== undefined) p.password = buf(o, 'password');
      return p;
    }
    case 'connack': {
      const reasonCode = v5 ? num(o, 'reasonCode') : fromV3ConnackCode(num(o, 'returnCode'));
      return withProps<ConnackPacket>({ type: T.Connack, sessionPresent: bool(o, 'sessionPresent'), reasonCode }, o.properties, v5);
    }
    case 'publish': {
      const qos = num(o, 'qos') as QoS;
      const p: Packet = { type: T.Publish, topic: str(o, 'topic'), payload: buf(o, 'payload'), qos, retain: bool(o, 'retain'), dup: bool(o, 'dup') };
      if (qos > 0) p.packetId = num(o, 'messageId');
      return withProps(p, o.properties, v5);
    }
    case 'puback': case 'pubrec': case 'pubrel': case 'pubcomp': {
      const type = { puback: T.Puback, pubrec: T.Pubrec, pubrel: T.Pubrel, pubcomp: T.Pubcomp }[cmd];
      const p: AckPacket<AckType> = { type, packetId: num(o, 'messageId') };
      if (v5) p.reasonCode = num(o, 'reasonCode');
      return withProps(p, o.properties, v5);
    }
    case 'subscribe': {
      const subscriptions = list(o.subscriptions, 'subscriptions').map((x) => {
        const s = obj(x, 'subscription');
        const topicFilter = str(s, 'topic');
        const qos = num(s, 'qos') as QoS;
        return v5
          ? { topicFilter, qos, noLocal: bool(s, 'nl'), retainAsPublished: bool(s, 'rap'), retainHandling: num(s, 'rh') as 0 | 1 | 2 }
          : { topicFilter, qos };
      });
      return withProps<SubscribePacket>({ type: T.Subscribe, packetId: num(o, 'messageId'), subscriptions }, o.properties, v5);
    }
    case 'suback':
      return withProps<SubackPacket>({ type: T.Suback, packetId: num(o, 'messageId'), reasonCodes: list(o.granted, 'granted') as number[] }, o.properties, v5);
    case 'unsubscribe':
      return withProps<UnsubscribePacket>({ type: T.Unsubscribe, packetId: num(o, 'messageId'), topicFilters: list(o.unsubscriptions, 'unsubscriptions') as string[] }, o.properties, v5);
    case 'unsuback': {
      const p: UnsubackPacket = { type: T.Unsuback, packetId: num(o, 'messageId') };
      if (v5) p.reasonCodes = list(o.granted, 'granted') as number[];
      return withProps(p, o.properties, v5);
    }
    case 'pingreq': return { type: T.Pingreq };
    case 'pingresp': return { type: T.Pingresp };
    case 'disconnect': case 'auth': {
      const p: DisconnectPacket | AuthPacket = cmd === 'auth' ? { type: T.Auth } : { type: T.Disconnect };
      if (v5) p.reasonCode = num(o, 'reasonCode');
      return withProps(p, o.properties, v5);
    }
    default: throw new Error(`unknown mqtt-packet cmd ${cmd}`);
  }
}

/** Parses exactly one packet with mqtt-packet; throws its error, or if not exactly one packet comes out. */
export class MqttPacketReader {
  readonly #parser: ReturnType<typeof mqttPacket.parser>;
  #packets: unknown[] = [];
  #error: unknown;

  constructor(version: number) {
    this.#parser = mqttPacket.parser({ protocolVersion: version });
    this.#parser.on('packet', (p: unknown) => this.#packets.push(p));
    this.#parser.on('error', (e: unknown) => { this.#error = e; });
  }

  parseOne(bytes: Buffer): unknown {
    this.#packets = [];
    this.#error = undefined;
    this.#parser.parse(bytes);
    if (this.#error !== undefined) throw this.#error;
    if (this.#packets.length !== 1) throw new Error(`mqtt-packet produced ${this.#packets.length} packets`);
    return this.#packets[0];
  }
}

export function mqttPacketGenerate(p: Packet, version: number): Buffer {
  return mqttPacket.generate(toMqttPacket(p, version), { protocolVersion: version });
}
