/**
 * The broker on a store: what a persistent session, its subscriptions and retained messages
 * leave in the store comes back on restore() in a new broker (a restart), with deadlines in
 * wall-clock time; SUBACK and the acknowledgement of a retained PUBLISH wait for the commit, and
 * later acknowledgements keep their order. A "crash" is a second broker opening the same store
 * while the first one still has its clients connected.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { MemoryStore } from '../../src/persistence/memory.js';
import type { Store, StoredState, StoreOp } from '../../src/persistence/types.js';
import { PacketType } from '../../src/protocol/index.js';
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

  async write(ops: readonly StoreOp[]): Promise<void> {
    this.writes.push([...ops]);
    const gate = this.#gate;
    if (gate !== undefined) await gate.promise;
    await this.inner.write(ops);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function brokerOn(store: Store, wall: { now: number }, clock = new ManualClock()): BrokerCore {
  return new BrokerCore({ store, clock, ticker: new ManualTicker(), wallClock: () => wall.now, connectTimeout: 0 });
}

/** Waits until the store has seen `n` writes (a commit happens at the end of a turn). */
async function settled(broker: BrokerCore): Promise<void> {
  // restore() resolves once everything written so far is committed.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  void broker;
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
