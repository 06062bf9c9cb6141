/**
 * The broker's state and the operations shared by the handlers: session registry, router,
 * retained messages, wills, timers (one wheel) and the write scheduler. Knows packets,
 * sessions and streams; never sockets.
 */
import { Buffer } from 'node:buffer';
import type { Logger } from '../observability/logger.js';
import {
  matches, parseShared, type QoS, ReasonCode, type WillMessage,
} from '../protocol/index.js';
import { RetainedIndex, SharedGroup, type ShareStrategy, TopicTree } from '../router/index.js';
import type { ConnectionMeta } from '../transport/types.js';
import type { Clock } from '../session/clock.js';
import { TimerWheel } from '../session/timer-wheel.js';
import type { Connection } from './connection.js';
import { checked, deliverShared, deliverToMember, route, type RouteEntry, type Router } from './delivery.js';
import { BrokerEmitter, type DropReason } from './events.js';
import type { BrokerHooks } from './hooks.js';
import { createMessage, isExpired, type Message, messageBytes, ownedProperties, TemplateCache } from './message.js';
import { aclAllowsPublish, Extensions, type PublishChange, type PublishVerdict } from './extensions.js';
import type { ClientInfo } from './events.js';
import type { InterceptedMessage } from './hooks.js';
import { type InboundBudget, Limits } from './limits.js';
import { type PendingWill, SessionRegistry } from './registry.js';
import { Durability } from './durability.js';
import type { ClusterLink } from './cluster.js';
import type { ResolvedOptions } from './options.js';
import {
  type DropSink, type Outgoing, type Session, type SessionLimits, sessionLimits, StallWatch, type SubRecord,
} from './session.js';
import { tick } from './timers.js';
import { BrokerCounters } from './counters.js';
import { SysTopics } from './sys-topics.js';
import { asError, type HookDeadline, UserCode } from './user-code.js';
import { RotatingSet } from '../session/rotating.js';


export type Timed = Connection | Session | PendingWill | HookDeadline | StallWatch | InboundBudget | SysTopics;

/** The metadata of a will published after its client left (no connection to describe). */
const NO_CONNECTION: ConnectionMeta = Object.freeze({ remoteAddress: undefined, remotePort: undefined, listener: undefined });

/** `$SYS/` belongs to the broker: clients may not publish there. */
export const isReservedTopic = (topic: string): boolean => topic.startsWith('$SYS/') || topic === '$SYS';

const groupKey = (g: { group: string; filter: string }): string => `${g.group}\u0000${g.filter}`;

export interface BrokerStats {
  messagesReceived: number;
  messagesRouted: number;
  messagesDropped: number;
  connectionsAccepted: number;
}

const TICK_MS = 100;

/** Connections written in one turn from which the turn counts as busy (see `#flushAll`). */
const BUSY_TURN = 512;

export class BrokerState implements DropSink, Router {
  readonly options: ResolvedOptions;
  readonly clock: Clock;
  /** The clock reading of the read being decoded (`readAt`), NaN outside one. */
  #readTime = NaN;
  readonly logger: Logger;
  readonly events = new BrokerEmitter();
  /** Sessions and pending wills, with their lifecycle (registry.ts). */
  readonly registry: SessionRegistry;
  /** Durable changes to the store, when there is one (durability.ts). */
  readonly durability: Durability | undefined;
  /** The other nodes of a cluster, when this broker is one node (cluster.ts). */
  readonly cluster: ClusterLink | undefined;
  /** Per connection, the acknowledgements waiting for a commit (kept in order behind it). */
  readonly ackChains = new WeakMap<Connection, Promise<void>>();
  /** Connected clients by client id. */
  readonly connections = new Map<string, Connection>();
  /**
   * Open connections whose CONNECT is not accepted yet; an accepted one moves to `connections`
   * (so an idle client costs one table entry, not two).
   */
  readonly connecting = new Set<Connection>();
  readonly tree: TopicTree<RouteEntry>;
  readonly groups = new Map<string, SharedGroup<SubRecord>>();
  readonly retained = new RetainedIndex<Message>(messageBytes);
  readonly wheel: TimerWheel<Timed>;
  readonly stats: BrokerStats = { messagesReceived: 0, messagesRouted: 0, messagesDropped: 0, connectionsAccepted: 0 };
  /** Packets, bytes, drops by reason, latencies (counters.ts): read by `BrokerCore.metrics()` and $SYS. */
  readonly counters = new BrokerCounters();
  /** 5.0 per-receiver templates shared by the messages of a topic (see TemplateCache). */
  readonly templates = new TemplateCache();
  /**
   * The broker's own retained `$SYS/` messages (sys-topics.ts), apart from the clients' retained
   * messages: they count against no quota, are never stored and only `$` filters reach them.
   */
  readonly sysRetained = new RetainedIndex<Message>(messageBytes);
  /** Clock time the broker was created (uptime). */
  readonly startedAt: number;
  strategy: ShareStrategy;
  routeMark = 0;
  closing = false;
  #dirty: Connection[] = [];
  #flushQueued = false;
  readonly #stopTicker: () => void;

  /** Runs hooks and listeners under isolation and the time limit (user-code.ts). */
  readonly userCode: UserCode;
  /** Queue limits shared by every session. */
  readonly sessionLimits: SessionLimits;
  /** Connection counts, connection rates, flapping and inbound budgets (limits.ts). */
  readonly limits: Limits;
  /** Hooks and interceptors, wrapped for the handlers (extensions.ts). */
  readonly ext: Extensions;

  constructor(options: ResolvedOptions, hooks: BrokerHooks) {
    this.options = options;
    this.sessionLimits = sessionLimits(options);
    this.clock = options.clock;
    this.startedAt = this.clock.now();
    this.logger = options.logger;
    this.wheel = new TimerWheel<Timed>(this.clock.now(), TICK_MS);
    const userCode = new UserCode(this.wheel as TimerWheel<unknown>, this.clock, options.hookTimeout * 1000, this.logger);
    this.userCode = userCode;
    userCode.report = (error, failure) => this.events.fire('error', error, failure);
    this.events.onFailure = (err, event) => {
      // A failing `error` listener is only logged: reporting it again would loop.
      if (event === 'error') {
        try {
          this.logger.error({ err: asError(err), source: 'listener:error' }, 'user code failed');
        } catch {
          // ignore
        }
      } else userCode.failed(err, `listener:${event}`, undefined);
    };
    this.ext = new Extensions(userCode, this.clock, hooks, this.counters.hooks);
    this.durability = options.store === undefined ? undefined : new Durability(options.store, this.clock, options.wallClock, this.counters);
    if (this.durability !== undefined) this.durability.onError = (err) => this.logger.error({ err }, 'store write failed');
    this.cluster = options.cluster;
    this.registry = new SessionRegistry(this);
    this.strategy = options.sharedSubscriptionStrategy;
    this.limits = new Limits(options, this.clock, this.wheel as TimerWheel<unknown>);
    this.limits.onBanned = (clientId, remoteAddress, until) => {
      this.logger.warn({ clientId, remote: remoteAddress, until, flapThreshold: options.flapThreshold, flapWindow: options.flapWindow }, 'client banned for flapping');
      this.events.fire('clientBanned', clientId, remoteAddress, until);
    };
    this.tree = new TopicTree<RouteEntry>({ cacheSize: options.matchCacheSize, cacheBytes: options.matchCacheBytes });
    this.#stopTicker = options.ticker.start(() => tick(this, this.clock.now()), TICK_MS);
    this.sys = options.sys.enabled ? new SysTopics(this, options.sys.interval) : undefined;
    this.sys?.start(this.startedAt);
  }

  /** The $SYS/ publisher (sys-topics.ts); undefined when the `sys` option turned it off. */
  readonly sys: SysTopics | undefined;

  /** Every open connection, connected or not. */
  openConnections(): Connection[] {
    return [...this.connecting, ...this.connections.values()];
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

  /**
   * Writes the connections with output. In a busy turn (many connections written), a connection
   * with only deliveries pending may wait up to seven busy turns (`Connection.coalesce`) so that its next
   * deliveries share the write: under load that halves the write system calls, which cost more
   * than everything else per delivery. A quiet turn writes everything at once, so latency at low
   * and moderate load is unchanged, and acknowledgements never wait.
   */
  readonly #flushAll = (): void => {
    const dirty = this.#dirty;
    this.#dirty = [];
    this.#flushQueued = false;
    const busy = dirty.length >= BUSY_TURN;
    for (const conn of dirty) {
      if (busy && conn.coalesce()) {
        this.#dirty.push(conn);
        continue;
      }
      conn.flushScheduled = false;
      conn.flush();
    }
    if (this.#dirty.length > 0 && !this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(this.#flushAll);
    }
  };

  /**
   * The time for what a client's packets cause: inside a read (Connection.onData), the one clock
   * reading taken for that read, shared by all its packets (they arrived together); outside,
   * the clock itself.
   */
  now(): number {
    const t = this.#readTime;
    return t === t ? t : this.clock.now();
  }

  /** A read is being decoded at `now` (until `readDone`); returns the reading it replaces (a read inside a read). */
  readAt(now: number): number {
    const before = this.#readTime;
    this.#readTime = now;
    return before;
  }

  readDone(before: number): void {
    this.#readTime = before;
  }

  // ---- messages ---------------------------------------------------------------------------

  /** Routes a message to its subscribers; returns how many received it. */
  publish(msg: Message): number {
    const cluster = this.cluster;
    if (cluster === undefined) return this.deliverRemote(msg, true);
    // A cluster link that picks shared-group members cluster-wide also picks this node's.
    return this.deliverRemote(msg, cluster.shareJoined === undefined) + cluster.published(msg);
  }

  /**
   * A message published on another node of the cluster: retained and routed here, never forwarded
   * again. `withShared` false: the shared groups are left out (the cluster link picked their members).
   */
  deliverRemote(msg: Message, withShared = true): number {
    const now = this.now();
    if (msg.retain) this.#retain(msg);
    const n = route(this, msg, now, withShared);
    this.stats.messagesRouted += n;
    return n;
  }

  /**
   * Cluster: gives `msg` to the member `clientId` of the group `$share/{group}/{filter}` here, or
   * when it is not a member here (any more), to another member here (an online one if any).
   * False when the group has no member here.
   */
  deliverToMember(group: string, filter: string, clientId: string | undefined, msg: Message): boolean {
    const g = this.groups.get(`${group}\u0000${filter}`);
    if (g === undefined || g.size === 0) return false;
    const now = this.clock.now();
    const member = clientId === undefined ? undefined : g.get(clientId);
    if (member !== undefined) deliverToMember(this, g, member, msg, now);
    else deliverShared(this, g, msg, now, undefined);
    this.stats.messagesRouted++;
    return true;
  }

  /** A session's in-flight plus queued deliveries (least-inflight picks by it); -1 when there is no such session. */
  sessionLoad(clientId: string): number {
    const s = this.registry.get(clientId);
    return s === undefined ? -1 : s.inflight.size + s.queue.length;
  }

  /**
   * Delivers `msg` to one session only, through its subscriptions that match the topic (one copy,
   * at the highest QoS they grant, with all their identifiers); returns 1 when delivered, else 0.
   */
  publishTo(session: Session, msg: Message, asRouted = false): number {
    let best: SubRecord | undefined;
    let subIds: number[] | undefined;
    for (const [filter, rec] of session.subscriptions) {
      // As a route would: shared groups pick their own members, No Local holds [MQTT-3.8.3-3].
      if (asRouted && (rec.group !== undefined || (rec.noLocal && session.clientId === msg.senderId))) continue;
      if (!matches(parseShared(filter)?.filter ?? filter, msg.topic)) continue;
      if (best === undefined || rec.qos > best.qos) best = rec;
      if (rec.subIds !== undefined) subIds = [...(subIds ?? []), ...rec.subIds];
    }
    if (best === undefined) return 0;
    const check = this.ext.deliveryCheck;
    const out = check === undefined ? msg : checked(check, session, msg);
    if (out === undefined) return 0;
    this.stats.messagesReceived++;
    session.deliver(out, (out.qos < best.qos ? out.qos : best.qos) as QoS, false, subIds, this.clock.now());
    this.stats.messagesRouted++;
    return 1;
  }

  /** Whether storing `m` as the retained message of its topic would exceed maxRetainedMessages or maxRetainedBytes. */
  retainQuotaExceeded(m: Parameters<typeof messageBytes>[0]): boolean {
    if (m.payload.length === 0) return false;
    const { maxRetainedMessages: max, maxRetainedBytes: maxBytes } = this.options;
    const old = this.retained.get(m.topic);
    if (max > 0 && this.retained.size >= max && old === undefined) return true;
    return maxBytes > 0 && this.retained.bytes - (old === undefined ? 0 : messageBytes(old)) + messageBytes(m) > maxBytes;
  }

  /** [MQTT-3.3.1-5]: store (or with an empty payload clear [MQTT-3.3.1-10]) the retained message. */
  #retain(msg: Message): void {
    const durability = this.durability;
    const old = durability === undefined ? undefined : this.retained.get(msg.topic);
    if (msg.payload.length === 0) {
      if (this.retained.delete(msg.topic) && old !== undefined) durability?.unretained(old, false);
      return;
    }
    if (this.retainQuotaExceeded(msg)) return;
    // A copy: payload and correlation data may be views of a large network chunk.
    // Retained: delivered to every later subscriber, so worth caching encodings for.
    const kept: Message = {
      ...msg, payload: Buffer.from(msg.payload), properties: ownedProperties(msg.properties), encoded: undefined, receivers: 2, storeRefs: 0, ackWaiter: undefined,
    };
    this.retained.set(msg.topic, kept);
    if (durability === undefined) return;
    durability.retained(kept);
    if (old !== undefined) durability.unretained(old, true);
  }

  /** Clears the retained message of `topic` (as an empty retained PUBLISH would, without routing one); false when there was none. */
  unretain(topic: string): boolean {
    const old = this.retained.get(topic);
    if (old === undefined || !this.retained.delete(topic)) return false;
    this.durability?.unretained(old, false);
    return true;
  }

  /** Retained messages matching `filter`, expired ones removed [MQTT-3.3.2-5]. */
  retainedFor(filter: string): Message[] {
    const now = this.clock.now();
    const out: Message[] = [];
    for (const m of this.retained.match(filter)) {
      if (isExpired(m, now)) this.retained.delete(m.topic);
      else out.push(m);
    }
    // Only a filter starting with '$' can match a $SYS topic [MQTT-4.7.2-1].
    if (filter.charCodeAt(0) === 0x24 && this.sysRetained.size > 0) {
      for (const m of this.sysRetained.match(filter)) {
        if (isExpired(m, now)) this.sysRetained.delete(m.topic);
        else out.push(m);
      }
    }
    return out;
  }

  /**
   * Publishes one of the broker's `$SYS/` messages: kept as the topic's retained message (in
   * `sysRetained`, never in the store) and routed to current subscribers, which only `$`
   * filters match [MQTT-4.7.2-1].
   */
  publishSys(msg: Message): void {
    this.sysRetained.set(msg.topic, { ...msg, encoded: undefined, receivers: 2, ackWaiter: undefined });
    this.stats.messagesRouted += route(this, msg, this.clock.now());
  }

  /**
   * Set by a session whose queue reached its high-water mark during the current route: the
   * PUBLISH handler then holds its publisher until that session drains (flow control).
   */
  pressure: Session | undefined;
  /** Sessions holding publishers back now: while there are any, a PUBLISH checks its receivers first. */
  readonly pressing = new RotatingSet<Session>();

  backlogged(session: Session): void {
    if (this.options.slowSubscriberTimeout === 0) return;
    this.pressure = session;
    this.pressing.add(session);
    if (!session.watching) {
      session.watching = true;
      this.wheel.schedule(new StallWatch(session), session.lastProgress + this.options.slowSubscriberTimeout * 1000);
    }
  }

  relieved(session: Session): void {
    if (this.pressing.size > 0) this.pressing.delete(session);
  }

  /**
   * A receiver of `topic` that holds publishers back, if any. Checked before a client's PUBLISH is
   * routed while some session presses, so that many publishers at once cannot each push one more
   * message past the high-water mark (2,000 publishers would overrun any queue): the PUBLISH
   * waits, unrouted and unacknowledged.
   */
  pressingReceiver(topic: string): Session | undefined {
    // A backlogged session is always in `pressing` (backlogged() adds it; release() removes it
    // once it is not backlogged any more): the session's own state is the answer.
    for (const e of this.tree.match(topic)) if (!(e instanceof SharedGroup) && e.session.backlogged) return e.session;
    return undefined;
  }

  dropped(session: Session, msg: Message, reason: DropReason): void {
    this.stats.messagesDropped++;
    this.counters.drop(reason);
    if (this.events.listenerCount('messageDropped') > 0) this.events.fire('messageDropped', session.clientId, msg.topic, reason);
  }

  // ---- subscriptions ----------------------------------------------------------------------

  addSubscription(rec: SubRecord): void {
    const shared = rec.group;
    if (shared !== undefined) {
      if (shared.add(rec.session.clientId, rec)) this.cluster?.shareJoined?.(shared.group, shared.filter, rec.session.clientId);
      return;
    }
    if (this.tree.add(rec.topicFilter, rec.session.clientId, rec)) this.cluster?.subscribed(rec.topicFilter);
  }

  /** The shared group for `$share/{group}/{filter}`, created and put in the tree on first use. */
  groupFor(group: string, filter: string): SharedGroup<SubRecord> {
    const key = `${group}\u0000${filter}`;
    let g = this.groups.get(key);
    if (g === undefined) {
      g = new SharedGroup<SubRecord>(group, filter);
      this.groups.set(key, g);
      this.tree.add(filter, `\u0000share/${group}`, g);
      if (this.cluster?.shareJoined === undefined) this.cluster?.subscribed(filter);
    }
    return g;
  }

  removeSubscription(rec: SubRecord): void {
    const g = rec.group;
    if (g === undefined) {
      if (this.tree.remove(rec.topicFilter, rec.session.clientId)) this.cluster?.unsubscribed(rec.topicFilter);
      return;
    }
    if (g.remove(rec.session.clientId)) this.cluster?.shareLeft?.(g.group, g.filter, rec.session.clientId);
    if (g.size === 0) {
      this.groups.delete(groupKey(g));
      this.tree.remove(g.filter, `\u0000share/${g.group}`);
      if (this.cluster?.shareJoined === undefined) this.cluster?.unsubscribed(g.filter);
    }
  }

  /**
   * Hands a member's unacknowledged shared-group deliveries to other members (§4.8.2):
   * - 'lost': the connection ended, the session lives on: only what another online member can
   *   take moves; the rest stays and is resent when the member reconnects [MQTT-4.4.0-1];
   * - 'left': the member unsubscribed from `group`: messages move if another member exists;
   * - 'ended': the session ends: messages move to any other member, or are dropped (counted).
   */
  redistribute(session: Session, mode: 'lost' | 'left' | 'ended', group?: SharedGroup<SubRecord>): void {
    const now = this.clock.now();
    // In a cluster whose link picks members cluster-wide, the other members may be on any node.
    const cluster = this.cluster?.reshare !== undefined && this.cluster.shareAvailable !== undefined ? this.cluster : undefined;
    const movable = (o: Outgoing): boolean => {
      if (mode === 'ended') return true;
      const g = o.group as SharedGroup<SubRecord>;
      if (group !== undefined && groupKey(g) !== groupKey(group)) return false;
      if (cluster !== undefined) return cluster.shareAvailable!(g.group, g.filter, session.clientId, mode === 'lost');
      const live = this.#liveGroup(o);
      if (live === undefined) return false;
      for (const m of live.members()) if (m.session !== session && (mode === 'left' || m.session.link !== undefined)) return true;
      return false;
    };
    for (const o of session.withdrawShared(movable)) {
      const live = this.#liveGroup(o);
      const g = o.group as SharedGroup<SubRecord>;
      if (isExpired(o.msg, now)) this.dropped(session, o.msg, 'expired');
      else if (cluster !== undefined) {
        if (!cluster.reshare!(g.group, g.filter, o.msg, session.clientId)) this.dropped(session, o.msg, 'no-receiver');
      } else if (live === undefined || !deliverShared(this, live, o.msg, now, session)) this.dropped(session, o.msg, 'no-receiver');
    }
    if (session.link !== undefined) session.pump(now);
  }

  /** The current group object of a delivery's group (it is recreated when it empties and refills). */
  #liveGroup(o: Outgoing): SharedGroup<SubRecord> | undefined {
    return o.group === undefined ? undefined : this.groups.get(groupKey(o.group));
  }

  // ---- sessions and wills -----------------------------------------------------------------

  /** Ends a session now (see SessionRegistry.end). */
  endSession(session: Session): void {
    this.registry.end(session);
  }

  /** Takes a session's subscriptions out of the router (when it ends) and hands its shared-group messages on. */
  unroute(session: Session, why: 'ended' | 'lost' | 'moved'): void {
    if (why !== 'lost') for (const rec of session.subscriptions.values()) this.removeSubscription(rec);
    // A session that moves to another node keeps its deliveries (the store holds them for it).
    if (why !== 'moved') this.redistribute(session, why);
  }

  /**
   * Publishes a will like a PUBLISH from its client: $SYS/ and the authorizePublish hook apply.
   * Runs from socket events, timers and takeovers: a failing hook refuses the will, never more.
   */
  publishWill(clientId: string, will: WillMessage, client?: ClientInfo): void {
    if (isReservedTopic(will.topic)) return;
    if (client?.acl !== undefined && !aclAllowsPublish(client.acl, will.topic)) return;
    const authorize = this.ext.authorizePublish;
    if (authorize !== undefined) {
      const verdict = authorize({
        clientId, username: client?.username, protocolVersion: client?.protocolVersion ?? 0, remoteAddress: client?.remoteAddress,
        connection: client?.connection ?? NO_CONNECTION,
        topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, properties: will.properties, will: true, client,
      });
      if (verdict instanceof Promise) {
        verdict.then((v) => {
          if (!this.closing) this.#willAuthorized(clientId, will, client, v);
        }, (err: unknown) => this.userCode.failed(err, 'will', clientId));
        return;
      }
      this.#willAuthorized(clientId, will, client, verdict);
      return;
    }
    this.#interceptWill(clientId, will, client, undefined);
  }

  #willAuthorized(clientId: string, will: WillMessage, client: ClientInfo | undefined, verdict: PublishVerdict): void {
    if (typeof verdict !== 'number') this.#interceptWill(clientId, will, client, verdict);
    else if (verdict === ReasonCode.Success) this.#interceptWill(clientId, will, client, undefined);
  }

  /** The will interceptors, then the will is published; null from one of them drops it. */
  #interceptWill(clientId: string, will: WillMessage, client: ClientInfo | undefined, change: PublishChange | undefined): void {
    const m: InterceptedMessage = {
      topic: change?.topic ?? will.topic, payload: change?.payload ?? will.payload, qos: change?.qos ?? will.qos,
      retain: (change?.retain ?? will.retain) && this.options.retainAvailable, properties: change?.properties ?? will.properties,
    };
    const run = this.ext.interceptWill;
    if (run === undefined) return this.#publishWill(clientId, m);
    const out = run(m, client ?? { clientId, username: undefined, protocolVersion: 0, remoteAddress: undefined, connection: NO_CONNECTION });
    if (out instanceof Promise) {
      out.then((r) => {
        if (r !== null && !this.closing) this.#publishWill(clientId, r);
      }, (err: unknown) => this.userCode.failed(err, 'will', clientId));
    } else if (out !== null) this.#publishWill(clientId, out);
  }

  #publishWill(clientId: string, will: InterceptedMessage): void {
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
    this.events.fire('published', {
      topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain, properties: msg.properties, clientId: msg.senderId,
    });
  }

  /** Called once by a connection when it ends, whatever the cause. */
  connectionClosed(conn: Connection, err: Error | undefined): void {
    this.connecting.delete(conn);
    this.limits.closed(conn);
    const session = conn.session;
    // Not accepted: no session, no ClientInfo, no event.
    if (session === undefined) return;
    if (this.connections.get(session.clientId) === conn) {
      this.connections.delete(session.clientId);
      this.limits.disconnected(conn);
    }
    if (conn.leaseToken !== 0) this.cluster?.unclaimed?.(session.clientId, conn.leaseToken);
    if (session.link !== conn) return;
    session.link = undefined;
    // An offline session keeps its bounded queue; publishers no longer wait for it.
    session.release();
    this.registry.detach(session, this.closing ? undefined : conn.will, this.clock.now(), conn.info);
    // The ClientInfo is built (see Connection.info) only when someone listens.
    const events = this.events;
    if (conn.graceful) {
      if (events.listenerCount('clientDisconnected') > 0) events.fire('clientDisconnected', conn.info as ClientInfo, conn.disconnectReason);
    } else if (events.listenerCount('connectionLost') > 0) events.fire('connectionLost', conn.info as ClientInfo, err);
  }

  // ---- time -------------------------------------------------------------------------------

  /**
   * Puts the keep alive deadline on the wheel once CONNECT is accepted. The connection's
   * connect-timeout entry is still there (the wheel cancels lazily); when it is due no later than
   * the keep alive deadline it is left to do the job (timers.ts reschedules a connected
   * connection at its keep alive deadline), so an idle connection has one wheel entry, not two.
   */
  scheduleKeepalive(conn: Connection): void {
    if (conn.keepalive === 0) return;
    const deadline = conn.lastSeen + conn.keepalive * 1500;
    const connectTimeout = this.options.connectTimeout * 1000;
    if (connectTimeout > 0 && conn.openedAt + connectTimeout <= deadline) return;
    this.wheel.schedule(conn, deadline);
  }

  stop(): void {
    this.#stopTicker();
  }
}
