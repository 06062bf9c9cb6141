/**
 * A message on the cluster bus: `<header length>:<header JSON><payload>`, the header being
 * [topic, qos, retain, properties (persistence/codec.ts text), senderId, plain, shared, hops, id,
 * to, only]: `plain` 0 when the entry is only for the shared-group members in `shared` ([group,
 * filter, client id] each: the members the publishing node picked), `hops` how often a shared
 * pick was passed on (its member had gone), `id` the message's id cluster-wide (publishing node,
 * its start, a counter), `to` the nodes it sent the message to, `only` the client ids of sessions that moved to the receiving node while
 * the message was on its way to their old node (the old node passes it on, for them alone). A Message Expiry Interval is rewritten to what remains of it,
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
  /** Empty for entries from an older node. */
  readonly id: string;
  readonly to: readonly string[];
  readonly only: readonly string[];
}

type Header = [string, QoS, number, string | null, string | null, number, [string, string, string][], number, string, string[], string[]?];

export function encodeBusMessage(m: Message, now: number, id: string, to: readonly string[], plain = true, shared?: readonly SharedTarget[]): Buffer {
  let props: Properties | undefined = m.properties;
  if (m.expiresAt !== undefined && props !== undefined) {
    props = { ...props, messageExpiryInterval: Math.max(0, Math.ceil((m.expiresAt - now) / 1000)) };
  }
  return encode([m.topic, m.qos, m.retain ? 1 : 0, encodeProperties(props), m.senderId ?? null, plain ? 1 : 0, targets(shared), 0, id, [...to]], m.payload);
}

/**
 * A decoded entry again, its properties as they were decoded: for other shared-group members
 * (`shared`, passed on one more hop), or for sessions that moved (`only`).
 */
export function reencodeBusMessage(m: BusMessage, shared: readonly SharedTarget[], hops: number, only?: readonly string[]): Buffer {
  const h: Header = [m.topic, m.qos, m.retain ? 1 : 0, encodeProperties(m.properties), m.senderId ?? null, 0, targets(shared), hops, m.id, [...m.to]];
  if (only !== undefined) h.push([...only]);
  return encode(h, m.payload);
}

function targets(shared: readonly SharedTarget[] | undefined): [string, string, string][] {
  return shared === undefined ? [] : shared.map((t) => [t.group, t.filter, t.clientId]);
}

function encode(h: Header, payload: Buffer): Buffer {
  const header = Buffer.from(JSON.stringify(h));
  const lead = Buffer.from(`${header.length}:`);
  return Buffer.concat([lead, header, payload], lead.length + header.length + payload.length);
}

export function decodeBusMessage(data: Buffer): BusMessage {
  const colon = data.indexOf(0x3a);
  const len = Number(data.toString('latin1', 0, colon));
  const start = colon + 1;
  const h = JSON.parse(data.toString('utf8', start, start + len)) as Partial<Header>;
  return {
    topic: h[0]!, payload: data.subarray(start + len), qos: h[1]!, retain: h[2] === 1, properties: decodeProperties(h[3] ?? null), senderId: h[4] ?? undefined,
    plain: h[5] !== 0, shared: (h[6] ?? []).map(([group, filter, clientId]) => ({ group, filter, clientId })), hops: h[7] ?? 0, id: h[8] ?? '', to: h[9] ?? [], only: h[10] ?? [],
  };
}
