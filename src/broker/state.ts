/**
 * The broker's state and the operations shared by the handlers: session registry, router,
 * retained messages, wills, timers (one wheel) and the write scheduler. Knows packets,
 * sessions and streams; never sockets.
 */
import { Buffer } from 'node:buffer';
import type { Logger } from '../observability/logger.js';
import { type ConnectPacket, ReasonCode, type Subscription, type WillMessage } from '../protocol/index.js';
import { RetainedIndex, SharedGroup, type ShareStrategy, TopicTree } from '../router/index.js';
import type { Clock } from '../session/clock.js';
import { TimerWheel } from '../session/timer-wheel.js';
import type { Connection } from './connection.js';
import { deliverShared, route, type RouteEntry, type Router } from './delivery.js';
import { BrokerEmitter } from './events.js';
import type { AuthorizePublishHook, BrokerHooks } from './hooks.js';
import { createMessage, isExpired, type Message } from './message.js';
import type { ResolvedOptions } from './options.js';
import type { DropSink, Session, SubRecord } from './session.js';
import { tick } from './timers.js';

/** A will waiting for its Will Delay Interval [MQTT-3.1.3-9]. */
export class PendingWill {
  constructor(readonly clientId: string, readonly will: WillMessage, readonly at: number) {}
}

export type Timed = Connection | Session | PendingWill;

export interface BrokerStats {
  messagesReceived: number;
  messagesRouted: number;
  messagesDropped: number;
  connectionsAccepted: number;
}

const TICK_MS = 100;

export class BrokerState implements DropSink, Router {
  readonly options: ResolvedOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly events = new BrokerEmitter();
  readonly sessions = new Map<string, Session>();
  /** Connected clients by client id. */
  readonly connections = new Map<string, Connection>();
  /** Every open connection, connected or not. */
  readonly streams = new Set<Connection>();
  readonly tree: TopicTree<RouteEntry>;
  readonly groups = new Map<string, SharedGroup<SubRecord>>();
  readonly retained = new RetainedIndex<Message>();
  readonly pendingWills = new Map<string, PendingWill>();
  readonly wheel: TimerWheel<Timed>;
  readonly stats: BrokerStats = { messagesReceived: 0, messagesRouted: 0, messagesDropped: 0, connectionsAccepted: 0 };
  strategy: ShareStrategy;
  routeMark = 0;
  closing = false;
  #dirty: Connection[] = [];
  #flushQueued = false;
  readonly #ticker: ReturnType<typeof setInterval>;

  /** Resolves to a CONNACK reason code; undefined when no hook is set (everyone is accepted). */
  readonly authenticate: ((c: Connection, p: ConnectPacket, clientId: string) => Promise<number>) | undefined;
  readonly authorizeSubscribe: ((c: Connection, s: Subscription) => Promise<boolean>) | undefined;
  readonly authorizePublish: AuthorizePublishHook | undefined;

  constructor(options: ResolvedOptions, hooks: BrokerHooks) {
    this.options = options;
    const auth = hooks.authenticate;
    this.authenticate = auth === undefined ? undefined : async (c, p, clientId) => {
      const r = await auth({ clientId, username: p.username, password: p.password, protocolVersion: p.protocolVersion, remoteAddress: c.remoteAddress });
      if (r === true) return ReasonCode.Success;
      return r === false ? ReasonCode.BadUserNameOrPassword : r;
    };
    this.authorizePublish = hooks.authorizePublish;
    const authSub = hooks.authorizeSubscribe;
    this.authorizeSubscribe = authSub === undefined ? undefined : async (c, s) =>
      authSub({ clientId: c.info?.clientId ?? '', topicFilter: s.topicFilter, qos: s.qos });
    this.clock = options.clock;
    this.logger = options.logger;
    this.strategy = options.sharedSubscriptionStrategy;
    this.tree = new TopicTree<RouteEntry>({ cacheSize: options.matchCacheSize });
    this.wheel = new TimerWheel<Timed>(this.clock.now(), TICK_MS);
    this.#ticker = setInterval(() => tick(this, this.clock.now()), TICK_MS);
    this.#ticker.unref();
  }

  // ---- writes -----------------------------------------------------------------------------

  /** Collects connections with output; they are written once, after this event-loop turn's I/O. */
  scheduleFlush(conn: Connection): void {
    conn.flushScheduled = true;
    this.#dirty.push(conn);
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(this.#flushAll);
    }
  }

  readonly #flushAll = (): void => {
    const dirty = this.#dirty;
    this.#dirty = [];
    this.#flushQueued = false;
    for (const conn of dirty) {
      conn.flushScheduled = false;
      conn.flush();
    }
  };

  // ---- messages ---------------------------------------------------------------------------

  /** Routes a message to its subscribers; returns how many received it. */
  publish(msg: Message): number {
    const now = this.clock.now();
    if (msg.retain) this.#retain(msg);
    const n = route(this, msg, now);
    this.stats.messagesRouted += n;
    return n;
  }

  /** Whether storing a retained message on `topic` would exceed maxRetainedMessages. */
  retainQuotaExceeded(topic: string, payloadLength: number): boolean {
    const max = this.options.maxRetainedMessages;
    return max > 0 && payloadLength > 0 && this.retained.size >= max && this.retained.get(topic) === undefined;
  }

  /** [MQTT-3.3.1-5]: store (or with an empty payload clear [MQTT-3.3.1-10]) the retained message. */
  #retain(msg: Message): void {
    if (msg.payload.length === 0) {
      this.retained.delete(msg.topic);
      return;
    }
    if (this.retainQuotaExceeded(msg.topic, msg.payload.length)) return;
    // A copy: the payload may be a view of a large network chunk.
    this.retained.set(msg.topic, { ...msg, payload: Buffer.from(msg.payload), encoded: undefined });
  }

  /** Retained messages matching `filter`, expired ones removed [MQTT-3.3.2-5]. */
  retainedFor(filter: string): Message[] {
    const now = this.clock.now();
    const out: Message[] = [];
    for (const m of this.retained.match(filter)) {
      if (isExpired(m, now)) this.retained.delete(m.topic);
      else out.push(m);
    }
    return out;
  }

  dropped(session: Session, msg: Message, reason: 'queue-full' | 'expired' | 'too-large'): void {
    this.stats.messagesDropped++;
    if (this.events.listenerCount('messageDropped') > 0) this.events.emit('messageDropped', session.clientId, msg.topic, reason);
  }

  // ---- subscriptions ----------------------------------------------------------------------

  addSubscription(rec: SubRecord): void {
    const shared = rec.group;
    if (shared !== undefined) {
      shared.add(rec.session.clientId, rec);
      return;
    }
    this.tree.add(rec.topicFilter, rec.session.clientId, rec);
  }

  /** The shared group for `$share/{group}/{filter}`, created and put in the tree on first use. */
  groupFor(group: string, filter: string): SharedGroup<SubRecord> {
    const key = `${group}\u0000${filter}`;
    let g = this.groups.get(key);
    if (g === undefined) {
      g = new SharedGroup<SubRecord>(group, filter);
      this.groups.set(key, g);
      this.tree.add(filter, `\u0000share/${group}`, g);
    }
    return g;
  }

  removeSubscription(rec: SubRecord): void {
    const g = rec.group;
    if (g === undefined) {
      this.tree.remove(rec.topicFilter, rec.session.clientId);
      return;
    }
    g.remove(rec.session.clientId);
    if (g.size === 0) {
      this.groups.delete(`${g.group}\u0000${g.filter}`);
      this.tree.remove(g.filter, `\u0000share/${g.group}`);
    }
  }

  /** Gives a member's unacknowledged shared-group deliveries to other members of their groups (§4.8.2). */
  redistribute(session: Session, group: SharedGroup<SubRecord> | undefined): void {
    const now = this.clock.now();
    for (const o of session.withdrawShared(group)) {
      if (isExpired(o.msg, now) || o.group === undefined || !deliverShared(this, o.group, o.msg, now, session)) {
        this.dropped(session, o.msg, isExpired(o.msg, now) ? 'expired' : 'queue-full');
      }
    }
    if (session.link !== undefined) session.pump(now);
  }

  // ---- sessions and wills -----------------------------------------------------------------

  /** Ends a session: its subscriptions leave the router and a delayed will is published now [MQTT-3.1.3-9]. */
  endSession(session: Session): void {
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
    for (const rec of session.subscriptions.values()) this.removeSubscription(rec);
    this.redistribute(session, undefined);
    session.subscriptions.clear();
    session.reset();
    const pending = this.pendingWills.get(session.clientId);
    if (pending !== undefined) {
      this.pendingWills.delete(session.clientId);
      this.publishWill(session.clientId, pending.will);
    }
  }

  publishWill(clientId: string, will: WillMessage): void {
    const msg = createMessage({
      topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain,
      properties: will.properties, senderId: clientId, now: this.clock.now(),
    });
    this.stats.messagesReceived++;
    this.publish(msg);
    this.emitPublished(msg);
  }

  emitPublished(msg: Message): void {
    if (this.events.listenerCount('published') === 0) return;
    this.events.emit('published', {
      topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain, properties: msg.properties, clientId: msg.senderId,
    });
  }

  /** Called once by a connection when it ends, whatever the cause. */
  connectionClosed(conn: Connection, err: Error | undefined): void {
    this.streams.delete(conn);
    const session = conn.session;
    const info = conn.info;
    if (session === undefined || info === undefined) return;
    if (this.connections.get(session.clientId) === conn) this.connections.delete(session.clientId);
    if (session.link !== conn) return;
    session.link = undefined;
    const now = this.clock.now();
    // A shared-subscription member that goes away hands its unacknowledged messages to the others.
    this.redistribute(session, undefined);
    if (conn.will !== undefined && !this.closing) this.#scheduleWill(session, conn.will, now);
    if (session.expiryInterval === 0) this.endSession(session);
    else if (session.expiryInterval !== 0xffffffff) {
      session.expiresAt = now + session.expiryInterval * 1000;
      this.wheel.schedule(session, session.expiresAt);
    }
    if (conn.graceful) this.events.emit('clientDisconnected', info, conn.disconnectReason);
    else this.events.emit('connectionLost', info, err);
  }

  #scheduleWill(session: Session, will: WillMessage, now: number): void {
    const delay = will.properties?.willDelayInterval ?? 0;
    if (delay === 0 || session.expiryInterval === 0) {
      this.publishWill(session.clientId, will);
      return;
    }
    const pending = new PendingWill(session.clientId, will, now + delay * 1000);
    this.pendingWills.set(session.clientId, pending);
    this.wheel.schedule(pending, pending.at);
  }

  // ---- time -------------------------------------------------------------------------------

  scheduleKeepalive(conn: Connection): void {
    if (conn.keepalive > 0) this.wheel.schedule(conn, conn.lastSeen + conn.keepalive * 1500);
  }

  stop(): void {
    clearInterval(this.#ticker);
  }
}
