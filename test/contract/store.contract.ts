/**
 * The contract every `Store` passes unchanged (memory, SQLite, and later stores). A run registers
 * node:test suites; `make` gives a fresh, empty, unopened store, and for durable stores `reopen`
 * gives a new instance over the same data: every state check then closes the store and reads the
 * state through a new instance, so each test also proves that its state survives a restart.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import type {
  InflightEntry, OpenOptions, QueueEntry, Store, StoredMessage, StoredSession, StoredState, StoredSubscription, StoreOp,
} from '../../src/persistence/index.js';

export interface MadeStore {
  store: Store;
  /** A new, unopened instance over the same data (durable stores). */
  reopen?: () => Promise<Store>;
  cleanup: () => Promise<void>;
}

class Fixture {
  store: Store;
  constructor(private readonly made: MadeStore) {
    this.store = made.store;
  }

  /** Everything stored, read back through a new instance when the store can be reopened. */
  async state(options?: OpenOptions): Promise<StoredState> {
    if (this.made.reopen !== undefined) {
      await this.store.close();
      this.store = await this.made.reopen();
    }
    return this.store.open(options);
  }

  write(...ops: StoreOp[]): Promise<void> {
    return this.store.write(ops);
  }
}

export function msg(id: string, over: Partial<StoredMessage> = {}): StoredMessage {
  return {
    id, topic: `t/${id}`, payload: Buffer.from(`payload ${id}`), qos: 1, retain: false,
    properties: undefined, expiresAt: undefined, senderId: undefined, ...over,
  };
}

export function queued(clientId: string, seq: number, messageId: string, over: Partial<QueueEntry> = {}): QueueEntry {
  return { clientId, seq, messageId, qos: 1, retain: false, subscriptionIds: undefined, ...over };
}

export function inflight(clientId: string, seq: number, packetId: number, messageId: string, over: Partial<InflightEntry> = {}): InflightEntry {
  return { ...queued(clientId, seq, messageId), packetId, state: 'publish', ...over };
}

export function session(clientId: string, over: Partial<StoredSession> = {}): StoredSession {
  return { clientId, expiryInterval: 300, expiresAt: undefined, will: undefined, willAt: undefined, ...over };
}

function sub(topicFilter: string, over: Partial<StoredSubscription> = {}): StoredSubscription {
  return { topicFilter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionIdentifier: undefined, ...over };
}

const m = (message: StoredMessage): StoreOp => ({ op: 'message', message });
const enq = (entry: QueueEntry): StoreOp => ({ op: 'enqueue', entry });
const deq = (clientId: string, seq: number): StoreOp => ({ op: 'dequeue', clientId, seq });
const inf = (entry: InflightEntry): StoreOp => ({ op: 'inflight', entry });
const done = (clientId: string, packetId: number): StoreOp => ({ op: 'complete', clientId, packetId });
const ret = (topic: string, messageId: string): StoreOp => ({ op: 'retain', topic, messageId });
const drop = (clientId: string): StoreOp => ({ op: 'dropSession', clientId });

function messageIds(state: StoredState): string[] {
  return [...state.messages.keys()].sort();
}

const byKey = <T>(key: (x: T) => string) => (a: T, b: T): number => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

export function storeContract(name: string, make: () => Promise<MadeStore>): void {
  async function withStore(body: (f: Fixture) => Promise<void>): Promise<void> {
    const made = await make();
    const f = new Fixture(made);
    try {
      await f.store.open();
      await body(f);
    } finally {
      await f.store.close();
      await made.cleanup();
    }
  }

  describe(`Store contract: ${name}`, () => {
    test('readQueue: one session\'s entries after a seq, in seq order, up to a limit, with their messages', () => withStore(async (f) => {
      const m1 = msg('m1', { properties: { contentType: 'a/b', correlationData: Buffer.from([1, 2]) }, expiresAt: 1_700_000_000_000, senderId: 'p' });
      const m2 = msg('m2', { qos: 2 });
      await f.write(
        { op: 'session', session: session('a') }, { op: 'session', session: session('b') },
        { op: 'message', message: m1 }, { op: 'message', message: m2 },
        { op: 'enqueue', entry: queued('a', 7, 'm2', { qos: 2 }) },
        { op: 'enqueue', entry: queued('a', 3, 'm1', { subscriptionIds: [4] }) },
        { op: 'enqueue', entry: queued('a', 5, 'm1') },
        { op: 'enqueue', entry: queued('b', 4, 'm2') },
      );
      await f.write({ op: 'enqueue', entry: queued('a', 9, 'm2') }, { op: 'dequeue', clientId: 'a', seq: 5 });
      const all = await f.store.readQueue('a', 0, 100);
      assert.deepEqual(all.map((r) => [r.entry.seq, r.entry.messageId]), [[3, 'm1'], [7, 'm2'], [9, 'm2']]);
      assert.deepEqual(all[0], { entry: queued('a', 3, 'm1', { subscriptionIds: [4] }), message: m1 });
      assert.ok(Buffer.isBuffer(all[0]!.message.payload) && Buffer.isBuffer(all[0]!.message.properties?.correlationData));
      assert.deepEqual((await f.store.readQueue('a', 3, 1)).map((r) => r.entry.seq), [7]);
      assert.deepEqual((await f.store.readQueue('a', 9, 10)), []);
      assert.deepEqual((await f.store.readQueue('nobody', 0, 10)), []);
      // Without waiting for the write: a read sees what was written before it.
      void f.write({ op: 'enqueue', entry: queued('b', 6, 'm1') });
      assert.deepEqual((await f.store.readQueue('b', 0, 10)).map((r) => r.entry.seq), [4, 6]);
    }));

    test('open({ lazyQueues }): every queue entry is listed or counted per session, the counted ones come back through readQueue', () => withStore(async (f) => {
      await f.write(
        { op: 'session', session: session('a') }, { op: 'session', session: session('b') },
        m(msg('m1')), m(msg('m2', { payload: Buffer.alloc(1000) })), m(msg('m3')), m(msg('only-queued')),
        enq(queued('a', 3, 'm1')), enq(queued('a', 4, 'm2')), enq(queued('a', 8, 'only-queued')), enq(queued('b', 2, 'm1')),
        inf(inflight('b', 1, 5, 'm3')), ret('t', 'm2'),
      );
      const state = await f.state({ lazyQueues: true });
      // Inflight entries and retained messages always come with their messages.
      assert.deepEqual(state.inflight, [inflight('b', 1, 5, 'm3')]);
      assert.deepEqual(state.retained, [{ topic: 't', messageId: 'm2' }]);
      assert.deepEqual(state.messages.get('m3'), msg('m3'));
      assert.deepEqual(state.messages.get('m2'), msg('m2', { payload: Buffer.alloc(1000) }));
      const counted = new Map((state.queueSummaries ?? []).map((q) => [q.clientId, q]));
      for (const [clientId, seqs] of [['a', [3, 4, 8]], ['b', [2]]] as const) {
        const listed = state.queue.filter((e) => e.clientId === clientId).map((e) => e.seq);
        const summary = counted.get(clientId);
        const rest = seqs.filter((seq) => !listed.includes(seq));
        for (const e of state.queue.filter((x) => x.clientId === clientId)) assert.ok(state.messages.has(e.messageId), `listed ${e.seq} has its message`);
        if (rest.length === 0) {
          assert.ok(summary === undefined || summary.count === 0);
          continue;
        }
        // What is counted is what follows the listed entries.
        assert.deepEqual([summary?.count, summary?.firstSeq, summary?.lastSeq], [rest.length, rest[0], rest[rest.length - 1]]);
        const back = await f.store.readQueue(clientId, rest[0]! - 1, 100);
        assert.deepEqual(back.map((r) => r.entry.seq), rest);
      }
      if (counted.has('a') && counted.get('a')!.count === 3) {
        assert.ok(counted.get('a')!.bytes > 1000 && counted.get('a')!.bytes > counted.get('b')!.bytes, 'bytes reflect the payloads');
      }
    }));

    test('a new store opens empty', () => withStore(async (f) => {
      const state = await f.state();
      assert.deepEqual(state, {
        sessions: [], subscriptions: [], queue: [], inflight: [], inboundQos2: [], retained: [], messages: new Map(),
      });
    }));

    test('session records: create, replace (subscriptions kept), will with Buffer payload and properties, drop', () => withStore(async (f) => {
      const will = {
        topic: 'status/a', payload: Buffer.from([0, 1, 2, 255]), qos: 1 as const, retain: true,
        properties: { willDelayInterval: 30, contentType: 'text/plain', correlationData: Buffer.from([9, 8, 7]), userProperties: [['k', 'v']] as Array<[string, string]> },
      };
      await f.write({ op: 'session', session: session('a') }, { op: 'session', session: session('b', { expiryInterval: 0xffffffff }) });
      await f.write({ op: 'subscribe', clientId: 'a', subscription: sub('x/#') });
      const a2 = session('a', { expiryInterval: 60, expiresAt: 1_700_000_000_123, will, willAt: 1_700_000_030_000 });
      await f.write({ op: 'session', session: a2 });
      let state = await f.state();
      assert.deepEqual(state.sessions.sort(byKey((s) => s.clientId)), [a2, session('b', { expiryInterval: 0xffffffff })]);
      assert.deepEqual(state.subscriptions, [{ clientId: 'a', subscription: sub('x/#') }]);
      assert.ok(Buffer.isBuffer(state.sessions[0]!.will!.payload));
      await f.write(drop('a'));
      state = await f.state();
      assert.deepEqual(state.sessions, [session('b', { expiryInterval: 0xffffffff })]);
      assert.deepEqual(state.subscriptions, []);
    }));

    test('subscriptions: every field, replace by (client, filter), unsubscribe', () => withStore(async (f) => {
      const s1 = sub('a/+/c', { qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2, subscriptionIdentifier: 268_435_455 });
      const s2 = sub('$share/g/x', { qos: 0, retainHandling: 1 });
      await f.write(
        { op: 'subscribe', clientId: 'a', subscription: sub('a/+/c') },
        { op: 'subscribe', clientId: 'a', subscription: s1 },
        { op: 'subscribe', clientId: 'a', subscription: s2 },
        { op: 'subscribe', clientId: 'b', subscription: s1 },
      );
      let state = await f.state();
      const key = (x: { clientId: string; subscription: StoredSubscription }): string => `${x.clientId} ${x.subscription.topicFilter}`;
      assert.deepEqual(state.subscriptions.sort(byKey(key)), [
        { clientId: 'a', subscription: s2 }, { clientId: 'a', subscription: s1 }, { clientId: 'b', subscription: s1 },
      ].sort(byKey(key)));
      await f.write({ op: 'unsubscribe', clientId: 'a', topicFilter: 'a/+/c' }, { op: 'unsubscribe', clientId: 'a', topicFilter: 'never' });
      state = await f.state();
      assert.deepEqual(state.subscriptions.sort(byKey(key)), [{ clientId: 'a', subscription: s2 }, { clientId: 'b', subscription: s1 }]);
    }));

    test('enqueue and dequeue: entries come back with every field', () => withStore(async (f) => {
      const e1 = queued('a', 1, 'm1', { qos: 2, retain: true, subscriptionIds: [3, 7] });
      const e2 = queued('a', 2, 'm2', { qos: 0, subscriptionIds: [] });
      await f.write(m(msg('m1')), m(msg('m2', { qos: 2 })), enq(e1), enq(e2));
      let state = await f.state();
      assert.deepEqual(state.queue, [e1, e2]);
      assert.deepEqual(state.messages.get('m2'), msg('m2', { qos: 2 }));
      await f.write(deq('a', 1), deq('a', 99));
      state = await f.state();
      assert.deepEqual(state.queue, [e2]);
      assert.deepEqual(messageIds(state), ['m2']);
    }));

    test('queue and inflight entries come back in seq order per client, whatever the write order', () => withStore(async (f) => {
      const seqs = [5, 1, 9, 3, 7, 2, 10, 4, 8, 6];
      await f.write(m(msg('x')));
      for (const seq of seqs) {
        await f.write(m(msg(`q${seq}`)), enq(queued('b', seq, `q${seq}`)), enq(queued('a', seq * 100, `q${seq}`)));
      }
      // Packet ids run against seq order, as after a packet id wrap.
      await f.write(...seqs.flatMap((seq) => [m(msg(`i${seq}`)), inf(inflight('c', seq, 1000 - seq, `i${seq}`))]));
      const state = await f.state();
      const sorted = [...seqs].sort((x, y) => x - y);
      for (const client of ['a', 'b']) {
        assert.deepEqual(state.queue.filter((e) => e.clientId === client).map((e) => e.seq), sorted.map((s) => (client === 'a' ? s * 100 : s)));
      }
      // Entries of one client are contiguous.
      const clients = state.queue.map((e) => e.clientId);
      assert.deepEqual(clients, [...clients].sort());
      assert.deepEqual(state.inflight.map((e) => e.seq), sorted);
      assert.deepEqual(state.inflight.map((e) => e.packetId), sorted.map((s) => 1000 - s));
    }));

    test('inflight: publish → pubrel replaces the entry of (client, packet id); complete removes it and its message', () => withStore(async (f) => {
      const e = inflight('a', 4, 17, 'm1', { qos: 2, subscriptionIds: [1] });
      await f.write(m(msg('m1', { qos: 2 })), inf(e));
      let state = await f.state();
      assert.deepEqual(state.inflight, [e]);
      const rel = { ...e, state: 'pubrel' as const };
      await f.write(inf(rel));
      state = await f.state();
      assert.deepEqual(state.inflight, [rel]);
      assert.deepEqual(messageIds(state), ['m1']);
      await f.write(done('a', 17), done('a', 18));
      state = await f.state();
      assert.deepEqual(state.inflight, []);
      assert.deepEqual(messageIds(state), []);
    }));

    test('inflight replacing an entry with another message releases the old message', () => withStore(async (f) => {
      await f.write(m(msg('m1')), inf(inflight('a', 1, 1, 'm1')));
      await f.write(m(msg('m2')), inf(inflight('a', 2, 1, 'm2')));
      const state = await f.state();
      assert.deepEqual(state.inflight, [inflight('a', 2, 1, 'm2')]);
      assert.deepEqual(messageIds(state), ['m2']);
    }));

    test('inbound QoS 2: pubrec is idempotent, pubrel deletes, dropSession clears', () => withStore(async (f) => {
      await f.write({ op: 'pubrec', clientId: 'a', packetId: 1 }, { op: 'pubrec', clientId: 'a', packetId: 1 }, { op: 'pubrec', clientId: 'a', packetId: 65535 },
        { op: 'pubrec', clientId: 'b', packetId: 1 });
      let state = await f.state();
      const key = (x: { clientId: string; packetId: number }): string => `${x.clientId} ${String(x.packetId).padStart(5, '0')}`;
      assert.deepEqual(state.inboundQos2.sort(byKey(key)), [{ clientId: 'a', packetId: 1 }, { clientId: 'a', packetId: 65535 }, { clientId: 'b', packetId: 1 }]);
      await f.write({ op: 'pubrel', clientId: 'a', packetId: 1 }, { op: 'pubrel', clientId: 'a', packetId: 2 });
      state = await f.state();
      assert.deepEqual(state.inboundQos2.sort(byKey(key)), [{ clientId: 'a', packetId: 65535 }, { clientId: 'b', packetId: 1 }]);
      await f.write(drop('a'));
      state = await f.state();
      assert.deepEqual(state.inboundQos2, [{ clientId: 'b', packetId: 1 }]);
    }));

    test('retain and unretain', () => withStore(async (f) => {
      await f.write(m(msg('r1', { retain: true })), ret('a/b', 'r1'), m(msg('r2', { retain: true })), ret('c', 'r2'));
      let state = await f.state();
      assert.deepEqual(state.retained.sort(byKey((r) => r.topic)), [{ topic: 'a/b', messageId: 'r1' }, { topic: 'c', messageId: 'r2' }]);
      assert.deepEqual(messageIds(state), ['r1', 'r2']);
      await f.write({ op: 'unretain', topic: 'a/b' }, { op: 'unretain', topic: 'never' });
      state = await f.state();
      assert.deepEqual(state.retained, [{ topic: 'c', messageId: 'r2' }]);
      assert.deepEqual(messageIds(state), ['r2']);
    }));

    test('a retain replacing another message releases the old one (kept while still queued)', () => withStore(async (f) => {
      await f.write(m(msg('r1')), ret('t', 'r1'), m(msg('r2')), ret('t2', 'r2'), enq(queued('a', 1, 'r2')));
      await f.write(m(msg('r3')), ret('t', 'r3'), m(msg('r4')), ret('t2', 'r4'));
      const state = await f.state();
      assert.deepEqual(state.retained.sort(byKey((r) => r.topic)), [{ topic: 't', messageId: 'r3' }, { topic: 't2', messageId: 'r4' }]);
      assert.deepEqual(messageIds(state), ['r2', 'r3', 'r4']);
      // Retaining the message a topic already holds changes nothing.
      await f.write(ret('t', 'r3'));
      assert.deepEqual(messageIds(await f.state()), ['r2', 'r3', 'r4']);
    }));

    test('writes issued without waiting, across turns, apply and settle in call order', () => withStore(async (f) => {
      const settled: number[] = [];
      const track = (i: number, p: Promise<void>): Promise<void> => p.then(() => {
        settled.push(i);
      });
      const all: Promise<void>[] = [];
      // Each write depends on the one before it (the message it references, the entry it replaces).
      all.push(track(0, f.write(m(msg('m1')), enq(queued('a', 1, 'm1')))));
      all.push(track(1, f.write(deq('a', 1), inf(inflight('a', 1, 7, 'm1')))));
      await new Promise((resolve) => setImmediate(resolve));
      all.push(track(2, f.write(m(msg('m2')), enq(queued('a', 2, 'm2')))));
      await Promise.resolve();
      all.push(track(3, f.write(done('a', 7), deq('a', 2), enq(queued('a', 3, 'm2')))));
      await Promise.all(all);
      assert.deepEqual(settled, [0, 1, 2, 3]);
      const state = await f.state();
      assert.deepEqual(state.inflight, []);
      assert.deepEqual(state.queue, [queued('a', 3, 'm2')]);
      assert.deepEqual(messageIds(state), ['m2']);
    }));

    test('a lazy write (WriteOptions.lazy) applies like any other, in call order, and resolves', () => withStore(async (f) => {
      const settled: string[] = [];
      await f.write(m(msg('m1')), inf(inflight('a', 1, 7, 'm1')), m(msg('m2')), inf(inflight('a', 2, 8, 'm2')));
      const lazy = f.store.write([done('a', 7)], { lazy: true }).then(() => settled.push('lazy'));
      const eager = f.write(done('a', 8)).then(() => settled.push('eager'));
      await Promise.all([lazy, eager]);
      assert.deepEqual(settled, ['lazy', 'eager']);
      // Alone, a lazy write resolves too.
      await f.store.write([m(msg('m3')), enq(queued('b', 1, 'm3'))], { lazy: true });
      const state = await f.state();
      assert.deepEqual(state.inflight, []);
      assert.deepEqual(state.queue, [queued('b', 1, 'm3')]);
      assert.deepEqual(messageIds(state), ['m3']);
    }));

    test('a message referenced by 3 queues and a retained topic stays until its last reference goes', () => withStore(async (f) => {
      await f.write(m(msg('m')), enq(queued('a', 1, 'm')), enq(queued('b', 1, 'm')), enq(queued('c', 1, 'm')), ret('t', 'm'));
      const steps: StoreOp[] = [deq('a', 1), { op: 'unretain', topic: 't' }, deq('c', 1)];
      for (const step of steps) {
        await f.write(step);
        assert.deepEqual(messageIds(await f.state()), ['m'], `after ${step.op}`);
      }
      await f.write(deq('b', 1));
      const state = await f.state();
      assert.deepEqual(messageIds(state), []);
      assert.deepEqual(state.queue, []);
    }));

    test('dropSession releases the references of its queue and inflight entries', () => withStore(async (f) => {
      await f.write(
        { op: 'session', session: session('a') }, { op: 'session', session: session('b') },
        m(msg('shared')), m(msg('own1')), m(msg('own2')),
        enq(queued('a', 1, 'shared')), enq(queued('a', 2, 'own1')), inf(inflight('a', 3, 9, 'own2')), inf(inflight('a', 4, 10, 'shared')),
        enq(queued('b', 1, 'shared')),
        { op: 'subscribe', clientId: 'a', subscription: sub('#') },
      );
      await f.write(drop('a'));
      let state = await f.state();
      assert.deepEqual(state.sessions, [session('b')]);
      assert.deepEqual(state.queue, [queued('b', 1, 'shared')]);
      assert.deepEqual(state.inflight, []);
      assert.deepEqual(state.subscriptions, []);
      assert.deepEqual(messageIds(state), ['shared']);
      await f.write(drop('b'), drop('nobody'));
      state = await f.state();
      assert.deepEqual(messageIds(state), []);
      assert.deepEqual(state.queue, []);
    }));

    test('putting the same message id twice is harmless (in one write and in two)', () => withStore(async (f) => {
      await f.write(m(msg('m')), m(msg('m')), enq(queued('a', 1, 'm')));
      await f.write(m(msg('m')), enq(queued('b', 1, 'm')));
      await f.write(deq('a', 1));
      let state = await f.state();
      assert.deepEqual(messageIds(state), ['m']);
      assert.deepEqual(state.messages.get('m'), msg('m'));
      await f.write(deq('b', 1));
      state = await f.state();
      assert.deepEqual(messageIds(state), []);
    }));

    test('a message with no reference at the end of its write is not kept', () => withStore(async (f) => {
      await f.write(m(msg('lonely')));
      await f.write(m(msg('passing')), enq(queued('a', 1, 'passing')), deq('a', 1));
      const state = await f.state();
      assert.deepEqual(messageIds(state), []);
    }));

    test('dequeue then inflight of the same message in one write keeps the message', () => withStore(async (f) => {
      await f.write(m(msg('m')), enq(queued('a', 1, 'm')));
      await f.write(deq('a', 1), inf(inflight('a', 1, 1, 'm')));
      let state = await f.state();
      assert.deepEqual(state.queue, []);
      assert.deepEqual(state.inflight, [inflight('a', 1, 1, 'm')]);
      assert.deepEqual(state.messages.get('m'), msg('m'));
      await f.write(done('a', 1));
      state = await f.state();
      assert.deepEqual(messageIds(state), []);
    }));

    test('messages: every field and 5.0 properties round trip, Buffers as Buffers, user properties in order', () => withStore(async (f) => {
      const properties = {
        payloadFormatIndicator: true,
        messageExpiryInterval: 3600,
        contentType: 'application/json; charset=utf-8',
        responseTopic: 'reply/ü/😀',
        correlationData: Buffer.from([0, 0xff, 0x10, 0x80]),
        authenticationData: Buffer.alloc(0),
        subscriptionIdentifiers: [1, 268_435_455],
        userProperties: [['k', 'v1'], ['k', 'v2'], ['', ''], ['ключ', '{"$b64":"AAAA"}']] as Array<[string, string]>,
      };
      const full = msg('p', {
        topic: 'a/ü/😀', payload: Buffer.from('x'), qos: 2, retain: true, properties, expiresAt: 1_700_000_000_999, senderId: 'publisher-1',
      });
      const bare = msg('q', { qos: 0, properties: {} });
      await f.write(m(full), m(bare), enq(queued('a', 1, 'p')), ret('r', 'q'));
      const state = await f.state();
      assert.deepEqual(state.messages.get('p'), full);
      assert.deepEqual(state.messages.get('q'), bare);
      const back = state.messages.get('p')!.properties!;
      assert.ok(Buffer.isBuffer(back.correlationData));
      assert.ok(Buffer.isBuffer(back.authenticationData));
      assert.equal(back.userProperties![3]![1], '{"$b64":"AAAA"}');
    }));

    test('payloads are byte-exact: empty, every byte value, 1 MB', () => withStore(async (f) => {
      const payloads = [Buffer.alloc(0), Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(1024 * 1024)];
      await f.write(...payloads.flatMap((payload, i) => [m(msg(`p${i}`, { payload })), enq(queued('a', i, `p${i}`))]));
      const state = await f.state();
      payloads.forEach((payload, i) => {
        const back = state.messages.get(`p${i}`)!.payload;
        assert.ok(Buffer.isBuffer(back));
        assert.equal(back.length, payload.length);
        assert.ok(back.equals(payload), `payload ${i}`);
      });
    }));

    test('a write is atomic: one bad op (a reference to an unknown message) rejects it and changes nothing', () => withStore(async (f) => {
      await f.write({ op: 'session', session: session('a') }, m(msg('m0')), enq(queued('a', 0, 'm0')), ret('keep', 'm0'));
      const before = await f.state();
      const ops: StoreOp[] = [];
      for (let i = 1; i <= 200; i++) ops.push(m(msg(`m${i}`)), enq(queued('a', i, `m${i}`)));
      ops.push({ op: 'session', session: session('b') }, deq('a', 0), { op: 'unretain', topic: 'keep' }, drop('a'), { op: 'pubrec', clientId: 'c', packetId: 1 });
      ops.push(enq(queued('a', 999, 'no-such-message')));
      await assert.rejects(f.write(...ops));
      await assert.rejects(f.write(ret('t', 'no-such-message')));
      await assert.rejects(f.write(m(msg('x')), inf(inflight('a', 1, 1, 'no-such-message'))));
      assert.deepEqual(await f.state(), before);
      // The store still works.
      await f.write(m(msg('after')), enq(queued('a', 1, 'after')));
      assert.deepEqual(messageIds(await f.state()), ['after', 'm0']);
    }));

    test('writes after close reject', () => withStore(async (f) => {
      await f.store.close();
      await assert.rejects(f.write({ op: 'session', session: session('a') }));
    }));

    test('a workload reads back the same twice (for durable stores: across close and reopen)', () => withStore(async (f) => {
      for (let i = 0; i < 50; i++) {
        const c = `c${i % 5}`;
        await f.write({ op: 'session', session: session(c, { expiresAt: 1_700_000_000_000 + i }) }, m(msg(`m${i}`)), enq(queued(c, i, `m${i}`)), ret(`r/${i % 3}`, `m${i}`));
        if (i % 4 === 0) await f.write(deq(c, i), inf(inflight(c, i, (i % 7) + 1, `m${i}`)));
        if (i % 8 === 0) await f.write(done(c, (i % 7) + 1));
        if (i % 6 === 0) await f.write({ op: 'pubrec', clientId: c, packetId: i + 1 });
      }
      const first = await f.state();
      const second = await f.state();
      assert.deepEqual(second, first);
      assert.equal(first.queue.length > 0 && first.inflight.length > 0 && first.retained.length === 3, true);
      for (const e of [...first.queue, ...first.inflight]) assert.ok(first.messages.has(e.messageId));
      for (const r of first.retained) assert.ok(first.messages.has(r.messageId));
    }));
  });
}
