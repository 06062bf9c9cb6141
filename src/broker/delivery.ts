/**
 * Fan-out policy (the router only finds subscriptions): No Local, QoS downgrade, Retain As
 * Published, Subscription Identifiers, one copy per client for overlapping subscriptions, and
 * one member per shared subscription group.
 */
import type { QoS } from '../protocol/index.js';
import { SharedGroup, type ShareStrategy, type TopicTree } from '../router/index.js';
import type { ClientInfo } from './events.js';
import { DELIVERED_AS_COPY, type Message } from './message.js';
import type { Session, SubRecord } from './session.js';

export type RouteEntry = SubRecord | SharedGroup<SubRecord>;

interface Merged {
  qos: QoS;
  retain: boolean;
  subIds: number[] | undefined;
}

export interface Router {
  readonly tree: TopicTree<RouteEntry>;
  strategy: ShareStrategy;
  routeMark: number;
  /** authorizeDelivery and the delivery interceptors (extensions.ts); undefined when there are none. */
  readonly ext: { readonly deliveryCheck: DeliveryCheck | undefined };
}

export type DeliveryCheck = (clientId: string, client: ClientInfo | undefined, msg: Message) => Message | undefined;

/** The message `session` gets, after the delivery checks; undefined: it gets none. */
export function checked(check: DeliveryCheck, session: Session, msg: Message): Message | undefined {
  const out = check(session.clientId, (session.link as { info?: ClientInfo } | undefined)?.info, msg);
  if (out !== undefined && out !== msg) msg.ackWaiter = DELIVERED_AS_COPY;
  return out;
}

/**
 * Delivers `msg` to every matching subscription; returns the number of receivers. `withShared`
 * false leaves the shared groups out (in a cluster the cluster link picks their members).
 */
export function route(r: Router, msg: Message, now: number, withShared = true): number {
  const entries = r.tree.match(msg.topic);
  const n = entries.length;
  if (n === 0) return 0;
  msg.receivers = n;
  const mark = ++r.routeMark;
  let overlap = false;
  let shared = false;
  for (let i = 0; i < n; i++) {
    const e = entries[i] as RouteEntry;
    if (e instanceof SharedGroup) { shared = withShared; continue; }
    if (e.session.routeMark === mark) { overlap = true; break; }
    e.session.routeMark = mark;
  }
  const check = r.ext.deliveryCheck;
  if (overlap || check !== undefined) return routeMerged(entries, msg, now, check) + (shared ? routeShared(r, entries, msg, now) : 0);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const e = entries[i] as RouteEntry;
    if (e instanceof SharedGroup) continue;
    // [MQTT-3.8.3-3]: No Local: never back to the publisher's own subscription.
    if (e.noLocal && e.session.clientId === msg.senderId) continue;
    const qos = (msg.qos < e.qos ? msg.qos : e.qos) as QoS;
    // [MQTT-3.3.1-12] / [MQTT-3.3.1-13]: RETAIN is cleared on live delivery unless Retain As Published.
    e.session.deliver(msg, qos, e.retainAsPublished ? msg.retain : false, e.subIds, now);
    count++;
  }
  return shared ? count + routeShared(r, entries, msg, now) : count;
}

/**
 * Overlapping subscriptions of one client: a single copy at the highest QoS with every identifier.
 * Also the path when delivery checks are set: each receiver's message goes through `check` first.
 */
function routeMerged(entries: readonly RouteEntry[], msg: Message, now: number, check: DeliveryCheck | undefined): number {
  const merged = new Map<Session, Merged>();
  for (const e of entries) {
    if (e instanceof SharedGroup) continue;
    if (e.noLocal && e.session.clientId === msg.senderId) continue;
    const qos = (msg.qos < e.qos ? msg.qos : e.qos) as QoS;
    const retain = e.retainAsPublished ? msg.retain : false;
    const m = merged.get(e.session);
    if (m === undefined) {
      merged.set(e.session, { qos, retain, subIds: e.subIds === undefined ? undefined : [...e.subIds] });
      continue;
    }
    if (qos > m.qos) m.qos = qos;
    m.retain = m.retain || retain;
    if (e.subIds !== undefined) m.subIds = [...(m.subIds ?? []), ...e.subIds];
  }
  if (check === undefined) {
    for (const [session, m] of merged) session.deliver(msg, m.qos, m.retain, m.subIds, now);
    return merged.size;
  }
  let count = 0;
  for (const [session, m] of merged) {
    const out = checked(check, session, msg);
    if (out === undefined) continue;
    session.deliver(out, (out.qos < m.qos ? out.qos : m.qos) as QoS, m.retain, m.subIds, now);
    count++;
  }
  return count;
}

/** Each shared group gives the message to one member (§4.8.2): an online one if any. */
function routeShared(r: Router, entries: readonly RouteEntry[], msg: Message, now: number): number {
  let count = 0;
  for (const e of entries) {
    if (!(e instanceof SharedGroup)) continue;
    if (deliverShared(r, e, msg, now, undefined)) count++;
  }
  return count;
}

/**
 * Gives `msg` to one member of `group`, preferring online members and never `exclude`.
 * RETAIN follows the member's Retain As Published option, as for any live delivery [MQTT-3.3.1-12].
 */
export function deliverShared(r: Router, group: SharedGroup<SubRecord>, msg: Message, now: number, exclude: Session | undefined): boolean {
  const other = exclude === undefined ? undefined : (m: SubRecord): boolean => m.session !== exclude;
  const onlineOther = other === undefined ? online : (m: SubRecord): boolean => other(m) && online(m);
  const member = group.pick(r.strategy, onlineOther, load) ?? group.pick(r.strategy, other);
  return member !== undefined && deliverToMember(r, group, member, msg, now);
}

/** Gives `msg` to `member` of `group` (after the delivery checks); false when a check refused it. */
export function deliverToMember(r: Router, group: SharedGroup<SubRecord>, member: SubRecord, msg: Message, now: number): boolean {
  const check = r.ext.deliveryCheck;
  const out = check === undefined ? msg : checked(check, member.session, msg);
  if (out === undefined) return false;
  const qos = (out.qos < member.qos ? out.qos : member.qos) as QoS;
  member.session.deliver(out, qos, member.retainAsPublished ? out.retain : false, member.subIds, now, group);
  return true;
}

const online = (m: SubRecord): boolean => m.session.link !== undefined;
const load = (m: SubRecord): number => m.session.inflight.size + m.session.queue.length;
