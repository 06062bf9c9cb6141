/**
 * ServerConfig: the standalone server's one typed configuration. Every key has a default and a
 * rule; `validateConfig` refuses unknown keys and bad values with an error naming the key path.
 * config/petrel.example.yaml documents every key.
 */
import { brokerOptionRules, OptionsError, type Rule, ruleProblem, type ValueOptions } from '../broker/options.js';
import type { LogLevel } from '../observability/logger.js';

export interface ServerConfig {
  port: number;
  host: string;
  /** When `port` is taken, try up to this many following ports. */
  portFallback: number;
  logLevel: LogLevel;
  /** The broker's value options (code options such as hooks are injected, not configured). */
  broker: Required<Omit<ValueOptions, 'responseInformation' | 'serverReference'>> & {
    responseInformation?: string;
    serverReference?: string;
  };
}

const int = (min: number, max: number): Rule => ({ kind: 'int', min, max });

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
    logLevel: 'info',
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
      slowSubscriberTimeout: 1,
      slowSubscriberPolicy: 'drop',
      serverMoved: false,
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
  const out: ServerConfig = { ...base, broker: { ...base.broker } };
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
    const rule = (topRules as Record<string, Rule>)[key];
    if (rule === undefined) throw new ConfigError(key, 'unknown key');
    check(key, rule, value);
    (out as unknown as Record<string, unknown>)[key] = value;
  }
  return out;
}
