/**
 * Flow control at the default settings: when publishers outpace an online subscriber, the broker
 * holds the publishers back (their PUBLISH wait unacknowledged) instead of dropping QoS 1/2
 * messages; memory stays bounded; a subscriber that stops reading stops holding publishers back
 * after slowSubscriberTimeout, and then its overflow is dropped (counted) or it is disconnected.
 *
 * A publisher is "held" when, with its whole window of 20 PUBLISH sent, a PINGREQ sent after them
 * comes back without any acknowledgement before it: the broker read those PUBLISH (they came
 * before the PINGREQ on the same stream) and holds them.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import { type Packet, PacketType } from '../../src/protocol/index.js';
import { ManualClock } from '../../src/session/clock.js';
import { TestClient, waitClosed, within } from '../helpers/duplex-client.js';
import { memoryInUse, MiB } from '../helpers/heap.js';

const WINDOW = 20;

interface PublisherRun {
  /** PUBLISH acknowledged (PUBACK, or PUBCOMP for QoS 2). */
  completed: number;
  /** Times the broker was seen holding this publisher's window. */
  held: number;
}

/**
 * Publishes `total` messages on `topic` with at most WINDOW unacknowledged, as fast as the broker
 * takes them. `onHeld` is called each time the broker is seen holding the window; returning
 * false ends the run there.
 */
async function publisher(
  client: TestClient, topic: string, total: number, qos: 1 | 2, payload: Buffer, onHeld?: () => boolean | void,
): Promise<PublisherRun> {
  const run: PublisherRun = { completed: 0, held: 0 };
  let sent = 0;
  let outstanding = 0;
  const handle = (p: Packet): void => {
    if (qos === 1 && p.type === PacketType.Puback) {
      outstanding--;
      run.completed++;
    } else if (qos === 2 && p.type === PacketType.Pubrec) {
      client.send({ type: PacketType.Pubrel, packetId: p.packetId });
    } else if (qos === 2 && p.type === PacketType.Pubcomp) {
      outstanding--;
      run.completed++;
    }
  };
  for (let step = 0; step < total * 10 && run.completed < total; step++) {
    while (outstanding < WINDOW && sent < total) {
      client.publish(topic, payload, qos, (sent % 65535) + 1);
      sent++;
      outstanding++;
    }
    const before = run.completed;
    client.send({ type: PacketType.Pingreq });
    for (let i = 0; i < WINDOW * 3 + 2; i++) {
      const p = await client.next(10_000);
      if (p.type === PacketType.Pingresp) break;
      handle(p);
    }
    if (run.completed === before && outstanding === WINDOW) {
      run.held++;
      if (onHeld?.() === false) return run; // the caller stops here
      // Wait for the broker to take the window: the next acknowledgement.
      for (let i = 0; i < WINDOW * 3 && run.completed === before; i++) handle(await client.next(10_000));
    }
  }
  return run;
}

/** Reads and acknowledges QoS 1/2 deliveries until `total` distinct messages arrived. */
async function subscriber(client: TestClient, total: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < total * 4 && seen.size < total; i++) {
    const p = await client.next(10_000);
    if (p.type === PacketType.Publish) {
      seen.add(p.payload.toString('latin1', 0, 24));
      if (p.qos === 1) client.send({ type: PacketType.Puback, packetId: p.packetId as number });
      else if (p.qos === 2) client.send({ type: PacketType.Pubrec, packetId: p.packetId as number });
    } else if (p.type === PacketType.Pubrel) {
      client.send({ type: PacketType.Pubcomp, packetId: p.packetId });
    }
  }
  return seen;
}

/** Payloads numbered in their first 24 bytes, so that deliveries can be told apart. */
function payloadSource(prefix: string, size: number): () => Buffer {
  let n = 0;
  return () => {
    const b = Buffer.alloc(size, 0x2e);
    b.write(`${prefix}-${String(n++).padStart(10, '0')}`.padEnd(24, '.'), 0, 'latin1');
    return b;
  };
}

/** A publisher over a numbered payload stream: each PUBLISH carries the next payload. */
function numbered(client: TestClient, prefix: string, size: number): TestClient {
  const next = payloadSource(prefix, size);
  const original = client.publish.bind(client);
  client.publish = (topic, _payload, qos, packetId, retain, properties) => original(topic, next(), qos, packetId, retain, properties);
  return client;
}

function brokerAtDefaults(extra: BrokerOptions = {}): { broker: BrokerCore; clock: ManualClock; drops: string[] } {
  // A manual clock that never moves: a paused subscriber is slow, never stalled, unless a test moves it.
  const clock = new ManualClock(0);
  const broker = new BrokerCore({ clock, ...extra });
  const drops: string[] = [];
  broker.on('messageDropped', (clientId, _topic, reason) => drops.push(`${clientId}:${reason}`));
  return { broker, clock, drops };
}

describe('flow control: no QoS 1/2 loss at default settings', () => {
  for (const qos of [1, 2] as const) {
    test(`QoS ${qos} point-to-point: a subscriber that falls behind holds the publisher back; nothing is lost`, async () => {
      const { broker, drops } = brokerAtDefaults();
      const total = 5000;
      const { client: sub } = await TestClient.connect(broker, { clientId: 'sub', version: 4 });
      assert.deepEqual(await sub.subscribe('p2p', qos), [qos]);
      sub.stream.pause(); // falls behind: reads nothing until the publisher is held
      const { client: pub } = await TestClient.connect(broker, { clientId: 'pub', version: 4 });
      numbered(pub, 'p', 128);
      let received: Promise<Set<string>> | undefined;
      const run = await publisher(pub, 'p2p', total, qos, Buffer.alloc(0), () => {
        if (received !== undefined) return;
        sub.stream.resume();
        received = subscriber(sub, total);
      });
      assert.ok(run.held > 0, 'the publisher was never held back');
      assert.equal(run.completed, total);
      assert.equal((await (received as Promise<Set<string>>)).size, total);
      assert.deepEqual(drops, []);
      assert.equal(broker.stats.messagesDropped, 0);
      await broker.closeConnections();
    });
  }

  test('QoS 1 fan-in: 4 publishers to one subscriber that falls behind lose nothing', async () => {
    const { broker, drops } = brokerAtDefaults();
    const each = 1500;
    const { client: sub } = await TestClient.connect(broker, { clientId: 'sink', version: 5 });
    assert.deepEqual(await sub.subscribe('in/#', 1), [1]);
    sub.stream.pause();
    const pubs = await Promise.all([0, 1, 2, 3].map(async (i) => numbered((await TestClient.connect(broker, { clientId: `pub${i}`, version: 5 })).client, `f${i}`, 128)));
    let received: Promise<Set<string>> | undefined;
    const resume = (): void => {
      if (received !== undefined) return;
      sub.stream.resume();
      received = subscriber(sub, each * 4);
    };
    const runs = await Promise.all(pubs.map((p, i) => publisher(p, `in/${i}`, each, 1, Buffer.alloc(0), resume)));
    assert.ok(runs.some((r) => r.held > 0), 'no publisher was held back');
    assert.equal((await (received as Promise<Set<string>>)).size, each * 4);
    assert.deepEqual(drops, []);
    await broker.closeConnections();
  });

  test('QoS 1 fan-in from 1000 publishers at once (3 each: one each past the high-water mark is more than the queue\'s slack) to a subscriber that does not read yet: nothing is lost', async () => {
    const { broker, drops } = brokerAtDefaults();
    const { client: sub } = await TestClient.connect(broker, { clientId: 'many-sink', version: 4 });
    assert.deepEqual(await sub.subscribe('many/#', 1), [1]);
    sub.stream.pause();
    const pubs: TestClient[] = [];
    for (let i = 0; i < 1000; i++) pubs.push(numbered((await TestClient.connect(broker, { clientId: `mp${i}`, version: 4 })).client, `m${i}`, 64));
    for (const [i, p] of pubs.entries()) for (let k = 1; k <= 3; k++) p.publish(`many/${i}`, Buffer.alloc(0), 1, k);
    // Every publisher's PUBLISH were read: PINGREQ behind them is answered (it goes ahead of held ones).
    for (const p of pubs) {
      p.send({ type: PacketType.Pingreq });
      for (let i = 0; i < 5; i++) if ((await p.next()).type === PacketType.Pingresp) break;
    }
    assert.deepEqual(drops, [], 'dropped before the subscriber read anything');
    sub.stream.resume();
    assert.equal((await subscriber(sub, 3000)).size, 3000);
    assert.deepEqual(drops, []);
    await broker.closeConnections();
  });

  test('QoS 2 fan-out: one publisher to 4 subscribers, one of them falling behind, loses nothing', async () => {
    const { broker, drops } = brokerAtDefaults();
    const total = 2500;
    const subs = await Promise.all([0, 1, 2, 3].map(async (i) => (await TestClient.connect(broker, { clientId: `s${i}`, version: 4 })).client));
    for (const s of subs) assert.deepEqual(await s.subscribe('out', 2), [2]);
    const [slow, ...fast] = subs as [TestClient, ...TestClient[]];
    slow.stream.pause();
    const fastDone = fast.map((s) => subscriber(s, total));
    const { client: pub } = await TestClient.connect(broker, { clientId: 'fan', version: 4 });
    numbered(pub, 'o', 128);
    let slowDone: Promise<Set<string>> | undefined;
    const run = await publisher(pub, 'out', total, 2, Buffer.alloc(0), () => {
      if (slowDone !== undefined) return;
      slow.stream.resume();
      slowDone = subscriber(slow, total);
    });
    assert.ok(run.held > 0);
    for (const got of await Promise.all(fastDone)) assert.equal(got.size, total);
    assert.equal((await (slowDone as Promise<Set<string>>)).size, total);
    assert.deepEqual(drops, []);
    await broker.closeConnections();
  });

  test('memory stays bounded while a publisher floods a subscriber that does not read (held, not queued)', async (t) => {
    const { broker, drops } = brokerAtDefaults();
    const { client: sub } = await TestClient.connect(broker, { clientId: 'mem-sub', version: 4 });
    assert.deepEqual(await sub.subscribe('big', 1), [1]);
    sub.stream.pause();
    const { client: pub } = await TestClient.connect(broker, { clientId: 'mem-pub', version: 4 });
    const payload = Buffer.alloc(8 * 1024, 0x61); // a window of 20 stays under the 256 KB the broker holds unread
    const before = memoryInUse();
    // Until held: at most the queue's high-water mark (500 messages, 4 MiB) plus inflight and socket buffers.
    const run = await publisher(pub, 'big', 5000, 1, payload, () => false);
    const grown = (memoryInUse() - before) / MiB;
    t.diagnostic(`heap grew by ${grown.toFixed(1)} MiB; ${run.completed} messages acknowledged before the publisher was held`);
    assert.equal(run.held, 1, 'the publisher was never held back');
    assert.ok(grown < 16, `heap grew by ${grown.toFixed(1)} MiB`);
    assert.deepEqual(drops, []);
    await broker.closeConnections();
  });
});

describe('flow control: a stalled subscriber does not stall the others', () => {
  test('one stalled subscriber among 50: after slowSubscriberTimeout the 49 others get every message; its overflow is dropped and counted', async () => {
    const { broker, clock, drops } = brokerAtDefaults();
    const total = 3000;
    const subs = await Promise.all(Array.from({ length: 50 }, async (_, i) => (await TestClient.connect(broker, { clientId: `m${i}`, version: 4 })).client));
    for (const s of subs) assert.deepEqual(await s.subscribe('crowd', 1), [1]);
    const [stalled, ...healthy] = subs as [TestClient, ...TestClient[]];
    stalled.stream.pause(); // never reads again
    const healthyDone = healthy.map((s) => subscriber(s, total));
    const { client: pub } = await TestClient.connect(broker, { clientId: 'crowd-pub', version: 4 });
    numbered(pub, 'c', 64);
    let advanced = false;
    const run = await publisher(pub, 'crowd', total, 1, Buffer.alloc(0), () => {
      // Held by the stalled one: past the timeout (default 1 s) it stops holding the publisher back.
      if (!advanced) clock.advance(1_200);
      advanced = true;
    });
    assert.ok(run.held > 0);
    assert.equal(run.completed, total);
    for (const got of await Promise.all(healthyDone)) assert.equal(got.size, total);
    assert.ok(drops.length > 0, 'the stalled subscriber\'s overflow is dropped');
    assert.deepEqual([...new Set(drops)], ['m0:slow-subscriber']);
    await broker.closeConnections();
  });

  test('slowSubscriberPolicy disconnect: the stalled subscriber is disconnected, the publisher goes on', async () => {
    const { broker, clock, drops } = brokerAtDefaults({ slowSubscriberPolicy: 'disconnect' });
    const total = 2000;
    const { client: stalled } = await TestClient.connect(broker, { clientId: 'stuck', version: 5 });
    assert.deepEqual(await stalled.subscribe('d', 1), [1]);
    const { client: ok } = await TestClient.connect(broker, { clientId: 'ok', version: 5 });
    assert.deepEqual(await ok.subscribe('d', 1), [1]);
    stalled.stream.pause();
    const okDone = subscriber(ok, total);
    const lost = new Promise((resolve) => broker.on('connectionLost', (c) => c.clientId === 'stuck' && resolve(c)));
    const { client: pub } = await TestClient.connect(broker, { clientId: 'd-pub', version: 5 });
    numbered(pub, 'd', 64);
    // Once past the timeout: moving the clock again when `ok` holds the publisher (it may fall
    // behind on a loaded machine) would make `ok` look stalled too.
    let advanced = false;
    const run = await publisher(pub, 'd', total, 1, Buffer.alloc(0), () => {
      if (!advanced) clock.advance(1_200);
      advanced = true;
    });
    assert.ok(run.held > 0);
    await within(lost);
    stalled.stream.resume();
    await waitClosed(stalled);
    assert.equal((await okDone).size, total);
    assert.deepEqual(drops.filter((d) => d.startsWith('ok:')), []);
    await broker.closeConnections();
  });

  test('slowSubscriberTimeout 0 turns flow control off: a full queue drops as before', async () => {
    const { broker, drops } = brokerAtDefaults({ slowSubscriberTimeout: 0 });
    const { client: sub } = await TestClient.connect(broker, { clientId: 'off-sub', version: 4 });
    assert.deepEqual(await sub.subscribe('off', 1), [1]);
    sub.stream.pause();
    const { client: pub } = await TestClient.connect(broker, { clientId: 'off-pub', version: 4 });
    numbered(pub, 'x', 64);
    const run = await publisher(pub, 'off', 3000, 1, Buffer.alloc(0));
    assert.equal(run.held, 0);
    assert.ok(drops.length > 0);
    await broker.closeConnections();
  });
});
