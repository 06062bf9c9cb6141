/** The standalone server: configuration → logger → broker → listeners. */
import type { Buffer } from 'node:buffer';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AclFile } from './auth/acl-file.js';
import { createHttpAuth, type HttpAuth } from './auth/http-auth.js';
import { createJwtAuth } from './auth/jwt.js';
import { PasswordFile } from './auth/password-file.js';
import { AuthProviders } from './auth/providers.js';
import type { Plugin } from './broker/broker.js';
import { hostname } from 'node:os';
import { ClusterNode } from './cluster/index.js';
import { RedisStore } from './persistence/redis/index.js';
import { SqliteStore } from './persistence/sqlite/index.js';
import type { Store } from './persistence/types.js';
import { type AuthConfig, ConfigError, type ListenerConfig, listenersOf, type PluginConfig, type ServerConfig } from './config/schema.js';
import { createLogger, type Logger } from './observability/logger.js';
import { type Broker, createBroker } from './petrel.js';
import { type ApiKeyConfig, newApiKey } from './ops/http/auth.js';
import { createHttpApi, type HttpApi } from './ops/http/http-api.js';
import type { MetricsSource } from './ops/http/route.js';
import { createMetrics, type PetrelMetrics } from './ops/metrics.js';
import type { Listener, ListenOptions } from './transport/listener.js';
import type { TlsCredentials } from './transport/tls.js';

export interface RunningServer {
  broker: Broker;
  /** The first listener (TCP unless the configuration says otherwise). */
  listener: Listener;
  listeners: Listener[];
  /** The HTTP API, unless `http.enabled` is false. */
  http: HttpApi | undefined;
  logger: Logger;
  /** The broker's Prometheus metrics (`contentType`, `render()`); the HTTP API's GET /metrics serves them. */
  metrics: PetrelMetrics;
  /**
   * Re-reads what can change without a restart (SIGHUP): the certificates and keys of the TLS
   * and secure WebSocket listeners (open connections keep theirs). A file that cannot be read
   * or does not make a valid certificate leaves that listener as it was. Never stops the server.
   */
  reload(): Promise<void>;
  stop(): Promise<void>;
}

/** Reads a listener's certificate files (PEM). Throws, naming the file, when one cannot be read. */
function credentialsOf(l: ListenerConfig): TlsCredentials {
  const read = (file: string): Buffer => readFileSync(file);
  return {
    cert: read(l.cert as string), key: read(l.key as string),
    ...(l.ca !== undefined ? { ca: read(l.ca) } : {}),
    ...(l.passphrase !== undefined ? { passphrase: l.passphrase } : {}),
  };
}

function listenOptionsOf(l: ListenerConfig, config: ServerConfig): ListenOptions {
  const secure = l.type === 'tls' || l.type === 'wss';
  return {
    type: l.type,
    ...(l.name !== undefined ? { name: l.name } : {}),
    ...(l.port !== undefined ? { port: l.port } : {}),
    host: l.host ?? config.host,
    portFallback: config.portFallback,
    ...(secure ? credentialsOf(l) : {}),
    ...(l.minVersion !== undefined ? { minVersion: l.minVersion } : {}),
    ...(l.requestCert !== undefined ? { requestCert: l.requestCert } : {}),
    ...(l.requireCert !== undefined ? { requireCert: l.requireCert } : {}),
    ...(l.certUsername !== undefined ? { certUsername: l.certUsername } : {}),
    ...(l.path !== undefined ? { path: l.path } : {}),
    ...(l.proxyProtocol !== undefined ? { proxyProtocol: l.proxyProtocol } : {}),
    ...(l.proxyTimeout !== undefined ? { proxyTimeout: l.proxyTimeout * 1000 } : {}),
    limits: {
      maxConnections: l.maxConnections ?? 0,
      maxConnectionRate: l.maxConnectionRate ?? 0,
      maxConnectionRatePerSource: l.maxConnectionRatePerSource ?? 0,
    },
  };
}

/** Reads and parses a password or ACL file; a problem names the file (and line). */
function readPasswords(file: string): PasswordFile {
  try {
    return PasswordFile.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`password file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function readAcl(file: string): AclFile {
  try {
    return AclFile.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`ACL file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The providers of the `auth:` section, with their files read; undefined when there is none. */
function providersOf(auth: AuthConfig | undefined): { providers: AuthProviders; http: HttpAuth | undefined } | undefined {
  if (auth === undefined) return undefined;
  const j = auth.jwt;
  const jwt = j === undefined ? undefined : createJwtAuth({
    ...(j.secret !== undefined ? { secret: j.secret } : {}),
    ...(j.publicKeyFile !== undefined ? { publicKey: readFileSync(j.publicKeyFile, 'utf8') } : {}),
    ...(j.jwksUrl !== undefined ? { jwksUrl: j.jwksUrl } : {}),
    ...(j.algorithms !== undefined ? { algorithms: j.algorithms } : {}),
    ...(j.issuer !== undefined ? { issuer: j.issuer } : {}),
    ...(j.audience !== undefined ? { audience: j.audience } : {}),
    ...(j.usernameClaim !== undefined ? { usernameClaim: j.usernameClaim } : {}),
    ...(j.aclClaim !== undefined ? { aclClaim: j.aclClaim } : {}),
    ...(j.clockTolerance !== undefined ? { clockTolerance: j.clockTolerance } : {}),
  });
  const h = auth.http;
  const http = h === undefined ? undefined : createHttpAuth({
    url: h.url,
    ...(h.authorizeUrl !== undefined ? { authorizeUrl: h.authorizeUrl } : {}),
    ...(h.timeout !== undefined ? { timeout: h.timeout } : {}),
    ...(h.cacheTtl !== undefined ? { cacheTtl: h.cacheTtl } : {}),
    ...(h.onError !== undefined ? { onError: h.onError } : {}),
    ...(h.headers !== undefined ? { headers: h.headers } : {}),
  });
  const checksCredentials = auth.passwordFile !== undefined || jwt !== undefined || http !== undefined;
  const providers = new AuthProviders({
    anonymous: auth.anonymous ?? !checksCredentials,
    passwords: auth.passwordFile === undefined ? undefined : readPasswords(auth.passwordFile),
    acl: auth.aclFile === undefined ? undefined : readAcl(auth.aclFile),
    jwt,
    http,
  });
  return { providers, http };
}

/** Imports a plugin module: a path (relative to the working directory) or a package name. */
async function loadPlugin(p: PluginConfig, index: number): Promise<Plugin> {
  const spec = p.module.startsWith('.') || isAbsolute(p.module) ? pathToFileURL(resolve(p.module)).href : p.module;
  const mod = await import(spec) as Record<string, unknown>;
  const candidate = (mod.default ?? mod) as Partial<Plugin>;
  if (typeof candidate !== 'object' || candidate === null || typeof candidate.setup !== 'function' || typeof candidate.name !== 'string') {
    throw new ConfigError(`plugins[${index}].module`, `${p.module} does not export a plugin ({ name, setup(broker, options) })`);
  }
  return candidate as Plugin;
}

/** The file in the data directory that keeps the digest of the admin API key created at first start. */
export const ADMIN_KEY_FILE = 'http-api-key.json';

/**
 * The admin key of a server configured with no API keys and no users: read back from the data
 * directory, or created, printed once (log record and stderr) and stored as its digest only.
 */
function adminKey(dataDir: string, logger: Logger): ApiKeyConfig {
  const file = join(dataDir, ADMIN_KEY_FILE);
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== undefined) {
    const stored = JSON.parse(text) as { hash?: unknown };
    if (typeof stored.hash !== 'string') throw new Error(`${file}: no "hash" in it; delete the file to have a new key created`);
    return { name: 'admin', hash: stored.hash, role: 'admin' };
  }
  const { key, hash } = newApiKey();
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${JSON.stringify({ hash, role: 'admin', createdAt: new Date().toISOString() })}\n`, { mode: 0o600, flag: 'wx' });
  logger.warn({ apiKey: key, file }, 'HTTP API admin key created: it is shown only this once (only its digest is stored)');
  process.stderr.write(`petrel: HTTP API admin key (shown only this once): ${key}\n`);
  return { name: 'admin', hash, role: 'admin' };
}

/** The built web dashboard (`npm run build` writes it beside the compiled server: dist/dashboard/). */
const DASHBOARD_DIR = fileURLToPath(new URL('./dashboard/', import.meta.url));

/** Opens the HTTP API of the `http:` section; logs its "listening" record. */
async function startHttp(broker: Broker, config: ServerConfig, logger: Logger, metrics: MetricsSource | undefined): Promise<HttpApi> {
  const h = config.http;
  const keys = h.apiKeys.length === 0 && h.users.length === 0 ? [adminKey(config.store.dataDir, logger)] : h.apiKeys;
  const api = createHttpApi(broker, {
    port: h.port, host: h.host ?? config.host, portFallback: config.portFallback,
    auth: { apiKeys: keys, users: h.users, maxFailures: h.maxLoginFailures, failureWindow: h.loginWindow, tokenTtl: h.tokenTtl },
    metricsAuth: h.metricsAuth, sseInterval: h.sseInterval, config, logger: logger.child({ component: 'http' }),
    ...(metrics !== undefined ? { metrics } : {}), ...(existsSync(DASHBOARD_DIR) ? { dashboard: DASHBOARD_DIR } : {}),
  });
  const { host, port } = await api.listen();
  logger.info({ listener: 'http', type: 'http', host, port }, 'listening');
  return api;
}

/** What the server can be given besides its configuration. */
export interface ServerExtras {
  /** What GET /metrics serves (e.g. a Prometheus registry's text). */
  metrics?: MetricsSource;
}

export async function startServer(config: ServerConfig, logger: Logger = createLogger(config.logLevel), extras: ServerExtras = {}): Promise<RunningServer> {
  const specs = listenersOf(config);
  const auth = providersOf(config.auth);
  const s = config.store;
  const c = config.cluster;
  const cluster = c === undefined ? undefined : new ClusterNode({
    redis: c.redis, nodeId: c.nodeId ?? clusterNodeId(), heartbeatInterval: c.heartbeatInterval, nodeTimeout: c.nodeTimeout, logger,
  });
  // In a cluster the store is Redis, shared by the nodes: each session is owned by one node at a time.
  const store: Store | undefined = cluster !== undefined ? new RedisStore({ redis: cluster.redisUrl, prefix: cluster.storePrefix, node: cluster.nodeId })
    : s.type === 'sqlite' ? new SqliteStore({ dataDir: s.dataDir, durability: s.durability, intervalMs: s.intervalMs, preallocate: s.preallocate }) : undefined;
  const broker = createBroker({
    ...config.broker, logger, sys: config.sys, ...(store !== undefined ? { store } : {}), ...(cluster !== undefined ? { cluster } : {}),
    ...(auth !== undefined ? auth.providers.hooks() : {}),
  });
  // A write for a session another node took over (its fencing token is newer): that client is let go here.
  if (store instanceof RedisStore) store.onLost = (ids) => ids.forEach((id) => void broker.releaseSession(id, false));
  // The broker's Prometheus metrics: GET /metrics of the HTTP API serves them unless extras bring other ones.
  const metrics = createMetrics(broker);
  if (auth === undefined) logger.warn('no auth configured: anonymous access is on, any client may connect, publish and subscribe');
  else if (auth.providers.anonymous) logger.warn('anonymous access is on: clients without username and password may connect');
  try {
    await broker.restore();
    if (cluster !== undefined) {
      logger.info({ store: 'redis', node: cluster.nodeId }, 'store ready');
      await cluster.start(broker, store instanceof RedisStore ? store : undefined);
    } else if (store !== undefined) logger.info({ store: s.type, dataDir: s.dataDir, durability: s.durability }, 'store ready');
    for (const [i, p] of (config.plugins ?? []).entries()) {
      const plugin = await loadPlugin(p, i);
      await broker.use(plugin, p.options);
      logger.info({ plugin: plugin.name }, 'plugin loaded');
    }
  } catch (err) {
    await cluster?.close();
    await broker.close();
    auth?.http?.close();
    throw err;
  }
  const listeners: Listener[] = [];
  let http: HttpApi | undefined;
  try {
    for (const spec of specs) {
      const listener = await broker.listen(listenOptionsOf(spec, config));
      listeners.push(listener);
      // The start-up records, one per listener: supervisors and tests read the bound ports from them.
      logger.info({ listener: listener.name, type: listener.type, host: listener.host, port: listener.port }, 'listening');
    }
    if (config.http.enabled) http = await startHttp(broker, config, logger, extras.metrics ?? metrics);
  } catch (err) {
    await cluster?.close();
    await broker.close();
    auth?.http?.close();
    throw err;
  }
  return {
    broker,
    listener: listeners[0] as Listener,
    listeners,
    http,
    logger,
    metrics,
    reload: async () => {
      const reloaded: string[] = [];
      const a = config.auth;
      if (auth !== undefined && a !== undefined) {
        for (const [file, swap] of [
          [a.passwordFile, (f: string) => auth.providers.replacePasswords(readPasswords(f))],
          [a.aclFile, (f: string) => auth.providers.replaceAcl(readAcl(f))],
        ] as const) {
          if (file === undefined) continue;
          try {
            swap(file);
            reloaded.push(file);
          } catch (err) {
            logger.error({ err, file }, 'reload failed; the previous contents stay in use');
          }
        }
      }
      specs.forEach((spec, i) => {
        const listener = listeners[i] as Listener;
        if (spec.type !== 'tls' && spec.type !== 'wss') return;
        try {
          listener.setCredentials(credentialsOf(spec));
          reloaded.push(listener.name);
        } catch (err) {
          logger.error({ err, listener: listener.name, kept: 'the previous certificate' }, 'certificate reload failed');
        }
      });
      logger.info({ reloaded }, 'reload requested');
    },
    stop: async () => {
      await http?.close();
      // The node leaves first (its routes go), so no more messages come for the closing broker.
      await cluster?.close();
      await broker.close();
      auth?.http?.close();
    },
  };
}

/** The host name, made a valid node id. */
function clusterNodeId(): string {
  return hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 64) || 'node';
}
