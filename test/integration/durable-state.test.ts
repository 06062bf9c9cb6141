/**
 * The broker on a store: what a persistent session, its subscriptions and retained messages
 * leave in the store comes back on restore() in a new broker (a restart), with deadlines in
 * wall-clock time; SUBACK and the acknowledgement of a retained PUBLISH wait for the commit, and
 * later acknowledgements keep their order. A "crash" is a second broker opening the same store
 * while the first one still has its clients connected.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { messageBytes } from '../../src/broker/message.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import { SqliteStore } from '../../src/persistence/index.js';
import { MemoryStore } from '../../src/persistence/memory.js';
import type { Store, StoredState, StoreOp, WriteOptions } from '../../src/persistence/types.js';
import { encode, type Packet, PacketType } from '../../src/protocol/index.js';
import { ManualClock, ManualTicker } from '../../src/session/clock.js';
import { TestClient, within } from '../helpers/duplex-client.js';

/**
 * A store whose writes wait until released (or fail), around a memory store; closing it leaves the
 * memory store open, so the next broker (the restart) reads what the last one wrote.
 */
class GatedStore implements Store {
  readonly durable = true;
  readonly inner = new MemoryStore();
  #gate: { promise: Promise<void>; open: () => void; fail: (err: Error) => void } | undefined;
  writes: StoreOp[][] = [];

  hold(): void {
    let open!: () => void;
    let fail!: (err: Error) => void;
    const promise = new Promise<void>((resolve, reject) => {
      open = resolve;
      fail = reject;
    });
    this.#gate = { promise, open, fail };
  }

  release(): void {
    this.#gate?.open();
    this.#gate = undefined;
  }

  fail(): void {
    this.#gate?.fail(new Error('disk on fire'));
    this.#gate = undefined;
  }

  open(): Promise<StoredState> {
    return this.inner.open();
  }

  /** Per write, whether it was lazy (`WriteOptions.lazy`). */
  lazy: boolean[] = [];

  async write(ops: readonly StoreOp[], options?: WriteOptions): Promise<void> {
    this.writes.push([...ops]);
    this.lazy.push(options?.lazy === true);
    const gate = this.#gate;
    if (gate !== undefined) await gate.promise;
    await this.inner.write(ops, options);
  }

  readQueue(clientId: string, afterSeq: number, limit: number): ReturnType<Store['readQueue']> {
    return this.inner.readQueue(clientId, afterSeq, limit);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function brokerOn(store: Store, wall: { now: number }, clock = new ManualClock(), options: BrokerOptions = {}): BrokerCore {
  return new BrokerCore({ store, clock, ticker: new ManualTicker(), wallClock: () => wall.now, connectTimeout: 0, ...options });
}

/** Waits until the store has seen `n` writes (a commit happens at the end of a turn). */
async function settled(broker: BrokerCore): Promise<void> {
  // restore() resolves once everything written so far is committed.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  void broker;
}

/**
 * Waits until `done(store)` holds: a batch of deliveries is held back for a millisecond before it
 * is written (broker/durability.ts), so its write comes a timer later, not a turn later.
 */
async function untilWritten(store: GatedStore, done: (store: GatedStore) => boolean, what: string): Promise<void> {
  let tries = 0;
  await within(new Promise<void>((resolve, reject) => {
    const check = (): void => {
      if (done(store)) resolve();
      else if (++tries > 3000) reject(new Error(`${what}: not written`));
      else setTimeout(check, 1);
    };
    check();
  }), 5000, what);
}

describe('durable state through a store', () => {
  test('a persistent session, its subscriptions and retained messages come back after a restart', async () => {
    const store = new GatedStore();
    const wall = { now: 1_000_000 };
    const a = brokerOn(store, wall);
    await a.restore();
    const { client } = await TestClient.connect(a, { clientId: 'keeper', version: 5, clean: false, properties: { sessionExpiryInterval: 3600 } });
    assert.deepEqual(await client.subscribe('keep/#', 1, 1), [1]);
    const pub = (await TestClient.connect(a, { clientId: 'pub', version: 5 })).client;
    pub.publish('keep/flag', 'on', 1, 7, true);
    await pub.expect(PacketType.Puback);
    client.disconnect();
    await a.closeConnections();

    const b = brokerOn(store, wall);
    await b.restore();
    const sessions = b.sessions();
    assert.deepEqual(sessions.map((s) => [s.clientId, s.connected, s.subscriptions]), [['keeper', false, 1]]);
    assert.deepEqual(b.subscriptions('keeper')?.map((s) => [s.topicFilter, s.qos]), [['keep/#', 1]]);
    assert.deepEqual(b.retained('keep/#').map((m) => [m.topic, m.payload.toString()]), [['keep/flag', 'on']]);
    const back = await TestClient.connect(b, { clientId: 'keeper', version: 5, clean: false, properties: { sessionExpiryInterval: 3600 } });
    assert.equal(back.connack.sessionPresent, true, '[MQTT-3.2.2-2] the stored session is resumed');
    // keep/flag reached the client before the restart, unacknowledged: resent [MQTT-4.4.0-1].
    const resent = await back.client.expect(PacketType.Publish);
    assert.deepEqual([resent.topic, resent.dup], ['keep/flag', true]);
    back.client.send({ type: PacketType.Puback, packetId: resent.packetId as number });
    const live = (await TestClient.connect(b, { clientId: 'pub2', version: 5 })).client;
    live.publish('keep/now', 'delivered through the restored subscription', 1, 1);
    const got = await back.client.expect(PacketType.Publish);
    assert.equal(got.topic, 'keep/now');
    await b.closeConnections();
  });

  test('an unsubscribe and a cleared retained message stay gone after a restart', async () => {
    const store = new GatedStore();
    const wall = { now: 5_000 };
    const a = brokerOn(store, wall);
    await a.restore();
    const { client } = await TestClient.connect(a, { clientId: 's', version: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
    await client.subscribe('x/#', 1, 1);
    await client.subscribe('y/#', 1, 2);
    client.send({ type: PacketType.Unsubscribe, packetId: 3, topicFilters: ['x/#'], properties: {} });
    await client.expect(PacketType.Unsuback);
    client.publish('r/t', 'v', 1, 4, true);
    await client.expect(PacketType.Puback);
    client.publish('r/t', '', 1, 5, true);
    await client.expect(PacketType.Puback);
    await a.closeConnections();
    const b = brokerOn(store, wall);
    await b.restore();
    assert.deepEqual(b.subscriptions('s')?.map((x) => x.topicFilter), ['y/#']);
    assert.deepEqual(b.retained(), []);
    await b.closeConnections();
  });

  test('[MQTT-3.1.3-9] a crash: the will of a connected client is published on restart; an expired session is gone', async () => {
    const store = new GatedStore();
    const wall = { now: 10_000 };
    const a = brokerOn(store, wall);
    await a.restore();
    const will = { topic: 'wills/w', payload: Buffer.from('gone'), qos: 1 as const, retain: true };
    await TestClient.connect(a, { clientId: 'w', version: 5, clean: false, will, properties: { sessionExpiryInterval: 30 } });
    const shortLived = await TestClient.connect(a, { clientId: 'short', version: 5, clean: false, properties: { sessionExpiryInterval: 5 } });
    shortLived.client.disconnect();
    await settled(a);
    // The broker dies here, with `w` connected; it comes back 10 s (wall clock) later.
    wall.now += 10_000;
    const b = brokerOn(store, wall);
    await b.restore();
    assert.deepEqual(b.retained('wills/#').map((m) => m.payload.toString()), ['gone'], 'the will was published (retained)');
    assert.deepEqual(b.sessions().map((s) => s.clientId), ['w'], 'the session whose expiry passed while the broker was down is gone');
    // And the will is not published again after another restart.
    await b.closeConnections();
    const c = brokerOn(store, wall);
    let published = 0;
    c.on('published', () => published++);
    await c.restore();
    assert.equal(published, 0);
    await c.closeConnections();
  });

  test('a will waiting for its delay when the broker stopped is published on time after the restart', async () => {
    const store = new GatedStore();
    const wall = { now: 50_000 };
    const a = brokerOn(store, wall);
    await a.restore();
    const will = { topic: 'wills/d', payload: Buffer.from('late'), qos: 0 as const, retain: true, properties: { willDelayInterval: 20 } };
    const { client } = await TestClient.connect(a, { clientId: 'd', version: 5, clean: false, will, properties: { sessionExpiryInterval: 600 } });
    client.drop();
    await settled(a);
    wall.now += 5_000;
    const clock = new ManualClock();
    const b = brokerOn(store, wall, clock);
    await b.restore();
    assert.deepEqual(b.retained('wills/#'), [], 'not yet: 15 s of the delay are left');
    await b.closeConnections();
    wall.now += 16_000;
    const c = brokerOn(store, wall);
    await c.restore();
    assert.deepEqual(c.retained('wills/#').map((m) => m.payload.toString()), ['late']);
    await c.closeConnections();
  });

  test('SUBACK waits for the commit; a failed write closes the connection without SUBACK', async () => {
    const store = new GatedStore();
    const wall = { now: 1 };
    const b = brokerOn(store, wall);
    await b.restore();
    const { client } = await TestClient.connect(b, { clientId: 'g', version: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
    await settled(b);
    store.hold();
    client.send({ type: PacketType.Subscribe, packetId: 9, subscriptions: [{ topicFilter: 'g/#', qos: 1 }], properties: {} });
    // PINGREQ overtakes held work: answered while the SUBSCRIBE's commit is pending.
    client.send({ type: PacketType.Pingreq });
    assert.equal((await client.next()).type, PacketType.Pingresp);
    store.release();
    const suback = await client.expect(PacketType.Suback);
    assert.deepEqual(suback.reasonCodes, [1]);
    store.hold();
    client.send({ type: PacketType.Subscribe, packetId: 10, subscriptions: [{ topicFilter: 'h/#', qos: 1 }], properties: {} });
    await within(new Promise<void>((resolve) => {
      const check = (): void => {
        if (store.writes.some((w) => w.some((op) => op.op === 'subscribe' && op.subscription.topicFilter === 'h/#'))) resolve();
        else setImmediate(check);
      };
      check();
    }), 3000, 'the subscribe write');
    store.fail();
    const closed = await client.next().then((p) => p.type, () => 'closed');
    assert.ok(closed === PacketType.Disconnect || closed === 'closed', `expected the connection to end, got ${String(closed)}`);
    await b.closeConnections();
  });

  test('[MQTT-4.6.0-2] a retained QoS 1 PUBLISH is acknowledged after its commit, and a later PUBACK waits behind it', async () => {
    const store = new GatedStore();
    const wall = { now: 1 };
    const b = brokerOn(store, wall);
    await b.restore();
    const { client } = await TestClient.connect(b, { clientId: 'p', version: 5 });
    store.hold();
    client.publish('ret/a', 'kept', 1, 1, true);
    client.publish('plain/b', 'not stored', 1, 2, false);
    client.send({ type: PacketType.Pingreq });
    assert.equal((await client.next()).type, PacketType.Pingresp, 'nothing acknowledged before the commit');
    store.release();
    const first = await client.expect(PacketType.Puback);
    const second = await client.expect(PacketType.Puback);
    assert.deepEqual([first.packetId, second.packetId], [1, 2]);
    await b.closeConnections();
  });
});

describe('delivered before durable: a QoS 1 PUBACK before its commit', () => {
  /** Whether the next packet `client` gets is the PINGRESP to a PINGREQ sent now: nothing else was sent to it before. */
  async function nothingBefore(client: TestClient, what: string): Promise<void> {
    client.send({ type: PacketType.Pingreq });
    assert.equal((await client.next()).type, PacketType.Pingresp, what);
  }

  /** A broker (`configure`d first) with a persistent subscriber `kept` on e/# and a publisher `pub`. */
  async function setup(configure?: (b: BrokerCore) => void): Promise<{ store: GatedStore; b: BrokerCore; kept: TestClient; pub: TestClient }> {
    const store = new GatedStore();
    const b = brokerOn(store, { now: 1 });
    configure?.(b);
    await b.restore();
    const kept = (await TestClient.connect(b, persistent('kept'))).client;
    await kept.subscribe('e/#', 1, 1);
    const pub = (await TestClient.connect(b, { clientId: 'pub', version: 5 })).client;
    await settled(b);
    return { store, b, kept, pub };
  }

  test('once every persistent receiver acknowledged the message, the PUBACK goes while the commit is still pending', async () => {
    const { store, b, kept, pub } = await setup();
    store.hold();
    pub.publish('e/one', 'x', 1, 1);
    const d = await kept.expect(PacketType.Publish);
    await nothingBefore(pub, 'no PUBACK while the receiver has not acknowledged and the commit is pending');
    kept.send({ type: PacketType.Puback, packetId: d.packetId as number });
    const ack = await pub.expect(PacketType.Puback);
    assert.equal(ack.packetId, 1);
    assert.equal(b.metrics().store?.earlyAcks, 1);
    store.release();
    await b.closeConnections();
  });

  test('a message acknowledged by its persistent receiver while its batch is held back is never written', async (t) => {
    const { store, b, kept, pub } = await setup();
    const before = store.writes.length;
    // The hold (1 ms) ends when the test says so.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    try {
      pub.publish('e/gone', 'x', 1, 1);
      const d = await kept.expect(PacketType.Publish);
      kept.send({ type: PacketType.Puback, packetId: d.packetId as number });
      assert.equal((await pub.expect(PacketType.Puback)).packetId, 1, 'acknowledged before anything was written');
      assert.equal(store.writes.length, before, 'held');
      t.mock.timers.tick(1);
    } finally {
      t.mock.timers.reset();
    }
    await settled(b);
    assert.equal(store.writes.length, before, 'nothing left to write');
    assert.deepEqual([b.metrics().store?.unwritten, b.metrics().store?.earlyAcks], [3, 1], 'message, inflight and complete left out');
    await b.closeConnections();
  });

  test('[MQTT-4.6.0-2] an early PUBACK still goes after an earlier one that waits for its commit (a retained message)', async () => {
    const { store, b, kept, pub } = await setup();
    store.hold();
    pub.publish('e/ret', 'kept', 1, 1, true);
    pub.publish('e/two', 'y', 1, 2);
    const d1 = await kept.expect(PacketType.Publish);
    const d2 = await kept.expect(PacketType.Publish);
    kept.send({ type: PacketType.Puback, packetId: d1.packetId as number });
    kept.send({ type: PacketType.Puback, packetId: d2.packetId as number });
    await settled(b);
    await nothingBefore(pub, 'the retained message waits for its commit, and the later PUBACK behind it');
    store.release();
    const first = await pub.expect(PacketType.Puback);
    const second = await pub.expect(PacketType.Puback);
    assert.deepEqual([first.packetId, second.packetId], [1, 2]);
    await b.closeConnections();
  });

  test('a message that a delivery interceptor changed reaches its receiver as a copy: the PUBACK waits for the commit', async () => {
    const { store, b, kept, pub } = await setup((broker) => {
      broker.intercept('delivery', (m) => ({ ...m, payload: Buffer.from('changed') }));
    });
    store.hold();
    pub.publish('e/one', 'x', 1, 1);
    const d = await kept.expect(PacketType.Publish);
    assert.equal(Buffer.from(d.payload as Uint8Array).toString(), 'changed');
    kept.send({ type: PacketType.Puback, packetId: d.packetId as number });
    await settled(b);
    await nothingBefore(pub, 'the stored entry is the copy\'s: nothing tells the PUBACK it was delivered');
    assert.equal(b.metrics().store?.earlyAcks, 0);
    store.release();
    assert.equal((await pub.expect(PacketType.Puback)).packetId, 1);
    await b.closeConnections();
  });

  test('settled() covers the turns held back: they go to the store at once', async (t) => {
    const { store, b, kept, pub } = await setup();
    const before = store.writes.length;
    // The hold (1 ms) never ends by itself here.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    try {
      pub.publish('e/held', 'x', 1, 1);
      await kept.expect(PacketType.Publish);
      await settled(b);
      assert.equal(store.writes.length, before, 'held');
      await b.settled();
      assert.ok(store.writes.slice(before).flat().some((op) => op.op === 'message' && op.message.topic === 'e/held'), 'written by settled()');
    } finally {
      t.mock.timers.reset();
    }
    await b.closeConnections();
  });

  test('[MQTT-4.3.3-12] PUBCOMP waits for the commit of the released identifier: a restart cannot take its next use for a repeat', async () => {
    const { store, b } = await setup();
    const pub = (await TestClient.connect(b, persistent('pub2'))).client;
    await settled(b);
    pub.publish('e/q2', 'x', 2, 1);
    await pub.expect(PacketType.Pubrec);
    store.hold();
    pub.send({ type: PacketType.Pubrel, packetId: 1 });
    await untilWritten(store, (s) => s.writes.flat().some((op) => op.op === 'pubrel' && op.clientId === 'pub2'), 'the release');
    await nothingBefore(pub, 'no PUBCOMP before the release is committed');
    store.release();
    assert.equal((await pub.expect(PacketType.Pubcomp)).packetId, 1);
    await b.closeConnections();
  });

  test('a message queued for an offline persistent session waits for its commit', async () => {
    const { store, b, kept, pub } = await setup();
    kept.send({ type: PacketType.Disconnect, reasonCode: 0 });
    await settled(b);
    store.hold();
    pub.publish('e/later', 'z', 1, 1);
    await settled(b);
    await nothingBefore(pub, 'no PUBACK before the queue entry is committed');
    assert.equal(b.metrics().store?.earlyAcks, 0);
    store.release();
    assert.equal((await pub.expect(PacketType.Puback)).packetId, 1);
    await b.closeConnections();
  });

  test('[MQTT-4.3.3-2] QoS 2 from a persistent session: PUBREC waits for its commit even when the receiver completed first', async () => {
    const { store, b, kept } = await setup();
    const pub = (await TestClient.connect(b, persistent('pub2'))).client;
    await settled(b);
    store.hold();
    pub.publish('e/two', 'q2', 2, 1);
    const d = await kept.expect(PacketType.Publish);
    kept.send({ type: PacketType.Puback, packetId: d.packetId as number });
    await settled(b);
    await nothingBefore(pub, 'no PUBREC before the "PUBREC sent" state is committed');
    store.release();
    assert.equal((await pub.expect(PacketType.Pubrec)).packetId, 1);
    await b.closeConnections();
  });
});

const persistent = (clientId: string) => ({ clientId, version: 5 as const, clean: false, properties: { sessionExpiryInterval: 3600 } });

/** Every op the store was given, flattened. */
const opsOf = (store: GatedStore): StoreOp[] => store.writes.flat();

/** Waits (bounded) until the store has been given an op matching `pred`. */
async function written(store: GatedStore, pred: (op: StoreOp) => boolean, what: string): Promise<void> {
  await within(new Promise<void>((resolve) => {
    const check = (): void => {
      if (opsOf(store).some(pred)) resolve();
      else setImmediate(check);
    };
    check();
  }), 3000, what);
}

/** A persistent subscriber of `filter` that goes offline, and a publisher. */
async function offlineSubscriber(b: BrokerCore, clientId: string, filter: string, qos: 1 | 2): Promise<void> {
  const { client } = await TestClient.connect(b, persistent(clientId));
  await client.subscribe(filter, qos, 1);
  client.disconnect();
  await client.closed;
}

describe('durable QoS 1/2 deliveries of persistent sessions', () => {
  /** The restart scenario of the first test, on any store and reopening function. */
  async function offlineSurvives(first: Store, reopen: () => Promise<Store>): Promise<void> {
    const wall = { now: 1_000_000 };
    const a = brokerOn(first, wall);
    await a.restore();
    await offlineSubscriber(a, 'off', 'q/#', 2);
    const pub = (await TestClient.connect(a, { clientId: 'pub', version: 5 })).client;
    pub.publish('q/1', 'one', 1, 1);
    await pub.expect(PacketType.Puback);
    pub.publish('q/2', 'two', 2, 2);
    await pub.expect(PacketType.Pubrec);
    pub.send({ type: PacketType.Pubrel, packetId: 2 });
    await pub.expect(PacketType.Pubcomp);
    await a.closeConnections();

    const b = brokerOn(await reopen(), wall);
    await b.restore();
    const back = (await TestClient.connect(b, persistent('off'))).client;
    const one = await back.expect(PacketType.Publish);
    const two = await back.expect(PacketType.Publish);
    assert.deepEqual([one.topic, one.qos, one.payload.toString(), two.topic, two.qos, two.payload.toString()], ['q/1', 1, 'one', 'q/2', 2, 'two']);
    back.send({ type: PacketType.Puback, packetId: one.packetId as number });
    back.send({ type: PacketType.Pubrec, packetId: two.packetId as number });
    const rel = await back.expect(PacketType.Pubrel);
    assert.equal(rel.packetId, two.packetId);
    back.send({ type: PacketType.Pubcomp, packetId: two.packetId as number });
    await back.expectNothing();
    back.disconnect();
    await b.closeConnections();

    // Completed deliveries are gone from the store: QoS 2 arrives exactly once.
    const c = brokerOn(await reopen(), wall);
    await c.restore();
    const again = (await TestClient.connect(c, persistent('off'))).client;
    await again.expectNothing();
    await c.closeConnections();
  }

  test('[MQTT-3.1.2-4] QoS 1 and QoS 2 messages for an offline persistent session survive a restart and arrive once', async () => {
    const store = new GatedStore();
    await offlineSurvives(store, () => Promise.resolve(store));
  });

  test('the same with the SQLite store, closed and reopened', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'petrel-durable-'));
    try {
      await offlineSurvives(new SqliteStore({ dataDir }), () => Promise.resolve(new SqliteStore({ dataDir })));
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('[MQTT-4.4.0-1] an unacknowledged QoS 1 delivery to an online persistent session is resent with DUP after a crash', async () => {
    const store = new GatedStore();
    const wall = { now: 1 };
    const a = brokerOn(store, wall);
    await a.restore();
    const sub = (await TestClient.connect(a, persistent('on'))).client;
    await sub.subscribe('o/#', 1, 1);
    const pub = (await TestClient.connect(a, { clientId: 'pub', version: 5 })).client;
    pub.publish('o/x', 'unacked', 1, 1);
    await pub.expect(PacketType.Puback);
    const first = await sub.expect(PacketType.Publish);
    assert.equal(first.dup, false);
    // The broker dies with both clients connected.
    const b = brokerOn(store, wall);
    await b.restore();
    const back = (await TestClient.connect(b, persistent('on'))).client;
    const resent = await back.expect(PacketType.Publish);
    assert.deepEqual([resent.topic, resent.dup, resent.packetId], ['o/x', true, first.packetId]);
    back.send({ type: PacketType.Puback, packetId: resent.packetId as number });
    await back.expectNothing();
    await b.closeConnections();
    const c = brokerOn(store, wall);
    await c.restore();
    await (await TestClient.connect(c, persistent('on'))).client.expectNothing();
    await c.closeConnections();
    await a.closeConnections();
  });

  test('[MQTT-4.4.0-1] a QoS 2 delivery waiting for PUBCOMP resends PUBREL after a restart; PUBCOMP completes it', async () => {
    const store = new GatedStore();
    const wall = { now: 1 };
    const a = brokerOn(store, wall);
    await a.restore();
    const sub = (await TestClient.connect(a, persistent('r'))).client;
    await sub.subscribe('r/#', 2, 1);
    const pub = (await TestClient.connect(a, { clientId: 'pub', version: 5 })).client;
    pub.publish('r/x', 'twice?', 2, 1);
    const got = await sub.expect(PacketType.Publish);
    sub.send({ type: PacketType.Pubrec, packetId: got.packetId as number });
    await sub.expect(PacketType.Pubrel);
    await written(store, (op) => op.op === 'inflight' && op.entry.state === 'pubrel', 'the pubrel state');
    await settled(a);
    const b = brokerOn(store, wall);
    await b.restore();
    const back = (await TestClient.connect(b, persistent('r'))).client;
    const rel = await back.expect(PacketType.Pubrel);
    assert.equal(rel.packetId, got.packetId);
    back.send({ type: PacketType.Pubcomp, packetId: rel.packetId });
    await back.expectNothing();
    await b.closeConnections();
    const c = brokerOn(store, wall);
    await c.restore();
    await (await TestClient.connect(c, persistent('r'))).client.expectNothing();
    await c.closeConnections();
    await a.closeConnections();
  });

  test('[MQTT-4.3.3-5] PUBREL is sent only once the PUBREC it answers is committed', async () => {
    const store = new GatedStore();
    const wall = { now: 1 };
    const a = brokerOn(store, wall);
    await a.restore();
    const sub = (await TestClient.connect(a, persistent('rel'))).client;
    await sub.subscribe('rel/#', 2, 1);
    const pub = (await TestClient.connect(a, { clientId: 'pub', version: 5 })).client;
    pub.publish('rel/x', 'once', 2, 1);
    const got = await sub.expect(PacketType.Publish);
    await settled(a);
    store.hold();
    sub.send({ type: PacketType.Pubrec, packetId: got.packetId as number });
    // Until "PUBREC received" is durable, a crash would resend the PUBLISH: no PUBREL yet.
    sub.send({ type: PacketType.Pingreq });
    assert.equal((await sub.next()).type, PacketType.Pingresp);
    store.release();
    const rel = await sub.expect(PacketType.Pubrel);
    assert.equal(rel.packetId, got.packetId);
    await a.closeConnections();
  });

  test('[MQTT-4.3.3-10] an inbound QoS 2 PUBLISH repeated after a restart is acknowledged but not routed again', async () => {
    const store = new GatedStore();
    const wall = { now: 1 };
    const a = brokerOn(store, wall);
    await a.restore();
    await offlineSubscriber(a, 'sink', 'in/#', 1);
    const pub = (await TestClient.connect(a, persistent('q2'))).client;
    pub.publish('in/x', 'once', 2, 5);
    assert.equal((await pub.expect(PacketType.Pubrec)).packetId, 5);
    // The broker dies before PUBREL arrives.
    const b = brokerOn(store, wall);
    let published = 0;
    b.on('published', () => published++);
    await b.restore();
    const again = (await TestClient.connect(b, persistent('q2'))).client;
    again.send({ type: PacketType.Publish, topic: 'in/x', payload: Buffer.from('once'), qos: 2, retain: false, dup: true, packetId: 5 });
    assert.equal((await again.expect(PacketType.Pubrec)).packetId, 5);
    again.send({ type: PacketType.Pubrel, packetId: 5 });
    const comp = await again.expect(PacketType.Pubcomp);
    assert.deepEqual([comp.packetId, comp.reasonCode ?? 0], [5, 0]);
    assert.equal(published, 0, 'not routed a second time');
    const sink = (await TestClient.connect(b, persistent('sink'))).client;
    const one = await sink.expect(PacketType.Publish);
    assert.equal(one.payload.toString(), 'once');
    sink.send({ type: PacketType.Puback, packetId: one.packetId as number });
    await sink.expectNothing();
    await b.closeConnections();
    await a.closeConnections();
  });

  test('[MQTT-4.5.0-1] PUBACK waits for the commit of the queue entries while PINGREQ is answered', async () => {
    const store = new GatedStore();
    const b = brokerOn(store, { now: 1 });
    await b.restore();
    await offlineSubscriber(b, 'slow', 'w/#', 1);
    const pub = (await TestClient.connect(b, { clientId: 'pub', version: 5 })).client;
    await settled(b);
    store.hold();
    pub.publish('w/x', 'stored first', 1, 3);
    pub.send({ type: PacketType.Pingreq });
    assert.equal((await pub.next()).type, PacketType.Pingresp, 'no PUBACK before the commit');
    await written(store, (op) => op.op === 'enqueue' && op.entry.clientId === 'slow', 'the queue entry');
    store.release();
    assert.equal((await pub.expect(PacketType.Puback)).packetId, 3);
    await b.closeConnections();
  });

  test('only persistent sessions store deliveries, and QoS 0 is never stored', async () => {
    const store = new GatedStore();
    const b = brokerOn(store, { now: 1 });
    await b.restore();
    const clean = (await TestClient.connect(b, { clientId: 'clean', version: 5 })).client;
    await clean.subscribe('c/#', 1, 1);
    const kept = (await TestClient.connect(b, persistent('kept'))).client;
    await kept.subscribe('c/#', 1, 1);
    const pub = (await TestClient.connect(b, { clientId: 'pub', version: 5 })).client;
    await settled(b);
    const before = store.writes.length;
    pub.publish('c/zero', 'q0', 0);
    pub.publish('c/one', 'q1', 1, 1);
    await pub.expect(PacketType.Puback);
    for (const c of [clean, kept]) {
      assert.equal((await c.expect(PacketType.Publish)).qos, 0);
      const p = await c.expect(PacketType.Publish);
      c.send({ type: PacketType.Puback, packetId: p.packetId as number });
      await c.expectNothing();
    }
    await untilWritten(store, (s) => s.writes.slice(before).flat().some((op) => op.op === 'complete'), 'the end of the delivery');
    const ops = store.writes.slice(before).flat();
    assert.deepEqual(ops.map((op) => op.op).sort(), ['complete', 'inflight', 'message']);
    for (const op of ops) {
      if (op.op === 'inflight') assert.equal(op.entry.clientId, 'kept');
      if (op.op === 'message') assert.equal(op.message.topic, 'c/one');
    }
    await b.closeConnections();
  });

  test('a turn that only ends deliveries (PUBACK, PUBCOMP received) is written lazily; one that a reply waits for is not', async () => {
    const store = new GatedStore();
    const b = brokerOn(store, { now: 1 });
    await b.restore();
    const kept = (await TestClient.connect(b, persistent('kept'))).client;
    await kept.subscribe('l/#', 2, 1);
    const pub = (await TestClient.connect(b, { clientId: 'pub', version: 5 })).client;
    await settled(b);
    const before = store.writes.length;
    pub.publish('l/one', 'q1', 1, 1);
    await pub.expect(PacketType.Puback);
    const p1 = await kept.expect(PacketType.Publish);
    await settled(b);
    const afterPublish = store.writes.length;
    kept.send({ type: PacketType.Puback, packetId: p1.packetId as number });
    await untilWritten(store, (s) => s.writes.length > afterPublish, 'the PUBACK');
    const afterPuback = store.writes.length;
    // QoS 2: PUBREL waits for the commit of PUBREC's state [MQTT-4.3.3-5]; PUBCOMP ends it, lazily.
    pub.publish('l/two', 'q2', 2, 2);
    await pub.expect(PacketType.Pubrec);
    pub.send({ type: PacketType.Pubrel, packetId: 2 });
    await pub.expect(PacketType.Pubcomp);
    const p2 = await kept.expect(PacketType.Publish);
    kept.send({ type: PacketType.Pubrec, packetId: p2.packetId as number });
    await kept.expect(PacketType.Pubrel);
    await settled(b);
    const afterPubrec = store.writes.length;
    kept.send({ type: PacketType.Pubcomp, packetId: p2.packetId as number });
    await untilWritten(store, (s) => s.writes.length > afterPubrec, 'the PUBCOMP');
    const kinds = (from: number, to: number): [string[], boolean][] =>
      store.writes.slice(from, to).map((ops, i) => [ops.map((op) => op.op), store.lazy[from + i]!]);
    assert.deepEqual(kinds(before, afterPublish), [[['message', 'inflight'], false]]);
    assert.deepEqual(kinds(afterPublish, afterPuback), [[['complete'], true]]);
    assert.ok(kinds(afterPuback, afterPubrec).every(([, lazy]) => !lazy), 'the QoS 2 flow up to PUBREL is committed before its replies');
    assert.deepEqual(kinds(afterPubrec, store.writes.length), [[['complete'], true]]);
    await b.closeConnections();
  });

  test('a message for three persistent receivers is stored once', async () => {
    const store = new GatedStore();
    const b = brokerOn(store, { now: 1 });
    await b.restore();
    for (const id of ['s1', 's2', 's3']) await offlineSubscriber(b, id, 'm/#', 1);
    const pub = (await TestClient.connect(b, { clientId: 'pub', version: 5 })).client;
    await settled(b);
    const before = store.writes.length;
    pub.publish('m/x', 'shared', 1, 1);
    await pub.expect(PacketType.Puback);
    const ops = store.writes.slice(before).flat();
    assert.equal(ops.filter((op) => op.op === 'message').length, 1);
    assert.deepEqual(ops.filter((op) => op.op === 'enqueue').map((op) => op.op === 'enqueue' && op.entry.clientId).sort(), ['s1', 's2', 's3']);
    await b.closeConnections();
  });

  /** Publishes `n` QoS 1 messages s/0 … s/{n-1}, each acknowledged. */
  async function publishMany(b: BrokerCore, n: number): Promise<void> {
    const pub = (await TestClient.connect(b, { clientId: 'pub', version: 5 })).client;
    for (let i = 0; i < n; i++) {
      pub.publish(`s/${i}`, `m${i}`, 1, i + 1);
      await pub.expect(PacketType.Puback);
    }
    pub.disconnect();
  }

  /** Reconnects `clientId` and takes every PUBLISH (acknowledging each) until nothing more comes. */
  async function drain(b: BrokerCore, clientId: string): Promise<string[]> {
    const client = (await TestClient.connect(b, persistent(clientId))).client;
    const topics: string[] = [];
    const take = (p: Packet): void => {
      assert.equal(p.type, PacketType.Publish);
      if (p.type !== PacketType.Publish) return;
      topics.push(p.topic);
      client.send({ type: PacketType.Puback, packetId: p.packetId as number });
    };
    for (let i = 0; i < 100; i++) {
      await settled(b);
      client.send({ type: PacketType.Pingreq });
      let p = await client.next();
      let got = 0;
      while (p.type === PacketType.Publish) {
        got++;
        take(p);
        p = await client.next();
      }
      assert.equal(p.type, PacketType.Pingresp);
      if (got > 0) continue;
      if (b.sessions().find((s) => s.clientId === clientId)?.queued === 0) break;
      // Spilled entries are read back once the store's pending writes are durable: wait for them.
      const next = await client.next(5000);
      assert.equal(next.type, PacketType.Publish, 'the rest of the queue is read back');
      take(next);
    }
    client.disconnect();
    return topics;
  }

  test('[MQTT-3.3.2-5] a restart on SQLite leaves queued messages on disk until their session drains them, in order; an expired one is not delivered', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'petrel-lazy-'));
    try {
      const wall = { now: 1_000_000 };
      const clock = new ManualClock();
      const a = brokerOn(new SqliteStore({ dataDir }), wall, clock, { maxQueuedMessages: 4 });
      await a.restore();
      await offlineSubscriber(a, 'lazy', 's/#', 1);
      await publishMany(a, 9);
      const pub = (await TestClient.connect(a, { clientId: 'pub2', version: 5 })).client;
      pub.publish('s/short-lived', 'gone', 1, 1, false, { messageExpiryInterval: 1 });
      await pub.expect(PacketType.Puback);
      await a.closeConnections();

      wall.now += 5_000;
      const b = brokerOn(new SqliteStore({ dataDir }), wall, new ManualClock(), { maxQueuedMessages: 4 });
      await b.restore();
      assert.deepEqual(b.sessions().map((s) => [s.clientId, s.queued]), [['lazy', 10]], 'counted, not read');
      assert.deepEqual(await drain(b, 'lazy'), ['s/0', 's/1', 's/2', 's/3', 's/4', 's/5', 's/6', 's/7', 's/8']);
      await b.closeConnections();
      // Delivered and acknowledged: gone from the store too.
      const c = brokerOn(new SqliteStore({ dataDir }), wall);
      await c.restore();
      assert.deepEqual(c.sessions().map((s) => [s.clientId, s.queued]), [['lazy', 0]]);
      await c.closeConnections();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('[MQTT-4.6.0-2] QoS 1 PUBLISHes read together share one transaction, and their PUBACKs keep their order', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'petrel-group-'));
    try {
      const store = new SqliteStore({ dataDir });
      const b = brokerOn(store, { now: 1 });
      await b.restore();
      await offlineSubscriber(b, 'g', 'g/#', 1);
      const pub = (await TestClient.connect(b, { clientId: 'pub', version: 5 })).client;
      const before = store.stats.transactions;
      const n = 20;
      const packets: Buffer[] = [];
      for (let i = 1; i <= n; i++) {
        packets.push(encode({ type: PacketType.Publish, topic: `g/${i}`, payload: Buffer.from('x'), qos: 1, retain: false, dup: false, packetId: i }, 5));
      }
      pub.sendRaw(Buffer.concat(packets));
      const ids: number[] = [];
      for (let i = 0; i < n; i++) ids.push((await pub.expect(PacketType.Puback)).packetId as number);
      assert.deepEqual(ids, Array.from({ length: n }, (_, i) => i + 1));
      // Each PUBLISH's commit is handed to the store at once, not after the previous one's: one turn, one transaction.
      const used = store.stats.transactions - before;
      assert.ok(used <= 2, `${n} PUBLISHes read at once took ${used} transactions`);
      await b.closeConnections();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('an offline persistent session with a full queue keeps the overflow in the store and gets it all after reconnecting', async () => {
    const store = new GatedStore();
    const wall = { now: 1 };
    const a = brokerOn(store, wall, new ManualClock(), { maxQueuedMessages: 2 });
    await a.restore();
    await offlineSubscriber(a, 'sp', 's/#', 1);
    await publishMany(a, 6);
    assert.equal(opsOf(store).filter((op) => op.op === 'enqueue').length, 6, 'all six stored, four of them only there');
    assert.deepEqual(await drain(a, 'sp'), ['s/0', 's/1', 's/2', 's/3', 's/4', 's/5']);
    // The same across a restart: two entries come back into memory, four stay in the store.
    await publishMany(a, 5);
    await a.closeConnections();
    const b = brokerOn(store, wall, new ManualClock(), { maxQueuedMessages: 2 });
    await b.restore();
    assert.deepEqual(await drain(b, 'sp'), ['s/0', 's/1', 's/2', 's/3', 's/4']);
    await b.closeConnections();
  });

  test('maxStoredBytesPerSession bounds what an offline session keeps in the store; 0 stores no overflow', async () => {
    // Room for two more of the six messages (all of one size) in the store.
    const two = 2 * messageBytes({ topic: 's/0', payload: Buffer.from('m0') });
    for (const [quota, expected] of [[0, 2], [two, 4]] as const) {
      const store = new GatedStore();
      const b = brokerOn(store, { now: 1 }, new ManualClock(), { maxQueuedMessages: 2, maxStoredBytesPerSession: quota });
      let dropped = 0;
      b.on('messageDropped', () => dropped++);
      await b.restore();
      await offlineSubscriber(b, 'q', 's/#', 1);
      await publishMany(b, 6);
      const got = await drain(b, 'q');
      assert.equal(got.length, expected, `quota ${quota}: ${got.join(' ')}`);
      assert.equal(dropped, 6 - expected);
      await b.closeConnections();
    }
  });
});
