/**
 * The SQLite store's journal: every op survives encoding byte-exact, and netting a run of ops
 * leaves the tables exactly as applying the whole run would (checked against the memory store on
 * random runs), while a stored-sent-acknowledged delivery nets down to one op.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { MemoryStore } from '../../../src/persistence/memory.js';
import { decodeOps, encodeOps, encodeRecord, logHeader, LogNames, MAX_NAMES, netOps, readLog } from '../../../src/persistence/sqlite/journal.js';
import type { StoredState, StoreOp } from '../../../src/persistence/types.js';
import { inflight, msg, queued, session } from '../../contract/store.contract.js';
import { Rng } from '../../helpers/codec-prng.js';

const every: StoreOp[] = [
  { op: 'message', message: msg('m1', { payload: Buffer.from([0, 255, 1]), properties: { correlationData: Buffer.from('c'), userProperties: [['k', 'ü']], messageExpiryInterval: 9 }, expiresAt: 1_700_000_000_123, senderId: 'pub' }) },
  { op: 'message', message: msg('m2', { payload: Buffer.alloc(0), qos: 2, retain: true, senderId: undefined }) },
  { op: 'session', session: session('a', { expiryInterval: 0xffffffff, expiresAt: 5, willAt: 6, will: { topic: 'w/😀', payload: Buffer.from('bye'), qos: 1, retain: true, properties: { contentType: 'text/plain' } } }) },
  { op: 'session', session: session('b') },
  { op: 'dropSession', clientId: 'b' },
  { op: 'subscribe', clientId: 'a', subscription: { topicFilter: 'x/+/#', qos: 2, noLocal: true, retainAsPublished: false, retainHandling: 2, subscriptionIdentifier: 268_435_455 } },
  { op: 'subscribe', clientId: 'a', subscription: { topicFilter: 'y', qos: 0, noLocal: false, retainAsPublished: true, retainHandling: 0, subscriptionIdentifier: undefined } },
  { op: 'unsubscribe', clientId: 'a', topicFilter: 'y' },
  { op: 'enqueue', entry: queued('a', 2 ** 40, 'm1', { subscriptionIds: [1, 268_435_455] }) },
  { op: 'dequeue', clientId: 'a', seq: 2 ** 40 },
  { op: 'inflight', entry: inflight('a', 3, 65535, 'm2', { qos: 2, state: 'pubrel', retain: true }) },
  { op: 'complete', clientId: 'a', packetId: 65535 },
  { op: 'pubrec', clientId: 'a', packetId: 1 },
  { op: 'pubrel', clientId: 'a', packetId: 1 },
  { op: 'retain', topic: 'r/ü', messageId: 'm2' },
  { op: 'unretain', topic: 'r/ü' },
];

describe('SQLite journal', () => {
  test('every op kind and field round trips, Buffers as Buffers, across writes in one blob', () => {
    const blob = encodeOps([every.slice(0, 5), [], every.slice(5)]);
    const out: StoreOp[] = [];
    decodeOps(blob, out);
    assert.deepEqual(out, every);
  });

  test('every op kind and field round trips through log records of the current format too, seqs past 32 bits and odd ones included', () => {
    const odd: StoreOp[] = [
      { op: 'enqueue', entry: queued('a', 2 ** 53 - 1, 'm1', { qos: 0, retain: true }) },
      { op: 'enqueue', entry: queued('b', 1.5, 'm2', { subscriptionIds: [] }) },
      { op: 'inflight', entry: inflight('b', -3, 1, 'm1', { qos: 1, subscriptionIds: [7], state: 'pubrel' }) },
    ];
    const names = new LogNames();
    const first = Buffer.from(encodeRecord([every.slice(0, 5), [], every.slice(5)], 3, names));
    names.commit();
    const second = Buffer.from(encodeRecord([odd], 3, names));
    const out: StoreOp[] = [];
    assert.equal(readLog(Buffer.concat([logHeader(3), first, second]), out)?.records, 2);
    assert.deepEqual(out, [...every, ...odd]);
  });

  test('a damaged blob is refused, not misread', () => {
    const blob = Buffer.from(encodeOps([every]));
    assert.throws(() => decodeOps(blob.subarray(0, blob.length - 3), []), RangeError);
    assert.throws(() => decodeOps(Buffer.from([99]), []), /unknown journal op code 99/);
  });

  test('log records name each client id and topic once per generation and refer back to their message; they read back whole', () => {
    const names = new LogNames();
    const fanOut = (id: string): StoreOp[] => [
      { op: 'message', message: msg(id, { topic: 'sensors/1/temp', senderId: 'publisher-1' }) },
      ...['subscriber-a', 'subscriber-b', 'subscriber-c'].map((c, i): StoreOp => ({ op: 'inflight', entry: inflight(c, i + 1, i + 1, id) })),
    ];
    const first = fanOut('message-0001');
    const second: StoreOp[] = [...fanOut('message-0002'), { op: 'complete', clientId: 'subscriber-a', packetId: 1 }];
    const one = Buffer.from(encodeRecord([first], 7, names));
    names.commit();
    const defined = names.size;
    const two = Buffer.from(encodeRecord([second.slice(0, 2), second.slice(2)], 7, names));
    names.commit();
    assert.equal(defined, 5, 'three subscribers, the topic and the sender');
    assert.equal(names.size, defined, 'the second record defines nothing new');
    // The second record holds one more op, yet every string but its message id is a number or a back reference.
    assert.ok(two.length < one.length - 40, `${two.length} bytes against ${one.length}`);
    const out: StoreOp[] = [];
    // Zeros after the last record, as in a preallocated file.
    const log = readLog(Buffer.concat([logHeader(7), one, two, Buffer.alloc(64)]), out);
    assert.deepEqual(log?.records, 2);
    assert.deepEqual(out, [...first, ...second]);
    // Read without the first record, the second one's numbers mean nothing: refused, not misread.
    assert.throws(() => decodeOps(two.subarray(12), [], []), /journal name 0 not defined/);
  });

  test(`a generation numbers at most ${MAX_NAMES} names; later ones are written in full, and read back`, () => {
    const names = new LogNames();
    for (let i = 0; i < MAX_NAMES; i++) names.define(`client-${i}`);
    names.commit();
    // The reader's view of those names: the same list, in order.
    const known = Array.from({ length: MAX_NAMES }, (_, i) => `client-${i}`);
    const ops: StoreOp[] = [
      { op: 'complete', clientId: 'one-more-client', packetId: 1 },
      { op: 'complete', clientId: 'one-more-client', packetId: 2 },
      { op: 'complete', clientId: 'client-7', packetId: 3 },
    ];
    const record = Buffer.from(encodeRecord([ops], 1, names));
    assert.equal(names.size, MAX_NAMES, 'nothing is defined past the bound');
    const out: StoreOp[] = [];
    decodeOps(record.subarray(12), out, known);
    assert.deepEqual(out, ops);
    assert.equal(known.length, MAX_NAMES);
    // Written in full both times: the record is longer than with one of them numbered.
    assert.ok(record.length > 12 + 2 * 'one-more-client'.length);
  });

  test('the names of a record that could not be written are taken back; the next record defines them again', () => {
    const names = new LogNames();
    const ops: StoreOp[] = [{ op: 'message', message: msg('m1', { topic: 't' }) }, { op: 'enqueue', entry: queued('a', 1, 'm1') }];
    const full = Buffer.from(encodeRecord([ops], 1, names));
    names.rollback();
    assert.equal(names.size, 0);
    const again = Buffer.from(encodeRecord([ops], 1, names));
    assert.deepEqual(again, full);
    names.commit();
    const out: StoreOp[] = [];
    readLog(Buffer.concat([logHeader(1), again]), out);
    assert.deepEqual(out, ops);
  });

  test('a QoS 1 delivery stored, sent and acknowledged nets down to the one complete', () => {
    const run: StoreOp[] = [
      { op: 'message', message: msg('m') },
      { op: 'inflight', entry: inflight('a', 1, 7, 'm') },
      { op: 'complete', clientId: 'a', packetId: 7 },
    ];
    assert.deepEqual(netOps(run), [{ op: 'complete', clientId: 'a', packetId: 7 }]);
    // Queued, moved inflight, still unacknowledged: the message and the inflight entry remain.
    const moved: StoreOp[] = [
      { op: 'message', message: msg('n') }, { op: 'enqueue', entry: queued('a', 2, 'n') },
      { op: 'dequeue', clientId: 'a', seq: 2 }, { op: 'inflight', entry: inflight('a', 2, 8, 'n') },
    ];
    assert.deepEqual(netOps(moved), [moved[0], moved[2], moved[3]]);
  });

  test('netting gives the same tables as applying every op, on 300 random runs', async () => {
    const rng = new Rng(0x5eed);
    const clients = ['a', 'b', 'c'];
    const ids = ['m0', 'm1', 'm2', 'm3', 'm4'];
    const pick = <T>(list: readonly T[]): T => list[rng.int(0, list.length - 1)]!;
    for (let round = 0; round < 300; round++) {
      // A starting state with rows the run replaces and deletes.
      const start: StoreOp[] = [
        ...ids.map((id): StoreOp => ({ op: 'message', message: msg(id) })),
        { op: 'session', session: session('a') },
        { op: 'enqueue', entry: queued('a', 1, 'm0') }, { op: 'inflight', entry: inflight('b', 2, 1, 'm1') },
        { op: 'retain', topic: 't1', messageId: 'm2' }, { op: 'pubrec', clientId: 'c', packetId: 1 },
      ];
      const run: StoreOp[] = ids.map((id): StoreOp => ({ op: 'message', message: msg(id) }));
      const length = rng.int(1, 40);
      for (let i = 0; i < length; i++) {
        const c = pick(clients);
        const kind = rng.int(0, 11);
        const op: StoreOp = [
          (): StoreOp => ({ op: 'session', session: session(c, { expiryInterval: rng.int(1, 9) }) }),
          (): StoreOp => ({ op: 'dropSession', clientId: c }),
          (): StoreOp => ({ op: 'subscribe', clientId: c, subscription: { topicFilter: pick(['f1', 'f2']), qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionIdentifier: rng.int(1, 3) } }),
          (): StoreOp => ({ op: 'unsubscribe', clientId: c, topicFilter: pick(['f1', 'f2']) }),
          (): StoreOp => ({ op: 'enqueue', entry: queued(c, rng.int(1, 3), pick(ids)) }),
          (): StoreOp => ({ op: 'dequeue', clientId: c, seq: rng.int(1, 3) }),
          (): StoreOp => ({ op: 'inflight', entry: inflight(c, rng.int(1, 3), rng.int(1, 3), pick(ids), { state: pick(['publish', 'pubrel'] as const) }) }),
          (): StoreOp => ({ op: 'complete', clientId: c, packetId: rng.int(1, 3) }),
          (): StoreOp => ({ op: 'pubrec', clientId: c, packetId: rng.int(1, 2) }),
          (): StoreOp => ({ op: 'pubrel', clientId: c, packetId: rng.int(1, 2) }),
          (): StoreOp => ({ op: 'retain', topic: pick(['t1', 't2']), messageId: pick(ids) }),
          (): StoreOp => ({ op: 'unretain', topic: pick(['t1', 't2']) }),
        ][kind]!();
        run.push(op);
      }
      const whole = new MemoryStore();
      const netted = new MemoryStore();
      await whole.open();
      await netted.open();
      await whole.write(start);
      await netted.write(start);
      await whole.write(run);
      const net = netOps(run);
      assert.ok(net.length <= run.length);
      await netted.write(net);
      assert.deepEqual(normalised(await netted.open()), normalised(await whole.open()), `round ${round}: ${JSON.stringify(run.map((o) => o.op))}`);
    }
  });
});

function normalised(s: StoredState): unknown {
  const by = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return {
    sessions: [...s.sessions].sort((x, y) => by(x.clientId, y.clientId)),
    subscriptions: [...s.subscriptions].sort((x, y) => by(x.clientId + x.subscription.topicFilter, y.clientId + y.subscription.topicFilter)),
    queue: s.queue,
    // Entries of one seq (allowed, if odd) come in any order.
    inflight: [...s.inflight].sort((x, y) => by(x.clientId, y.clientId) || x.seq - y.seq || x.packetId - y.packetId),
    inboundQos2: [...s.inboundQos2].sort((x, y) => by(`${x.clientId}${x.packetId}`, `${y.clientId}${y.packetId}`)),
    retained: [...s.retained].sort((x, y) => by(x.topic, y.topic)),
    messages: [...s.messages.keys()].sort(),
  };
}

describe('SQLite store against the memory store', () => {
  test('random writes, with compactions and reopens between them, leave the same state', async () => {
    const { SqliteStore } = await import('../../../src/persistence/sqlite/index.js');
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const rng = new Rng(0xc0ffee);
    const pick = <T>(list: readonly T[]): T => list[rng.int(0, list.length - 1)]!;
    const dir = await mkdtemp(join(tmpdir(), 'petrel-sqlite-random-'));
    try {
      for (let round = 0; round < 16; round++) {
        const dataDir = join(dir, String(round));
        let sqlite = new SqliteStore({ dataDir, compactMs: 1_000_000, cutMs: rng.int(0, 1) === 0 ? 1 : 1_000_000 });
        const memory = new MemoryStore();
        await sqlite.open();
        await memory.open();
        let n = 0;
        const live = new Set<string>();
        for (let w = 0; w < 60; w++) {
          const ops: StoreOp[] = [];
          const c = pick(['a', 'b', 'c']);
          const fresh = `m${round}.${n++}`;
          ops.push({ op: 'message', message: msg(fresh) });
          const ids = [fresh, ...live];
          for (let k = rng.int(1, 4); k > 0; k--) {
            const kind = rng.int(0, 9);
            if (kind === 0) ops.push({ op: 'enqueue', entry: queued(c, n + rng.int(0, 3), pick(ids)) });
            else if (kind === 1) ops.push({ op: 'dequeue', clientId: c, seq: rng.int(0, 2) === 0 ? rng.int(0, n + 3) : n - rng.int(0, 6) });
            else if (kind === 2 || kind === 3) ops.push({ op: 'inflight', entry: inflight(c, n, rng.int(1, 4), pick(ids), { state: pick(['publish', 'pubrel'] as const) }) });
            else if (kind === 4 || kind === 5) ops.push({ op: 'complete', clientId: c, packetId: rng.int(1, 4) });
            else if (kind === 6) ops.push({ op: 'retain', topic: pick(['t1', 't2']), messageId: pick(ids) });
            else if (kind === 7) ops.push({ op: 'unretain', topic: pick(['t1', 't2']) });
            else if (kind === 8) ops.push({ op: 'session', session: session(c) });
            else ops.push({ op: 'dropSession', clientId: c });
          }
          await memory.write(ops);
          await sqlite.write(ops);
          // What is still referenced may be referenced again without being put again.
          live.clear();
          for (const id of (await memory.open()).messages.keys()) live.add(id);
          const step = rng.int(0, 9);
          if (step <= 2) await sqlite.readQueue(c, 0, 1);
          if (step === 1) {
            await sqlite.close();
            sqlite = new SqliteStore({ dataDir, compactMs: 1_000_000, cutMs: 1_000_000 });
            await sqlite.open();
          }
        }
        assert.deepEqual(normalised(await sqlite.open()), normalised(await memory.open()), `round ${round}`);
        await sqlite.close();
        const reopened = new SqliteStore({ dataDir });
        assert.deepEqual(normalised(await reopened.open()), normalised(await memory.open()), `round ${round}, reopened`);
        await reopened.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
