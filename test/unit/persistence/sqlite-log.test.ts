/**
 * The SQLite store's operation log when it is preallocated and reused by every generation
 * (`preallocate`, the server's default): the file keeps its size, a record cut short or left by an
 * earlier generation ends the log, logs of the earlier formats (no generation tags; every string
 * in full) are still read after an upgrade, a writer killed with SIGKILL loses no acknowledged batch, and the store
 * contract holds unchanged.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { SqliteStore, type StoredState } from '../../../src/persistence/index.js';
import { encodeOps } from '../../../src/persistence/sqlite/journal.js';
import { storeContract, msg, queued } from '../../contract/store.contract.js';
import { crashCopy as copyAndOpen } from '../../helpers/sqlite-copy.js';
import { expectedAfter } from '../../helpers/store-crash-workload.js';

const PREALLOCATE = 1024 * 1024;

let dataDir: string;
const stores: SqliteStore[] = [];

function open(options: Partial<ConstructorParameters<typeof SqliteStore>[0]> = {}): SqliteStore {
  const store = new SqliteStore({ dataDir, preallocate: PREALLOCATE, ...options });
  stores.push(store);
  return store;
}

/** What a crash copy of the data directory (sqlite-copy.ts) reads back, with this file's log size. */
function crashCopy(change?: (copy: string) => void): Promise<StoredState> {
  return copyAndOpen(dataDir, { preallocate: PREALLOCATE }, change);
}

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'petrel-sqlite-log-'));
});

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('SqliteStore with a preallocated operation log', () => {
  test('the log file is written to its size once and keeps it: records and cuts do not change it', async () => {
    const store = open({ compactMs: 1_000_000, cutMs: 1_000_000 });
    await store.open();
    const log = `${store.path}.oplog`;
    assert.equal(statSync(log).size, PREALLOCATE);
    for (let i = 0; i < 5; i++) await store.write([{ op: 'message', message: msg(`m${i}`) }, { op: 'enqueue', entry: queued('a', i, `m${i}`) }]);
    assert.equal(store.stats.transactions, 5);
    assert.equal(statSync(log).size, PREALLOCATE, 'records overwrite the zeros');
    await store.close();
    assert.equal(statSync(log).size, PREALLOCATE, 'the cut at close leaves the file as it is');
    const again = open();
    assert.deepEqual((await again.open()).queue.map((e) => e.seq), [0, 1, 2, 3, 4]);
    assert.equal(statSync(log).size, PREALLOCATE, 'a restart reuses the file');
  });

  test('a log that reaches its preallocated size is cut at once, so the file never grows past it by more than a record', async () => {
    const store = open({ compactMs: 1_000_000, cutMs: 1_000_000 });
    await store.open();
    const log = `${store.path}.oplog`;
    const payload = Buffer.alloc(60 * 1024, 1);
    // 40 records of ~60 KiB: past 1 MiB twice.
    for (let i = 0; i < 40; i++) {
      await store.write([{ op: 'message', message: msg(`m${i}`, { payload }) }, { op: 'enqueue', entry: queued('a', i, `m${i}`) }]);
      assert.ok(statSync(log).size <= PREALLOCATE + 64 * 1024, `record ${i}: ${statSync(log).size} bytes`);
    }
    assert.equal(store.stats.cuts, 2);
    await store.close();
    assert.deepEqual((await crashCopy()).queue.length, 40);
  });

  test('after a crash, the log is read up to its first damaged record (a torn write), not into the zeros after it', async () => {
    const store = open({ compactMs: 1_000_000, cutMs: 1_000_000 });
    await store.open();
    await store.write([{ op: 'message', message: msg('m1') }, { op: 'retain', topic: 't1', messageId: 'm1' }]);
    await store.write([{ op: 'message', message: msg('m2') }, { op: 'retain', topic: 't2', messageId: 'm2' }]);
    await store.write([{ op: 'message', message: msg('m3') }, { op: 'retain', topic: 't3', messageId: 'm3' }]);
    const intact = await crashCopy();
    assert.deepEqual(intact.retained.map((r) => r.topic).sort(), ['t1', 't2', 't3']);
    const torn = await crashCopy((copy) => {
      // The second record's last bytes never reached the disk: zeros, as preallocated.
      const path = join(copy, 'petrel.db.oplog');
      const file = readFileSync(path);
      const second = 16 + 12 + file.readUInt32LE(16);
      const end = second + 12 + file.readUInt32LE(second);
      file.fill(0, end - 3, end);
      writeFileSync(path, file);
    });
    assert.deepEqual(torn.retained.map((r) => r.topic).sort(), ['t1'], 'the third record is whole but follows a torn one');
  });

  test('records an earlier generation left in the reused file are not read back as the current one\'s', async () => {
    // cutMs 0: every compaction (readQueue) cuts the log and starts a new generation over the old records.
    const store = open({ compactMs: 1_000_000, cutMs: 0 });
    await store.open();
    await store.write([{ op: 'message', message: msg('m1') }, { op: 'enqueue', entry: queued('a', 1, 'm1') }]);
    await store.write([{ op: 'message', message: msg('m2') }, { op: 'enqueue', entry: queued('a', 2, 'm2') }]);
    // The cut: the tables hold a/1 and a/2; the next generation writes from the start of the file again.
    assert.deepEqual((await store.readQueue('a', 0, 10)).map((r) => r.entry.messageId), ['m1', 'm2']);
    assert.ok(store.stats.cuts >= 1);
    // A record of exactly the first one's length that replaces a/2: the old generation's second
    // record (which put m2 at a/2) now follows it in the file, whole and with a valid checksum of
    // its own; read as part of this generation it would put m2 back.
    await store.write([{ op: 'message', message: msg('m9') }, { op: 'enqueue', entry: queued('a', 2, 'm9') }]);
    const file = readFileSync(`${store.path}.oplog`);
    const first = 16 + 12 + file.readUInt32LE(16);
    const stale = file.readUInt32LE(first);
    assert.ok(stale > 0 && crc32(file.subarray(first + 8, first + 12 + stale)) === file.readUInt32LE(first + 4), 'an intact record of the old generation follows');
    const state = await crashCopy();
    assert.deepEqual(state.queue.map((e) => [e.seq, e.messageId]), [[1, 'm1'], [2, 'm9']]);
    assert.deepEqual([...state.messages.keys()].sort(), ['m1', 'm9']);
  });

  /** A store closed after one queued message (client 'a', seq 1), and the log generation its tables cover. */
  async function closedStore(): Promise<{ store: SqliteStore; applied: number }> {
    const store = open();
    await store.open();
    await store.write([{ op: 'message', message: msg('m1') }, { op: 'enqueue', entry: queued('a', 1, 'm1') }]);
    await store.close();
    const db = new Database(store.path, { readonly: true });
    const [applied] = db.prepare('SELECT applied FROM oplog_state WHERE id = 1').raw().get() as [number];
    db.close();
    return { store, applied };
  }

  /**
   * Opens `store` after an earlier version left `log` as its operation log: its queue must hold
   * `seqs`; a dequeue of seq 1 written then must hold across a reopen.
   */
  async function upgradeWith(store: SqliteStore, log: Buffer, seqs: number[]): Promise<void> {
    writeFileSync(`${store.path}.oplog`, log);
    const upgraded = open();
    const state = await upgraded.open();
    assert.deepEqual(state.queue.map((e) => e.seq), seqs);
    assert.equal(statSync(`${store.path}.oplog`).size, PREALLOCATE, 'the old log is replaced by a preallocated one');
    await upgraded.write([{ op: 'dequeue', clientId: 'a', seq: 1 }]);
    await upgraded.close();
    const last = open();
    assert.deepEqual((await last.open()).queue.map((e) => e.seq), seqs.slice(1));
  }

  test('a log of the first format (records without a generation tag) left by a crash is read after an upgrade', async () => {
    const { store, applied } = await closedStore();
    // What that version leaves: header PTRLOPS1 + generation, records of length, CRC, body.
    const body = Buffer.from(encodeOps([[{ op: 'message', message: msg('m2') }, { op: 'enqueue', entry: queued('a', 2, 'm2') }]]));
    const head = Buffer.alloc(16);
    head.write('PTRLOPS1', 0, 'latin1');
    head.writeDoubleLE(applied + 1, 8);
    const rec = Buffer.alloc(8);
    rec.writeUInt32LE(body.length, 0);
    rec.writeUInt32LE(crc32(body), 4);
    await upgradeWith(store, Buffer.concat([head, rec, body]), [1, 2]);
  });

  test('a log of the second format (generation tags, every string in full) left by a crash is read after an upgrade', async () => {
    const { store, applied } = await closedStore();
    // Header PTRLOPS2 + generation; records of length, CRC of tag and body, tag, body.
    const generation = applied + 1;
    const head = Buffer.alloc(16);
    head.write('PTRLOPS2', 0, 'latin1');
    head.writeDoubleLE(generation, 8);
    const parts = [head];
    for (const id of ['m2', 'm3']) {
      const body = Buffer.from(encodeOps([[{ op: 'message', message: msg(id) }, { op: 'enqueue', entry: queued('a', Number(id.slice(1)), id) }]]));
      const rec = Buffer.alloc(12);
      rec.writeUInt32LE(body.length, 0);
      rec.writeUInt32LE(generation >>> 0, 8);
      rec.writeUInt32LE(crc32(Buffer.concat([rec.subarray(8), body])), 4);
      parts.push(rec, body);
    }
    await upgradeWith(store, Buffer.concat(parts), [1, 2, 3]);
  });

  describe('crash safety: a writer killed with SIGKILL loses no acknowledged batch and leaves a clean database', () => {
    const child = fileURLToPath(new URL('../../helpers/store-crash-child.js', import.meta.url));
    for (const { durability, killAfter } of [
      { durability: 'commit', killAfter: 150 },
      { durability: 'commit', killAfter: 1200 },
      { durability: 'interval', killAfter: 700 },
    ] as const) {
      test(`${durability} mode, killed after ${killAfter} acknowledged batches`, async () => {
        const proc = spawn(process.execPath, [child, dataDir, durability, '100000', String(PREALLOCATE)], { stdio: ['ignore', 'pipe', 'inherit'] });
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
        const reader = open();
        const state = await reader.open();
        await reader.close();
        const last = Math.max(...state.queue.map((e) => e.seq));
        assert.ok(last >= acked, `batch ${acked} was acknowledged; the store holds up to ${last}`);
        const expected = expectedAfter(last);
        assert.deepEqual(state.queue, expected.queue);
        assert.deepEqual(state.inflight, expected.inflight);
        assert.deepEqual([...state.messages.values()].sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1))), expected.messages);
      });
    }
  });
});

storeContract('SqliteStore (commit, preallocated log)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'petrel-store-prealloc-'));
  return {
    store: new SqliteStore({ dataDir: dir, preallocate: PREALLOCATE }),
    reopen: () => Promise.resolve(new SqliteStore({ dataDir: dir, preallocate: PREALLOCATE })),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
