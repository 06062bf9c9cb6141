/**
 * SUBSCRIBE (§3.8): one reason code per filter, an existing subscription to the same filter is
 * replaced [MQTT-3.8.4-3], SUBACK is sent before the retained messages the subscription asks for.
 */
import { Buffer } from 'node:buffer';
import {
  hasWildcard, MqttError, PacketType, parseShared, type QoS, ReasonCode, type SubscribePacket, type Subscription, topicLevels,
} from '../../protocol/index.js';
import type { Connection } from '../connection.js';
import { aclAllowsSubscribe } from '../extensions.js';
import { checked } from '../delivery.js';
import type { Message } from '../message.js';
import type { Session, SubRecord } from '../session.js';
import type { BrokerState } from '../state.js';

export function handleSubscribe(c: Connection, p: SubscribePacket): void | Promise<void> {
  const st = c.state;
  const subId = p.properties?.subscriptionIdentifiers?.[0];
  if (subId !== undefined && !st.options.subscriptionIdentifiersAvailable) {
    throw new MqttError(ReasonCode.SubscriptionIdentifiersNotSupported, 'subscription identifiers are not supported');
  }
  const authorize = st.ext.authorizeSubscribe;
  const acl = c.builtInfo?.acl;
  if (authorize === undefined && acl === undefined) return finish(c, p, p.subscriptions.map(() => 2), subId);
  const verdicts = p.subscriptions.map((s): number | Promise<number> => {
    // A per-client ACL from the authenticate hook (e.g. a JWT's subscribe list) comes first.
    if (acl !== undefined && !aclAllowsSubscribe(acl, parseShared(s.topicFilter)?.filter ?? s.topicFilter)) return ReasonCode.NotAuthorized;
    return authorize === undefined ? 2 : authorize(c, s);
  });
  if (verdicts.every((v) => typeof v === 'number')) return finish(c, p, verdicts as number[], subId);
  // Each verdict settles on its own (user-code.ts never rejects and bounds the wait).
  return Promise.all(verdicts).then((codes) => finish(c, p, codes, subId));
}

/**
 * `verdicts[i]`: the most QoS filter i may be granted (0 to 2: a hook may downgrade), else its
 * refusal code (0x87, or 0x80 when the hook failed; 3.1.1 clients get 0x80 for any refusal).
 */
function finish(c: Connection, p: SubscribePacket, verdicts: number[], subId: number | undefined): void | Promise<void> {
  // An async authorization may settle after the connection (and maybe its session) ended.
  if (c.phase === 'closed') return;
  const session = c.session as Session;
  const codes: number[] = [];
  const retained: [SubRecord, Message[]][] = [];
  p.subscriptions.forEach((sub, i) => {
    const verdict = verdicts[i] as number;
    const granted = verdict < 0x80 && verdict < sub.qos ? { ...sub, qos: verdict as QoS } : sub;
    const code = verdict < 0x80 ? subscribeOne(c.state, session, granted, subId, retained) : verdict;
    codes.push(code);
  });
  // A stored session's subscriptions are acknowledged once committed.
  const durability = c.state.durability;
  if (durability?.pending === true) {
    return durability.commit().then(() => answer(c, p, session, codes, retained), () => {
      c.fail(new MqttError(ReasonCode.UnspecifiedError, 'the subscription could not be stored'));
    });
  }
  answer(c, p, session, codes, retained);
}

/** SUBACK, then the retained messages the new subscriptions asked for, then the event. */
function answer(c: Connection, p: SubscribePacket, session: Session, codes: number[], retained: [SubRecord, Message[]][]): void {
  if (c.phase === 'closed') return;
  // [MQTT-3.1.2-29]: a reason string only when the client did not ask for none.
  const failed = codes.some((code) => code >= 0x80);
  const properties = failed && c.problemInfo && c.version === 5 ? { reasonString: 'one or more subscriptions were refused' } : undefined;
  c.send({ type: PacketType.Suback, packetId: p.packetId, reasonCodes: codes, ...(properties ? { properties } : {}) });
  const now = c.state.clock.now();
  const check = c.state.ext.deliveryCheck;
  for (const [rec, messages] of retained) {
    // [MQTT-3.3.1-8]: retained messages sent because of a new subscription carry RETAIN 1.
    for (const m of messages) {
      const out = check === undefined ? m : checked(check, session, m);
      if (out !== undefined) session.deliver(out, (out.qos < rec.qos ? out.qos : rec.qos) as QoS, true, rec.subIds, now);
    }
  }
  const granted = p.subscriptions.filter((_, i) => (codes[i] as number) < 0x80);
  if (granted.length > 0) c.state.events.fire('subscribed', session.clientId, granted);
}

/**
 * Adds (or replaces) one subscription of `session` after authorization; returns the QoS granted
 * or a refusal code. Also used for subscriptions an operator makes on a client's behalf.
 */
export function subscribeOne(st: BrokerState, session: Session, sub: Subscription, subId: number | undefined, retained: [SubRecord, Message[]][]): number {
  const opts = st.options;
  const shared = parseShared(sub.topicFilter);
  if (shared !== undefined && !opts.sharedSubscriptionsAvailable) return ReasonCode.SharedSubscriptionsNotSupported;
  const filter = shared?.filter ?? sub.topicFilter;
  if (!opts.wildcardSubscriptionAvailable && hasWildcard(filter)) return ReasonCode.WildcardSubscriptionsNotSupported;
  // A well-formed filter the broker does not allow: 0x8F Topic Filter invalid (3.1.1: 0x80).
  if (opts.maxTopicLevels > 0 && topicLevels(filter) > opts.maxTopicLevels) return ReasonCode.TopicFilterInvalid;
  // maxTopicLength, in UTF-8 bytes of the filter as sent ($share/{group}/ included).
  const maxLength = opts.maxTopicLength;
  if (maxLength < 65535 && sub.topicFilter.length * 3 > maxLength && Buffer.byteLength(sub.topicFilter) > maxLength) return ReasonCode.TopicFilterInvalid;
  const qos = (sub.qos < opts.maximumQoS ? sub.qos : opts.maximumQoS) as QoS;
  const existing = session.subscriptions.get(sub.topicFilter);
  // maxSubscriptionsPerClient: a new filter beyond it is refused with 0x97 (3.1.1: 0x80); replacing
  // an existing subscription [MQTT-3.8.4-3] always works.
  const maxSubs = opts.maxSubscriptionsPerClient;
  if (existing === undefined && maxSubs > 0 && session.subscriptions.size >= maxSubs) return ReasonCode.QuotaExceeded;
  if (existing !== undefined) st.removeSubscription(existing);
  const rec: SubRecord = {
    topicFilter: filter,
    qos,
    noLocal: sub.noLocal ?? false,
    retainAsPublished: sub.retainAsPublished ?? false,
    retainHandling: sub.retainHandling ?? 0,
    session,
    subIds: subId === undefined ? undefined : [subId],
    group: shared === undefined ? undefined : st.groupFor(shared.group, shared.filter),
  };
  session.setSubscription(sub.topicFilter, rec);
  if (session.expiryInterval !== 0) st.durability?.subscribed(session.clientId, sub.topicFilter, rec);
  st.addSubscription(rec);
  // Retain Handling 0: send retained; 1: only for a new subscription; 2: never [MQTT-3.3.1-9] [MQTT-3.3.1-10].
  // §4.8.2: retained messages are not sent when a Shared Subscription is established.
  const wantRetained = rec.retainHandling === 0 || (rec.retainHandling === 1 && existing === undefined);
  if (shared === undefined && wantRetained) retained.push([rec, st.retainedFor(filter)]);
  return qos;
}
