/**
 * Connection and traffic limits: connected clients (broker-wide and per listener), connection
 * rates (per listener and per source), topic length, subscriptions per client, inbound message
 * and byte rates (throttled, nothing lost) and flapping client ids. Each test refuses the
 * offending client with its reason code while a well-behaved client keeps publishing and
 * subscribing. Time is a ManualClock; the timer wheel is driven by a ManualTicker.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import type { LogFn, Logger } from '../../src/observability/logger.js';
import { encode, type Packet, PacketType, ProtocolVersion, ReasonCode } from '../../src/protocol/index.js';
import { ManualClock, ManualTicker } from '../../src/session/clock.js';
import type { ConnectionMeta, ListenerInfo, ListenerLimits } from '../../src/transport/types.js';
import { TestClient, waitClosed } from '../helpers/duplex-client.js';

function listener(name: string, limits: Partial<ListenerLimits>): ListenerInfo {
  return { name, type: 'tcp', host: '127.0.0.1', port: 1883, limits: { maxConnections: 0, maxConnectionRate: 0, maxConnectionRatePerSource: 0, ...limits } };
}

const meta = (l: ListenerInfo | undefined, remoteAddress = '192.0.2.1'): ConnectionMeta => ({ remoteAddress, remotePort: 40000, listener: l });

function setup(o: BrokerOptions = {}): { broker: BrokerCore; clock: ManualClock; ticker: ManualTicker } {
  const clock = new ManualClock(0);
  const ticker = new ManualTicker();
  return { broker: new BrokerCore({ clock, ticker, connectTimeout: 0, ...o }), clock, ticker };
}

/** A subscriber and a publisher that must keep working whatever happens to others. */
async function goodPair(broker: BrokerCore, m?: ConnectionMeta): Promise<{ sub: TestClient; pub: TestClient }> {
  const s = await TestClient.connect(broker, { clientId: 'good-sub', version: 5, ...(m ? { meta: m } : {}) });
  assert.equal(s.connack.reasonCode, ReasonCode.Success);
  assert.deepEqual(await s.client.subscribe('good/#', 1), [1]);
  const p = await TestClient.connect(broker, { clientId: 'good-pub', version: 5, ...(m ? { meta: m } : {}) });
  assert.equal(p.connack.reasonCode, ReasonCode.Success);
  return { sub: s.client, pub: p.client };
}

let goodId = 1;
/** The good pair still works: a new subscription is granted and a QoS 1 message goes through, acknowledged. */
async function stillWorks({ sub, pub }: { sub: TestClient; pub: TestClient }): Promise<void> {
  const id = goodId++;
  assert.deepEqual(await sub.subscribe(`good-extra/${id}`, 0, 100 + (id % 1000)), [0]);
  pub.publish('good/t', `still ${id}`, 1, id % 60000 + 1);
  const ack = await pub.expect(PacketType.Puback);
  assert.equal(ack.reasonCode ?? 0, 0);
  const m = await sub.expect(PacketType.Publish);
  assert.equal(m.payload.toString(), `still ${id}`);
  if (m.qos > 0) sub.send({ type: PacketType.Puback, packetId: m.packetId as number });
}

/** The CONNACK code of a refused CONNECT, after the broker closed the connection: 5.0 its reason code, 3.1.1 the return code byte on the wire. */
async function refused(broker: BrokerCore, clientId: string, version: 4 | 5, m?: ConnectionMeta): Promise<number> {
  const { client, connack } = await TestClient.connect(broker, { clientId, version, ...(m ? { meta: m } : {}) });
  await waitClosed(client);
  if (version === 5) return connack.reasonCode;
  const wire = Buffer.concat(client.raw);
  assert.equal(wire.length, 4, 'a 3.1.1 CONNACK and nothing else');
  return wire[3] as number;
}

describe('maxConnections', () => {
  test('broker-wide: the CONNECT beyond it gets CONNACK 0x97 (3.1.1: 3) and is closed; a takeover does not count twice', async () => {
    const { broker } = setup({ maxConnections: 3 });
    const good = await goodPair(broker);
    const third = await TestClient.connect(broker, { clientId: 'third', version: 5 });
    assert.equal(third.connack.reasonCode, ReasonCode.Success);
    // [MQTT-3.2.2-6] [MQTT-3.2.2-7]: a refusing CONNACK, then the connection closes.
    assert.equal(await refused(broker, 'fourth', 5), ReasonCode.QuotaExceeded);
    assert.equal(await refused(broker, 'fourth-v4', 4), 3); // 3.1.1: Server unavailable
    await stillWorks(good);
    // [MQTT-3.1.4-2]: the same client id takes over; the count stays at three.
    const again = await TestClient.connect(broker, { clientId: 'third', version: 5 });
    assert.equal(again.connack.reasonCode, ReasonCode.Success);
    await waitClosed(third.client);
    assert.equal(broker.clients().length, 3);
    assert.equal(await refused(broker, 'fifth', 5), ReasonCode.QuotaExceeded);
    // One leaves: there is room for one more.
    again.client.disconnect();
    await waitClosed(again.client);
    const fresh = await TestClient.connect(broker, { clientId: 'fresh', version: 4 });
    assert.equal(fresh.connack.reasonCode, 0);
    await stillWorks(good);
    await broker.closeConnections();
  });

  test('per listener: the listener at its maxConnections refuses with 0x97, another listener and its clients carry on', async () => {
    const { broker } = setup();
    const small = listener('small', { maxConnections: 1 });
    const big = listener('big', {});
    const good = await goodPair(broker, meta(big));
    const first = await TestClient.connect(broker, { clientId: 's1', version: 5, meta: meta(small) });
    assert.equal(first.connack.reasonCode, ReasonCode.Success);
    assert.equal(await refused(broker, 's2', 5, meta(small)), ReasonCode.QuotaExceeded);
    assert.equal(await refused(broker, 's2-v4', 4, meta(small)), 3);
    // A takeover on the same listener replaces its connection: allowed.
    const takeover = await TestClient.connect(broker, { clientId: 's1', version: 5, meta: meta(small) });
    assert.equal(takeover.connack.reasonCode, ReasonCode.Success);
    await waitClosed(first.client);
    const other = await TestClient.connect(broker, { clientId: 'b3', version: 5, meta: meta(big) });
    assert.equal(other.connack.reasonCode, ReasonCode.Success);
    await stillWorks(good);
    takeover.client.disconnect();
    await waitClosed(takeover.client);
    const later = await TestClient.connect(broker, { clientId: 's3', version: 5, meta: meta(small) });
    assert.equal(later.connack.reasonCode, ReasonCode.Success);
    await broker.closeConnections();
  });
});

describe('connection rate', () => {
  test('maxConnectionRate: the CONNECT beyond it in one second gets 0x9F (3.1.1: 3); the next second accepts again', async () => {
    const { broker, clock } = setup();
    const l = listener('rated', { maxConnectionRate: 3 });
    const good = await goodPair(broker, meta(l));
    const c3 = await TestClient.connect(broker, { clientId: 'c3', version: 5, meta: meta(l, '192.0.2.7') });
    assert.equal(c3.connack.reasonCode, ReasonCode.Success);
    assert.equal(await refused(broker, 'c4', 5, meta(l, '192.0.2.8')), ReasonCode.ConnectionRateExceeded);
    assert.equal(await refused(broker, 'c4-v4', 4, meta(l, '192.0.2.8')), 3);
    await stillWorks(good);
    clock.advance(1000);
    const next = await TestClient.connect(broker, { clientId: 'c5', version: 5, meta: meta(l, '192.0.2.8') });
    assert.equal(next.connack.reasonCode, ReasonCode.Success);
    await stillWorks(good);
    await broker.closeConnections();
  });

  test('maxConnectionRatePerSource: one address is refused with 0x9F while another connects', async () => {
    const { broker, clock } = setup();
    const l = listener('per-source', { maxConnectionRatePerSource: 2 });
    const good = await goodPair(broker, meta(l, '198.51.100.1'));
    const a1 = await TestClient.connect(broker, { clientId: 'a1', version: 5, meta: meta(l, '203.0.113.5') });
    const a2 = await TestClient.connect(broker, { clientId: 'a2', version: 4, meta: meta(l, '203.0.113.5') });
    assert.equal(a1.connack.reasonCode, ReasonCode.Success);
    assert.equal(a2.connack.reasonCode, 0);
    assert.equal(await refused(broker, 'a3', 5, meta(l, '203.0.113.5')), ReasonCode.ConnectionRateExceeded);
    assert.equal(await refused(broker, 'a3-v4', 4, meta(l, '203.0.113.5')), 3);
    const b1 = await TestClient.connect(broker, { clientId: 'b1', version: 5, meta: meta(l, '203.0.113.6') });
    assert.equal(b1.connack.reasonCode, ReasonCode.Success);
    await stillWorks(good);
    clock.advance(1000);
    const a4 = await TestClient.connect(broker, { clientId: 'a4', version: 5, meta: meta(l, '203.0.113.5') });
    assert.equal(a4.connack.reasonCode, ReasonCode.Success);
    await broker.closeConnections();
  });
});

describe('maxTopicLength (UTF-8 bytes) [MQTT-4.7.3-3]', () => {
  test('5.0 PUBLISH with a longer topic: PUBACK / PUBREC 0x90, at QoS 0 DISCONNECT 0x90; not routed', async () => {
    const { broker } = setup({ maxTopicLength: 12 });
    const good = await goodPair(broker);
    const spy = (await TestClient.connect(broker, { clientId: 'spy', version: 5 })).client;
    assert.deepEqual(await spy.subscribe('#', 0), [0]);
    const bad = (await TestClient.connect(broker, { clientId: 'long', version: 5 })).client;
    bad.publish('exactly/12by', 'fits', 1, 1); // 12 bytes: allowed
    assert.equal((await bad.expect(PacketType.Puback)).reasonCode ?? 0, 0);
    assert.equal((await spy.expect(PacketType.Publish)).topic, 'exactly/12by');
    bad.publish('thirteen/byte', 'x', 1, 2);
    assert.equal((await bad.expect(PacketType.Puback)).reasonCode, ReasonCode.TopicNameInvalid);
    bad.publish('thirteen/byte', 'x', 2, 3);
    assert.equal((await bad.expect(PacketType.Pubrec)).reasonCode, ReasonCode.TopicNameInvalid);
    // Seven characters, fourteen bytes: the limit is in bytes.
    bad.publish('ééééééé', 'x', 1, 4);
    assert.equal((await bad.expect(PacketType.Puback)).reasonCode, ReasonCode.TopicNameInvalid);
    await spy.expectNothing(); // none of them was routed
    await stillWorks(good);
    bad.publish('thirteen/byte', 'x', 0);
    const d = await bad.expect(PacketType.Disconnect);
    assert.equal(d.reasonCode, ReasonCode.TopicNameInvalid);
    await waitClosed(bad);
    await stillWorks(good);
    await broker.closeConnections();
  });

  test('3.1.1 PUBLISH with a longer topic closes the connection; SUBSCRIBE with a longer filter gets 0x8F (3.1.1: 0x80)', async () => {
    const { broker } = setup({ maxTopicLength: 12 });
    const good = await goodPair(broker);
    const v5 = (await TestClient.connect(broker, { clientId: 'f5', version: 5 })).client;
    assert.deepEqual(await v5.subscribe('a/b/c/d/e/f/#', 0), [ReasonCode.TopicFilterInvalid]);
    assert.deepEqual(await v5.subscribe('$share/g/a/+', 0), [0]); // 12 bytes with its prefix
    assert.deepEqual(await v5.subscribe('$share/gg/a/+', 0), [ReasonCode.TopicFilterInvalid]);
    const v4 = (await TestClient.connect(broker, { clientId: 'f4', version: 4 })).client;
    assert.deepEqual(await v4.subscribe('a/b/c/d/e/f/#', 0), [0x80]);
    assert.deepEqual(await v4.subscribe('a/b/c/d/e/#', 0), [0]);
    v4.publish('thirteen/byte', 'x', 1, 1);
    await waitClosed(v4);
    await stillWorks(good);
    await broker.closeConnections();
  });
});

describe('maxSubscriptionsPerClient', () => {
  test('a new filter beyond it gets SUBACK 0x97 (3.1.1: 0x80); replacing an existing one works', async () => {
    const { broker } = setup({ maxSubscriptionsPerClient: 3 });
    const good = await goodPair(broker); // good-sub holds one subscription
    const c = (await TestClient.connect(broker, { clientId: 'greedy', version: 5 })).client;
    c.send({
      type: PacketType.Subscribe, packetId: 1,
      subscriptions: ['s/1', 's/2', 's/3', 's/4'].map((topicFilter) => ({ topicFilter, qos: 1 as const })),
    });
    assert.deepEqual((await c.expect(PacketType.Suback)).reasonCodes, [1, 1, 1, ReasonCode.QuotaExceeded]);
    // [MQTT-3.8.4-3]: the same filter replaces the subscription: not a new one.
    assert.deepEqual(await c.subscribe('s/2', 0, 2), [0]);
    assert.deepEqual(await c.subscribe('s/5', 0, 3), [ReasonCode.QuotaExceeded]);
    assert.deepEqual(broker.subscriptions('greedy')?.map((s) => s.topicFilter).sort(), ['s/1', 's/2', 's/3']);
    // Unsubscribing makes room.
    c.send({ type: PacketType.Unsubscribe, packetId: 4, topicFilters: ['s/1'] });
    await c.expect(PacketType.Unsuback);
    assert.deepEqual(await c.subscribe('s/5', 0, 5), [0]);
    const v4 = (await TestClient.connect(broker, { clientId: 'greedy4', version: 4 })).client;
    for (let i = 0; i < 3; i++) assert.deepEqual(await v4.subscribe(`t/${i}`, 0, i + 1), [0]);
    assert.deepEqual(await v4.subscribe('t/x', 0, 9), [0x80]);
    await stillWorks(good); // good-sub subscribes a second filter, well under the limit
    await broker.closeConnections();
  });
});

/** One encoded chunk of `n` QoS 1 PUBLISH (5.0), then a PINGREQ. */
function burst(n: number, topic: string, payload: (i: number) => string): Buffer {
  const packets: Packet[] = [];
  for (let i = 0; i < n; i++) {
    packets.push({ type: PacketType.Publish, topic, payload: Buffer.from(payload(i)), qos: 1, retain: false, dup: false, packetId: i + 1 });
  }
  packets.push({ type: PacketType.Pingreq });
  return Buffer.concat(packets.map((p) => encode(p, ProtocolVersion.V5)));
}

/**
 * Sends `total` messages in one chunk faster than `opts` allow, then moves the clock 100 ms at
 * a time; returns the clock time of each message's routing. Asserts nothing is lost and the
 * client's keep alive (1 s, PINGREQ) survives its throttling.
 */
async function throttled(opts: BrokerOptions, total: number, payload: (i: number) => string): Promise<{ at: number[]; bytes: number[] }> {
  const { broker, clock, ticker } = setup(opts);
  const good = await goodPair(broker);
  const sub = (await TestClient.connect(broker, { clientId: 'in-sub' })).client;
  await sub.subscribe('in/t', 0);
  const pub = (await TestClient.connect(broker, { clientId: 'fast', version: 5, keepalive: 1 })).client;
  const at: number[] = [];
  const bytes: number[] = [];
  broker.on('published', (m) => {
    if (m.topic === 'in/t') {
      at.push(clock.now());
      bytes.push(m.payload.length + m.topic.length);
    }
  });
  pub.sendRaw(burst(total, 'in/t', payload));
  // The PINGREQ behind the burst is answered at once (control packets go ahead of held PUBLISH).
  let acks = 0;
  for (let i = 0; i < total + 1; i++) {
    const p = await pub.next();
    if (p.type === PacketType.Pingresp) break;
    assert.equal(p.type, PacketType.Puback);
    acks++;
  }
  assert.ok(at.length < total, 'the burst was throttled');
  // The client keeps sending PINGREQ every half second of clock time; the broker does not read
  // them while the client is throttled, and must not count that silence against it.
  let pings = 0;
  for (let i = 0; i < 200 && at.length < total; i++) {
    clock.advance(100);
    ticker.tick();
    if (clock.now() % 500 === 0) {
      pub.send({ type: PacketType.Pingreq });
      pings++;
    }
    assert.equal(pub.ended, false, `the throttled client was closed at ${clock.now()} ms`);
  }
  assert.equal(at.length, total, 'every message was routed');
  // Every PUBACK and the PINGRESP of every PINGREQ sent while throttled arrive.
  let pingresps = 0;
  for (let i = 0; i < 2 * total + pings && (acks < total || pingresps < pings); i++) {
    const p = await pub.next();
    if (p.type === PacketType.Puback) acks++;
    else if (p.type === PacketType.Pingresp) pingresps++;
    else assert.fail(`unexpected packet ${p.type}`);
  }
  assert.equal(acks, total);
  assert.equal(pingresps, pings);
  // Delivered in order, none lost.
  for (let i = 0; i < total; i++) assert.equal((await sub.expect(PacketType.Publish)).payload.toString(), payload(i));
  // Keep alive after the throttle: ticks within 1.5 s of the last packet keep it open.
  clock.advance(1000);
  ticker.tick();
  await pub.expectNothing();
  await stillWorks(good);
  await broker.closeConnections();
  return { at, bytes };
}

/** Sums of `values` by one-second window of `at`. */
function perWindow(at: number[], values: number[]): Map<number, number> {
  const out = new Map<number, number>();
  at.forEach((t, i) => out.set(Math.floor(t / 1000), (out.get(Math.floor(t / 1000)) ?? 0) + (values[i] as number)));
  return out;
}

describe('inbound rate: throttled by not reading, nothing lost', () => {
  test('maxInboundMessageRate: at most the budget per second of clock time, every message delivered, keep alive kept [MQTT-3.1.2-24]', async () => {
    const { at } = await throttled({ maxInboundMessageRate: 5 }, 23, (i) => `m${i}`);
    const windows = perWindow(at, at.map(() => 1));
    for (const [w, n] of windows) assert.ok(n <= 5, `${n} messages in second ${w}`);
    assert.ok(windows.size >= 5, `23 messages at 5 per second took ${windows.size} seconds`);
  });

  test('maxInboundByteRate: at most the byte budget per second of clock time, every message delivered', async () => {
    // 4 bytes of topic + 16 of payload: five messages per 100 bytes.
    const { at, bytes } = await throttled({ maxInboundByteRate: 100 }, 17, (i) => `payload-${String(i).padStart(8, '0')}`);
    const windows = perWindow(at, bytes);
    for (const [w, n] of windows) assert.ok(n <= 100, `${n} bytes in second ${w}`);
    assert.ok(windows.size >= 4, `17 messages of 20 bytes at 100 bytes per second took ${windows.size} seconds`);
  });
});

/** A logger that records warnings. */
function warnings(): { logger: Logger; lines: { obj: Record<string, unknown>; msg: string | undefined }[] } {
  const lines: { obj: Record<string, unknown>; msg: string | undefined }[] = [];
  const noop = (() => undefined) as LogFn;
  const warn = ((obj: object | string, msg?: string) => {
    lines.push(typeof obj === 'string' ? { obj: {}, msg: obj } : { obj: obj as Record<string, unknown>, msg });
  }) as LogFn;
  const logger: Logger = { error: noop, warn, info: noop, debug: noop, trace: noop, child: () => logger };
  return { logger, lines };
}

describe('flapping detection', () => {
  test('an id connecting more than flapThreshold times in flapWindow is refused with 0x8A (3.1.1: 5) for flapBanTime, logged and reported', async () => {
    const { logger, lines } = warnings();
    const { broker, clock } = setup({ flapThreshold: 3, flapWindow: 10, flapBanTime: 60, logger });
    const banned: [string, string | undefined, number][] = [];
    broker.on('clientBanned', (id, remote, until) => banned.push([id, remote, until]));
    const good = await goodPair(broker);
    const flapper = meta(undefined, '203.0.113.9');
    // Two clients sharing an id take the session from each other: three connects are allowed.
    let last: TestClient | undefined;
    for (let i = 0; i < 3; i++) {
      clock.advance(1000);
      const { client, connack } = await TestClient.connect(broker, { clientId: 'flappy', version: 5, meta: flapper });
      assert.equal(connack.reasonCode, ReasonCode.Success, `connect ${i + 1}`);
      if (last !== undefined) await waitClosed(last);
      last = client;
    }
    clock.advance(1000);
    const bannedAt = clock.now();
    assert.equal(await refused(broker, 'flappy', 5, flapper), ReasonCode.Banned);
    assert.deepEqual(banned, [['flappy', '203.0.113.9', bannedAt + 60_000]]);
    const line = lines.find((l) => l.obj.clientId === 'flappy');
    assert.ok(line !== undefined, 'a warning names the client');
    assert.equal(line.obj.remote, '203.0.113.9');
    // The connection it failed to take over is untouched; the ban holds for its whole time.
    assert.equal(last?.ended, false);
    clock.advance(59_000);
    assert.equal(await refused(broker, 'flappy', 4, flapper), 5); // 3.1.1: Not authorized
    await stillWorks(good);
    assert.equal(banned.length, 1, 'refusals during the ban do not ban again');
    clock.advance(1000);
    const after = await TestClient.connect(broker, { clientId: 'flappy', version: 5, meta: flapper });
    assert.equal(after.connack.reasonCode, ReasonCode.Success);
    await stillWorks(good);
    await broker.closeConnections();
  });

  test('connects spread wider than flapWindow are not flapping; the same count within it is', async () => {
    const { broker, clock } = setup({ flapThreshold: 2, flapWindow: 5, flapBanTime: 60 });
    for (let i = 0; i < 6; i++) {
      clock.advance(3000);
      const { client, connack } = await TestClient.connect(broker, { clientId: 'steady', version: 4 });
      assert.equal(connack.reasonCode, 0, `connect ${i + 1}`);
      client.disconnect();
      await waitClosed(client);
    }
    for (let i = 0; i < 2; i++) {
      const { client } = await TestClient.connect(broker, { clientId: 'steady', version: 4 });
      client.disconnect();
      await waitClosed(client);
    }
    assert.equal(await refused(broker, 'steady', 4), 5);
    await broker.closeConnections();
  });
});
