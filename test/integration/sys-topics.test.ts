/**
 * `$SYS/broker/...` in Mosquitto's layout: retained, updated every `sys.interval` seconds on the
 * broker's timer wheel (a ManualClock and a ManualTicker drive it here), unchanged values not
 * published again, load averages as Mosquitto computes them, and never seen by `#` [MQTT-4.7.2-1].
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import { PacketType, type PublishPacket } from '../../src/protocol/index.js';
import { MemoryStore } from '../../src/persistence/memory.js';
import { ManualClock, ManualTicker } from '../../src/session/clock.js';
import { VERSION } from '../../src/version.js';
import { TestClient } from '../helpers/duplex-client.js';
import mqtt from 'mqtt';
import { validateConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/observability/logger.js';
import { startServer } from '../../src/server.js';
import { withTimeout } from '../helpers/mqttjs.js';
import { parseExposition, sample } from '../helpers/prometheus.js';

const TICK = 100;

interface Rig {
  broker: BrokerCore;
  clock: ManualClock;
  /** Moves the clock to `ms`, one wheel tick at a time. */
  runUntil(ms: number): void;
}

function rig(t: { after(fn: () => Promise<void>): void }, options: BrokerOptions = {}): Rig {
  const clock = new ManualClock(0);
  const ticker = new ManualTicker();
  const broker = new BrokerCore({ clock, ticker, connectTimeout: 0, ...options, sys: { enabled: true, ...options.sys } });
  t.after(() => broker.closeConnections());
  return {
    broker,
    clock,
    runUntil(ms) {
      for (let i = 0; i < 100_000 && clock.now() < ms; i++) {
        clock.advance(Math.min(TICK, ms - clock.now()));
        ticker.tick();
      }
    },
  };
}

/** Every PUBLISH the client got up to now: a PINGREQ is answered after what was already queued. */
async function received(c: TestClient): Promise<PublishPacket[]> {
  c.send({ type: PacketType.Pingreq });
  const out: PublishPacket[] = [];
  for (let i = 0; i < 1000; i++) {
    const p = await c.next();
    if (p.type === PacketType.Pingresp) return out;
    assert.equal(p.type, PacketType.Publish);
    out.push(p);
  }
  return assert.fail('no PINGRESP after 1000 packets');
}

const byTopic = (ps: PublishPacket[]): Map<string, string> => new Map(ps.map((p) => [p.topic, p.payload.toString()]));

async function subscriber(broker: BrokerCore, filter: string, clientId = 'sys-sub'): Promise<TestClient> {
  const c = (await TestClient.connect(broker, { clientId, version: 5 })).client;
  const codes = await c.subscribe(filter, 0);
  assert.deepEqual(codes, [0]);
  return c;
}

describe('$SYS topics', () => {
  test('a $SYS/# subscriber gets the retained tree in Mosquitto\'s layout at once, RETAIN set', async (t) => {
    const { broker } = rig(t);
    const got = await received(await subscriber(broker, '$SYS/#'));
    assert.ok(got.every((p) => p.retain), '[MQTT-3.3.1-8] retained messages sent on subscribe carry RETAIN 1');
    const tree = byTopic(got);
    assert.equal(tree.get('$SYS/broker/version'), `petrel version ${VERSION}`);
    assert.equal(tree.get('$SYS/broker/uptime'), '0 seconds');
    for (const topic of ['clients/total', 'clients/connected', 'clients/disconnected', 'clients/expired', 'messages/received', 'messages/sent',
      'bytes/received', 'bytes/sent', 'subscriptions/count', 'shared_subscriptions/count', 'retained messages/count',
      'publish/messages/received', 'publish/messages/sent', 'publish/messages/dropped']) {
      assert.equal(tree.get(`$SYS/broker/${topic}`), '0', topic);
    }
    for (const load of ['messages/received', 'messages/sent', 'publish/received', 'publish/sent', 'publish/dropped', 'bytes/received', 'bytes/sent',
      'sockets', 'connections']) {
      for (const w of ['1min', '5min', '15min']) assert.equal(tree.get(`$SYS/broker/load/${load}/${w}`), '0.00', `load/${load}/${w}`);
    }
    assert.match(tree.get('$SYS/broker/heap/current') ?? '', /^\d+$/);
    assert.match(tree.get('$SYS/broker/heap/maximum') ?? '', /^\d+$/);
    // Everything but the version expires after 60 s, as Mosquitto sets it.
    const version = got.find((p) => p.topic === '$SYS/broker/version');
    assert.equal(version?.properties?.messageExpiryInterval, undefined);
    const uptime = got.find((p) => p.topic === '$SYS/broker/uptime');
    assert.equal(uptime?.properties?.messageExpiryInterval, 60);
  });

  test('[MQTT-4.7.2-1] # and +/... subscriptions never see $SYS messages, retained or live', async (t) => {
    const { broker, runUntil } = rig(t);
    const all = await subscriber(broker, '#', 'hash');
    const plus = await subscriber(broker, '+/broker/#', 'plus');
    const sys = await subscriber(broker, '$SYS/broker/uptime', 'sys');
    assert.deepEqual((await received(all)).map((p) => p.topic), []);
    assert.deepEqual((await received(plus)).map((p) => p.topic), []);
    assert.deepEqual((await received(sys)).map((p) => p.topic), ['$SYS/broker/uptime']);
    runUntil(10_000);
    assert.deepEqual((await received(all)).map((p) => p.topic), []);
    assert.deepEqual((await received(plus)).map((p) => p.topic), []);
    const live = await received(sys);
    assert.deepEqual(live.map((p) => [p.topic, p.payload.toString(), p.retain]), [['$SYS/broker/uptime', '10 seconds', false]]);
  });

  test('updates come every interval seconds, and only for the values that changed (uptime always)', async (t) => {
    const { broker, runUntil } = rig(t, { sys: { interval: 5 } });
    const sub = await subscriber(broker, '$SYS/#');
    await received(sub);
    runUntil(4900);
    assert.deepEqual(await received(sub), [], 'nothing before the interval is over');
    runUntil(5000);
    const first = byTopic(await received(sub));
    assert.equal(first.get('$SYS/broker/uptime'), '5 seconds');
    // The subscriber itself: one client, one subscription, its packets.
    assert.equal(first.get('$SYS/broker/clients/total'), '1');
    assert.equal(first.get('$SYS/broker/clients/connected'), '1');
    assert.equal(first.get('$SYS/broker/clients/maximum'), '1');
    assert.equal(first.get('$SYS/broker/subscriptions/count'), '1');
    assert.equal(first.get('$SYS/broker/messages/received'), '4', 'CONNECT, SUBSCRIBE and two PINGREQ');
    assert.equal(first.has('$SYS/broker/version'), false, 'the version is published once, at start');
    assert.equal(first.has('$SYS/broker/clients/disconnected'), false, 'still 0: not published again');
    assert.equal(first.has('$SYS/broker/clients/expired'), false);
    assert.equal(first.has('$SYS/broker/publish/messages/received'), false);
    runUntil(10_000);
    const second = byTopic(await received(sub));
    assert.equal(second.get('$SYS/broker/uptime'), '10 seconds');
    assert.equal(second.has('$SYS/broker/clients/total'), false);
    assert.equal(second.has('$SYS/broker/subscriptions/count'), false);
  });

  test('load averages: the rate per minute of the last interval, folded in with e^(-dt/window), two decimals, as Mosquitto does', async (t) => {
    const { broker, runUntil } = rig(t, { sys: { interval: 10 } });
    const pub = (await TestClient.connect(broker, { clientId: 'pub', version: 4 })).client;
    for (let i = 0; i < 5; i++) pub.publish('load/x', `m${i}`);
    await pub.expectNothing();
    runUntil(10_000);
    // 5 PUBLISH in 10 s: 30 per minute.
    const expect = (rate: number, window: number, from = 0): number => rate + Math.exp(-10 / window) * (from - rate);
    const load1 = expect(30, 60);
    const sub = await subscriber(broker, '$SYS/broker/load/publish/received/+');
    assert.deepEqual(byTopic(await received(sub)), new Map([
      ['$SYS/broker/load/publish/received/1min', load1.toFixed(2)],
      ['$SYS/broker/load/publish/received/5min', expect(30, 300).toFixed(2)],
      ['$SYS/broker/load/publish/received/15min', expect(30, 900).toFixed(2)],
    ]));
    assert.equal(load1.toFixed(2), '4.61');
    const counts = await subscriber(broker, '$SYS/broker/publish/messages/received', 'counts');
    assert.deepEqual([...byTopic(await received(counts)).values()], ['5']);
    // A quiet interval: the averages decay towards 0.
    runUntil(20_000);
    const decayed = byTopic(await received(sub));
    assert.equal(decayed.get('$SYS/broker/load/publish/received/1min'), expect(0, 60, load1).toFixed(2));
  });

  test('sys.enabled false: no $SYS message at start or after any interval', async (t) => {
    const { broker, runUntil } = rig(t, { sys: { enabled: false } });
    const sub = await subscriber(broker, '$SYS/#');
    assert.deepEqual(await received(sub), []);
    runUntil(30_000);
    assert.deepEqual(await received(sub), []);
  });

  test('the $SYS tree is apart from the clients\' retained messages: no quota, not listed, never stored', async (t) => {
    const store = new MemoryStore();
    const { broker, runUntil } = rig(t, { store, maxRetainedMessages: 1 });
    await broker.restore();
    const c = (await TestClient.connect(broker, { clientId: 'r', version: 5 })).client;
    c.publish('app/state', 'on', 1, 1, true);
    const ack = await c.expect(PacketType.Puback);
    // 0x10 No matching subscribers: accepted; past the quota it would be 0x97 Quota exceeded.
    assert.equal(ack.reasonCode, 0x10, 'the one retained message allowed is the client\'s, not taken by $SYS');
    runUntil(10_000);
    assert.deepEqual(broker.retained('#').map((m) => m.topic), ['app/state']);
    const sub = await subscriber(broker, '$SYS/broker/retained messages/count', 'count');
    assert.deepEqual([...byTopic(await received(sub)).values()], ['1']);
    assert.deepEqual((await store.open()).retained.map((r) => r.topic), ['app/state']);
  });

  test('clients cannot publish into $SYS: the broker\'s values stay', async (t) => {
    const { broker } = rig(t);
    const c = (await TestClient.connect(broker, { clientId: 'evil', version: 4 })).client;
    c.publish('$SYS/broker/version', 'forged', 0, undefined, true);
    await c.expectNothing();
    const sub = await subscriber(broker, '$SYS/broker/version', 'v');
    assert.deepEqual([...byTopic(await received(sub)).values()], [`petrel version ${VERSION}`]);
  });

  test('an embedded broker publishes no $SYS tree unless asked', async (t) => {
    const broker = new BrokerCore({ clock: new ManualClock(0), ticker: new ManualTicker() });
    t.after(() => broker.closeConnections());
    assert.deepEqual(await received(await subscriber(broker, '$SYS/#')), []);
  });

  test('BrokerOptions.sys is checked: unknown keys and bad intervals are refused', () => {
    assert.throws(() => new BrokerCore({ sys: { interval: 0 } }), /sys/);
    assert.throws(() => new BrokerCore({ sys: { every: 10 } as never }), /unknown key "every"/);
    assert.throws(() => new BrokerCore({ sys: true as never }), /sys/);
  });
});

describe('the server\'s sys section', () => {
  test('on by default: an MQTT.js subscriber on $SYS/# gets version and clients/connected; RunningServer.metrics renders, and GET /metrics serves it', async (t) => {
    const server = await startServer(validateConfig({
      port: 0, wsPort: false, host: '127.0.0.1', logLevel: 'silent', store: { type: 'memory' },
      http: { port: 0, apiKeys: ['sys-topics-test-key-0123456789'], metricsAuth: false },
    }), silentLogger);
    t.after(() => server.stop());
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${server.listener.port}`, { clientId: 'sys-mqttjs', reconnectPeriod: 0 });
    t.after(() => client.endAsync());
    const tree = new Map<string, string>();
    const got = withTimeout(new Promise<void>((resolve) => {
      client.on('message', (topic, payload) => {
        tree.set(topic, payload.toString());
        if (tree.has('$SYS/broker/version') && tree.has('$SYS/broker/clients/connected')) resolve();
      });
    }), 5000, 'the retained $SYS tree');
    await client.subscribeAsync('$SYS/#');
    await got;
    assert.equal(tree.get('$SYS/broker/version'), `petrel version ${VERSION}`);
    const text = parseExposition(await server.metrics.render());
    assert.equal(sample(text, 'petrel_clients_connected', { protocol: '3.1.1' }), 1);
    assert.equal(sample(text, 'petrel_packets_received_total', { type: 'subscribe' }), 1);
    const res = await fetch(`http://127.0.0.1:${server.http?.address?.port ?? 0}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), server.metrics.contentType);
    assert.equal(sample(parseExposition(await res.text()), 'petrel_clients_connected', { protocol: '3.1.1' }), 1);
  });

  test('sys.enabled false in the configuration: no $SYS tree', async (t) => {
    const server = await startServer(validateConfig({
      port: 0, wsPort: false, host: '127.0.0.1', logLevel: 'silent', store: { type: 'memory' }, sys: { enabled: false }, http: { enabled: false },
    }), silentLogger);
    t.after(() => server.stop());
    const c = new TestClient(server.broker, 4);
    c.send({ type: PacketType.Connect, protocolVersion: 4, protocolName: 'MQTT', clientId: 'off', clean: true, keepalive: 0 });
    await c.expect(PacketType.Connack);
    await c.subscribe('$SYS/#', 0);
    assert.deepEqual(await received(c), []);
  });
});
