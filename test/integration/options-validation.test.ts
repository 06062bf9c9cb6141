/**
 * The library refuses what the config file refuses, with the same words: createBroker and
 * validateConfig share the broker rules table (src/broker/options.ts). Also broker.publish
 * arguments and listen() after close().
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { brokerOptionRules, type Rule } from '../../src/broker/options.js';
import { defaultConfig, validateConfig } from '../../src/config/schema.js';
import { BrokerClosedError, ConfigError, createBroker, OptionsError } from '../../src/index.js';
import { PacketType } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/duplex-client.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return assert.fail('nothing was thrown');
}

function optionsError(fn: () => unknown): OptionsError {
  const err = thrown(fn);
  assert.ok(err instanceof OptionsError, `expected an OptionsError, got ${String(err)}`);
  return err;
}

async function rejectsWith(promise: Promise<unknown>, key: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof OptionsError && err.key === key);
}

/** Values that break a rule of each kind. */
function badValues(rule: Rule): unknown[] {
  switch (rule.kind) {
    case 'int': return [rule.min - 1, rule.max + 1, rule.min + 0.5, String(rule.min), null, true];
    case 'bool': return ['yes', 1, null];
    case 'string': return [42, null, {}];
    case 'enum': return ['fastest', 1];
  }
}

describe('createBroker options are checked like the config file', () => {
  test('maxInflight 0 (QoS 1 would never be delivered) is refused, naming the option, with the config file\'s words', () => {
    const err = optionsError(() => createBroker({ maxInflight: 0 }));
    assert.equal(err.key, 'maxInflight');
    assert.equal(err.message, 'option "maxInflight": must be between 1 and 65535, got 0');
    const cfg = thrown(() => validateConfig({ broker: { maxInflight: 0 } }));
    assert.ok(cfg instanceof ConfigError && cfg instanceof OptionsError);
    assert.equal(cfg.message, 'config key "broker.maxInflight": must be between 1 and 65535, got 0');
    assert.equal(cfg.detail, err.detail);
  });

  test('maxPacketSize -1 and maximumQoS 5 are refused', () => {
    assert.equal(optionsError(() => createBroker({ maxPacketSize: -1 })).key, 'maxPacketSize');
    assert.equal(optionsError(() => new BrokerCore({ maximumQoS: 5 as 2 })).key, 'maximumQoS');
  });

  test('every rule: each bad value is refused by both, with the same detail', () => {
    for (const [key, rule] of Object.entries(brokerOptionRules) as [string, Rule][]) {
      for (const value of badValues(rule)) {
        const lib = optionsError(() => createBroker({ [key]: value }));
        assert.equal(lib.key, key);
        const cfg = thrown(() => validateConfig({ broker: { [key]: value } }));
        assert.ok(cfg instanceof ConfigError, `config accepted broker.${key} = ${JSON.stringify(value)}`);
        assert.equal(cfg.key, `broker.${key}`);
        assert.equal(cfg.detail, lib.detail, `${key} = ${JSON.stringify(value)}`);
      }
    }
  });

  test('unknown options and bad code options are refused; undefined means the default', () => {
    assert.equal(optionsError(() => createBroker({ maxInFlight: 5 } as never)).key, 'maxInFlight');
    assert.equal(optionsError(() => createBroker({ logger: console.log } as never)).key, 'logger');
    assert.equal(optionsError(() => createBroker({ clock: Date } as never)).key, 'clock');
    assert.equal(optionsError(() => createBroker({ authenticate: true } as never)).key, 'authenticate');
    assert.equal(optionsError(() => createBroker({ authMechanisms: [{ method: 'X' }] } as never)).key, 'authMechanisms');
    assert.equal(optionsError(() => createBroker(null as never)).key, '(root)');
    const ok = createBroker({ maxInflight: undefined, logger: undefined });
    void ok.closeConnections();
  });

  test('the config file defaults are valid library options', async () => {
    const broker = createBroker({ ...defaultConfig().broker });
    await broker.close();
  });
});

describe('broker.publish checks its arguments', () => {
  const cases: [string, object, string][] = [
    ['a + wildcard [MQTT-3.3.2-2]', { topic: 'a/+/b', payload: 'x' }, 'topic'],
    ['a # wildcard [MQTT-3.3.2-2]', { topic: 'a/#', payload: 'x' }, 'topic'],
    ['an empty topic [MQTT-4.7.3-1]', { topic: '', payload: 'x' }, 'topic'],
    ['U+0000 in the topic [MQTT-4.7.3-2]', { topic: 'a\u0000b', payload: 'x' }, 'topic'],
    ['a lone high surrogate [MQTT-1.5.4-1]', { topic: 'a\ud800', payload: 'x' }, 'topic'],
    ['a lone low surrogate [MQTT-1.5.4-1]', { topic: '\udc00a', payload: 'x' }, 'topic'],
    ['a topic over 65,535 bytes [MQTT-4.7.3-3]', { topic: 'é'.repeat(32_768), payload: 'x' }, 'topic'],
    ['a topic that is not a string', { topic: 42, payload: 'x' }, 'topic'],
    ['QoS 3', { topic: 't', payload: 'x', qos: 3 }, 'qos'],
    ['QoS "1"', { topic: 't', payload: 'x', qos: '1' }, 'qos'],
    ['QoS 1.5', { topic: 't', payload: 'x', qos: 1.5 }, 'qos'],
    ['retain "yes"', { topic: 't', payload: 'x', retain: 'yes' }, 'retain'],
    ['a number payload', { topic: 't', payload: 5 }, 'payload'],
    ['a missing payload', { topic: 't' }, 'payload'],
    ['properties that are not an object', { topic: 't', payload: 'x', properties: 'p' }, 'properties'],
  ];
  for (const [name, message, key] of cases) {
    test(`refuses ${name}`, async () => {
      const broker = new BrokerCore();
      await rejectsWith(broker.publish(message as never), key);
      assert.equal(broker.stats.messagesReceived, 0);
      await broker.closeConnections();
    });
  }

  test('valid names (a surrogate pair, 65,535 bytes) and payload types are published', async () => {
    const broker = new BrokerCore();
    const sub = (await TestClient.connect(broker, { clientId: 'ok' })).client;
    await sub.subscribe('#', 0);
    await broker.publish({ topic: 'emoji/\ud83d\ude00', payload: new Uint8Array([1, 2, 3]) });
    const p = await sub.expect(PacketType.Publish);
    assert.equal(p.topic, 'emoji/\ud83d\ude00');
    assert.deepEqual([...p.payload], [1, 2, 3]);
    const long = 'a'.repeat(65_535);
    await broker.publish({ topic: long, payload: 'x', qos: 0, retain: false });
    assert.equal((await sub.expect(PacketType.Publish)).topic, long);
    await broker.closeConnections();
  });
});

describe('listen() after close()', () => {
  test('rejects with BrokerClosedError instead of binding a port that drops every client', async () => {
    const broker = createBroker();
    await broker.close();
    await assert.rejects(broker.listen({ port: 0, host: '127.0.0.1' }), BrokerClosedError);
    assert.equal(broker.listeners.length, 0);
  });

  test('a listen() still binding when close() runs releases its port and rejects', async () => {
    const broker = createBroker();
    const listening = broker.listen({ port: 0, host: '127.0.0.1' });
    await broker.close();
    await assert.rejects(listening, BrokerClosedError);
    assert.equal(broker.listeners.length, 0);
  });
});
