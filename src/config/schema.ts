/**
 * ServerConfig: the standalone server's one typed configuration. Every key has a default and a
 * rule; `validateConfig` refuses unknown keys and bad values with an error naming the key path.
 * config/petrel.example.yaml documents every key.
 */
import { brokerOptionRules, OptionsError, type Rule, ruleProblem, type SysOptions, sysOptionRules, type ValueOptions } from '../broker/options.js';
import type { ParallelScavenge } from '../observability/helper-threads.js';
import type { LogLevel } from '../observability/logger.js';
import { ApiAuth, type ApiKeyConfig, AuthConfigError, type UserConfig } from '../ops/http/auth.js';

/** One listener of the `listeners:` list. Certificate, key and CA are file names (PEM). */
export interface ListenerConfig {
  type: 'tcp' | 'tls' | 'ws' | 'wss';
  name?: string;
  port?: number;
  host?: string;
  cert?: string;
  key?: string;
  ca?: string;
  passphrase?: string;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  requestCert?: boolean;
  requireCert?: boolean;
  certUsername?: 'cn' | 'san';
  path?: string;
  proxyProtocol?: boolean;
  /** Seconds a PROXY-protocol connection has to send its header. */
  proxyTimeout?: number;
  maxConnections?: number;
  maxConnectionRate?: number;
  maxConnectionRatePerSource?: number;
}

/** The `auth:` section: built-in providers (file names are read by the server). */
export interface AuthConfig {
  /** Accept clients without username and password. Default: true when no password file, jwt or http is set, else false. */
  anonymous?: boolean;
  passwordFile?: string;
  aclFile?: string;
  jwt?: JwtConfig;
  http?: HttpAuthConfig;
}

export interface JwtConfig {
  secret?: string;
  publicKeyFile?: string;
  jwksUrl?: string;
  algorithms?: string[];
  issuer?: string;
  audience?: string;
  usernameClaim?: string;
  aclClaim?: string;
  clockTolerance?: number;
}

export interface HttpAuthConfig {
  url: string;
  authorizeUrl?: string;
  /** Milliseconds. */
  timeout?: number;
  /** Seconds. */
  cacheTtl?: number;
  onError?: 'allow' | 'deny';
  headers?: Record<string, string>;
}

/** A plugin module (a path, relative to the working directory, or a package name) and its options. */
export interface PluginConfig {
  module: string;
  options?: unknown;
}

/** The `store:` section: where persistent sessions, subscriptions and retained messages live. */
export interface StoreConfig {
  type: 'sqlite' | 'memory';
  dataDir: string;
  /** sqlite: 'commit' (durable per acknowledged write, group commit) or 'interval'. */
  durability: 'commit' | 'interval';
  /** sqlite, interval mode: milliseconds between flushes (the most acknowledged work a crash can lose). */
  intervalMs: number;
  /** sqlite: bytes of the operation log file written once and reused by every log generation (0: truncated and grown instead). */
  preallocate: number;
}

/** The `cluster:` section: this server is one node of a cluster over Redis (docs/cluster.md). */
export interface ClusterConfig {
  /** Redis URL: redis://, rediss://, redis-sentinel://host:port,…/master, redis-cluster://host:port,… */
  redis: string;
  /** This node's id, unique in the cluster and the same across restarts; default: the host name. */
  nodeId?: string;
  /** Milliseconds between heartbeats. */
  heartbeatInterval: number;
  /** Milliseconds without a heartbeat after which a node counts as dead (its routes are removed). */
  nodeTimeout: number;
}

/** The `http:` section: the HTTP API (src/ops/http/). */
export interface HttpConfig {
  enabled: boolean;
  port: number;
  /** Address to bind; default: the top-level `host`. */
  host?: string;
  /** API keys (Authorization: Bearer <key>): a key, or { name, key | hash: "sha256:<hex>", role: admin | viewer }. */
  apiKeys: (string | ApiKeyConfig)[];
  /** Users for Basic auth and POST /api/v1/login: { username, password: <hash from petrel passwd>, role }. */
  users: UserConfig[];
  /** Whether GET /metrics needs credentials. */
  metricsAuth: boolean;
  /** Failed logins one address may make per `loginWindow` seconds before it gets 429. */
  maxLoginFailures: number;
  loginWindow: number;
  /** Seconds a login token lives. */
  tokenTtl: number;
  /** Milliseconds between two Server-Sent Events of /api/v1/stats/sse. */
  sseInterval: number;
}

export interface ServerConfig {
  store: StoreConfig;
  /** One node of a cluster over Redis; not set: a standalone broker. With a cluster the store is the Redis store. */
  cluster?: ClusterConfig;
  /** The HTTP API; with no apiKeys and no users, an admin key is created at first start (its hash kept in store.dataDir). */
  http: HttpConfig;
  /** The `$SYS/broker/...` topics (Mosquitto's layout): on or off, and the seconds between updates (sys_interval). */
  sys: Required<SysOptions>;
  /** Authentication and authorization providers; not set: anyone may connect (with a warning). */
  auth?: AuthConfig;
  /** Plugins loaded at start, in order. */
  plugins?: PluginConfig[];
  /** The TCP listener's port (used when `listeners` is not given). */
  port: number;
  /** The WebSocket listener's port, or false for none (used when `listeners` is not given). */
  wsPort: number | false;
  /** With `cert` and `key`: a TLS listener on this port (used when `listeners` is not given). */
  tlsPort: number | false;
  /** Certificate, key and CA files (PEM) of the `tlsPort` listener. */
  cert?: string;
  key?: string;
  ca?: string;
  /** The listeners, all at once; when given, port, wsPort and tlsPort are not used. */
  listeners?: ListenerConfig[];
  host: string;
  /** When `port` is taken, try up to this many following ports. */
  portFallback: number;
  logLevel: LogLevel;
  /**
   * Nice value (1..19) given at start to the process's helper threads (V8's compiler and GC
   * threads, and libuv's pool, which the ES module loader has started by then) so that the event
   * loop preempts them; 0 (the default) leaves them as they are. Linux only.
   */
  helperThreadNice: number;
  /**
   * Whether V8 collects the young generation with helper threads: 'auto' (the default) does
   * unless the process may run on one CPU only (pinned to a core, a one-CPU cpuset), where those
   * threads take turns with the event loop instead of helping it; 'on' and 'off' force it.
   */
  parallelScavenge: ParallelScavenge;
  /** The broker's value options (code options such as hooks are injected, not configured). */
  broker: Required<Omit<ValueOptions, 'responseInformation' | 'serverReference'>> & {
    responseInformation?: string;
    serverReference?: string;
  };
}

const int = (min: number, max: number): Rule => ({ kind: 'int', min, max });

const portOrOff: Rule = { kind: 'int', min: 0, max: 65535 };
const optionalString: Rule = { kind: 'string', optional: true };

const topRules: Record<Exclude<keyof ServerConfig, 'broker' | 'listeners' | 'wsPort' | 'tlsPort' | 'auth' | 'plugins' | 'store' | 'cluster' | 'http' | 'sys'>, Rule> = {
  port: int(0, 65535),
  cert: optionalString,
  key: optionalString,
  ca: optionalString,
  host: { kind: 'string' },
  portFallback: int(0, 1000),
  logLevel: { kind: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
  helperThreadNice: int(0, 19),
  parallelScavenge: { kind: 'enum', values: ['auto', 'on', 'off'] },
};

const listenerRules: Record<keyof ListenerConfig, Rule> = {
  type: { kind: 'enum', values: ['tcp', 'tls', 'ws', 'wss'] },
  name: { kind: 'string' },
  port: int(0, 65535),
  host: { kind: 'string' },
  cert: { kind: 'string' },
  key: { kind: 'string' },
  ca: { kind: 'string' },
  passphrase: { kind: 'string' },
  minVersion: { kind: 'enum', values: ['TLSv1.2', 'TLSv1.3'] },
  requestCert: { kind: 'bool' },
  requireCert: { kind: 'bool' },
  certUsername: { kind: 'enum', values: ['cn', 'san'] },
  path: { kind: 'string' },
  proxyProtocol: { kind: 'bool' },
  proxyTimeout: int(1, 3600),
  maxConnections: int(0, 10_000_000),
  maxConnectionRate: int(0, 10_000_000),
  maxConnectionRatePerSource: int(0, 10_000_000),
};

export function defaultConfig(): ServerConfig {
  return {
    store: { type: 'sqlite', dataDir: './data', durability: 'commit', intervalMs: 1000, preallocate: 16 * 1024 * 1024 },
    http: {
      enabled: true, port: 18083, apiKeys: [], users: [], metricsAuth: true, maxLoginFailures: 10, loginWindow: 60, tokenTtl: 28_800, sseInterval: 1000,
    },
    sys: { enabled: true, interval: 10 },
    port: 1883,
    wsPort: 8083,
    tlsPort: false,
    host: '0.0.0.0',
    portFallback: 0,
    logLevel: 'info',
    helperThreadNice: 0,
    parallelScavenge: 'auto',
    broker: {
      maxPacketSize: 1024 * 1024,
      maxInflight: 100,
      maxQueuedMessages: 1000,
      maxQueuedBytes: 16 * 1024 * 1024,
      maxStoredBytesPerSession: 64 * 1024 * 1024,
      queueQos0Offline: false,
      retryInterval: 0,
      receiveMaximum: 65535,
      topicAliasMaximum: 10,
      maxTopicAliasBytes: 16 * 1024,
      outboundTopicAliases: true,
      maxKeepalive: 0,
      maxSessionExpiryInterval: 0xffffffff,
      maximumQoS: 2,
      retainAvailable: true,
      wildcardSubscriptionAvailable: true,
      subscriptionIdentifiersAvailable: true,
      sharedSubscriptionsAvailable: true,
      sharedSubscriptionStrategy: 'round-robin',
      matchCacheSize: 10_000,
      matchCacheBytes: 8 * 1024 * 1024,
      maxRetainedMessages: 0,
      maxRetainedBytes: 256 * 1024 * 1024,
      maxTopicLevels: 128,
      connectTimeout: 30,
      hookTimeout: 5,
      slowSubscriberTimeout: 1,
      slowSubscriberPolicy: 'drop',
      serverMoved: false,
      maxConnections: 0,
      maxTopicLength: 65535,
      maxSubscriptionsPerClient: 0,
      maxInboundMessageRate: 0,
      maxInboundByteRate: 0,
      flapThreshold: 0,
      flapWindow: 10,
      flapBanTime: 60,
    },
  };
}

/** A bad configuration: `key` is the key path, e.g. "broker.maxInflight". */
export class ConfigError extends OptionsError {
  constructor(key: string, detail: string) {
    super(key, detail, 'config key');
  }
}

/** The broker rules and texts are the library's own (broker/options.ts), under their key path. */
function check(path: string, rule: Rule, value: unknown): void {
  const problem = ruleProblem(rule, value);
  if (problem !== undefined) throw new ConfigError(path, problem);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Merges `input` over the defaults, refusing unknown keys and bad values. */
export function validateConfig(input: unknown, base: ServerConfig = defaultConfig()): ServerConfig {
  if (input === undefined || input === null) return base;
  if (!isObject(input)) throw new ConfigError('(root)', 'must be a mapping of keys to values');
  const out: ServerConfig = { ...base, broker: { ...base.broker }, http: { ...base.http } };
  for (const [key, value] of Object.entries(input)) {
    if (key === 'broker') {
      if (!isObject(value)) throw new ConfigError('broker', 'must be a mapping');
      for (const [bk, bv] of Object.entries(value)) {
        const rule = (brokerOptionRules as Record<string, Rule>)[bk];
        if (rule === undefined) throw new ConfigError(`broker.${bk}`, 'unknown key');
        check(`broker.${bk}`, rule, bv);
        (out.broker as Record<string, unknown>)[bk] = bv;
      }
      continue;
    }
    if (key === 'listeners') {
      out.listeners = validateListeners(value);
      continue;
    }
    if (key === 'auth') {
      out.auth = validateAuth(value);
      continue;
    }
    if (key === 'store') {
      out.store = { ...out.store, ...mapping<Partial<StoreConfig>>('store', value, {
        type: { kind: 'enum', values: ['sqlite', 'memory'] },
        dataDir: { kind: 'string' },
        durability: { kind: 'enum', values: ['commit', 'interval'] },
        intervalMs: int(10, 60_000),
        preallocate: int(0, 1024 * 1024 * 1024),
      }) };
      continue;
    }
    if (key === 'plugins') {
      out.plugins = validatePlugins(value);
      continue;
    }
    if (key === 'cluster') {
      out.cluster = validateCluster(value, out.cluster);
      continue;
    }
    if (key === 'http') {
      out.http = validateHttp(value, out.http);
      continue;
    }
    if (key === 'sys') {
      out.sys = { ...out.sys, ...mapping<Partial<ServerConfig['sys']>>('sys', value, sysOptionRules) };
      continue;
    }
    if (key === 'wsPort' || key === 'tlsPort') {
      if (value !== false) check(key, portOrOff, value);
      out[key] = value as number | false;
      continue;
    }
    const rule = (topRules as Record<string, Rule>)[key];
    if (rule === undefined) throw new ConfigError(key, 'unknown key');
    check(key, rule, value);
    (out as unknown as Record<string, unknown>)[key] = value;
  }
  return out;
}

const isSecure = (type: ListenerConfig['type']): boolean => type === 'tls' || type === 'wss';

function validateListeners(value: unknown): ListenerConfig[] {
  if (!Array.isArray(value)) throw new ConfigError('listeners', 'must be a list of listeners');
  const names = new Set<string>();
  return value.map((entry: unknown, i) => {
    const at = `listeners[${i}]`;
    if (!isObject(entry)) throw new ConfigError(at, 'must be a mapping with at least a type');
    for (const [k, v] of Object.entries(entry)) {
      const rule = (listenerRules as Record<string, Rule>)[k];
      if (rule === undefined) throw new ConfigError(`${at}.${k}`, 'unknown key');
      check(`${at}.${k}`, rule, v);
    }
    const l = entry as unknown as ListenerConfig;
    if (l.type === undefined) throw new ConfigError(`${at}.type`, 'is required: tcp, tls, ws or wss');
    if (isSecure(l.type)) {
      if (l.cert === undefined) throw new ConfigError(`${at}.cert`, `is required for a ${l.type} listener`);
      if (l.key === undefined) throw new ConfigError(`${at}.key`, `is required for a ${l.type} listener`);
    } else {
      for (const k of ['cert', 'key', 'ca', 'passphrase', 'minVersion', 'requestCert', 'requireCert', 'certUsername'] as const) {
        if (l[k] !== undefined) throw new ConfigError(`${at}.${k}`, `applies to tls and wss listeners only, not ${l.type}`);
      }
    }
    if ((l.requestCert === true || l.requireCert === true || l.certUsername !== undefined) && l.ca === undefined) {
      throw new ConfigError(`${at}.ca`, 'is required to verify client certificates (requestCert, requireCert, certUsername)');
    }
    if (l.path !== undefined && l.type !== 'ws' && l.type !== 'wss') throw new ConfigError(`${at}.path`, 'applies to ws and wss listeners only');
    if (l.path !== undefined && !l.path.startsWith('/')) throw new ConfigError(`${at}.path`, `must start with "/", got ${JSON.stringify(l.path)}`);
    if (l.name !== undefined) {
      if (names.has(l.name)) throw new ConfigError(`${at}.name`, `"${l.name}" names another listener too`);
      names.add(l.name);
    }
    return { ...l };
  });
}

/**
 * The listeners the server opens: the `listeners` list when given, else TCP on `port`, WebSocket
 * on `wsPort` (unless false) and TLS on `tlsPort` (when set, with `cert` and `key`).
 */
export function listenersOf(config: ServerConfig): ListenerConfig[] {
  if (config.listeners !== undefined) return config.listeners;
  const out: ListenerConfig[] = [{ type: 'tcp', port: config.port }];
  if (config.wsPort !== false) out.push({ type: 'ws', port: config.wsPort });
  if (config.tlsPort !== false) {
    if (config.cert === undefined || config.key === undefined) throw new ConfigError('tlsPort', 'needs cert and key (--cert, --key)');
    out.push({ type: 'tls', port: config.tlsPort, cert: config.cert, key: config.key, ...(config.ca !== undefined ? { ca: config.ca } : {}) });
  }
  return out;
}

const stringList = (path: string, v: unknown): string[] => {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ConfigError(path, 'must be a list of strings');
  return v as string[];
};

/** Checks a mapping against per-key rules (a function rule checks and converts). */
function mapping<T>(path: string, value: unknown, rules: Record<string, Rule | ((p: string, v: unknown) => unknown)>): T {
  if (!isObject(value)) throw new ConfigError(path, 'must be a mapping');
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const rule = rules[k];
    if (rule === undefined) throw new ConfigError(`${path}.${k}`, 'unknown key');
    if (typeof rule === 'function') out[k] = rule(`${path}.${k}`, v);
    else {
      check(`${path}.${k}`, rule, v);
      out[k] = v;
    }
  }
  return out as T;
}

function validateAuth(value: unknown): AuthConfig {
  const str: Rule = { kind: 'string' };
  const auth = mapping<AuthConfig>('auth', value, {
    anonymous: { kind: 'bool' },
    passwordFile: str,
    aclFile: str,
    jwt: (p, v) => {
      const jwt = mapping<JwtConfig>(p, v, {
        secret: str, publicKeyFile: str, jwksUrl: str, algorithms: stringList, issuer: str, audience: str,
        usernameClaim: str, aclClaim: str, clockTolerance: int(0, 86_400),
      });
      const sources = ['secret', 'publicKeyFile', 'jwksUrl'].filter((k) => (jwt as Record<string, unknown>)[k] !== undefined);
      if (sources.length !== 1) throw new ConfigError(p, 'needs exactly one of secret, publicKeyFile or jwksUrl');
      return jwt;
    },
    http: (p, v) => {
      const http = mapping<HttpAuthConfig>(p, v, {
        url: str, authorizeUrl: str, timeout: int(1, 60_000), cacheTtl: int(0, 86_400),
        onError: { kind: 'enum', values: ['allow', 'deny'] },
        headers: (hp, hv) => {
          if (!isObject(hv) || !Object.values(hv).every((x) => typeof x === 'string')) throw new ConfigError(hp, 'must be a mapping of header names to strings');
          return hv;
        },
      });
      if (http.url === undefined) throw new ConfigError(`${p}.url`, 'is required');
      return http;
    },
  });
  return auth;
}

export const CLUSTER_DEFAULTS = { heartbeatInterval: 1000, nodeTimeout: 5000 } as const;

function validateCluster(value: unknown, base: ClusterConfig | undefined): ClusterConfig {
  const c = mapping<Partial<ClusterConfig>>('cluster', value, {
    redis: (p, v) => {
      if (typeof v !== 'string' || !/^(rediss?|redis-sentinel|redis-cluster):\/\/./.test(v)) {
        throw new ConfigError(p, `must be a Redis URL (redis://, rediss://, redis-sentinel://, redis-cluster://), got ${JSON.stringify(v)}`);
      }
      return v;
    },
    nodeId: (p, v) => {
      if (typeof v !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(v)) throw new ConfigError(p, `must be 1 to 64 of A-Z a-z 0-9 _ . -, got ${JSON.stringify(v)}`);
      return v;
    },
    heartbeatInterval: int(10, 3_600_000),
    nodeTimeout: int(20, 86_400_000),
  });
  const out: Partial<ClusterConfig> = { ...CLUSTER_DEFAULTS, ...base, ...c };
  if (out.redis === undefined) throw new ConfigError('cluster.redis', 'is required: the Redis URL of the cluster');
  if ((out.nodeTimeout as number) <= (out.heartbeatInterval as number)) throw new ConfigError('cluster.nodeTimeout', 'must be longer than cluster.heartbeatInterval');
  return out as ClusterConfig;
}

function validatePlugins(value: unknown): PluginConfig[] {
  if (!Array.isArray(value)) throw new ConfigError('plugins', 'must be a list of { module, options }');
  return value.map((entry: unknown, i) => {
    const at = `plugins[${i}]`;
    const p = mapping<PluginConfig>(at, entry, { module: { kind: 'string' }, options: (_p, v) => v });
    if (p.module === undefined || p.module === '') throw new ConfigError(`${at}.module`, 'is required: a path or a package name');
    return p;
  });
}

function validateHttp(value: unknown, base: HttpConfig): HttpConfig {
  const list = (p: string, v: unknown): unknown[] => {
    if (!Array.isArray(v)) throw new ConfigError(p, 'must be a list');
    return v;
  };
  const http: HttpConfig = { ...base, ...mapping<Partial<HttpConfig>>('http', value, {
    enabled: { kind: 'bool' },
    port: int(0, 65535),
    host: { kind: 'string' },
    apiKeys: list,
    users: list,
    metricsAuth: { kind: 'bool' },
    maxLoginFailures: int(1, 1_000_000),
    loginWindow: int(1, 86_400),
    tokenTtl: int(60, 31_536_000),
    sseInterval: int(100, 3_600_000),
  }) };
  try {
    // The same checks the API makes at start: a bad key hash or password hash names its entry.
    new ApiAuth({ apiKeys: http.apiKeys, users: http.users });
  } catch (err) {
    if (err instanceof AuthConfigError) throw new ConfigError(`http.${err.field}`, err.message.slice(err.field.length + 2));
    throw err;
  }
  return http;
}
