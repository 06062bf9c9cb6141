/**
 * The configuration: the sample file config/petrel.example.yaml stays valid and complete, and
 * bad configurations are refused with a ConfigError naming the key path.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { type ClusterConfig, ConfigError, defaultConfig, type ServerConfig, validateConfig } from '../../src/config/schema.js';

/** Tests run compiled, from build/test/e2e/: three levels up is the repository root. */
const SAMPLE = fileURLToPath(new URL('../../../config/petrel.example.yaml', import.meta.url));

/**
 * Every key of ServerConfig, checked by the compiler: adding a key to ServerConfig without
 * listing it here (and so in the sample file) fails type checking.
 */
const TOP_KEYS: Record<keyof ServerConfig, true> = {
  port: true, wsPort: true, tlsPort: true, cert: true, key: true, ca: true, listeners: true, host: true, portFallback: true,
  logLevel: true, helperThreadNice: true, parallelScavenge: true, broker: true, auth: true, plugins: true, store: true, cluster: true, http: true, sys: true,
};
const HTTP_KEYS: Record<keyof ServerConfig['http'], true> = {
  enabled: true, port: true, host: true, apiKeys: true, users: true, metricsAuth: true, maxLoginFailures: true, loginWindow: true,
  tokenTtl: true, sseInterval: true,
};
const BROKER_KEYS: Record<keyof ServerConfig['broker'], true> = {
  maxPacketSize: true, maxInflight: true, maxQueuedMessages: true, queueQos0Offline: true, retryInterval: true,
  receiveMaximum: true, topicAliasMaximum: true, outboundTopicAliases: true, maxKeepalive: true,
  maxSessionExpiryInterval: true, maximumQoS: true, retainAvailable: true, wildcardSubscriptionAvailable: true,
  subscriptionIdentifiersAvailable: true, sharedSubscriptionsAvailable: true, sharedSubscriptionStrategy: true,
  responseInformation: true, matchCacheSize: true, maxRetainedMessages: true, serverReference: true, serverMoved: true,
  maxTopicLevels: true, connectTimeout: true, hookTimeout: true, matchCacheBytes: true, maxQueuedBytes: true, maxStoredBytesPerSession: true,
  maxTopicAliasBytes: true, maxRetainedBytes: true, slowSubscriberTimeout: true, slowSubscriberPolicy: true,
  maxConnections: true, maxTopicLength: true, maxSubscriptionsPerClient: true, maxInboundMessageRate: true,
  maxInboundByteRate: true, flapThreshold: true, flapWindow: true, flapBanTime: true,
};

/** The error `fn` throws, which must be a ConfigError. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError, nothing was thrown');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

describe('config/petrel.example.yaml', () => {
  const text = readFileSync(SAMPLE, 'utf8');
  const lines = text.split('\n');

  /** The line defining `key` (at `indent` spaces, possibly commented out) and the comment block just above it. */
  function documented(key: string, indent: number): { line: string; comment: string } | undefined {
    const re = new RegExp(`^ {${indent}}(# ?)?${key}:`);
    const at = lines.findIndex((l) => re.test(l));
    if (at < 0) return undefined;
    const comment: string[] = [];
    for (let i = at - 1; i >= 0 && (lines[i] as string).trim().startsWith('#'); i--) comment.unshift(lines[i] as string);
    return { line: lines[at] as string, comment: comment.join('\n') };
  }

  test('parses as YAML and passes validateConfig, giving exactly the defaults', () => {
    const data: unknown = parseYaml(text);
    const config = validateConfig(data);
    assert.deepEqual(config, defaultConfig(), 'the sample shows every default value');
  });

  test('loads through the --config flag as the server would', () => {
    assert.deepEqual(loadConfig(['--config', SAMPLE]), defaultConfig());
  });

  test('sets every key of defaultConfig(), top-level and broker.*, to its default', () => {
    const data: unknown = parseYaml(text);
    assert.ok(isRecord(data));
    const defaults = defaultConfig();
    for (const key of Object.keys(defaults)) assert.ok(key in data, `top-level key "${key}" is missing from the sample`);
    const broker = data.broker;
    assert.ok(isRecord(broker));
    for (const [key, value] of Object.entries(defaults.broker)) {
      assert.ok(key in broker, `"broker.${key}" is missing from the sample`);
      assert.deepEqual(broker[key], value, `"broker.${key}" shows its default`);
    }
  });

  test('documents every ServerConfig key, optional ones included, with a comment giving its default', () => {
    for (const key of Object.keys(TOP_KEYS)) {
      const doc = documented(key, 0);
      assert.ok(doc !== undefined, `"${key}" is not in the sample`);
      if (key !== 'broker') assert.match(doc.comment, /Default/, `"${key}" has no comment giving its default`);
    }
    for (const key of Object.keys(BROKER_KEYS)) {
      const doc = documented(key, 2);
      assert.ok(doc !== undefined, `"broker.${key}" is not in the sample`);
      assert.match(doc.comment, /Default/, `"broker.${key}" has no comment giving its default`);
    }
    for (const key of Object.keys(HTTP_KEYS)) {
      const doc = documented(key, 2);
      assert.ok(doc !== undefined, `"http.${key}" is not in the sample`);
      assert.match(doc.comment, /Default/, `"http.${key}" has no comment giving its default`);
    }
    // Nothing in the sample that the schema does not know (validateConfig would refuse it too).
    const data = parseYaml(text) as Record<string, unknown>;
    // Keys without a default (cert, key, ca, listeners, auth, plugins) are shown commented out.
    const optional = new Set(['cert', 'key', 'ca', 'listeners', 'auth', 'plugins', 'cluster']);
    assert.deepEqual(Object.keys(data).sort(), Object.keys(TOP_KEYS).filter((k) => !optional.has(k)).sort());
  });

  test('documents every cluster key with a comment giving its default, and the section, uncommented, is accepted', () => {
    // The section is commented out (no cluster by default): `# cluster:`, then `#   key:` lines under `#   # ...` comments.
    const at = lines.findIndex((l) => /^# ?cluster:/.test(l));
    assert.ok(at >= 0, 'the cluster section is not in the sample');
    const block: string[] = [];
    for (let i = at + 1; i < lines.length && (lines[i] as string).startsWith('#   '); i++) block.push(lines[i] as string);
    const keys: Record<keyof ClusterConfig, true> = { redis: true, nodeId: true, heartbeatInterval: true, nodeTimeout: true };
    for (const key of Object.keys(keys)) {
      const k = block.findIndex((l) => l.startsWith(`#   ${key}:`));
      assert.ok(k >= 0, `"cluster.${key}" is not in the sample`);
      const comment: string[] = [];
      for (let i = k - 1; i >= 0 && (block[i] as string).startsWith('#   #'); i--) comment.unshift(block[i] as string);
      assert.match(comment.join('\n'), /Default/, `"cluster.${key}" has no comment giving its default`);
    }
    const yaml = ['cluster:', ...block.filter((l) => /^# {3}[a-zA-Z]+:/.test(l)).map((l) => l.slice(1))].join('\n');
    const config = validateConfig(parseYaml(yaml));
    assert.deepEqual(config.cluster, { redis: 'redis://127.0.0.1:6379', nodeId: 'node-1', heartbeatInterval: 1000, nodeTimeout: 5000 });
  });

  test('the optional responseInformation, uncommented, is accepted', () => {
    const doc = documented('responseInformation', 2);
    assert.ok(doc !== undefined);
    const enabled = text.replace(doc.line, doc.line.replace('# ', ''));
    assert.equal(validateConfig(parseYaml(enabled)).broker.responseInformation, 'responses/');
  });
});

describe('validateConfig refuses bad configurations, naming the key', () => {
  const cases: [string, unknown, string][] = [
    ['an unknown top-level key', { bogus: 1 }, 'bogus'],
    ['an unknown broker key', { broker: { bogus: true } }, 'broker.bogus'],
    ['a misspelt broker key', { broker: { maxInFlight: 10 } }, 'broker.maxInFlight'],
    ['a port out of range', { port: 70000 }, 'port'],
    ['a negative port', { port: -1 }, 'port'],
    ['a fractional port', { port: 1883.5 }, 'port'],
    ['a port given as a string', { port: '1883' }, 'port'],
    ['a host that is not a string', { host: 127 }, 'host'],
    ['portFallback out of range', { portFallback: 1001 }, 'portFallback'],
    ['an unknown log level', { logLevel: 'loud' }, 'logLevel'],
    ['broker that is not a mapping', { broker: 5 }, 'broker'],
    ['broker.maxInflight 0', { broker: { maxInflight: 0 } }, 'broker.maxInflight'],
    ['broker.maxPacketSize too small', { broker: { maxPacketSize: 1 } }, 'broker.maxPacketSize'],
    ['broker.maximumQoS 3', { broker: { maximumQoS: 3 } }, 'broker.maximumQoS'],
    ['broker.queueQos0Offline not a boolean', { broker: { queueQos0Offline: 'yes' } }, 'broker.queueQos0Offline'],
    ['broker.sharedSubscriptionStrategy unknown', { broker: { sharedSubscriptionStrategy: 'fastest' } }, 'broker.sharedSubscriptionStrategy'],
    ['broker.responseInformation not a string', { broker: { responseInformation: 42 } }, 'broker.responseInformation'],
    ['broker.maxSessionExpiryInterval above 32 bits', { broker: { maxSessionExpiryInterval: 2 ** 32 } }, 'broker.maxSessionExpiryInterval'],
    ['a list instead of a mapping', [1, 2], '(root)'],
    ['cluster without redis', { cluster: { nodeId: 'a' } }, 'cluster.redis'],
    ['cluster.redis not a Redis URL', { cluster: { redis: 'http://x' } }, 'cluster.redis'],
    ['cluster.nodeId with a space', { cluster: { redis: 'redis://h', nodeId: 'a b' } }, 'cluster.nodeId'],
    ['cluster.nodeTimeout not above heartbeatInterval', { cluster: { redis: 'redis://h', heartbeatInterval: 1000, nodeTimeout: 1000 } }, 'cluster.nodeTimeout'],
    ['an unknown cluster key', { cluster: { redis: 'redis://h', nodes: 3 } }, 'cluster.nodes'],
    ['sys that is not a mapping', { sys: true }, 'sys'],
    ['sys.interval 0', { sys: { interval: 0 } }, 'sys.interval'],
    ['sys.enabled not a boolean', { sys: { enabled: 'yes' } }, 'sys.enabled'],
    ['an unknown sys key', { sys: { every: 10 } }, 'sys.every'],
  ];
  for (const [name, input, key] of cases) {
    test(`${name} → key "${key}"`, () => {
      assert.equal(configError(() => validateConfig(input)).key, key);
    });
  }

  test('the first bad key is named when several are wrong, and valid keys are merged over defaults', () => {
    assert.equal(configError(() => validateConfig({ port: 1, broker: { maxInflight: 5, nope: 1 } })).key, 'broker.nope');
    const ok = validateConfig({ port: 1884, broker: { maxInflight: 5 } });
    assert.equal(ok.port, 1884);
    assert.equal(ok.broker.maxInflight, 5);
    assert.equal(ok.broker.maxQueuedMessages, defaultConfig().broker.maxQueuedMessages);
    assert.deepEqual(validateConfig(null), defaultConfig());
  });

  test('sys: the keys given are merged over the default (on, every 10 seconds)', () => {
    assert.deepEqual(defaultConfig().sys, { enabled: true, interval: 10 });
    assert.deepEqual(validateConfig({ sys: { interval: 30 } }).sys, { enabled: true, interval: 30 });
    assert.deepEqual(validateConfig({ sys: { enabled: false } }).sys, { enabled: false, interval: 10 });
  });
});

describe('loadConfig: files and flags', () => {
  function tempFile(name: string, content: string): { path: string; cleanup: () => void } {
    const dir = mkdtempSync(join(tmpdir(), 'petrel-config-'));
    const path = join(dir, name);
    writeFileSync(path, content);
    return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  }

  test('a JSON config works', (t) => {
    const file = tempFile('petrel.json', JSON.stringify({ port: 2883, host: '127.0.0.1', logLevel: 'error', broker: { maxInflight: 7, sharedSubscriptionStrategy: 'random' } }));
    t.after(file.cleanup);
    const config = loadConfig(['--config', file.path]);
    assert.equal(config.port, 2883);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.logLevel, 'error');
    assert.equal(config.broker.maxInflight, 7);
    assert.equal(config.broker.sharedSubscriptionStrategy, 'random');
    assert.equal(config.broker.maxQueuedMessages, defaultConfig().broker.maxQueuedMessages);
  });

  test('a YAML config works and flags override it', (t) => {
    const file = tempFile('petrel.yaml', 'port: 2883\nhost: 0.0.0.0\nbroker:\n  retryInterval: 20\n');
    t.after(file.cleanup);
    const config = loadConfig(['--config', file.path, '--port', '0', '--host', '127.0.0.1', '--log-level', 'silent']);
    assert.equal(config.port, 0);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.logLevel, 'silent');
    assert.equal(config.broker.retryInterval, 20);
  });

  test('--cluster-redis and --node-id make a cluster section (defaults filled in) over the file\'s', (t) => {
    const file = tempFile('petrel.yaml', 'cluster:\n  redis: redis://10.0.0.1:6379\n  nodeTimeout: 9000\n');
    t.after(file.cleanup);
    assert.equal(loadConfig([]).cluster, undefined);
    assert.deepEqual(loadConfig(['--cluster-redis', 'redis://127.0.0.1:6380', '--node-id', 'b']).cluster,
      { redis: 'redis://127.0.0.1:6380', nodeId: 'b', heartbeatInterval: 1000, nodeTimeout: 5000 });
    assert.deepEqual(loadConfig(['--config', file.path, '--node-id', 'c']).cluster,
      { redis: 'redis://10.0.0.1:6379', nodeId: 'c', heartbeatInterval: 1000, nodeTimeout: 9000 });
    assert.equal(configError(() => loadConfig(['--node-id', 'c'])).key, 'cluster.redis');
  });

  test('bad keys in a JSON file and bad flags are refused with the key named', (t) => {
    const file = tempFile('bad.json', JSON.stringify({ broker: { retryInterval: -5 } }));
    t.after(file.cleanup);
    assert.equal(configError(() => loadConfig(['--config', file.path])).key, 'broker.retryInterval');
    assert.equal(configError(() => loadConfig(['--port', 'abc'])).key, 'port');
    assert.equal(configError(() => loadConfig(['--port', '65536'])).key, 'port');
    assert.equal(configError(() => loadConfig(['--log-level', 'loud'])).key, 'logLevel');
  });
});
