/**
 * What the SQLite store adds to the store contract: group commit, failing batches, schema
 * versions, durability modes and crash safety (a writer killed with SIGKILL mid-stream).
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import fs, { copyFileSync, readdirSync, statSync, truncateSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteStore, StoreError, type StoredState, type StoreOp } from '../../../src/persistence/index.js';
import { migrations } from '../../../src/persistence/sqlite/schema.js';
import { inflight, msg, queued } from '../../contract/store.contract.js';
import { crashCopy } from '../../helpers/sqlite-copy.js';
import { expectedAfter } from '../../helpers/store-crash-workload.js';

let dataDir: string;
const stores: SqliteStore[] = [];

function open(options: Partial<ConstructorParameters<typeof SqliteStore>[0]> = {}): SqliteStore {
  const store = new SqliteStore({ dataDir, ...options });
  stores.push(store);
  return store;
}

async function reread(): Promise<StoredState> {
  const store = open();
  const state = await store.open();
  await store.close();
  return state;
}

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'petrel-sqlite-'));
});

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('SqliteStore', () => {
  test('group commit: writes made in one turn share one transaction, applied in call order', async () => {
    const store = open();
    await store.open();
    const before = store.stats;
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) writes.push(store.write([{ op: 'message', message: msg(`m${i}`) }, { op: 'enqueue', entry: queued('a', i, `m${i}`) }]));
    // Depends on call order: the entry is queued by the first write and moved by the second.
    writes.push(store.write([{ op: 'dequeue', clientId: 'a', seq: 0 }, { op: 'inflight', entry: inflight('a', 0, 1, 'm0') }]));
    await Promise.all(writes);
    assert.equal(store.stats.transactions - before.transactions, 1);
    assert.equal(store.stats.writes - before.writes, 51);
    // Writes in later turns are later transactions.
    await store.write([{ op: 'dequeue', clientId: 'a', seq: 1 }]);
    await store.write([{ op: 'dequeue', clientId: 'a', seq: 2 }]);
    assert.equal(store.stats.transactions - before.transactions, 3);
    await store.close();
    const state = await reread();
    assert.equal(state.queue.length, 47);
    assert.deepEqual(state.inflight, [inflight('a', 0, 1, 'm0')]);
  });

  test('a write the store cannot take is refused alone, when it is made; the others of its turn commit', async () => {
    const store = open();
    await store.open();
    await store.write([{ op: 'message', message: msg('m0') }, { op: 'enqueue', entry: queued('a', 0, 'm0') }]);
    const good1 = store.write([{ op: 'message', message: msg('m1') }, { op: 'enqueue', entry: queued('a', 1, 'm1') }]);
    // A value the schema forbids (QoS 3), and a reference to a message the store does not hold.
    const badQos = store.write([{ op: 'message', message: msg('m2', { qos: 3 as 1 }) }]);
    const badRef = store.write([{ op: 'message', message: msg('m4') }, { op: 'retain', topic: 't', messageId: 'missing' }]);
    const good2 = store.write([{ op: 'dequeue', clientId: 'a', seq: 0 }, { op: 'session', session: { clientId: 'a', expiryInterval: 1, expiresAt: undefined, will: undefined, willAt: undefined } }]);
    await assert.rejects(badQos, (err: unknown) => err instanceof StoreError && err.code === 'failed' && /qos 3/.test(err.message));
    await assert.rejects(badRef, (err: unknown) => err instanceof StoreError && err.code === 'unknown-message');
    await Promise.all([good1, good2]);
    await store.close();
    const state = await reread();
    assert.deepEqual(state.queue, [queued('a', 1, 'm1')]);
    assert.deepEqual(state.sessions.map((x) => x.clientId), ['a']);
    assert.deepEqual([...state.messages.keys()].sort(), ['m1']);
  });

  test('the log names a client id and a topic in full once per generation: the same deliveries again cost fewer bytes, and read back whole', async () => {
    const store = open({ compactMs: 1_000_000, cutMs: 1_000_000 });
    await store.open();
    const deliveries = (id: string, seq: number): StoreOp[] => [
      { op: 'message', message: msg(id, { topic: 'sensors/building-7/temperature' }) },
      ...['subscriber-one', 'subscriber-two', 'subscriber-three'].map((c): StoreOp => ({ op: 'enqueue', entry: queued(c, seq, id) })),
    ];
    await store.write(deliveries('m1', 1));
    const first = store.stats.logBytes;
    await store.write(deliveries('m2', 2));
    const second = store.stats.logBytes - first;
    assert.ok(first > 0 && second < first - 50, `second record ${second} bytes, first ${first}`);
    const state = await crashCopy(dataDir);
    assert.deepEqual(state.queue.map((e) => [e.clientId, e.seq, e.messageId]).sort(), [
      ['subscriber-one', 1, 'm1'], ['subscriber-one', 2, 'm2'], ['subscriber-three', 1, 'm1'], ['subscriber-three', 2, 'm2'],
      ['subscriber-two', 1, 'm1'], ['subscriber-two', 2, 'm2'],
    ]);
    assert.equal(state.messages.get('m2')?.topic, 'sensors/building-7/temperature');
  });

  test('recovery deletes the rows the tables hold, and skips the deletes of rows that never reached them', async () => {
    const store = open({ compactMs: 1_000_000, cutMs: 1_000_000 });
    await store.open();
    await store.write([
      { op: 'message', message: msg('m1') }, { op: 'inflight', entry: inflight('a', 1, 1, 'm1') },
      { op: 'message', message: msg('m2') }, { op: 'enqueue', entry: queued('b', 1, 'm2') },
      { op: 'message', message: msg('m5') }, { op: 'inflight', entry: inflight('a', 5, 5, 'm5') }, { op: 'enqueue', entry: queued('b', 5, 'm5') },
      { op: 'message', message: msg('m6') }, { op: 'enqueue', entry: queued('b', 6, 'm6') },
    ]);
    // A read compacts: these rows are in the tables now.
    assert.equal((await store.readQueue('b', 0, 10)).length, 3);
    await store.write([
      // The session's highest seq in the table is 6: its delete must happen.
      { op: 'complete', clientId: 'a', packetId: 1 }, { op: 'dequeue', clientId: 'b', seq: 1 }, { op: 'dequeue', clientId: 'b', seq: 6 },
      // Stored, sent and acknowledged before the next compaction: never in the tables.
      { op: 'message', message: msg('m3') }, { op: 'inflight', entry: inflight('a', 2, 2, 'm3') }, { op: 'complete', clientId: 'a', packetId: 2 },
      { op: 'message', message: msg('m4') }, { op: 'enqueue', entry: queued('b', 2, 'm4') }, { op: 'dequeue', clientId: 'b', seq: 2 },
      // Deletes of rows no one ever wrote.
      { op: 'complete', clientId: 'c', packetId: 9 }, { op: 'dequeue', clientId: 'c', seq: 9 },
    ]);
    const state = await crashCopy(dataDir);
    assert.deepEqual(state.inflight, [inflight('a', 5, 5, 'm5')]);
    assert.deepEqual(state.queue, [queued('b', 5, 'm5')]);
    assert.deepEqual([...state.messages.keys()], ['m5']);
  });

  test('a failing log write rejects every write of its turn, leaves no partial record, and the next turn works', async (t) => {
    const store = open();
    await store.open();
    await store.write([{ op: 'message', message: msg('m0') }, { op: 'enqueue', entry: queued('a', 0, 'm0') }]);
    const committed = store.stats.transactions;
    // The disk fills up half way through the next record.
    const real = fs.writeSync;
    t.mock.method(fs, 'writeSync', (fd: number, buf: Buffer, offset: number, length: number, position: number) => {
      real(fd, buf, offset, Math.floor(length / 2), position);
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    });
    syncBuiltinESMExports();
    // Client 'b' is named in the log for the first time by this record: the next record, which
    // names 'b' too, must write it in full again, since this definition never reached the file.
    const turn = [
      store.write([{ op: 'message', message: msg('m1') }, { op: 'enqueue', entry: queued('b', 1, 'm1') }]),
      store.write([{ op: 'dequeue', clientId: 'a', seq: 0 }]),
    ];
    const results = await Promise.allSettled(turn);
    t.mock.restoreAll();
    syncBuiltinESMExports();
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.ok(r.reason instanceof StoreError);
      assert.equal(r.reason.code, 'failed');
      assert.match(r.reason.message, /ENOSPC/);
    }
    assert.equal(store.stats.transactions, committed);
    await store.write([{ op: 'message', message: msg('m3') }, { op: 'enqueue', entry: queued('b', 0, 'm3') }]);
    // Read back as after a crash: a copy of the files as they are now, the log included.
    const state = await crashCopy(dataDir);
    assert.deepEqual(state.queue, [queued('a', 0, 'm0'), queued('b', 0, 'm3')]);
    assert.deepEqual([...state.messages.keys()].sort(), ['m0', 'm3']);
  });

  test('after a crash, the log is read up to its first record cut short', async () => {
    const store = open();
    await store.open();
    const log = `${store.path}.oplog`;
    await store.write([{ op: 'message', message: msg('m1') }, { op: 'retain', topic: 't1', messageId: 'm1' }]);
    await store.write([{ op: 'message', message: msg('m2') }, { op: 'retain', topic: 't2', messageId: 'm2' }]);
    const two = statSync(log).size;
    await store.write([{ op: 'message', message: msg('m3') }, { op: 'retain', topic: 't3', messageId: 'm3' }]);
    const three = statSync(log).size;
    const copy = await mkdtemp(join(tmpdir(), 'petrel-sqlite-copy-'));
    try {
      for (const f of readdirSync(dataDir)) copyFileSync(join(dataDir, f), join(copy, f));
      // The third record was being written when the machine stopped.
      truncateSync(join(copy, 'petrel.db.oplog'), two + Math.floor((three - two) / 2));
      const crashed = new SqliteStore({ dataDir: copy });
      const state = await crashed.open();
      assert.deepEqual(state.retained.map((r) => r.topic).sort(), ['t1', 't2']);
      // The next writes follow whole records, and a later restart reads them.
      await crashed.write([{ op: 'message', message: msg('m4') }, { op: 'retain', topic: 't4', messageId: 'm4' }]);
      await crashed.close();
      const again = new SqliteStore({ dataDir: copy });
      assert.deepEqual((await again.open()).retained.map((r) => r.topic).sort(), ['t1', 't2', 't4']);
      await again.close();
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });

  test('the log: one record per turn, compacted into the tables every compactMs, before reads and at close', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    // Every compaction is a synced one that cuts the log (cutMs 1).
    const store = open({ compactMs: 100, cutMs: 1 });
    await store.open();
    const log = `${store.path}.oplog`;
    const db = new Database(store.path, { readonly: true });
    const rows = (table: string): number => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
    const empty = statSync(log).size;
    await store.write([{ op: 'message', message: msg('m1') }, { op: 'enqueue', entry: queued('a', 1, 'm1') }]);
    const one = statSync(log).size;
    await store.write([{ op: 'message', message: msg('m2') }, { op: 'inflight', entry: inflight('a', 2, 5, 'm2') }]);
    assert.ok(empty < one && one < statSync(log).size, 'each turn appends a record');
    assert.deepEqual([rows('queue'), rows('inflight'), store.stats.journaled, store.stats.transactions], [0, 0, 4, 2]);
    t.mock.timers.tick(100);
    assert.deepEqual([rows('queue'), rows('inflight'), store.stats.journaled, store.stats.compactions], [1, 1, 0, 1]);
    assert.equal(statSync(log).size, empty, 'the log starts a new generation');
    // Stored, then completed before the next compaction: the message never reaches the tables.
    await store.write([{ op: 'message', message: msg('m3') }, { op: 'inflight', entry: inflight('a', 3, 6, 'm3') }]);
    await store.write([{ op: 'complete', clientId: 'a', packetId: 6 }, { op: 'complete', clientId: 'a', packetId: 5 }]);
    assert.deepEqual([rows('inflight'), rows('messages')], [1, 2]);
    // A read compacts first.
    assert.deepEqual((await store.readQueue('a', 0, 10)).map((r) => r.entry), [queued('a', 1, 'm1')]);
    assert.deepEqual([rows('inflight'), rows('messages'), statSync(log).size], [0, 1, empty]);
    assert.equal(db.prepare('SELECT count(*) FROM messages WHERE id = ?').pluck().get('m3'), 0);
    await store.write([{ op: 'dequeue', clientId: 'a', seq: 1 }]);
    assert.equal(rows('queue'), 1);
    await store.close();
    assert.deepEqual([rows('queue'), rows('messages')], [0, 0]);
    db.close();
  });

  test('compactions between cuts leave the log; a crash then replays it from where the tables stopped', async () => {
    const store = open({ compactMs: 1_000_000, cutMs: 1_000_000 });
    await store.open();
    const log = `${store.path}.oplog`;
    await store.write([{ op: 'message', message: msg('m1') }, { op: 'enqueue', entry: queued('a', 1, 'm1') }, { op: 'enqueue', entry: queued('b', 1, 'm1') }]);
    // A read compacts (not a cut): the tables hold the entries, the log still holds the record.
    assert.equal((await store.readQueue('a', 0, 10)).length, 1);
    assert.equal(store.stats.cuts, 0);
    await store.write([{ op: 'dequeue', clientId: 'a', seq: 1 }, { op: 'message', message: msg('m2') }, { op: 'enqueue', entry: queued('a', 2, 'm2') }]);
    const copy = await mkdtemp(join(tmpdir(), 'petrel-sqlite-copy-'));
    try {
      for (const f of readdirSync(dataDir)) copyFileSync(join(dataDir, f), join(copy, f));
      assert.ok(statSync(join(copy, 'petrel.db.oplog')).size > statSync(log).size / 2);
      const crashed = new SqliteStore({ dataDir: copy });
      const state = await crashed.open();
      await crashed.close();
      // The second record is applied; the first, which the tables hold, is skipped (every op sets or
      // deletes one row, so replaying it would leave the same state, only later).
      assert.ok(crashed.stats.compactions === 0);
      assert.deepEqual(state.queue, [queued('a', 2, 'm2'), queued('b', 1, 'm1')]);
      const again = new SqliteStore({ dataDir: copy });
      await again.open();
      await again.write([{ op: 'dequeue', clientId: 'b', seq: 1 }]);
      await again.close();
      const last = new SqliteStore({ dataDir: copy });
      assert.deepEqual([...(await last.open()).messages.keys()], ['m2'], 'm1 went with its last reference');
      await last.close();
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });

  test('a compaction on the timer leaves the youngest deliveries to the next one; a crash in between replays them from the log', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    // Every delivery is young (holdMs): a timer compaction holds each one once.
    const store = open({ compactMs: 100, cutMs: 1_000_000, holdMs: 1_000_000 });
    await store.open();
    const db = new Database(store.path, { readonly: true });
    const rows = (table: string): number => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
    await store.write([
      { op: 'message', message: msg('m1') }, { op: 'inflight', entry: inflight('a', 1, 1, 'm1') },
      { op: 'message', message: msg('m2') }, { op: 'enqueue', entry: queued('b', 1, 'm2') },
    ]);
    t.mock.timers.tick(100);
    // The queue entry is in the tables; the delivery and its message wait in memory.
    assert.deepEqual([rows('queue'), rows('inflight'), rows('messages'), store.stats.compactions, store.stats.held], [1, 0, 1, 1, 2]);
    const crashed = await crashCopy(dataDir);
    assert.deepEqual([crashed.inflight, crashed.queue, [...crashed.messages.keys()].sort()], [[inflight('a', 1, 1, 'm1')], [queued('b', 1, 'm2')], ['m1', 'm2']]);
    // Acknowledged before the next compaction: the delivery nets away and never reaches the tables.
    await store.write([{ op: 'complete', clientId: 'a', packetId: 1 }]);
    t.mock.timers.tick(100);
    assert.deepEqual([rows('inflight'), rows('messages'), store.stats.compactions], [0, 1, 2]);
    // Not acknowledged by the next compaction: written then (held once only).
    await store.write([{ op: 'message', message: msg('m3') }, { op: 'inflight', entry: inflight('a', 2, 2, 'm3') }]);
    t.mock.timers.tick(100);
    assert.deepEqual([rows('inflight'), store.stats.held], [0, 4]);
    // The held message can be referenced meanwhile, as any message the store holds.
    await store.write([{ op: 'enqueue', entry: queued('c', 1, 'm3') }]);
    t.mock.timers.tick(100);
    assert.deepEqual([rows('inflight'), rows('queue'), rows('messages'), store.stats.compactions], [1, 2, 2, 4]);
    await store.close();
    db.close();
    const state = await reread();
    assert.deepEqual([state.inflight, state.queue], [[inflight('a', 2, 2, 'm3')], [queued('b', 1, 'm2'), queued('c', 1, 'm3')]]);
  });

  test('deletes of rows an earlier compaction wrote reach the tables; deletes of rows never written change nothing', async () => {
    const store = open({ compactMs: 1_000_000 });
    await store.open();
    await store.write([{ op: 'message', message: msg('m1') }, { op: 'enqueue', entry: queued('a', 5, 'm1') }, { op: 'inflight', entry: inflight('a', 6, 3, 'm1') }]);
    assert.equal((await store.readQueue('a', 0, 10)).length, 1, 'compacted');
    await store.write([{ op: 'dequeue', clientId: 'a', seq: 5 }, { op: 'complete', clientId: 'a', packetId: 3 }]);
    // Never written: a later seq, another packet id, another session.
    await store.write([{ op: 'dequeue', clientId: 'a', seq: 9 }, { op: 'complete', clientId: 'a', packetId: 4 }, { op: 'complete', clientId: 'z', packetId: 1 }]);
    assert.deepEqual(await store.readQueue('a', 0, 10), []);
    await store.close();
    const state = await reread();
    assert.deepEqual([state.queue, state.inflight, [...state.messages.keys()]], [[], [], []]);
  });

  test('writes before open and after close reject; close writes what is pending', async () => {
    const store = open();
    await assert.rejects(store.write([]), (err: unknown) => err instanceof StoreError && err.code === 'not-open');
    await store.open();
    const pending = store.write([{ op: 'message', message: msg('m') }, { op: 'retain', topic: 't', messageId: 'm' }]);
    await store.close();
    await pending;
    await assert.rejects(store.write([]), (err: unknown) => err instanceof StoreError && err.code === 'closed');
    await assert.rejects(store.open(), (err: unknown) => err instanceof StoreError && err.code === 'closed');
    assert.deepEqual((await reread()).retained, [{ topic: 't', messageId: 'm' }]);
  });

  test('schema: a new database is at version 2; a newer version is refused with a clear error', async () => {
    const store = open({ fileName: 'x.db' });
    await store.open();
    await store.close();
    const db = new Database(join(dataDir, 'x.db'));
    assert.equal(db.prepare('SELECT version FROM schema_version').pluck().get(), 2);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.prepare('UPDATE schema_version SET version = 7').run();
    db.close();
    await assert.rejects(open({ fileName: 'x.db' }).open(), (err: unknown) => {
      assert.ok(err instanceof StoreError);
      assert.equal(err.code, 'schema-too-new');
      assert.match(err.message, /x\.db has schema version 7, but this version of Petrel knows versions up to 2/);
      return true;
    });
  });

  test('a version 1 database (before the journal) is migrated to version 2 with its contents', async () => {
    const db = new Database(join(dataDir, 'petrel.db'));
    db.exec(migrations[0]!);
    db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version (version) VALUES (1)');
    db.prepare("INSERT INTO messages (id, topic, payload, qos, retain, refs) VALUES ('m', 't', x'6869', 1, 1, 1)").run();
    db.prepare("INSERT INTO retained (topic, message_id) VALUES ('t', 'm')").run();
    db.close();
    const state = await reread();
    assert.deepEqual(state.retained, [{ topic: 't', messageId: 'm' }]);
    assert.equal(state.messages.get('m')?.payload.toString(), 'hi');
    const again = new Database(join(dataDir, 'petrel.db'), { readonly: true });
    assert.equal(again.prepare('SELECT version FROM schema_version').pluck().get(), 2);
    again.close();
  });

  test('a file that is not a database is refused', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dataDir, 'petrel.db'), Buffer.alloc(4096, 'not sqlite'));
    await assert.rejects(open().open(), (err: unknown) => err instanceof StoreError && err.code === 'failed');
  });

  test('commit mode syncs the log at every group commit, interval mode only every intervalMs; the tables at each cut', async () => {
    const commit = open({ fileName: 'c.db' });
    await commit.open();
    const before = commit.stats.syncs;
    await commit.write([{ op: 'message', message: msg('m') }, { op: 'retain', topic: 't', messageId: 'm' }]);
    await Promise.all([commit.write([{ op: 'unretain', topic: 't' }]), commit.write([{ op: 'unretain', topic: 'u' }])]);
    assert.equal(commit.stats.syncs - before, 2, 'one sync per group commit');
    // Compactions between cuts are not synced: the log holds what they applied.
    assert.equal(commit.stats.synchronous, 1);
    assert.equal(commit.stats.journalMode, 'wal');
    const interval = open({ fileName: 'i.db', durability: 'interval' });
    await interval.open();
    const start = interval.stats.syncs;
    await interval.write([{ op: 'message', message: msg('m') }, { op: 'retain', topic: 't', messageId: 'm' }]);
    assert.equal(interval.stats.syncs - start, 0);
  });

  test('a lazy write starts no sync of its own: the next write that needs one covers it, in call order', async () => {
    const store = open({ lazySyncMs: 1_000_000 });
    await store.open();
    await store.write([{ op: 'message', message: msg('m') }, { op: 'inflight', entry: inflight('a', 1, 7, 'm') }]);
    const before = store.stats.syncs;
    const settled: string[] = [];
    const lazy = store.write([{ op: 'complete', clientId: 'a', packetId: 7 }], { lazy: true }).then(() => settled.push('lazy'));
    // Two turns: the record is in the log, and no sync started for it.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual([store.stats.transactions, store.stats.syncs - before, settled], [2, 0, []]);
    const eager = store.write([{ op: 'unretain', topic: 'x' }]).then(() => settled.push('eager'));
    await Promise.all([lazy, eager]);
    assert.deepEqual(settled, ['lazy', 'eager'], 'settled in call order');
    assert.equal(store.stats.syncs - before, 1, 'one sync covered both records');
    await store.close();
    const again = open();
    const state = await again.open();
    assert.deepEqual([state.inflight, [...state.messages.keys()]], [[], []], 'the lazy write applied');
    await again.close();
  });

  test('commit mode: at most two syncs run at once; records written meanwhile wait for the next one, and writes resolve in order', async (t) => {
    const store = open();
    await store.open();
    const before = store.stats.syncs;
    // Syncs that complete when the test says so.
    const running: ((err: NodeJS.ErrnoException | null) => void)[] = [];
    t.mock.method(fs, 'fdatasync', (_fd: number, done: (err: NodeJS.ErrnoException | null) => void) => {
      running.push(done);
    });
    syncBuiltinESMExports();
    const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const settled: number[] = [];
    const writes: Promise<unknown>[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        writes.push(store.write([{ op: 'unretain', topic: `t${i}` }]).then(() => settled.push(i)));
        await turn();
      }
      assert.deepEqual([store.stats.transactions, running.length, settled], [4, 2, []], 'four records, two syncs in flight');
      running.shift()!(null);
      await turn();
      // The first record is synced; the third and fourth share the sync that starts now.
      assert.deepEqual([settled, running.length, store.stats.syncs - before], [[0], 2, 3]);
      running.shift()!(null);
      await turn();
      assert.deepEqual(settled, [0, 1]);
      running.shift()!(null);
      await Promise.all(writes);
      assert.deepEqual([settled, running.length, store.stats.syncs - before], [[0, 1, 2, 3], 0, 3]);
    } finally {
      t.mock.restoreAll();
      syncBuiltinESMExports();
    }
    await store.close();
  });

  test('a lazy write alone is synced after lazySyncMs', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const store = open({ lazySyncMs: 100 });
    await store.open();
    const before = store.stats.syncs;
    let done = false;
    const lazy = store.write([{ op: 'unretain', topic: 'x' }], { lazy: true }).then(() => { done = true; });
    await new Promise((resolve) => setImmediate(resolve));
    t.mock.timers.tick(99);
    assert.deepEqual([store.stats.transactions, store.stats.syncs - before, done], [1, 0, false]);
    t.mock.timers.tick(1);
    await lazy;
    assert.equal(store.stats.syncs - before, 1);
    await store.close();
  });

  test('interval mode checkpoints every intervalMs after writes, and not when idle', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval'] });
    const store = open({ durability: 'interval', intervalMs: 250 });
    await store.open();
    await store.write([{ op: 'message', message: msg('m') }, { op: 'retain', topic: 't', messageId: 'm' }]);
    t.mock.timers.tick(249);
    assert.equal(store.stats.checkpoints, 0);
    t.mock.timers.tick(1);
    assert.equal(store.stats.checkpoints, 1);
    t.mock.timers.tick(1000);
    assert.equal(store.stats.checkpoints, 1, 'nothing written since the last checkpoint');
    await store.write([{ op: 'unretain', topic: 't' }]);
    t.mock.timers.tick(250);
    assert.equal(store.stats.checkpoints, 2);
    await store.close();
    assert.deepEqual((await reread()).retained, []);
  });

  describe('crash safety: a writer killed with SIGKILL loses no acknowledged batch and leaves a clean database', () => {
    const child = fileURLToPath(new URL('../../helpers/store-crash-child.js', import.meta.url));
    const points: { durability: 'commit' | 'interval'; killAfter: number }[] = [
      { durability: 'commit', killAfter: 1 },
      { durability: 'commit', killAfter: 150 },
      { durability: 'commit', killAfter: 1200 },
      { durability: 'interval', killAfter: 700 },
    ];
    for (const { durability, killAfter } of points) {
      test(`${durability} mode, killed after ${killAfter} acknowledged batches`, async () => {
        const proc = spawn(process.execPath, [child, dataDir, durability, '100000'], { stdio: ['ignore', 'pipe', 'inherit'] });
        let acked = -1;
        let count = 0;
        const lines = createInterface({ input: proc.stdout });
        lines.on('line', (line) => {
          const i = Number(line);
          assert.equal(i, acked + 1, 'batches are acknowledged in order');
          acked = i;
          if (++count === killAfter) proc.kill('SIGKILL');
        });
        const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => proc.on('close', (c, s) => resolve([c, s])));
        assert.equal(signal, 'SIGKILL', `the writer was killed mid-stream (exit code ${code})`);
        assert.ok(count >= killAfter);

        const db = new Database(join(dataDir, 'petrel.db'));
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
        db.close();

        const state = await reread();
        const last = Math.max(...state.queue.map((e) => e.seq));
        assert.ok(last >= acked, `batch ${acked} was acknowledged; the store holds up to ${last}`);
        const expected = expectedAfter(last);
        assert.deepEqual(state.queue, expected.queue);
        assert.deepEqual(state.inflight, expected.inflight);
        assert.deepEqual(state.sessions.sort((a, b) => (a.clientId < b.clientId ? -1 : 1)), expected.sessions.sort((a, b) => (a.clientId < b.clientId ? -1 : 1)));
        assert.deepEqual(state.retained.sort((a, b) => (a.topic < b.topic ? -1 : 1)), expected.retained.sort((a, b) => (a.topic < b.topic ? -1 : 1)));
        assert.deepEqual([...state.messages.values()].sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1))), expected.messages);
      });
    }
  });
});


