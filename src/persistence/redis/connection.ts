/**
 * Redis connections from a URL, for the Redis store and the cluster bus:
 *
 * - `redis://[user:password@]host:port[/db]` and `rediss://…` (TLS): one server.
 * - `redis-sentinel://[user:password@]host:port,host:port/<master name>`: a master found through
 *   Sentinel (ioredis follows failovers).
 * - `redis-cluster://[user:password@]host:port,host:port`: a Redis Cluster (seed nodes).
 *
 * A connection retries forever with a capped backoff while the server is away; commands sent
 * meanwhile wait in ioredis's offline queue and fail after `maxRetriesPerRequest` reconnection
 * attempts, so a caller hears about an outage instead of waiting without bound.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';

export type RedisConnection = Redis | Cluster;

export interface RedisConnectOptions {
  /** Name shown by CLIENT LIST. */
  connectionName?: string;
  /** Reconnection attempts a queued command waits for before it fails; default 4. */
  maxRetriesPerRequest?: number;
  /** Connection errors (refused, reset); without it they are ignored, since failed commands report them. */
  onError?: (err: Error) => void;
}

interface ParsedUrl {
  kind: 'single' | 'sentinel' | 'cluster';
  hosts: { host: string; port: number }[];
  username: string | undefined;
  password: string | undefined;
  tls: boolean;
  db: number;
  name: string;
}

export function parseRedisUrl(url: string): ParsedUrl {
  const match = /^(rediss?|redis-sentinel|redis-cluster):\/\/(?:([^@/]*)@)?([^/?#]+)(?:\/([^?#]*))?$/.exec(url);
  if (match === null) {
    throw new RangeError(`not a Redis URL: ${JSON.stringify(url)} (redis://host:port, rediss://, redis-sentinel://host:port,…/master, redis-cluster://host:port,…)`);
  }
  const [, scheme, auth, hostList, path] = match as unknown as [string, string, string | undefined, string, string | undefined];
  let username: string | undefined;
  let password: string | undefined;
  if (auth !== undefined && auth !== '') {
    const colon = auth.indexOf(':');
    if (colon < 0) password = decodeURIComponent(auth);
    else {
      username = colon === 0 ? undefined : decodeURIComponent(auth.slice(0, colon));
      password = decodeURIComponent(auth.slice(colon + 1));
    }
  }
  const hosts = hostList.split(',').map((h) => {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(h);
    if (m === null) throw new RangeError(`bad host in Redis URL: ${JSON.stringify(h)}`);
    const port = m[2] === undefined ? (scheme === 'redis-sentinel' ? 26379 : 6379) : Number(m[2]);
    if (!(port > 0 && port < 65536)) throw new RangeError(`bad port in Redis URL: ${JSON.stringify(h)}`);
    return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
  });
  const kind = scheme === 'redis-sentinel' ? 'sentinel' : scheme === 'redis-cluster' ? 'cluster' : 'single';
  if (kind === 'single' && hosts.length !== 1) throw new RangeError(`a ${scheme}:// URL names one host: ${JSON.stringify(url)}`);
  const name = kind === 'sentinel' ? (path ?? '') : '';
  if (kind === 'sentinel' && name === '') throw new RangeError(`a redis-sentinel:// URL ends with /<master name>: ${JSON.stringify(url)}`);
  const db = kind === 'single' && path !== undefined && path !== '' ? Number(path) : 0;
  if (!Number.isInteger(db) || db < 0) throw new RangeError(`bad database number in Redis URL: ${JSON.stringify(url)}`);
  return { kind, hosts, username, password, tls: scheme === 'rediss', db, name };
}

/** Opens (lazily: the first command connects) a connection for `url`. */
export function connectRedis(url: string, options: RedisConnectOptions = {}): RedisConnection {
  const p = parseRedisUrl(url);
  const common: RedisOptions = {
    lazyConnect: true,
    maxRetriesPerRequest: options.maxRetriesPerRequest ?? 4,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
    ...(options.connectionName === undefined ? {} : { connectionName: options.connectionName }),
    ...(p.username === undefined ? {} : { username: p.username }),
    ...(p.password === undefined ? {} : { password: p.password }),
    ...(p.tls ? { tls: {} } : {}),
  };
  const conn: RedisConnection = p.kind === 'cluster'
    ? new Cluster(p.hosts, { lazyConnect: true, redisOptions: common, clusterRetryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1000) })
    : p.kind === 'sentinel'
      ? new Redis({ ...common, sentinels: p.hosts, name: p.name, db: p.db })
      : new Redis({ ...common, host: p.hosts[0]!.host, port: p.hosts[0]!.port, db: p.db });
  conn.on('error', options.onError ?? ignore);
  return conn;
}

function ignore(): void {
  // Errors surface as failed commands.
}
