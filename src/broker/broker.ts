/**
 * The broker core: accepts any Duplex byte stream (`handle`), publishes on behalf of the
 * server, and reports clients and subscriptions. Listeners live outside (see src/petrel.ts).
 */
import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import {
  MqttError, PacketType, type Properties, ProtocolVersion, type QoS, ReasonCode, type Subscription, topicFilterProblem, topicNameProblem, type WillMessage,
} from '../protocol/index.js';
import { type Logger, silentLogger } from '../observability/logger.js';
import { systemClock } from '../session/clock.js';
import { Connection } from './connection.js';
import type { BrokerEvents, ClientInfo } from './events.js';
import { checked } from './delivery.js';
import { subscribeOne } from './handlers/subscribe.js';
import { unsubscribeOne } from './handlers/unsubscribe.js';
import { createMessage, type Message } from './message.js';
import type { SubRecord } from './session.js';
import { type BrokerOptions, OptionsError, resolveOptions } from './options.js';
import { BrokerState, type BrokerStats } from './state.js';
import { restoreState } from './restore.js';
import { type BrokerMetrics, brokerMetrics } from './metrics-snapshot.js';
import type { ConnectionMeta } from '../transport/types.js';
import type { ShareStrategy } from '../router/index.js';
import type { BrokerHooks, HookName, InterceptOptions, InterceptorKind, Interceptors } from './hooks.js';

const HOOK_NAMES: readonly HookName[] = ['authenticate', 'authorizePublish', 'authorizeSubscribe', 'authorizeDelivery'];

export interface PublishOptions {
  topic: string;
  /** A string is sent as UTF-8. */
  payload: Buffer | Uint8Array | string;
  qos?: QoS;
  retain?: boolean;
  properties?: Properties;
  /** Only this client's session gets the message (through its matching subscriptions); nothing is retained. */
  clientId?: string;
}

/** A message from another node of a cluster (`deliverRemote`). */
export interface RemoteMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** Its Message Expiry Interval, when set, is what remains of it. */
  properties: Properties | undefined;
  senderId: string | undefined;
  /** False: only for the shared-group members in `shared`, not for this node's other subscribers. Default true. */
  plain?: boolean;
  /** Shared groups (cluster-wide picks) whose chosen member is on this node. */
  shared?: readonly SharedTarget[];
}

/** The member a cluster picked for a message in `$share/{group}/{filter}`. */
export interface SharedTarget {
  readonly group: string;
  readonly filter: string;
  readonly clientId: string;
}

/** A session, as the inspection API shows it. */
export interface SessionInfo {
  clientId: string;
  connected: boolean;
  /** Session Expiry Interval in seconds (0xffffffff: never). */
  expiryInterval: number;
  /** Clock time (ms) at which an offline session expires; undefined while connected or never. */
  expiresAt: number | undefined;
  subscriptions: number;
  /** Deliveries waiting beyond the inflight window (in memory, and in the store beyond the session's queue bounds). */
  queued: number;
  /** QoS 1/2 deliveries sent and not acknowledged yet. */
  inflight: number;
}

/** A retained message, as the inspection API shows it. */
export interface RetainedInfo {
  topic: string;
  payload: Buffer;
  qos: QoS;
  properties: Properties | undefined;
}

/** A plugin: `setup` registers hooks, interceptors and listeners; what it returns is closed with the broker. */
export interface Plugin<O = unknown> {
  readonly name: string;
  setup(broker: BrokerCore, options: O): void | PluginHandle | Promise<void | PluginHandle>;
}

export interface PluginHandle {
  close?(): void | Promise<void>;
}

export interface SubscriptionInfo {
  topicFilter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionIdentifier: number | undefined;
}

export class BrokerCore {
  readonly #state: BrokerState;
  readonly #plugins: { name: string; handle: PluginHandle | undefined }[] = [];
  #restored: Promise<void> | undefined;

  /** Throws OptionsError, naming the option, for an unknown option or a bad value. */
  constructor(options: BrokerOptions = {}) {
    const resolved = resolveOptions(options, { logger: silentLogger, clock: systemClock });
    const logger = resolved.logger;
    this.#state = new BrokerState(resolved, options);
    logConnections(this.#state, logger);
  }

  /** Largest inbound packet accepted, in bytes (the `maxPacketSize` option). */
  get maxPacketSize(): number {
    return this.#state.options.maxPacketSize;
  }

  /** True once `closeConnections()` (or `close()`) was called: the broker serves no one any more. */
  get closed(): boolean {
    return this.#state.closing;
  }

  /**
   * Serves an MQTT connection over any duplex byte stream (TCP socket, TLS, WebSocket, in-process
   * pair). `meta` says who is on the other end and how they came in (listeners fill it in); it
   * reaches events, logs and hook contexts. A bare string is taken as the remote address.
   */
  handle(stream: Duplex, meta?: ConnectionMeta | string): void {
    const st = this.#state;
    if (st.closing) {
      stream.destroy();
      return;
    }
    st.stats.connectionsAccepted++;
    const conn = new Connection(st, stream, typeof meta === 'object' ? meta : localMeta(meta));
    st.connecting.add(conn);
    // A connection that never completes CONNECT is closed when its deadline fires (timers.ts).
    if (st.options.connectTimeout > 0) st.wheel.schedule(conn, conn.lastSeen + st.options.connectTimeout * 1000);
  }

  /**
   * With a `store`: reads it back (sessions, subscriptions, retained messages, pending wills and
   * deadlines); call it once before serving clients (`listen()` does). Without a store, nothing.
   */
  restore(): Promise<void> {
    this.#restored ??= (async () => {
      const st = this.#state;
      const d = st.durability;
      if (d === undefined) return;
      const counts = restoreState(st, await d.open());
      st.logger.info(counts, 'store opened');
      await d.commit();
    })();
    return this.#restored;
  }

  // ---- hooks, interceptors, plugins ------------------------------------------------------

  /** The hook set under `name` now (undefined when none): a replacement can chain to it. */
  getHook<N extends HookName>(name: N): BrokerHooks[N] {
    return this.#state.ext.getHook(name);
  }

  /** Sets or replaces (undefined: removes) a hook; connections use it from their next packet on. */
  setHook<N extends HookName>(name: N, hook: BrokerHooks[N] | undefined): this {
    if (!(HOOK_NAMES as readonly string[]).includes(name)) throw new OptionsError(name, 'unknown hook', 'hook');
    this.#state.ext.setHook(name, hook);
    return this;
  }

  /**
   * Adds an interceptor: 'publish' (inbound, after authorization, before routing), 'delivery' (per
   * receiver) or 'will'. Lower `order` runs first. Returns a function that removes it.
   */
  intercept<K extends InterceptorKind>(kind: K, interceptor: Interceptors[K], options?: InterceptOptions): () => void {
    if (kind !== 'publish' && kind !== 'delivery' && kind !== 'will') throw new OptionsError(String(kind), 'unknown interceptor kind', 'interceptor');
    return this.#state.ext.intercept(kind, interceptor, options);
  }

  /** Runs a plugin's setup; the handle it returns is closed (in reverse order) when the broker closes. */
  async use<O>(plugin: Plugin<O>, options: O): Promise<this> {
    if (typeof plugin !== 'object' || plugin === null || typeof plugin.setup !== 'function' || typeof plugin.name !== 'string') {
      throw new OptionsError('plugin', 'must be an object with a name and a setup function', 'plugin');
    }
    const handle = await plugin.setup(this, options);
    this.#plugins.push({ name: plugin.name, handle: handle ?? undefined });
    return this;
  }

  /** Closes the plugins, newest first; a failing close is logged and the rest still close. */
  protected async closePlugins(): Promise<void> {
    for (const { name, handle } of this.#plugins.splice(0).reverse()) {
      try {
        await handle?.close?.();
      } catch (err) {
        this.#state.userCode.failed(err, `plugin:${name}`, undefined);
      }
    }
  }

  // ---- inspection ----------------------------------------------------------------------------

  /** Every session, connected or not. */
  sessions(): SessionInfo[] {
    const st = this.#state;
    return [...st.registry.values()].map((s) => ({
      clientId: s.clientId, connected: s.link !== undefined, expiryInterval: s.expiryInterval, expiresAt: s.expiresAt,
      subscriptions: s.subscriptions.size, queued: s.queue.length + s.spilled, inflight: s.inflight.size,
    }));
  }

  /** Retained messages whose topic matches `filter` (default "#": all but $-topics). */
  retained(filter = '#'): RetainedInfo[] {
    const problem = topicFilterProblem(filter);
    if (problem !== undefined) throw new OptionsError('filter', problem, 'retained');
    return this.#state.retained.match(filter).map((m) => ({ topic: m.topic, payload: m.payload, qos: m.qos, properties: m.properties }));
  }

  /**
   * Publishes a message from the broker itself; resolves with the number of receivers. With
   * `clientId`, only that client's session gets it (through its matching subscriptions), and
   * nothing is retained.
   */
  async publish(message: PublishOptions): Promise<number> {
    checkPublish(message);
    const st = this.#state;
    if (message.clientId !== undefined) return this.#publishTo(message.clientId, message);
    const payload = typeof message.payload === 'string' ? Buffer.from(message.payload) : Buffer.isBuffer(message.payload)
      ? message.payload : Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
    const msg = createMessage({
      // Without retainAvailable nothing is retained, whoever publishes.
      topic: message.topic, payload, qos: message.qos ?? 0, retain: (message.retain ?? false) && st.options.retainAvailable,
      properties: message.properties, now: st.clock.now(),
    });
    st.stats.messagesReceived++;
    const n = st.publish(msg);
    st.emitPublished(msg);
    return n;
  }

  /**
   * A message published on another node of the cluster (see `cluster` option): retained and routed
   * to the subscribers here, never forwarded again. `expiresIn`: seconds it may still be delivered.
   * Returns the number of receivers.
   */
  deliverRemote(message: RemoteMessage, unplaced?: (target: SharedTarget) => void): number {
    const st = this.#state;
    const plain = message.plain !== false;
    const msg = createMessage({
      topic: message.topic, payload: message.payload, qos: message.qos, retain: plain && message.retain && st.options.retainAvailable,
      properties: message.properties, senderId: message.senderId, now: st.clock.now(),
    });
    st.stats.messagesReceived++;
    // With cluster-wide shared groups, a member here gets the message only when it was picked.
    let n = plain ? st.deliverRemote(msg, st.cluster?.shareJoined === undefined) : 0;
    for (const t of message.shared ?? []) {
      if (st.deliverToMember(t.group, t.filter, t.clientId, msg)) n++;
      else unplaced?.(t);
    }
    st.emitPublished(msg);
    return n;
  }

  /**
   * Cluster: a message from another node's stream for the sessions `clientIds` only (this node
   * took them over from a dead node): each gets it through its matching subscriptions, as a route
   * would have given it (shared groups left out); returns the number of receivers.
   */
  deliverTo(clientIds: Iterable<string>, message: RemoteMessage): number {
    const st = this.#state;
    const msg = createMessage({
      topic: message.topic, payload: message.payload, qos: message.qos, retain: false, properties: message.properties, senderId: message.senderId, now: st.clock.now(),
    });
    let n = 0;
    for (const clientId of clientIds) {
      const session = st.registry.get(clientId);
      if (session !== undefined) n += st.publishTo(session, msg, true);
    }
    return n;
  }

  /**
   * Cluster: takes over the stored session of `clientId` (this node holds its client id lease
   * with `token`), as a resume on another node would, but with no connection: it is offline
   * here, with its subscriptions routed, its queue kept, its will and expiry timed here. False
   * when there is no such session or it is here already.
   */
  async adoptSession(clientId: string, token: number): Promise<boolean> {
    const st = this.#state;
    const store = st.durability?.store;
    if (store?.loadSession === undefined || st.registry.get(clientId) !== undefined) return false;
    const loaded = await store.loadSession(clientId, token);
    if (st.registry.get(clientId) !== undefined || loaded.state.sessions.length === 0) return false;
    restoreState(st, loaded.state);
    await st.durability?.commit();
    return true;
  }

  /**
   * Cluster: `msg` (published here) for the member `clientId` of `$share/{group}/{filter}` that
   * the cluster picked, or another member here when it is not one any more; false when the group
   * has no member here.
   */
  deliverToMember(group: string, filter: string, clientId: string | undefined, msg: Message): boolean {
    return this.#state.deliverToMember(group, filter, clientId, msg);
  }

  /** In-flight plus queued deliveries of a session (least-inflight picks by it); -1 when there is none. */
  sessionLoad(clientId: string): number {
    return this.#state.sessionLoad(clientId);
  }

  /** How a shared subscription group picks its member (the `sharedSubscriptionStrategy` option). */
  get sharedSubscriptionStrategy(): ShareStrategy {
    return this.#state.strategy;
  }

  /**
   * Another node of the cluster takes `clientId` over: its connection here, if any, is closed
   * (5.0: DISCONNECT 0x8E Session taken over [MQTT-3.1.4-2]), and its session leaves this broker
   * without ending: once what it wrote is in the store, the other node reads it from there.
   * `clean`: the new connection starts clean, so the old will is published (else it is not
   * [MQTT-3.1.2-8]) and a will waiting for its delay is published now.
   */
  async releaseSession(clientId: string, clean: boolean): Promise<void> {
    const st = this.#state;
    const conn = st.connections.get(clientId);
    if (conn !== undefined) {
      if (!clean && conn.session !== undefined && conn.session.expiryInterval !== 0) conn.will = undefined;
      conn.fail(new MqttError(ReasonCode.SessionTakenOver, 'session taken over'));
    }
    const session = st.registry.get(clientId);
    if (session !== undefined && session.link === undefined) st.registry.release(session, clean);
    await st.durability?.commit().catch(() => undefined);
    await st.durability?.store.releaseSession?.(clientId);
  }

  /** Publishes the will of a client that is not connected here (a survivor for a dead node's client), as the client's. */
  publishWill(clientId: string, will: WillMessage): void {
    this.#state.publishWill(clientId, will);
  }

  /** Resolves once every change made so far is durable in the store (at once without a store). */
  async settled(): Promise<void> {
    await this.#state.durability?.commit();
  }

  #publishTo(clientId: string, message: PublishOptions): number {
    const st = this.#state;
    const session = st.registry.get(clientId);
    if (session === undefined) return 0;
    const payload = typeof message.payload === 'string' ? Buffer.from(message.payload) : Buffer.isBuffer(message.payload)
      ? message.payload : Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength);
    const msg = createMessage({
      topic: message.topic, payload, qos: message.qos ?? 0, retain: false, properties: message.properties, now: st.clock.now(),
    });
    return st.publishTo(session, msg);
  }

  /** Connected clients. */
  clients(): ClientInfo[] {
    return [...this.#state.connections.values()].map((c) => c.info as ClientInfo);
  }

  /** Subscriptions of a session (connected or not); undefined when there is no such session. */
  subscriptions(clientId: string): SubscriptionInfo[] | undefined {
    const session = this.#state.registry.get(clientId);
    if (session === undefined) return undefined;
    return [...session.subscriptions.entries()].map(([topicFilter, r]) => ({
      topicFilter, qos: r.qos, noLocal: r.noLocal, retainAsPublished: r.retainAsPublished,
      retainHandling: r.retainHandling, subscriptionIdentifier: r.subIds?.[0],
    }));
  }

  /**
   * Disconnects a client on the operator's behalf: 5.0 clients get DISCONNECT with `reasonCode`
   * (default 0x98 Administrative Action) and optionally a Server Reference (0x9C / 0x9D).
   */
  disconnect(clientId: string, reasonCode: number = ReasonCode.AdministrativeAction, serverReference?: string): boolean {
    const conn = this.#state.connections.get(clientId);
    if (conn === undefined) return false;
    conn.fail(new MqttError(reasonCode, 'disconnected by the broker'), serverReference === undefined ? undefined : { serverReference });
    return true;
  }

  get stats(): Readonly<BrokerStats> {
    return this.#state.stats;
  }

  // The casts below only bridge Node's conditional listener type, which TypeScript cannot resolve
  // for a generic event name; the public signatures are exact.
  on<E extends keyof BrokerEvents>(event: E, listener: (...args: BrokerEvents[E]) => void): this {
    this.#state.events.on(event, listener as never);
    return this;
  }

  once<E extends keyof BrokerEvents>(event: E, listener: (...args: BrokerEvents[E]) => void): this {
    this.#state.events.once(event, listener as never);
    return this;
  }

  off<E extends keyof BrokerEvents>(event: E, listener: (...args: BrokerEvents[E]) => void): this {
    this.#state.events.off(event, listener as never);
    return this;
  }

  /** Disconnects every client (5.0: DISCONNECT 0x8B) and stops the timers. */
  async closeConnections(): Promise<void> {
    const st = this.#state;
    st.closing = true;
    const closed: Promise<void>[] = [];
    for (const conn of st.openConnections()) {
      closed.push(new Promise((resolve) => {
        if (conn.stream.destroyed) resolve();
        else conn.stream.once('close', () => resolve());
      }));
      if (conn.phase === 'connected' && conn.version === ProtocolVersion.V5) {
        conn.send({ type: PacketType.Disconnect, reasonCode: ReasonCode.ServerShuttingDown });
      }
      conn.close(undefined);
    }
    st.stop();
    await Promise.all(closed);
    await this.closePlugins();
    await st.durability?.close();
  }

  // ---- operations for an operator (the HTTP API): read fresh, never cached on a connection ----

  /** Client ids of the connected clients, in no particular order. */
  clientIds(): string[] {
    return [...this.#state.connections.keys()];
  }

  /** Whether `clientId` has a session (connected or not). */
  hasSession(clientId: string): boolean {
    return this.#state.registry.get(clientId) !== undefined;
  }

  /** Client ids of every session, connected or not, in no particular order. */
  sessionIds(): string[] {
    return [...this.#state.registry.values()].map((s) => s.clientId);
  }

  /**
   * One connected client as an operator sees it; undefined when it is not connected. Built on each
   * call (the connection's own ClientInfo is not built for it), so listing many clients leaves
   * nothing behind on them.
   */
  clientDetails(clientId: string): ClientDetails | undefined {
    const st = this.#state;
    const conn = st.connections.get(clientId);
    const session = conn?.session;
    if (conn === undefined || session === undefined) return undefined;
    const meta = conn.meta;
    return {
      clientId, username: conn.username, protocolVersion: conn.version, remoteAddress: meta.remoteAddress, remotePort: meta.remotePort,
      listener: meta.listener?.name, transport: meta.listener?.type, keepalive: conn.keepalive, cleanStart: conn.cleanStart,
      connectedAt: Math.round(st.options.wallClock() - (st.clock.now() - conn.openedAt)),
      subscriptions: session.subscriptions.size, queued: session.queue.length, inflight: session.inflight.size, expiryInterval: session.expiryInterval,
    };
  }

  /** One session with its subscriptions and the milliseconds until it expires (offline only); undefined when there is none. */
  sessionDetails(clientId: string): (SessionInfo & { expiresIn: number | undefined; subscriptionList: SubscriptionInfo[] }) | undefined {
    const st = this.#state;
    const s = st.registry.get(clientId);
    if (s === undefined) return undefined;
    return {
      clientId, connected: s.link !== undefined, expiryInterval: s.expiryInterval, expiresAt: s.expiresAt,
      expiresIn: s.expiresAt === undefined ? undefined : Math.max(0, s.expiresAt - st.clock.now()),
      subscriptions: s.subscriptions.size, queued: s.queue.length, inflight: s.inflight.size,
      subscriptionList: this.subscriptions(clientId) as SubscriptionInfo[],
    };
  }

  /** Counts for a status page: cheap to read (the subscription count walks the sessions once). */
  counts(): BrokerCounts {
    const st = this.#state;
    let subscriptions = 0;
    for (const s of st.registry.values()) subscriptions += s.subscriptions.size;
    return {
      connections: st.connections.size, connecting: st.connecting.size, sessions: st.registry.size, subscriptions,
      retained: st.retained.size, retainedBytes: st.retained.bytes,
    };
  }

  /** Connected clients that came in through the listener named `name`. */
  connectionsOn(name: string): number {
    return this.#state.limits.connectedOn(name);
  }

  /**
   * Subscribes a client's session (connected or not) on an operator's behalf, as a SUBSCRIBE would
   * but without the authorization hooks (the operator decides): the same limits apply, and the
   * retained messages the subscription asks for are delivered. Resolves with one code per filter
   * (the QoS granted, or a refusal code), once stored; undefined when the client has no session.
   * Throws OptionsError naming the field for a filter or option no client could send.
   */
  async subscribeFor(clientId: string, subscriptions: readonly Subscription[]): Promise<number[] | undefined> {
    subscriptions.forEach((sub, i) => checkSubscription(sub, i));
    const st = this.#state;
    const session = st.registry.get(clientId);
    if (session === undefined) return undefined;
    const retained: [SubRecord, Message[]][] = [];
    const codes = subscriptions.map((sub) => subscribeOne(st, session, sub, undefined, retained));
    if (st.durability?.pending === true) await st.durability.commit();
    if (!st.registry.isCurrent(session)) return codes;
    const now = st.clock.now();
    const check = st.ext.deliveryCheck;
    for (const [rec, messages] of retained) {
      for (const m of messages) {
        const out = check === undefined ? m : checked(check, session, m);
        // [MQTT-3.3.1-8]: retained messages sent because of a new subscription carry RETAIN 1.
        if (out !== undefined) session.deliver(out, (out.qos < rec.qos ? out.qos : rec.qos) as QoS, true, rec.subIds, now);
      }
    }
    const granted = subscriptions.filter((_, i) => (codes[i] as number) < 0x80);
    if (granted.length > 0) st.events.fire('subscribed', clientId, [...granted]);
    return codes;
  }

  /** Unsubscribes on an operator's behalf: one boolean per filter (false: there was no such subscription); undefined without a session. */
  async unsubscribeFor(clientId: string, topicFilters: readonly string[]): Promise<boolean[] | undefined> {
    const st = this.#state;
    const session = st.registry.get(clientId);
    if (session === undefined) return undefined;
    const removed = topicFilters.map((f) => unsubscribeOne(st, session, f));
    if (st.durability?.pending === true) await st.durability.commit();
    const gone = topicFilters.filter((_, i) => removed[i] === true);
    if (gone.length > 0) st.events.fire('unsubscribed', clientId, gone);
    return removed;
  }

  /**
   * Ends a session on an operator's behalf: a connected client is disconnected first (5.0:
   * DISCONNECT 0x98), then the session, its subscriptions and queued messages are gone. A pending
   * will is published, as when a session expires [MQTT-3.1.3-9]. False when there was none.
   */
  async deleteSession(clientId: string): Promise<boolean> {
    const st = this.#state;
    const connected = this.disconnect(clientId);
    const session = st.registry.get(clientId);
    if (session === undefined) return connected;
    st.registry.end(session);
    if (st.durability?.pending === true) await st.durability.commit();
    return true;
  }

  /** Clears the retained message of `topic` (nothing is delivered); false when there was none. */
  async deleteRetained(topic: string): Promise<boolean> {
    const st = this.#state;
    const deleted = st.unretain(topic);
    if (st.durability?.pending === true) await st.durability.commit();
    return deleted;
  }

  // ---- metrics -------------------------------------------------------------------------------

  /**
   * A snapshot of the broker's counters (packets and bytes by type, messages, drops by reason,
   * connections by listener and protocol, sessions, subscriptions, retained messages, queues,
   * inflight, hook and store latencies). One pass over connections and sessions: for a scrape,
   * not for every message. `petrel/ops` `createMetrics` turns it into Prometheus text.
   */
  metrics(): BrokerMetrics {
    return brokerMetrics(this.#state);
  }
}

/** A connected client, as `clientDetails` shows it. */
export interface ClientDetails {
  clientId: string;
  username: string | undefined;
  protocolVersion: number;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  /** Name and type of the listener it came in through (undefined: handed over without one). */
  listener: string | undefined;
  transport: string | undefined;
  keepalive: number;
  cleanStart: boolean;
  /** Wall-clock time (ms since the epoch) the connection was opened. */
  connectedAt: number;
  subscriptions: number;
  queued: number;
  inflight: number;
  expiryInterval: number;
}

export interface BrokerCounts {
  /** Connected clients (CONNECT accepted). */
  connections: number;
  /** Open connections whose CONNECT is not accepted yet. */
  connecting: number;
  sessions: number;
  subscriptions: number;
  retained: number;
  retainedBytes: number;
}

/** Refuses a subscription no client could send, naming the field. */
function checkSubscription(sub: Subscription, i: number): void {
  const at = `subscriptions[${i}]`;
  if (typeof sub !== 'object' || sub === null) throw new OptionsError(at, 'must be an object', 'subscribe');
  if (typeof sub.topicFilter !== 'string') throw new OptionsError(`${at}.topicFilter`, 'must be a string', 'subscribe');
  const problem = topicFilterProblem(sub.topicFilter);
  if (problem !== undefined) throw new OptionsError(`${at}.topicFilter`, problem, 'subscribe');
  if (sub.qos !== 0 && sub.qos !== 1 && sub.qos !== 2) throw new OptionsError(`${at}.qos`, 'must be 0, 1 or 2', 'subscribe');
}

/** Metadata for a stream handed over without any: an in-process pair or a custom transport. */
function localMeta(remoteAddress: string | undefined): ConnectionMeta {
  return { remoteAddress, remotePort: undefined, listener: undefined };
}

/**
 * Refuses a message no client could have sent, with an OptionsError naming the field: a topic
 * name that breaks §4.7 (checked by topicNameProblem), a QoS other than 0, 1 or 2, a non-boolean
 * retain flag, a payload that is not bytes or a string.
 */
function checkPublish(m: PublishOptions): void {
  if (typeof m !== 'object' || m === null) throw new OptionsError('(root)', 'the message must be an object', 'publish');
  if (typeof m.topic !== 'string') throw new OptionsError('topic', 'must be a string', 'publish');
  const problem = topicNameProblem(m.topic);
  if (problem !== undefined) throw new OptionsError('topic', problem, 'publish');
  if (m.qos !== undefined && m.qos !== 0 && m.qos !== 1 && m.qos !== 2) throw new OptionsError('qos', `must be 0, 1 or 2, got ${String(m.qos)}`, 'publish');
  if (m.retain !== undefined && typeof m.retain !== 'boolean') throw new OptionsError('retain', 'must be true or false', 'publish');
  if (typeof m.payload !== 'string' && !(m.payload instanceof Uint8Array)) throw new OptionsError('payload', 'must be a Buffer, a Uint8Array or a string', 'publish');
  if (m.properties !== undefined && (typeof m.properties !== 'object' || m.properties === null)) throw new OptionsError('properties', 'must be an object', 'publish');
  if (m.clientId !== undefined && (typeof m.clientId !== 'string' || m.clientId === '')) throw new OptionsError('clientId', 'must be a non-empty string', 'publish');
}

/**
 * One info line per connect and per disconnect, with stable keys (clientId, remote,
 * protocolVersion, reasonCode, reason). Nothing per message: the default level stays quiet under load.
 */
function logConnections(st: BrokerState, logger: Logger): void {
  if (logger === silentLogger) return;
  st.events.on('clientConnected', (c) => logger.info({
    clientId: c.clientId, remote: c.remoteAddress, listener: c.connection.listener?.name, protocolVersion: c.protocolVersion, username: c.username,
    keepalive: c.keepalive, cleanStart: c.cleanStart,
  }, 'client connected'));
  const disconnected = (c: ClientInfo, reasonCode: number | undefined, reason: string): void => logger.info({
    clientId: c.clientId, remote: c.remoteAddress, listener: c.connection.listener?.name, protocolVersion: c.protocolVersion, reasonCode, reason,
  }, 'client disconnected');
  st.events.on('clientDisconnected', (c, code) => disconnected(c, code, 'client sent DISCONNECT'));
  st.events.on('connectionLost', (c, err) => {
    if (err instanceof MqttError) disconnected(c, err.reasonCode, err.message);
    else if (err !== undefined) disconnected(c, undefined, err.message);
    else if (st.closing) disconnected(c, ReasonCode.ServerShuttingDown, 'server shutting down');
    else disconnected(c, undefined, 'connection closed by the client');
  });
}
