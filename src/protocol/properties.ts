/**
 * MQTT 5.0 properties (§2.2.2): ONE table maps each identifier to its name, wire type and
 * the packets it may appear in. Decoding rejects unknown identifiers and properties not allowed
 * in the packet (Malformed / Protocol Error), duplicates of single-valued properties
 * (Protocol Error) and out-of-range values; encoding writes only what the packet allows.
 */
import type { Buffer } from 'node:buffer';
import { MalformedPacketError, ProtocolError } from './errors.js';
import { type Reader, type Writer, utf8Length, varintLength } from './primitives.js';

export type UserProperties = Array<[string, string]>;

export interface Properties {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Buffer;
  /** Several in PUBLISH (one per matching subscription), at most one in SUBSCRIBE. */
  subscriptionIdentifiers?: number[];
  sessionExpiryInterval?: number;
  assignedClientIdentifier?: string;
  serverKeepAlive?: number;
  authenticationMethod?: string;
  authenticationData?: Buffer;
  requestProblemInformation?: boolean;
  willDelayInterval?: number;
  requestResponseInformation?: boolean;
  responseInformation?: string;
  serverReference?: string;
  reasonString?: string;
  receiveMaximum?: number;
  topicAliasMaximum?: number;
  topicAlias?: number;
  maximumQoS?: 0 | 1;
  retainAvailable?: boolean;
  userProperties?: UserProperties;
  maximumPacketSize?: number;
  wildcardSubscriptionAvailable?: boolean;
  subscriptionIdentifierAvailable?: boolean;
  sharedSubscriptionAvailable?: boolean;
}

type WireType = 'byte' | 'bool' | 'u16' | 'u32' | 'varint' | 'utf8' | 'binary' | 'pair';

/** Context bit for Will Properties, which live inside CONNECT but have their own set. */
export const WillContext = 16;

interface PropertyDef {
  readonly id: number;
  readonly name: keyof Properties;
  readonly type: WireType;
  /** Bit mask of packet types (1 << type) and WillContext where the property is allowed. */
  readonly allowed: number;
  /** Smallest legal value for numeric types (e.g. Receive Maximum 0 is a Protocol Error). */
  readonly min?: number;
  readonly max?: number;
}

const P = {
  CONNECT: 1 << 1, CONNACK: 1 << 2, PUBLISH: 1 << 3, PUBACK: 1 << 4, PUBREC: 1 << 5, PUBREL: 1 << 6,
  PUBCOMP: 1 << 7, SUBSCRIBE: 1 << 8, SUBACK: 1 << 9, UNSUBSCRIBE: 1 << 10, UNSUBACK: 1 << 11,
  DISCONNECT: 1 << 14, AUTH: 1 << 15, WILL: 1 << WillContext,
};
const ACKS = P.PUBACK | P.PUBREC | P.PUBREL | P.PUBCOMP;
const ALL = P.CONNECT | P.CONNACK | P.PUBLISH | ACKS | P.SUBSCRIBE | P.SUBACK | P.UNSUBSCRIBE | P.UNSUBACK | P.DISCONNECT | P.AUTH | P.WILL;

export const PropertyTable: readonly PropertyDef[] = [
  { id: 0x01, name: 'payloadFormatIndicator', type: 'bool', allowed: P.PUBLISH | P.WILL },
  { id: 0x02, name: 'messageExpiryInterval', type: 'u32', allowed: P.PUBLISH | P.WILL },
  { id: 0x03, name: 'contentType', type: 'utf8', allowed: P.PUBLISH | P.WILL },
  { id: 0x08, name: 'responseTopic', type: 'utf8', allowed: P.PUBLISH | P.WILL },
  { id: 0x09, name: 'correlationData', type: 'binary', allowed: P.PUBLISH | P.WILL },
  { id: 0x0b, name: 'subscriptionIdentifiers', type: 'varint', allowed: P.PUBLISH | P.SUBSCRIBE, min: 1 },
  { id: 0x11, name: 'sessionExpiryInterval', type: 'u32', allowed: P.CONNECT | P.CONNACK | P.DISCONNECT },
  { id: 0x12, name: 'assignedClientIdentifier', type: 'utf8', allowed: P.CONNACK },
  { id: 0x13, name: 'serverKeepAlive', type: 'u16', allowed: P.CONNACK },
  { id: 0x15, name: 'authenticationMethod', type: 'utf8', allowed: P.CONNECT | P.CONNACK | P.AUTH },
  { id: 0x16, name: 'authenticationData', type: 'binary', allowed: P.CONNECT | P.CONNACK | P.AUTH },
  { id: 0x17, name: 'requestProblemInformation', type: 'bool', allowed: P.CONNECT },
  { id: 0x18, name: 'willDelayInterval', type: 'u32', allowed: P.WILL },
  { id: 0x19, name: 'requestResponseInformation', type: 'bool', allowed: P.CONNECT },
  { id: 0x1a, name: 'responseInformation', type: 'utf8', allowed: P.CONNACK },
  { id: 0x1c, name: 'serverReference', type: 'utf8', allowed: P.CONNACK | P.DISCONNECT },
  { id: 0x1f, name: 'reasonString', type: 'utf8', allowed: P.CONNACK | ACKS | P.SUBACK | P.UNSUBACK | P.DISCONNECT | P.AUTH },
  { id: 0x21, name: 'receiveMaximum', type: 'u16', allowed: P.CONNECT | P.CONNACK, min: 1 },
  { id: 0x22, name: 'topicAliasMaximum', type: 'u16', allowed: P.CONNECT | P.CONNACK },
  { id: 0x23, name: 'topicAlias', type: 'u16', allowed: P.PUBLISH },
  { id: 0x24, name: 'maximumQoS', type: 'byte', allowed: P.CONNACK, max: 1 },
  { id: 0x25, name: 'retainAvailable', type: 'bool', allowed: P.CONNACK },
  { id: 0x26, name: 'userProperties', type: 'pair', allowed: ALL },
  { id: 0x27, name: 'maximumPacketSize', type: 'u32', allowed: P.CONNECT | P.CONNACK, min: 1 },
  { id: 0x28, name: 'wildcardSubscriptionAvailable', type: 'bool', allowed: P.CONNACK },
  { id: 0x29, name: 'subscriptionIdentifierAvailable', type: 'bool', allowed: P.CONNACK },
  { id: 0x2a, name: 'sharedSubscriptionAvailable', type: 'bool', allowed: P.CONNACK },
];

const byId: Array<PropertyDef | undefined> = [];
const byName: Record<string, PropertyDef | undefined> = Object.create(null) as Record<string, PropertyDef | undefined>;
for (const def of PropertyTable) {
  byId[def.id] = def;
  byName[def.name] = def;
}

/** Whether `context` (a packet type or WillContext) may carry the property. */
export function propertyAllowed(name: keyof Properties, context: number): boolean {
  const def = PropertyTable.find((d) => d.name === name);
  return def !== undefined && (def.allowed & (1 << context)) !== 0;
}

type Bag = Record<string, unknown>;

/**
 * Reads a Property Length and the properties that follow [MQTT-2.2.2-1]. `context` is the
 * packet type, or WillContext for Will Properties.
 */
export function readProperties(r: Reader, context: number): Properties | undefined {
  const len = r.varint('property length');
  if (len === 0) return undefined;
  const end = r.pos + len;
  if (end > r.end) throw new MalformedPacketError('property length exceeds the packet');
  const saveEnd = r.end;
  r.end = end;
  const out: Bag = {};
  let seenLo = 0;
  let seenHi = 0;
  const mask = 1 << context;
  while (r.pos < end) {
    const id = r.varint('property identifier');
    const def = byId[id];
    if (def === undefined) throw new MalformedPacketError(`unknown property identifier 0x${id.toString(16)}`);
    if ((def.allowed & mask) === 0) throw new ProtocolError(`property ${def.name} is not allowed in this packet`);
    const repeatable = def.type === 'pair' || (id === 0x0b && context === 3);
    if (!repeatable) {
      const bit = 1 << (id & 31);
      if (id < 32) {
        if (seenLo & bit) throw new ProtocolError(`property ${def.name} appears more than once`);
        seenLo |= bit;
      } else {
        if (seenHi & bit) throw new ProtocolError(`property ${def.name} appears more than once`);
        seenHi |= bit;
      }
    }
    readValue(r, def, out);
  }
  r.end = saveEnd;
  return out as Properties;
}

function readValue(r: Reader, def: PropertyDef, out: Bag): void {
  switch (def.type) {
    case 'bool': {
      const v = r.u8(def.name);
      if (v > 1) throw new ProtocolError(`property ${def.name} must be 0 or 1`);
      out[def.name] = v === 1;
      return;
    }
    case 'byte': {
      const v = r.u8(def.name);
      if (def.max !== undefined && v > def.max) throw new ProtocolError(`property ${def.name} out of range`);
      out[def.name] = v;
      return;
    }
    case 'u16': case 'u32': {
      const v = def.type === 'u16' ? r.u16(def.name) : r.u32(def.name);
      if (def.min !== undefined && v < def.min) throw new ProtocolError(`property ${def.name} must not be ${v}`);
      out[def.name] = v;
      return;
    }
    case 'varint': {
      const v = r.varint(def.name);
      if (v === 0) throw new ProtocolError(`property ${def.name} must not be 0`);
      const list = (out[def.name] as number[] | undefined) ?? [];
      list.push(v);
      out[def.name] = list;
      return;
    }
    case 'utf8':
      out[def.name] = r.utf8(def.name);
      return;
    case 'binary':
      out[def.name] = r.binary(def.name);
      return;
    case 'pair': {
      const k = r.utf8('user property name');
      const v = r.utf8('user property value');
      const list = (out[def.name] as UserProperties | undefined) ?? [];
      list.push([k, v]);
      out[def.name] = list;
      return;
    }
  }
}

/**
 * Byte length of the properties allowed in `context` (without the Property Length itself).
 * Properties that the packet does not allow are skipped, so one Properties object may be
 * handed to several packet builders.
 */
export function propertiesLength(props: Properties | undefined, context: number): number {
  if (props === undefined) return 0;
  const mask = 1 << context;
  const bag = props as Bag;
  let len = 0;
  // Walks the object's own keys (usually a handful), not the whole table.
  for (const name in bag) {
    const def = byName[name];
    const v = bag[name];
    if (def === undefined || v === undefined || (def.allowed & mask) === 0) continue;
    len += valueLength(def, v);
  }
  return len;
}

function valueLength(def: PropertyDef, v: unknown): number {
  switch (def.type) {
    case 'bool': case 'byte': return 2;
    case 'u16': return 3;
    case 'u32': return 5;
    case 'varint': {
      let n = 0;
      for (const x of v as number[]) n += 1 + varintLength(x);
      return n;
    }
    case 'utf8': return 3 + utf8Length(v as string);
    case 'binary': return 3 + (v as Buffer).length;
    case 'pair': {
      let n = 0;
      for (const [k, val] of v as UserProperties) n += 5 + utf8Length(k) + utf8Length(val);
      return n;
    }
  }
}

/** Writes Property Length then the properties; `len` comes from propertiesLength. */
export function writeProperties(w: Writer, props: Properties | undefined, context: number, len: number): void {
  w.varint(len);
  if (props === undefined || len === 0) return;
  const mask = 1 << context;
  const bag = props as Bag;
  // Properties are written in identifier order. Objects usually list them in that order, so
  // write in key order and fall back to a walk of the table if a key comes out of order.
  const start = w.pos;
  let lastId = 0;
  for (const name in bag) {
    const def = byName[name];
    const v = bag[name];
    if (def === undefined || v === undefined || (def.allowed & mask) === 0) continue;
    if (def.id < lastId) {
      w.pos = start;
      writeInTableOrder(w, bag, mask);
      return;
    }
    lastId = def.id;
    writeValue(w, def, v);
  }
}

function writeInTableOrder(w: Writer, bag: Bag, mask: number): void {
  for (const def of PropertyTable) {
    const v = bag[def.name];
    if (v === undefined || (def.allowed & mask) === 0) continue;
    writeValue(w, def, v);
  }
}

function writeValue(w: Writer, def: PropertyDef, v: unknown): void {
  switch (def.type) {
    case 'bool': w.u8(def.id); w.u8(v ? 1 : 0); return;
    case 'byte': w.u8(def.id); w.u8(v as number); return;
    case 'u16': w.u8(def.id); w.u16(v as number); return;
    case 'u32': w.u8(def.id); w.u32(v as number); return;
    case 'varint':
      for (const x of v as number[]) { w.u8(def.id); w.varint(x); }
      return;
    case 'utf8': {
      const s = v as string;
      w.u8(def.id);
      w.utf8(s, utf8Length(s));
      return;
    }
    case 'binary': w.u8(def.id); w.binary(v as Buffer); return;
    case 'pair':
      for (const [k, val] of v as UserProperties) {
        w.u8(def.id);
        w.utf8(k, utf8Length(k));
        w.utf8(val, utf8Length(val));
      }
      return;
  }
}
