/**
 * A message on the cluster bus: `<header length>:<header JSON><payload>`, the header being
 * [topic, qos, retain, properties (persistence/codec.ts text), senderId, plain, shared, hops]:
 * `plain` 0 when the entry is only for the shared-group members in `shared` ([group, filter,
 * client id] each: the members the publishing node picked), `hops` how often a shared pick was
 * passed on (its member had gone). A Message Expiry Interval is rewritten to what remains of it,
 * so the hop does not extend a message's life.
 */
import { Buffer } from 'node:buffer';
import type { RemoteMessage, SharedTarget } from '../broker/broker.js';
import type { Message } from '../broker/message.js';
import { decodeProperties, encodeProperties } from '../persistence/codec.js';
import type { Properties, QoS } from '../protocol/index.js';

/** A decoded bus entry. */
export interface BusMessage extends RemoteMessage {
  readonly plain: boolean;
  readonly shared: readonly SharedTarget[];
  readonly hops: number;
}

type Header = [string, QoS, number, string | null, string | null, number?, [string, string, string][]?, number?];

export function encodeBusMessage(m: Message, now: number, plain = true, shared?: readonly SharedTarget[], hops = 0): Buffer {
  let props: Properties | undefined = m.properties;
  if (m.expiresAt !== undefined && props !== undefined) {
    props = { ...props, messageExpiryInterval: Math.max(0, Math.ceil((m.expiresAt - now) / 1000)) };
  }
  return encode([m.topic, m.qos, m.retain ? 1 : 0, encodeProperties(props), m.senderId ?? null], m.payload, plain, shared, hops);
}

/** A decoded entry again, for other members (`shared`), its properties as they were decoded. */
export function reencodeBusMessage(m: RemoteMessage, shared: readonly SharedTarget[], hops: number): Buffer {
  return encode([m.topic, m.qos, m.retain ? 1 : 0, encodeProperties(m.properties), m.senderId ?? null], m.payload, false, shared, hops);
}

function encode(h: Header, payload: Buffer, plain: boolean, shared: readonly SharedTarget[] | undefined, hops: number): Buffer {
  if (!plain || (shared !== undefined && shared.length > 0)) {
    h.push(plain ? 1 : 0, (shared ?? []).map((t) => [t.group, t.filter, t.clientId]), hops);
  }
  const header = Buffer.from(JSON.stringify(h));
  const lead = Buffer.from(`${header.length}:`);
  return Buffer.concat([lead, header, payload], lead.length + header.length + payload.length);
}

export function decodeBusMessage(data: Buffer): BusMessage {
  const colon = data.indexOf(0x3a);
  const len = Number(data.toString('latin1', 0, colon));
  const start = colon + 1;
  const h = JSON.parse(data.toString('utf8', start, start + len)) as Header;
  return {
    topic: h[0], payload: data.subarray(start + len), qos: h[1], retain: h[2] === 1, properties: decodeProperties(h[3]), senderId: h[4] ?? undefined,
    plain: h[5] !== 0, shared: (h[6] ?? []).map(([group, filter, clientId]) => ({ group, filter, clientId })), hops: h[7] ?? 0,
  };
}
