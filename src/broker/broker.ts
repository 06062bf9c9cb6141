/**
 * The broker core: accepts any Duplex byte stream (`handle`), publishes on behalf of the
 * server, and reports clients and subscriptions. Listeners live outside (see src/petrel.ts).
 */
import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { MqttError, PacketType, type Properties, ProtocolVersion, type QoS, ReasonCode, topicFilterProblem, topicNameProblem } from '../protocol/index.js';
import { type Logger, silentLogger } from '../observability/logger.js';
import { systemClock } from '../session/clock.js';
import { Connection } from './connection.js';
import type { BrokerEvents, ClientInfo } from './events.js';
import { createMessage } from './message.js';
import { type BrokerOptions, OptionsError, resolveOptions } from './options.js';
import { BrokerState, type BrokerStats } from './state.js';
import { restoreState } from './restore.js';
import type { ConnectionMeta } from '../transport/types.js';
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
  deliverRemote(message: RemoteMessage): number {
    const st = this.#state;
    const msg = createMessage({
      topic: message.topic, payload: message.payload, qos: message.qos, retain: message.retain && st.options.retainAvailable,
      properties: message.properties, senderId: message.senderId, now: st.clock.now(),
    });
    st.stats.messagesReceived++;
    const n = st.deliverRemote(msg);
    st.emitPublished(msg);
    return n;
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
