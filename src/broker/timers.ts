/**
 * What happens when the broker's timer wheel fires: keep alive checks, session expiry, the
 * 3.1 / 3.1.1 resend timer and delayed wills. Each item re-checks its real deadline, so a stale
 * wheel entry (a moved deadline, a closed connection) costs nothing but the check.
 */
import { MqttError, ProtocolVersion, ReasonCode } from '../protocol/index.js';
import { Connection } from './connection.js';
import { InboundBudget } from './limits.js';
import { Session, StallWatch } from './session.js';
import type { PendingWill } from './registry.js';
import type { BrokerState } from './state.js';
import { HookDeadline } from './user-code.js';
import { SysTopics } from './sys-topics.js';

export function tick(st: BrokerState, now: number): void {
  for (const item of st.wheel.advance(now)) {
    // One failing item (a bug, user code the guards missed) must not stop the others or the
    // interval: it is logged and the tick goes on.
    try {
      if (item instanceof Connection) checkKeepalive(st, item, now);
      else if (item instanceof Session) checkSession(st, item, now);
      else if (item instanceof HookDeadline) st.userCode.expire(item, now);
      else if (item instanceof StallWatch) checkStall(st, item, now);
      else if (item instanceof InboundBudget) st.limits.release(item, now);
      else if (item instanceof SysTopics) item.fire(now);
      else checkWill(st, item);
    } catch (err) {
      st.logger.error({ err }, 'timer item failed');
    }
  }
}

/**
 * Before CONNACK: the connect deadline. After: [MQTT-3.1.2-24] no packet within 1.5 × keep alive
 * closes the connection (keep alive 0: never).
 */
function checkKeepalive(st: BrokerState, conn: Connection, now: number): void {
  if (conn.phase === 'closed') return;
  if (conn.phase !== 'connected') {
    const connectDeadline = conn.openedAt + st.options.connectTimeout * 1000;
    if (now >= connectDeadline) conn.close(new Error('no CONNECT within the connect timeout'));
    else st.wheel.schedule(conn, connectDeadline);
    return;
  }
  if (conn.keepalive === 0) return;
  // Packets are read while a hook runs or the client is congested, so `lastSeen` is the
  // client's own. Only while the broker stopped reading (too much held) is the silence ours.
  if (conn.readPaused) {
    st.wheel.schedule(conn, now + conn.keepalive * 1500);
    return;
  }
  const deadline = conn.lastSeen + conn.keepalive * 1500;
  if (now >= deadline) conn.fail(new MqttError(ReasonCode.KeepAliveTimeout, 'keep alive timeout'));
  else st.wheel.schedule(conn, deadline);
}

function checkSession(st: BrokerState, session: Session, now: number): void {
  if (!st.registry.isCurrent(session)) {
    session.retryScheduled = false;
    return;
  }
  if (session.link === undefined) {
    session.retryScheduled = false;
    st.registry.expireIfDue(session, now);
    return;
  }
  // The 3.1 / 3.1.1 resend timer; 5.0 resends only on reconnect [MQTT-4.4.0-1]. Each
  // unacknowledged message is resent retryInterval after it was sent (to the wheel's tick): the
  // timer is due when the oldest entry is, or a full interval from now when nothing is in flight.
  const retryMs = st.options.retryInterval * 1000;
  if (retryMs > 0 && session.link.version < ProtocolVersion.V5) {
    const oldest = session.resendOlderThan(now - retryMs, now);
    st.wheel.schedule(session, oldest === undefined ? now + retryMs : oldest + retryMs);
  } else {
    session.retryScheduled = false;
  }
}

function checkWill(st: BrokerState, pending: PendingWill): void {
  st.registry.willDue(pending);
}

/**
 * A backlogged session that made no progress (nothing written, nothing acknowledged) for the
 * slow-subscriber timeout no longer holds its publishers back: by policy, its overflow is dropped
 * (counted as 'slow-subscriber') or the client is disconnected (5.0: 0x97 Quota exceeded).
 */
function checkStall(st: BrokerState, w: StallWatch, now: number): void {
  const s = w.session;
  if (!s.backlogged && s.waiting === 0) {
    s.watching = false;
    return;
  }
  const due = s.lastProgress + st.options.slowSubscriberTimeout * 1000;
  if (now < due) {
    st.wheel.schedule(w, due);
    return;
  }
  s.watching = false;
  const link = s.link;
  st.logger.warn({ clientId: s.clientId, queued: s.queue.length, policy: st.options.slowSubscriberPolicy }, 'slow subscriber stopped holding publishers back');
  if (st.options.slowSubscriberPolicy === 'disconnect' && link instanceof Connection) {
    link.fail(new MqttError(ReasonCode.QuotaExceeded, 'subscriber too slow'));
    return;
  }
  s.stalled = true;
  s.release();
}
