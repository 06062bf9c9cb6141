/**
 * createMetrics and BrokerCore.metrics(): the counters move exactly as packets flow, drops are
 * counted by reason, connections by listener and protocol, latencies of hooks and the store are
 * histograms, and render() is valid Prometheus text.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../../src/broker/broker.js';
import { encode, type Packet, PacketType } from '../../../src/protocol/index.js';
import { MemoryStore } from '../../../src/persistence/memory.js';
import { ManualClock, ManualTicker } from '../../../src/session/clock.js';
import type { ConnectionMeta, ListenerInfo } from '../../../src/transport/types.js';
import { createMetrics } from '../../../src/ops/metrics.js';
import { TestClient } from '../../helpers/duplex-client.js';
import { parseExposition, sample } from '../../helpers/prometheus.js';

const listener = (name: string): ListenerInfo => ({ name, type: 'tcp', host: '127.0.0.1', port: 1883 });
const meta = (name: string): ConnectionMeta => ({ remoteAddress: '127.0.0.1', remotePort: 50000, listener: listener(name) });
const bytesOf = (packets: Packet[], version: 4 | 5): number => packets.reduce((n, p) => n + encode(p, version).length, 0);
const total = (c: TestClient): number => c.raw.reduce((n, b) => n + b.length, 0);

describe('broker counters as packets flow', () => {
  test('a known exchange: exact packet and byte counts in and out, by type, in metrics() and in render()', async (t) => {
    const broker = new BrokerCore({ sys: { enabled: false } });
    t.after(() => broker.closeConnections());
    const subConnect: Packet = { type: PacketType.Connect, protocolVersion: 4, protocolName: 'MQTT', clientId: 'sub', clean: true, keepalive: 0 };
    const pubConnect: Packet = { type: PacketType.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: 'pub', clean: true, keepalive: 0 };
    const subscribe: Packet = { type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'x/#', qos: 1 }] };
    const p0: Packet = { type: PacketType.Publish, topic: 'x/1', payload: Buffer.from('a'), qos: 0, retain: false, dup: false };
    const p1: Packet = { type: PacketType.Publish, topic: 'x/2', payload: Buffer.from('bb'), qos: 1, retain: false, dup: false, packetId: 7 };

    const sub = new TestClient(broker, 4, meta('tcp-a'));
    sub.send(subConnect);
    await sub.expect(PacketType.Connack);
    sub.send(subscribe);
    await sub.expect(PacketType.Suback);
    const pub = new TestClient(broker, 5, meta('ws-b'));
    pub.send(pubConnect);
    await pub.expect(PacketType.Connack);
    pub.send(p0);
    pub.send(p1);
    await pub.expect(PacketType.Puback);
    await sub.expect(PacketType.Publish);
    const delivered = await sub.expect(PacketType.Publish);
    const puback: Packet = { type: PacketType.Puback, packetId: delivered.packetId as number, reasonCode: 0 };
    sub.send(puback);
    // PINGREQ runs after the PUBACK: once PINGRESP is here, the broker has counted both.
    sub.send({ type: PacketType.Pingreq });
    await sub.expect(PacketType.Pingresp);

    const m = broker.metrics();
    const received = Object.fromEntries(Object.entries(m.received).filter(([, c]) => c.packets > 0).map(([k, c]) => [k, c.packets]));
    assert.deepEqual(received, { connect: 2, subscribe: 1, publish: 2, puback: 1, pingreq: 1 });
    const sent = Object.fromEntries(Object.entries(m.sent).filter(([, c]) => c.packets > 0).map(([k, c]) => [k, c.packets]));
    assert.deepEqual(sent, { connack: 2, suback: 1, publish: 2, puback: 1, pingresp: 1 });
    assert.equal(m.received.connect.bytes, bytesOf([subConnect], 4) + bytesOf([pubConnect], 5));
    assert.equal(m.received.publish.bytes, bytesOf([p0, p1], 5));
    assert.equal(m.received.puback.bytes, 4);
    assert.equal(m.received.pingreq.bytes, 2);
    // What the broker counted as sent is exactly what the two clients read.
    assert.equal(Object.values(m.sent).reduce((n, c) => n + c.bytes, 0), total(sub) + total(pub));
    assert.equal(m.messages.published, 2);
    assert.equal(m.messages.delivered, 2);
    assert.equal(m.connects, 2);
    assert.equal(m.sockets, 2);
    assert.deepEqual(m.clients.byListener.sort((a, b) => a.listener.localeCompare(b.listener)), [
      { listener: 'tcp-a', protocol: '3.1.1', connected: 1, total: 1 },
      { listener: 'ws-b', protocol: '5.0', connected: 1, total: 1 },
    ]);
    assert.deepEqual(m.sessions, { total: 2, connected: 2, disconnected: 0, expired: 0, maximum: 2 });
    assert.equal(m.subscriptions.total, 1);
    assert.equal(m.inflight, 0);

    const text = parseExposition(await createMetrics(broker).render());
    assert.equal(sample(text, 'petrel_packets_received_total', { type: 'publish' }), 2);
    assert.equal(sample(text, 'petrel_packets_sent_total', { type: 'publish' }), 2);
    assert.equal(sample(text, 'petrel_packets_received_total', { type: 'auth' }), 0);
    assert.equal(sample(text, 'petrel_bytes_received_total', { type: 'publish' }), bytesOf([p0, p1], 5));
    assert.equal(sample(text, 'petrel_messages_published_total'), 2);
    assert.equal(sample(text, 'petrel_messages_delivered_total'), 2);
    assert.equal(sample(text, 'petrel_clients_connected', { listener: 'ws-b', protocol: '5.0' }), 1);
    assert.equal(sample(text, 'petrel_connections_total', { listener: 'tcp-a', protocol: '3.1.1' }), 1);
    assert.equal(sample(text, 'petrel_sessions', { state: 'connected' }), 2);
    assert.equal(sample(text, 'petrel_subscriptions'), 1);
  });

  test('connections by listener and protocol: gauges follow disconnects, totals stay', async (t) => {
    const broker = new BrokerCore({ sys: { enabled: false } });
    t.after(() => broker.closeConnections());
    const a = (await TestClient.connect(broker, { clientId: 'a', version: 3, meta: meta('l1') })).client;
    await TestClient.connect(broker, { clientId: 'b', version: 5, meta: meta('l1') });
    await TestClient.connect(broker, { clientId: 'c', version: 5, meta: meta('l2') });
    await TestClient.connect(broker, { clientId: 'd', version: 4 });
    a.disconnect();
    await a.closed;
    const metrics = createMetrics(broker, { defaultMetrics: false });
    const text = parseExposition(await metrics.render());
    assert.equal(sample(text, 'petrel_clients_connected', { listener: 'l1', protocol: '3.1' }), 0);
    assert.equal(sample(text, 'petrel_connections_total', { listener: 'l1', protocol: '3.1' }), 1);
    assert.equal(sample(text, 'petrel_clients_connected', { listener: 'l1', protocol: '5.0' }), 1);
    assert.equal(sample(text, 'petrel_clients_connected', { listener: 'l2', protocol: '5.0' }), 1);
    // A stream handed to handle() without a listener.
    assert.equal(sample(text, 'petrel_clients_connected', { listener: 'none', protocol: '3.1.1' }), 1);
  });
});

describe('drops by reason', () => {
  test('queue-full, expired and too-large are counted apart, in metrics() and as petrel_messages_dropped_total', async (t) => {
    const clock = new ManualClock(0);
    const ticker = new ManualTicker();
    const broker = new BrokerCore({ clock, ticker, maxQueuedMessages: 1, sys: { enabled: false } });
    t.after(() => broker.closeConnections());
    // An offline persistent session with room for one queued message.
    const off = (await TestClient.connect(broker, { clientId: 'off', version: 5, clean: false, properties: { sessionExpiryInterval: 300 } })).client;
    await off.subscribe('d/#', 1);
    off.disconnect();
    await off.closed;
    await broker.publish({ topic: 'd/expiring', payload: 'e', qos: 1, properties: { messageExpiryInterval: 1 } });
    await broker.publish({ topic: 'd/full', payload: 'f', qos: 1 });
    assert.equal(broker.metrics().messages.dropped['queue-full'], 1, 'the second message found the queue full');
    // The queued one expires before the client is back [MQTT-3.3.2-5].
    clock.advance(2000);
    const back = (await TestClient.connect(broker, { clientId: 'off', version: 5, clean: false, properties: { sessionExpiryInterval: 300 } })).client;
    await back.expectNothing();
    // A 5.0 client whose Maximum Packet Size the message exceeds [MQTT-3.1.2-25].
    const small = (await TestClient.connect(broker, { clientId: 'small', version: 5, properties: { maximumPacketSize: 20 } })).client;
    await small.subscribe('big', 0);
    await broker.publish({ topic: 'big', payload: Buffer.alloc(100), qos: 0 });
    await small.expectNothing();

    const m = broker.metrics();
    assert.deepEqual(m.messages.dropped, { 'queue-full': 1, expired: 1, 'too-large': 1, 'no-receiver': 0, 'slow-subscriber': 0 });
    assert.equal(broker.stats.messagesDropped, 3);
    const text = parseExposition(await createMetrics(broker, { defaultMetrics: false }).render());
    assert.equal(sample(text, 'petrel_messages_dropped_total', { reason: 'queue-full' }), 1);
    assert.equal(sample(text, 'petrel_messages_dropped_total', { reason: 'expired' }), 1);
    assert.equal(sample(text, 'petrel_messages_dropped_total', { reason: 'too-large' }), 1);
    assert.equal(sample(text, 'petrel_messages_dropped_total', { reason: 'slow-subscriber' }), 0);
  });
});

describe('state gauges', () => {
  test('retained messages and bytes, queued and inflight deliveries, offline sessions', async (t) => {
    const broker = new BrokerCore({ sys: { enabled: false }, maxInflight: 1 });
    t.after(() => broker.closeConnections());
    await broker.publish({ topic: 'r/1', payload: 'one', qos: 0, retain: true });
    await broker.publish({ topic: 'r/2', payload: 'two', qos: 0, retain: true });
    const sub = (await TestClient.connect(broker, { clientId: 'q', version: 4 })).client;
    assert.deepEqual(await sub.subscribe('q', 1), [1]);
    // One in flight (the window is 1), two behind it in the queue; the client does not acknowledge.
    for (let i = 0; i < 3; i++) await broker.publish({ topic: 'q', payload: `m${i}`, qos: 1 });
    await sub.expect(PacketType.Publish);
    const off = (await TestClient.connect(broker, { clientId: 'off', version: 4, clean: false })).client;
    off.drop();
    await off.closed;
    const m = broker.metrics();
    assert.equal(m.retained.messages, 2);
    assert.ok(m.retained.bytes >= 'r/1'.length + 'one'.length + 'r/2'.length + 'two'.length);
    assert.equal(m.inflight, 1);
    assert.equal(m.queued.messages, 2);
    assert.equal(m.queued.deepest, 2);
    assert.ok(m.queued.bytes > 0);
    assert.deepEqual(m.sessions, { total: 2, connected: 1, disconnected: 1, expired: 0, maximum: 2 });
    const text = parseExposition(await createMetrics(broker, { defaultMetrics: false }).render());
    assert.equal(sample(text, 'petrel_retained_messages'), 2);
    assert.equal(sample(text, 'petrel_retained_bytes'), m.retained.bytes);
    assert.equal(sample(text, 'petrel_inflight_messages'), 1);
    assert.equal(sample(text, 'petrel_queued_messages'), 2);
    assert.equal(sample(text, 'petrel_queue_depth_max'), 2);
    assert.equal(sample(text, 'petrel_sessions', { state: 'disconnected' }), 1);
  });
});

describe('latency histograms', () => {
  test('hooks: one observation per call of each kind, synchronous and asynchronous, as petrel_hook_duration_seconds', async (t) => {
    const broker = new BrokerCore({
      sys: { enabled: false },
      authenticate: async () => true,
      authorizePublish: () => true,
      authorizeSubscribe: () => true,
    });
    t.after(() => broker.closeConnections());
    broker.setHook('authorizeDelivery', () => true);
    const c = (await TestClient.connect(broker, { clientId: 'h', version: 4 })).client;
    await c.subscribe('h/#', 0);
    c.publish('h/1', 'x');
    c.publish('h/2', 'y');
    await c.expect(PacketType.Publish);
    await c.expect(PacketType.Publish);
    const h = broker.metrics().hooks;
    assert.equal(h.authenticate.count, 1);
    assert.equal(h.authorizeSubscribe.count, 1);
    assert.equal(h.authorizePublish.count, 2);
    assert.equal(h.delivery.count, 2);
    assert.equal(h.publishInterceptor.count, 0);
    for (const s of Object.values(h)) assert.equal(s.counts.reduce((a, b) => a + b, 0), s.count, 'every observation is in one bucket');

    const text = parseExposition(await createMetrics(broker, { defaultMetrics: false }).render());
    assert.equal(text.types.get('petrel_hook_duration_seconds'), 'histogram');
    assert.equal(sample(text, 'petrel_hook_duration_seconds_count', { hook: 'authorizePublish' }), 2);
    assert.equal(sample(text, 'petrel_hook_duration_seconds_bucket', { hook: 'authorizePublish', le: '+Inf' }), 2);
    // Buckets are cumulative: never decreasing, ending at the count.
    const buckets = text.samples.filter((s) => s.name === 'petrel_hook_duration_seconds_bucket' && s.labels.hook === 'authenticate');
    assert.equal(buckets.length, h.authenticate.bounds.length + 1);
    for (let i = 1; i < buckets.length; i++) assert.ok((buckets[i] as { value: number }).value >= (buckets[i - 1] as { value: number }).value);
    assert.equal(buckets.at(-1)?.value, 1);
    assert.ok(sample(text, 'petrel_hook_duration_seconds_sum', { hook: 'authenticate' }) >= 0);
  });

  test('the store: every committed batch is one observation of its commit latency and its write time', async (t) => {
    const broker = new BrokerCore({ sys: { enabled: false }, store: new MemoryStore() });
    t.after(() => broker.closeConnections());
    await broker.restore();
    const c = (await TestClient.connect(broker, { clientId: 'durable', version: 4, clean: false })).client;
    await c.subscribe('s/#', 1);
    c.publish('kept/1', 'v', 1, 1, true);
    await c.expect(PacketType.Puback);
    const store = broker.metrics().store;
    assert.ok(store !== undefined);
    assert.ok(store.batches >= 2, `${store.batches} batches`);
    assert.ok(store.records >= store.batches);
    assert.equal(store.errors, 0);
    assert.equal(store.commit.count, store.batches);
    assert.equal(store.write.count, store.batches);
    const text = parseExposition(await createMetrics(broker, { defaultMetrics: false }).render());
    assert.equal(sample(text, 'petrel_store_commit_latency_seconds_count'), store.batches);
    assert.equal(sample(text, 'petrel_store_batches_total'), store.batches);
  });

  test('without a store there are no store histogram samples and metrics().store is undefined', async (t) => {
    const broker = new BrokerCore({ sys: { enabled: false } });
    t.after(() => broker.closeConnections());
    assert.equal(broker.metrics().store, undefined);
    const text = parseExposition(await createMetrics(broker, { defaultMetrics: false }).render());
    assert.equal(text.samples.filter((s) => s.name.startsWith('petrel_store_commit_latency_seconds')).length, 0);
  });
});

describe('render()', () => {
  test('is Prometheus text: every sample typed, petrel_ names with unit suffixes, process metrics included', async (t) => {
    const broker = new BrokerCore({ sys: { enabled: false } });
    t.after(() => broker.closeConnections());
    const metrics = createMetrics(broker);
    assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
    const text = parseExposition(await metrics.render());
    for (const [name, type] of text.types) {
      assert.ok(name.startsWith('petrel_'), `${name} has the prefix`);
      if (type === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`);
      assert.ok(text.help.has(name), `${name} has HELP`);
    }
    for (const name of ['petrel_process_cpu_seconds_total', 'petrel_nodejs_eventloop_lag_seconds', 'petrel_nodejs_heap_size_used_bytes']) {
      assert.ok(text.types.has(name), `${name} is there`);
    }
    assert.ok(text.samples.length > 100);
  });

  test('the prefix option renames every metric; two renders in a row see the counters move', async (t) => {
    const broker = new BrokerCore({ sys: { enabled: false } });
    t.after(() => broker.closeConnections());
    const metrics = createMetrics(broker, { prefix: 'mqtt_', defaultMetrics: false });
    const before = parseExposition(await metrics.render());
    assert.ok([...before.types.keys()].every((n) => n.startsWith('mqtt_')));
    assert.equal(sample(before, 'mqtt_messages_published_total'), 0);
    await broker.publish({ topic: 'p', payload: 'x' });
    const after = parseExposition(await metrics.render());
    assert.equal(sample(after, 'mqtt_messages_published_total'), 1);
    assert.deepEqual(metrics.registry.getMetricsAsArray().length, before.types.size);
  });
});
