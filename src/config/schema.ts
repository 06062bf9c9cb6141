/**
 * ServerConfig: the standalone server's one typed configuration. Every key has a default and a
 * rule; `validateConfig` refuses unknown keys and bad values with an error naming the key path.
 * config/petrel.example.yaml documents every key.
 */
import type { BrokerOptions } from '../broker/options.js';
import type { LogLevel } from '../observability/logger.js';

/** Options that are code, not configuration: injected by embedders or plugins. */
type NotInConfig = 'logger' | 'clock' | 'authenticate' | 'authorizeSubscribe' | 'authorizePublish' | 'authMechanisms';

export interface ServerConfig {
  port: number;
  host: string;
  /** When `port` is taken, try up to this many following ports. */
  portFallback: number;
  logLevel: LogLevel;
  broker: Required<Omit<BrokerOptions, NotInConfig | 'responseInformation' | 'serverReference'>> & {
    responseInformation?: string;
    serverReference?: string;
  };
}

type Rule =
  | { kind: 'int'; min: number; max: number }
  | { kind: 'bool' }
  | { kind: 'string'; optional?: boolean }
  | { kind: 'enum'; values: readonly string[] };

const int = (min: number, max: number): Rule => ({ kind: 'int', min, max });
const bool: Rule = { kind: 'bool' };

const brokerRules: Record<keyof ServerConfig['broker'], Rule> = {
  maxPacketSize: int(16, 268_435_460),
  maxInflight: int(1, 65535),
  maxQueuedMessages: int(0, 10_000_000),
  maxQueuedBytes: int(0, 0xffffffff),
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
  maxRetainedBytes: int(0, Number.MAX_SAFE_INTEGER),
  maxTopicLevels: int(0, 65535),
  connectTimeout: int(0, 3600),
  hookTimeout: int(0, 3600),
  serverReference: { kind: 'string', optional: true },
  serverMoved: bool,
};

const topRules: Record<Exclude<keyof ServerConfig, 'broker'>, Rule> = {
  port: int(0, 65535),
  host: { kind: 'string' },
  portFallback: int(0, 1000),
  logLevel: { kind: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
};

export function defaultConfig(): ServerConfig {
  return {
    port: 1883,
    host: '0.0.0.0',
    portFallback: 0,
    logLevel: 'warn',
    broker: {
      maxPacketSize: 1024 * 1024,
      maxInflight: 100,
      maxQueuedMessages: 1000,
      maxQueuedBytes: 16 * 1024 * 1024,
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
      serverMoved: false,
    },
  };
}

export class ConfigError extends Error {
  constructor(readonly key: string, message: string) {
    super(`config key "${key}": ${message}`);
  }
}

function check(path: string, rule: Rule, value: unknown): void {
  switch (rule.kind) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) throw new ConfigError(path, `must be an integer, got ${JSON.stringify(value)}`);
      if (value < rule.min || value > rule.max) throw new ConfigError(path, `must be between ${rule.min} and ${rule.max}, got ${value}`);
      return;
    case 'bool':
      if (typeof value !== 'boolean') throw new ConfigError(path, `must be true or false, got ${JSON.stringify(value)}`);
      return;
    case 'string':
      if (typeof value !== 'string') throw new ConfigError(path, `must be a string, got ${JSON.stringify(value)}`);
      return;
    case 'enum':
      if (typeof value !== 'string' || !rule.values.includes(value)) throw new ConfigError(path, `must be one of ${rule.values.join(', ')}, got ${JSON.stringify(value)}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Merges `input` over the defaults, refusing unknown keys and bad values. */
export function validateConfig(input: unknown, base: ServerConfig = defaultConfig()): ServerConfig {
  if (input === undefined || input === null) return base;
  if (!isObject(input)) throw new ConfigError('(root)', 'must be a mapping of keys to values');
  const out: ServerConfig = { ...base, broker: { ...base.broker } };
  for (const [key, value] of Object.entries(input)) {
    if (key === 'broker') {
      if (!isObject(value)) throw new ConfigError('broker', 'must be a mapping');
      for (const [bk, bv] of Object.entries(value)) {
        const rule = (brokerRules as Record<string, Rule>)[bk];
        if (rule === undefined) throw new ConfigError(`broker.${bk}`, 'unknown key');
        check(`broker.${bk}`, rule, bv);
        (out.broker as Record<string, unknown>)[bk] = bv;
      }
      continue;
    }
    const rule = (topRules as Record<string, Rule>)[key];
    if (rule === undefined) throw new ConfigError(key, 'unknown key');
    check(key, rule, value);
    (out as unknown as Record<string, unknown>)[key] = value;
  }
  return out;
}
