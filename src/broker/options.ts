/**
 * BrokerOptions: the embedded API's configuration, its rules and its defaults. The rules table
 * is the one source of truth for every value option: `createBroker` checks options with it, and
 * the server's config file (config/schema.ts) checks its `broker.` keys with the same table and
 * the same messages.
 */
import type { Store } from '../persistence/types.js';
import type { Logger } from '../observability/logger.js';
import type { ShareStrategy } from '../router/index.js';
import type { Clock, Ticker } from '../session/clock.js';
import type { BrokerHooks } from './hooks.js';
import type { AuthMechanism } from './auth-mechanism.js';
import type { ClusterLink } from './cluster.js';

/** The broker's `$SYS/` topics (sys-topics.ts), in Mosquitto's layout. */
export interface SysOptions {
  /** Publish them. Default false for an embedded broker (the server's `sys:` section turns them on). */
  enabled?: boolean;
  /** Seconds between updates (Mosquitto's sys_interval). Default 10. */
  interval?: number;
}

export interface BrokerOptions extends BrokerHooks {
  /** Structured logger (pino-compatible). Default: silent. */
  logger?: Logger;
  /** Time source; tests inject a manual clock. Default: performance.now(). */
  clock?: Clock;
  /** What advances the timer wheel (every 100 ms); tests inject a ManualTicker. Default: setInterval. */
  ticker?: Ticker;
  /**
   * Where persistent sessions, subscriptions and retained messages are kept (src/persistence/).
   * Default: none (memory only). With a store, call `restore()` (listen() does) before serving.
   */
  store?: Store;
  /**
   * Makes this broker one node of a cluster (src/cluster/): what is published here is forwarded to
   * the nodes whose subscribers want it, and messages from other nodes arrive through
   * `deliverRemote`. Default: none.
   */
  cluster?: ClusterLink;
  /** Wall-clock time source (ms since the epoch) for stored deadlines; tests inject one. Default: Date.now. */
  wallClock?: () => number;
  /** Largest inbound packet in bytes; larger ones are refused with 0x95. Default 1 MiB. */
  maxPacketSize?: number;
  /** QoS 1/2 messages in flight to one client at a time (capped by its Receive Maximum). Default 100. */
  maxInflight?: number;
  /** Messages queued per session beyond the inflight window; QoS 0 is dropped first when full. Default 1000. */
  maxQueuedMessages?: number;
  /** Bytes (payload, topic, properties) queued per session, like maxQueuedMessages; 0: no limit. Default 16 MiB. */
  maxQueuedBytes?: number;
  /**
   * With a store: bytes of QoS 1/2 deliveries an offline persistent session may keep in the store
   * beyond its full memory queue (loaded back as it drains after reconnecting); 0: none, the
   * newcomer is dropped. Default 64 MiB.
   */
  maxStoredBytesPerSession?: number;
  /** Queue QoS 0 messages for offline persistent sessions. Default false. */
  queueQos0Offline?: boolean;
  /** Seconds after which unacknowledged QoS 1/2 messages to 3.1/3.1.1 clients are resent with DUP; 0 disables. Default 0. */
  retryInterval?: number;
  /** Receive Maximum the broker advertises to 5.0 clients (inbound QoS 1/2 window). Default 65535. */
  receiveMaximum?: number;
  /** Topic Alias Maximum the broker accepts from 5.0 clients. Default 10. */
  topicAliasMaximum?: number;
  /** Bytes of topic names one connection's alias table holds, per direction (inbound: 0x97 beyond). Default 16 KiB. */
  maxTopicAliasBytes?: number;
  /** Assign topic aliases to 5.0 clients that allow them. Default true. */
  outboundTopicAliases?: boolean;
  /** Largest keep alive (seconds) granted to 5.0 clients via Server Keep Alive; 0 = no limit. Default 0. */
  maxKeepalive?: number;
  /** Longest session expiry interval (seconds) granted; default 0xFFFFFFFF (no limit). */
  maxSessionExpiryInterval?: number;
  /** Highest QoS accepted (5.0 Maximum QoS). Default 2. */
  maximumQoS?: 0 | 1 | 2;
  retainAvailable?: boolean;
  wildcardSubscriptionAvailable?: boolean;
  subscriptionIdentifiersAvailable?: boolean;
  sharedSubscriptionsAvailable?: boolean;
  /** How a shared subscription group picks its receiver. Default 'round-robin'. */
  sharedSubscriptionStrategy?: ShareStrategy;
  /** Response Information sent to 5.0 clients that request it. */
  responseInformation?: string;
  /** Entries in the router's match cache. Default 10,000. */
  matchCacheSize?: number;
  /** Bytes the router's match cache may hold; 0 disables it. Default 8 MiB. */
  matchCacheBytes?: number;
  /**
   * Most levels in a topic name or filter. Deeper subscriptions get SUBACK 0x8F (3.1.1: 0x80);
   * deeper PUBLISH topics are refused (5.0: 0x90 on the acknowledgement) and not routed. 0: no limit. Default 128.
   */
  maxTopicLevels?: number;
  /** Seconds a new connection has to complete CONNECT (enhanced authentication included); 0: no limit. Default 30. */
  connectTimeout?: number;
  /**
   * Seconds an async hook (authenticate, authorizePublish, authorizeSubscribe, an enhanced
   * authentication step) may take; after it the broker answers as if it refused (0x87) and logs
   * it. 0: no limit. Default 5.
   */
  hookTimeout?: number;
  /**
   * Flow control. When a publisher's message finds an online subscriber's queue at its high-water
   * mark (half of maxQueuedMessages), the broker stops taking PUBLISH from that publisher (its
   * acknowledgements wait, its socket is read for control packets only) until the queue drains
   * to a quarter, so that QoS 1/2 messages wait instead of being dropped. A subscriber that makes
   * no progress for this many seconds stops holding publishers back (see slowSubscriberPolicy).
   * 0: publishers are never held; full queues drop. Default 1.
   */
  slowSubscriberTimeout?: number;
  /** What happens to a subscriber past slowSubscriberTimeout: 'drop' its overflow (counted) or 'disconnect' it (5.0: 0x97). Default 'drop'. */
  slowSubscriberPolicy?: 'drop' | 'disconnect';
  /** Most retained messages kept; a new one beyond it is refused (5.0: 0x97 Quota Exceeded). Default 0: no limit. */
  maxRetainedMessages?: number;
  /** Bytes (payload, topic, properties) of retained messages kept; beyond it as maxRetainedMessages. 0: no limit. Default 256 MiB. */
  maxRetainedBytes?: number;
  /** Redirect every 5.0 client to this server (CONNACK 0x9C, or 0x9D when `serverMoved`). */
  serverReference?: string;
  /** With `serverReference`: the move is permanent (0x9D Server Moved) rather than temporary (0x9C). */
  serverMoved?: boolean;
  /** Enhanced authentication mechanisms (5.0 AUTH), by Authentication Method. */
  authMechanisms?: AuthMechanism[];
  /** Connected clients at once, all listeners together; a CONNECT beyond it gets 0x97 (3.1.1: 3). 0: no limit. Default 0. */
  maxConnections?: number;
  /** Longest topic name or filter in UTF-8 bytes (PUBLISH: 0x90, SUBSCRIBE: 0x8F). Default 65535, the protocol's maximum. */
  maxTopicLength?: number;
  /** Subscriptions one session may hold; a new filter beyond it gets SUBACK 0x97 (3.1.1: 0x80). 0: no limit. Default 0. */
  maxSubscriptionsPerClient?: number;
  /** PUBLISH packets read from one client per second; beyond it the broker stops reading the client until the second is over. 0: no limit. Default 0. */
  maxInboundMessageRate?: number;
  /** Bytes of PUBLISH payload and topic read from one client per second, like maxInboundMessageRate. 0: no limit. Default 0. */
  maxInboundByteRate?: number;
  /** Flapping: a client id that connects more than this many times in flapWindow seconds is banned (0x8A). 0: off. Default 0. */
  flapThreshold?: number;
  /** Seconds in which flapThreshold connects are counted. Default 10. */
  flapWindow?: number;
  /** Seconds a flapping client id is refused. Default 60. */
  flapBanTime?: number;
  /**
   * `$SYS/broker/...` topics (version, uptime, clients, messages, bytes, load averages,
   * subscriptions, retained messages, heap), retained and updated every `interval` seconds.
   * Default { enabled: false, interval: 10 }; the standalone server's default is enabled.
   */
  sys?: SysOptions;
}

/**
 * Options that are code (objects, functions) injected by embedders, not configuration values,
 * and `sys`, a section of its own in the server's configuration.
 */
export type CodeOption = 'logger' | 'clock' | 'ticker' | 'authMechanisms' | 'store' | 'cluster' | 'wallClock' | 'sys' | keyof BrokerHooks;
/** The options a configuration file can set: plain values, each with a rule below. */
export type ValueOptions = Omit<BrokerOptions, CodeOption>;

export type Rule =
  | { kind: 'int'; min: number; max: number }
  | { kind: 'bool' }
  | { kind: 'string'; optional?: boolean }
  | { kind: 'enum'; values: readonly string[] };

const int = (min: number, max: number): Rule => ({ kind: 'int', min, max });
const bool: Rule = { kind: 'bool' };

/** The rule of every value option; the compiler makes a new option come with its rule. */
export const brokerOptionRules: Readonly<Record<keyof ValueOptions, Rule>> = {
  maxPacketSize: int(16, 268_435_460),
  maxInflight: int(1, 65535),
  maxQueuedMessages: int(0, 10_000_000),
  maxQueuedBytes: int(0, 0xffffffff),
  maxStoredBytesPerSession: int(0, Number.MAX_SAFE_INTEGER),
  queueQos0Offline: bool,
  retryInterval: int(0, 86_400),
  receiveMaximum: int(1, 65535),
  topicAliasMaximum: int(0, 65535),
  maxTopicAliasBytes: int(0, 0xffffffff),
  outboundTopicAliases: bool,
  maxKeepalive: int(0, 65535),
  maxSessionExpiryInterval: int(0, 0xffffffff),
  maximumQoS: int(0, 2),
  retainAvailable: bool,
  wildcardSubscriptionAvailable: bool,
  subscriptionIdentifiersAvailable: bool,
  sharedSubscriptionsAvailable: bool,
  sharedSubscriptionStrategy: { kind: 'enum', values: ['round-robin', 'random', 'least-inflight'] },
  responseInformation: { kind: 'string', optional: true },
  matchCacheSize: int(0, 10_000_000),
  matchCacheBytes: int(0, 0xffffffff),
  maxRetainedMessages: int(0, 100_000_000),
  maxRetainedBytes: int(0, 0xffffffff),
  maxTopicLevels: int(0, 65535),
  connectTimeout: int(0, 3600),
  hookTimeout: int(0, 3600),
  slowSubscriberTimeout: int(0, 3600),
  slowSubscriberPolicy: { kind: 'enum', values: ['drop', 'disconnect'] },
  serverReference: { kind: 'string', optional: true },
  serverMoved: bool,
  maxConnections: int(0, 10_000_000),
  maxTopicLength: int(1, 65535),
  maxSubscriptionsPerClient: int(0, 10_000_000),
  maxInboundMessageRate: int(0, 10_000_000),
  maxInboundByteRate: int(0, 0xffffffff),
  flapThreshold: int(0, 1_000_000),
  flapWindow: int(1, 86_400),
  flapBanTime: int(1, 86_400),
};

/** Why `value` breaks `rule`, or undefined when it follows it. */
export function ruleProblem(rule: Rule, value: unknown): string | undefined {
  switch (rule.kind) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) return `must be an integer, got ${show(value)}`;
      if (value < rule.min || value > rule.max) return `must be between ${rule.min} and ${rule.max}, got ${value}`;
      return undefined;
    case 'bool':
      return typeof value === 'boolean' ? undefined : `must be true or false, got ${show(value)}`;
    case 'string':
      return typeof value === 'string' ? undefined : `must be a string, got ${show(value)}`;
    case 'enum':
      return typeof value === 'string' && rule.values.includes(value) ? undefined : `must be one of ${rule.values.join(', ')}, got ${show(value)}`;
  }
}

function show(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'bigint') return `${value}n`;
  return JSON.stringify(value) ?? String(value);
}

/** A bad option (or argument): `key` names it, `detail` says what is wrong with it. */
export class OptionsError extends Error {
  constructor(readonly key: string, readonly detail: string, scope = 'option') {
    super(`${scope} "${key}": ${detail}`);
    this.name = new.target.name;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const withMethods = (...names: string[]) => (v: unknown): string | undefined =>
  isObject(v) && names.every((n) => typeof v[n] === 'function') ? undefined : `must be an object with ${names.join(', ')} methods`;
const fn = (v: unknown): string | undefined => (typeof v === 'function' ? undefined : `must be a function, got ${show(v)}`);

const codeChecks: Readonly<Record<CodeOption, (v: unknown) => string | undefined>> = {
  logger: withMethods('error', 'warn', 'info', 'debug', 'trace', 'child'),
  clock: withMethods('now'),
  ticker: withMethods('start'),
  authenticate: fn,
  authorizeSubscribe: fn,
  authorizePublish: fn,
  authorizeDelivery: fn,
  store: withMethods('open', 'write', 'close'),
  cluster: withMethods('published', 'forwarded', 'subscribed', 'unsubscribed'),
  wallClock: fn,
  authMechanisms: (v) => (Array.isArray(v) && v.every((m) => isObject(m) && typeof m.method === 'string' && typeof m.start === 'function')
    ? undefined : 'must be a list of mechanisms, each with a method name and a start function'),
  sys: sysProblem,
};

/** The rules of the `sys` option's keys (the server's `sys:` section uses them too). */
export const sysOptionRules: Readonly<Record<keyof SysOptions, Rule>> = { enabled: bool, interval: int(1, 86_400) };

function sysProblem(v: unknown): string | undefined {
  if (!isObject(v)) return `must be an object with enabled and interval, got ${show(v)}`;
  for (const [key, value] of Object.entries(v)) {
    const rule = (sysOptionRules as Record<string, Rule>)[key];
    if (rule === undefined) return `unknown key "${key}"`;
    if (value === undefined) continue;
    const problem = ruleProblem(rule, value);
    if (problem !== undefined) return `${key} ${problem}`;
  }
  return undefined;
}

/**
 * Refuses unknown options and bad values with an OptionsError naming the option. An option set
 * to undefined takes its default.
 */
export function validateBrokerOptions(o: unknown): asserts o is BrokerOptions {
  if (!isObject(o)) throw new OptionsError('(root)', 'options must be an object');
  for (const [key, value] of Object.entries(o)) {
    if (value === undefined) continue;
    const rule = (brokerOptionRules as Record<string, Rule>)[key];
    const check = (codeChecks as Record<string, (v: unknown) => string | undefined>)[key];
    if (rule === undefined && check === undefined) throw new OptionsError(key, 'unknown option');
    const problem = rule !== undefined ? ruleProblem(rule, value) : (check as (v: unknown) => string | undefined)(value);
    if (problem !== undefined) throw new OptionsError(key, problem);
  }
}

/** Drives the timer wheel with a real interval that does not keep the process alive. */
export const systemTicker: Ticker = {
  start(run, intervalMs) {
    const timer = setInterval(run, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  },
};

type Optional = 'responseInformation' | 'serverReference' | 'authMechanisms' | 'store' | 'cluster' | 'sys';
export type ResolvedOptions = Required<Omit<BrokerOptions, Optional | keyof BrokerHooks>> & {
  sys: Required<SysOptions>;
  responseInformation: string | undefined;
  serverReference: string | undefined;
  authMechanisms: ReadonlyMap<string, AuthMechanism>;
  store: Store | undefined;
  cluster: ClusterLink | undefined;
};

/** Checks `o` (throws OptionsError) and fills in the defaults. */
export function resolveOptions(o: BrokerOptions, defaults: { logger: Logger; clock: Clock }): ResolvedOptions {
  validateBrokerOptions(o);
  return {
    logger: o.logger ?? defaults.logger,
    clock: o.clock ?? defaults.clock,
    ticker: o.ticker ?? systemTicker,
    store: o.store,
    cluster: o.cluster,
    wallClock: o.wallClock ?? Date.now,
    maxPacketSize: o.maxPacketSize ?? 1024 * 1024,
    maxInflight: o.maxInflight ?? 100,
    maxQueuedMessages: o.maxQueuedMessages ?? 1000,
    maxQueuedBytes: o.maxQueuedBytes ?? 16 * 1024 * 1024,
    maxStoredBytesPerSession: o.maxStoredBytesPerSession ?? 64 * 1024 * 1024,
    queueQos0Offline: o.queueQos0Offline ?? false,
    retryInterval: o.retryInterval ?? 0,
    receiveMaximum: o.receiveMaximum ?? 65535,
    topicAliasMaximum: o.topicAliasMaximum ?? 10,
    maxTopicAliasBytes: o.maxTopicAliasBytes ?? 16 * 1024,
    outboundTopicAliases: o.outboundTopicAliases ?? true,
    maxKeepalive: o.maxKeepalive ?? 0,
    maxSessionExpiryInterval: o.maxSessionExpiryInterval ?? 0xffffffff,
    maximumQoS: o.maximumQoS ?? 2,
    retainAvailable: o.retainAvailable ?? true,
    wildcardSubscriptionAvailable: o.wildcardSubscriptionAvailable ?? true,
    subscriptionIdentifiersAvailable: o.subscriptionIdentifiersAvailable ?? true,
    sharedSubscriptionsAvailable: o.sharedSubscriptionsAvailable ?? true,
    sharedSubscriptionStrategy: o.sharedSubscriptionStrategy ?? 'round-robin',
    responseInformation: o.responseInformation,
    matchCacheSize: o.matchCacheSize ?? 10_000,
    matchCacheBytes: o.matchCacheBytes ?? 8 * 1024 * 1024,
    maxRetainedMessages: o.maxRetainedMessages ?? 0,
    maxRetainedBytes: o.maxRetainedBytes ?? 256 * 1024 * 1024,
    maxTopicLevels: o.maxTopicLevels ?? 128,
    connectTimeout: o.connectTimeout ?? 30,
    hookTimeout: o.hookTimeout ?? 5,
    slowSubscriberTimeout: o.slowSubscriberTimeout ?? 1,
    slowSubscriberPolicy: o.slowSubscriberPolicy ?? 'drop',
    serverReference: o.serverReference,
    serverMoved: o.serverMoved ?? false,
    maxConnections: o.maxConnections ?? 0,
    maxTopicLength: o.maxTopicLength ?? 65535,
    maxSubscriptionsPerClient: o.maxSubscriptionsPerClient ?? 0,
    maxInboundMessageRate: o.maxInboundMessageRate ?? 0,
    maxInboundByteRate: o.maxInboundByteRate ?? 0,
    flapThreshold: o.flapThreshold ?? 0,
    flapWindow: o.flapWindow ?? 10,
    flapBanTime: o.flapBanTime ?? 60,
    authMechanisms: new Map((o.authMechanisms ?? []).map((m) => [m.method, m])),
    sys: { enabled: o.sys?.enabled ?? false, interval: o.sys?.interval ?? 10 },
  };
}
