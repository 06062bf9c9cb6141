/**
 * Fan-out policy (the router only finds subscriptions): No Local, QoS downgrade, Retain As
 * Published, Subscription Identifiers, one copy per client for overlapping subscriptions, and
 * one member per shared subscription group.
 */
import type { QoS } from '../protocol/index.js';
import { SharedGroup, type ShareStrategy, type TopicTree } from '../router/index.js';
import type { Message } from './message.js';
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
}

/** Delivers `msg` to every matching subscription; returns the number of receivers. */
export function route(r: Router, msg: Message, now: number): number {
  const entries = r.tree.match(msg.topic);
  const n = entries.length;
  if (n === 0) return 0;
  msg.receivers = n;
  const mark = ++r.routeMark;
  let overlap = false;
  let shared = false;
  for (let i = 0; i < n; i++) {
    const e = entries[i] as RouteEntry;
    if (e instanceof SharedGroup) { shared = true; continue; }
    if (e.session.routeMark === mark) { overlap = true; break; }
    e.session.routeMark = mark;
  }
  if (overlap) return routeMerged(entries, msg, now) + (shared ? routeShared(r, entries, msg, now) : 0);
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

/** Overlapping subscriptions of one client: a single copy at the highest QoS with every identifier. */
function routeMerged(entries: readonly RouteEntry[], msg: Message, now: number): number {
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
  for (const [session, m] of merged) session.deliver(msg, m.qos, m.retain, m.subIds, now);
  return merged.size;
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
  if (member === undefined) return false;
  const qos = (msg.qos < member.qos ? msg.qos : member.qos) as QoS;
  member.session.deliver(msg, qos, member.retainAsPublished ? msg.retain : false, member.subIds, now, group);
  return true;
}

const online = (m: SubRecord): boolean => m.session.link !== undefined;
const load = (m: SubRecord): number => m.session.inflight.size + m.session.queue.length;
