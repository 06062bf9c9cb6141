/**
 * Start-up from a store: sessions (offline, with their deadlines), subscriptions back in the
 * router, their queued and inflight QoS 1/2 deliveries (in seq order, packet ids kept, one
 * Message per stored message however many entries reference it; a queued message that expired
 * while the broker was down is dropped), the inbound QoS 2 ids awaiting PUBREL, retained
 * messages, and the wills that a restart released. A session whose client was
 * connected when the broker stopped lost its connection then: its will is published (after its
 * Will Delay Interval, counted from now) and its expiry counts from now. A session whose expiry
 * passed while the broker was down is ended, and a will it was waiting to publish goes out.
 */
import { parseShared, type QoS, type WillMessage } from '../protocol/index.js';
import type { QueueEntry, StoredMessage, StoredState, StoredWill } from '../persistence/types.js';
import { type Message, sizeOf } from './message.js';
import type { Outgoing, SubRecord } from './session.js';
import type { BrokerState } from './state.js';

const willOf = (w: StoredWill): WillMessage => ({ topic: w.topic, payload: w.payload, qos: w.qos, retain: w.retain, properties: w.properties });

export function restoreState(st: BrokerState, stored: StoredState): { sessions: number; subscriptions: number; retained: number; deliveries: number } {
  const d = st.durability;
  if (d === undefined) return { sessions: 0, subscriptions: 0, retained: 0, deliveries: 0 };
  const now = st.clock.now();
  const messages = new Map<string, Message>();
  const messageOf = (m: StoredMessage): Message => {
    let msg = messages.get(m.id);
    if (msg !== undefined) return msg;
    msg = d.toMessage(m, now);
    messages.set(m.id, msg);
    return msg;
  };

  const released: { clientId: string; will: WillMessage }[] = [];
  for (const s of stored.sessions) {
    d.knownSession(s.clientId);
    let expiresAt = s.expiresAt === undefined ? undefined : d.fromWall(s.expiresAt);
    let will = s.willAt === undefined || s.will === undefined ? undefined : willOf(s.will);
    let willAt = s.willAt === undefined ? undefined : d.fromWall(s.willAt);
    if (s.expiresAt === undefined && s.will === undefined && s.expiryInterval !== 0xffffffff) {
      // Connected when the broker stopped, without a will: it went offline now.
      expiresAt = now + s.expiryInterval * 1000;
    } else if (s.expiresAt === undefined && s.will !== undefined && s.willAt === undefined) {
      // Connected, with a will: the connection is gone, so its will is due after its delay.
      will = willOf(s.will);
      const delay = will.properties?.willDelayInterval ?? 0;
      if (delay === 0) released.push({ clientId: s.clientId, will });
      else willAt = now + delay * 1000;
      if (delay === 0) will = undefined;
      if (s.expiryInterval !== 0xffffffff) expiresAt = now + s.expiryInterval * 1000;
    }
    st.registry.restore(s.clientId, s.expiryInterval, expiresAt, will, willAt);
  }
  let subscriptions = 0;
  for (const { clientId, subscription: sub } of stored.subscriptions) {
    const session = st.registry.get(clientId);
    if (session === undefined) continue;
    const shared = parseShared(sub.topicFilter);
    const rec: SubRecord = {
      topicFilter: shared?.filter ?? sub.topicFilter,
      qos: sub.qos as QoS,
      noLocal: sub.noLocal,
      retainAsPublished: sub.retainAsPublished,
      retainHandling: sub.retainHandling,
      session,
      subIds: sub.subscriptionIdentifier === undefined ? undefined : [sub.subscriptionIdentifier],
      group: shared === undefined ? undefined : st.groupFor(shared.group, shared.filter),
    };
    session.setSubscription(sub.topicFilter, rec);
    st.addSubscription(rec);
    subscriptions++;
  }
  const outgoing = (e: QueueEntry, msg: Message): Outgoing => ({
    msg, qos: e.qos, retain: e.retain, subIds: e.subscriptionIds === undefined ? undefined : [...e.subscriptionIds], group: undefined,
    packetId: 0, released: false, deferred: false, sentAt: now, seq: e.seq,
  });
  let deliveries = 0;
  for (const e of stored.inflight) {
    const session = st.registry.get(e.clientId);
    const m = stored.messages.get(e.messageId);
    if (session === undefined || m === undefined) continue;
    const o = outgoing(e, messageOf(m));
    d.referenced(o.msg);
    // Sent before the restart: resent on reconnect, PUBLISH with DUP or PUBREL [MQTT-4.4.0-1].
    o.packetId = e.packetId;
    o.released = e.state === 'pubrel';
    session.restoreInflight(o);
    deliveries++;
  }
  const wallNow = d.toWall(now);
  for (const e of stored.queue) {
    const session = st.registry.get(e.clientId);
    const m = stored.messages.get(e.messageId);
    if (session === undefined || m === undefined) continue;
    const o = outgoing(e, messageOf(m));
    d.referenced(o.msg);
    // [MQTT-3.3.2-5]: not delivered after its Message Expiry Interval.
    if (m.expiresAt !== undefined && m.expiresAt <= wallNow) d.unqueued(session, o);
    else {
      // Beyond the queue's bounds (spilled before the restart): read back as the queue drains.
      if (session.fitsQueue(sizeOf(o.msg))) session.restoreQueued(o);
      else session.restoreSpilled(o);
      deliveries++;
    }
  }
  // Queue entries the store kept on disk (open with lazyQueues): spilled, read back as the session drains.
  for (const q of stored.queueSummaries ?? []) {
    const session = st.registry.get(q.clientId);
    if (session === undefined || q.count === 0) continue;
    session.restoreSpilledRun(q.count, q.bytes, q.firstSeq, q.lastSeq);
    deliveries += q.count;
  }
  for (const { clientId, packetId } of stored.inboundQos2) st.registry.get(clientId)?.restoreQos2(packetId);
  let retained = 0;
  for (const { topic, messageId } of stored.retained) {
    const m = stored.messages.get(messageId);
    if (m === undefined) continue;
    const msg = messageOf(m);
    // Its own object, counting its own stored reference (the retained entry).
    const kept: Message = { ...msg, receivers: 2, storeRefs: 0, ackWaiter: undefined };
    st.retained.set(topic, kept);
    d.known(kept, messageId);
    d.referenced(kept);
    retained++;
  }
  // Deadlines that passed while the broker was down.
  for (const { clientId, will } of released) st.publishWill(clientId, will);
  for (const s of [...st.registry.values()]) st.registry.expireIfDue(s, now);
  for (const s of stored.sessions) {
    const pending = st.registry.pendingWill(s.clientId);
    if (pending !== undefined && now >= pending.at) st.registry.willDue(pending);
    // Sessions whose client was connected are offline now: stored as such, so that another
    // restart does not publish their will again.
    const session = st.registry.get(s.clientId);
    if (s.expiresAt === undefined && session !== undefined) {
      const left = st.registry.pendingWill(s.clientId);
      d.sessionDetached(session, left?.will, left?.at);
    }
  }
  return { sessions: stored.sessions.length, subscriptions, retained, deliveries };
}
