/**
 * The SQLite store (better-sqlite3, one connection, WAL journal), written through an operation log.
 *
 * Group commit: every `write` made during one event-loop turn is queued, and a `setImmediate`
 * appends them all, in call order, as ONE record to the operation log (`petrel.db.oplog` beside
 * the database: the ops encoded as one blob with its length and CRC, journal.ts), whatever the
 * number of messages; then each call's promise resolves. A write is checked when it is made
 * (references to messages the store does not hold, values the schema forbids) and refused alone.
 *
 * Compaction moves the log into the tables: every `compactMs` (and when `compactOps` ops wait,
 * before every read and at close) the logged ops are netted (journal.ts `netOps`: only the last
 * op on a row counts, and messages nothing references any more are never written) and applied in
 * one transaction that also records the log generation and offset it covers. Those commits are
 * not synced; every `cutMs` (default 4 s), when the log reaches its preallocated size (or 64 MiB),
 * and at close, the compaction is synced (`synchronous = FULL`) and the log starts a new
 * generation. A QoS 1 delivery that was stored, sent and acknowledged between two compactions
 * costs one log entry and nothing in the tables. The window of ops waiting for the compaction
 * nets them as they come (window.ts), so that such a delivery's ops are garbage within
 * milliseconds, and a compaction on the timer leaves the deliveries of the last `holdMs` to the
 * next one (recording that the tables cover the log only up to the oldest record it left). After
 * a crash, `open` applies the log's records from where the tables stopped, up to the first record
 * cut short, before reading the tables.
 *
 * With `preallocate`, the log file is written with zeros once and every generation then writes
 * over the one before instead of truncating the file: a record carries its generation, so an
 * older one left further on ends the log like a record cut short (so do zeros). Records then
 * never change the file's size, and a sync writes the data alone instead of also committing the
 * file system's journal for the new size (about half the sync latency on ext4).
 *
 * Durability (when a write's promise resolves):
 * - 'commit' (default): a write resolves once a sync (fdatasync) of the log that started after
 *   its record was written has completed, so a resolved write survives a process crash and a
 *   power loss. The sync runs in the thread pool, one at a time, covering every record written
 *   before it started: the event loop never waits for the disk.
 * - 'interval': the record is written to the log (the OS holds it) and the log is fsynced every
 *   `intervalMs` after writes. A resolved write survives a crash of the process (kill -9 included);
 *   on a power loss or OS crash at most the last `intervalMs` of resolved writes can be lost,
 *   never part of a record.
 *
 * References: a message row counts its queue entries, inflight entries and retained topics
 * (`refs`). Counts move as ops apply; messages whose count is 0 at the end of the transaction are
 * deleted before commit, so a batch may move a message from the queue to inflight (dequeue, then
 * inflight) without losing it.
 *
 * Everything runs synchronously on the event loop (better-sqlite3's model), fsync included.
 */
import {
  closeSync, constants, existsSync, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { QoS } from '../../protocol/index.js';
import { decodeNumbers, decodeProperties, encodeNumbers, encodeProperties } from '../codec.js';
import { StoreError } from '../errors.js';
import type {
  InflightEntry, OpenOptions, QueueEntry, Store, StoredMessage, StoredSession, StoredState, StoreOp, WriteOptions,
} from '../types.js';
import { encodeRecord, isCurrentLog, LOG_HEADER_BYTES, logGeneration, logHeader, LogNames, netOps, readLog } from './journal.js';
import { migrations } from './schema.js';
import { OpWindow } from './window.js';
import { RotatingMap, RotatingSet } from '../../session/rotating.js';

export interface SqliteStoreOptions {
  /** Directory of the database file (created if missing). */
  dataDir: string;
  /** File name inside dataDir; default `petrel.db`. */
  fileName?: string;
  /** 'commit' (default): durable per resolved write. 'interval': flushed every `intervalMs`. */
  durability?: 'commit' | 'interval';
  /** Sync period of the operation log in 'interval' mode, in ms; default 1000. */
  intervalMs?: number;
  /**
   * Journal compaction period in ms; default 500. Long enough that most deliveries are stored,
   * sent and acknowledged within one period (their rows then never reach the tables); the ops wait
   * in memory meanwhile, at most `compactOps` of them.
   */
  compactMs?: number;
  /** Compact at once when this many journaled ops wait; default 200,000 (about 30 MB of ops). */
  compactOps?: number;
  /**
   * A compaction on the timer leaves the deliveries sent in the last `holdMs` (their inflight
   * entries) to the next one, when they have likely been acknowledged and net away instead of
   * being written to the tables and deleted again; default 250, 0: none held. A compaction for
   * a read, a cut of the log and close hold nothing.
   */
  holdMs?: number;
  /**
   * How often (ms) a compaction is synced and the log cut, at the latest; default 4000. Compactions
   * in between are not synced. A cut holds nothing back (`holdMs`): the deliveries in flight then
   * are written to the tables and deleted again by the next compaction.
   */
  cutMs?: number;
  /**
   * 'commit' mode: the longest a lazy write (`WriteOptions.lazy`: one no reply waits for) waits
   * for a sync when no other write starts one; default 100 ms. A record of lazy writes alone
   * starts no sync: the next write that needs one covers it.
   */
  lazySyncMs?: number;
  /**
   * Bytes of the operation log file written with zeros at open and then reused by every log
   * generation instead of truncated (records carry their generation, so what an earlier one left
   * is not read back); default 0: the log is truncated at every cut and grows as it is written.
   * Rewriting blocks the file already has, within its size, lets a sync flush the data alone,
   * without a file system journal commit for the file's new size: about half the latency per
   * sync on ext4. The log is cut when it reaches this size (1 MiB at least), so the file keeps
   * that size, one record more at most.
   */
  preallocate?: number;
}

/** Counters and settings for tests and diagnostics. */
export interface SqliteStoreStats {
  /** Group commits: records appended to the operation log. */
  readonly transactions: number;
  /** `write` calls those records covered. */
  readonly writes: number;
  /** Periodic syncs of the operation log in 'interval' mode. */
  readonly checkpoints: number;
  /** fdatasync calls on the operation log (per group commit in 'commit' mode). */
  readonly syncs: number;
  /** Journal compactions (each one transaction). */
  readonly compactions: number;
  /** Ops journaled since the last compaction (held ones included). */
  readonly journaled: number;
  /** Ops that compactions left to the next one (`holdMs`), in all. */
  readonly held: number;
  /** Synced compactions that cut the log. */
  readonly cuts: number;
  /** Bytes of records appended to the operation log since open. */
  readonly logBytes: number;
  /** PRAGMA synchronous of the tables: 2 FULL (compactions are synced). */
  readonly synchronous: number;
  readonly journalMode: string;
}

interface Pending {
  /** Emptied once written to the log: a write that waits for a sync keeps nothing else alive. */
  ops: readonly StoreOp[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
  /** `WriteOptions.lazy`: synced with the next write that is not, or after `lazySyncMs`. */
  readonly lazy: boolean;
}

type Db = Database.Database;
type Stmt = Database.Statement;
type Row = unknown[];

/** The statements one transaction uses, prepared once per connection. */
class Statements {
  readonly insertMessage: Stmt;
  readonly addRefs: Stmt;
  readonly collect: Stmt;
  readonly putSession: Stmt;
  readonly subscribe: Stmt;
  readonly unsubscribe: Stmt;
  readonly queueAt: Stmt;
  readonly putQueue: Stmt;
  readonly messageBytes: Stmt;
  readonly dequeue: Stmt;
  readonly inflightAt: Stmt;
  readonly putInflight: Stmt;
  readonly complete: Stmt;
  readonly pubrec: Stmt;
  readonly pubrel: Stmt;
  readonly retainedAt: Stmt;
  readonly putRetained: Stmt;
  readonly unretain: Stmt;
  readonly queueOf: Stmt;
  readonly inflightOf: Stmt;
  readonly drop: readonly Stmt[];
  readonly applied: Stmt;
  readonly setApplied: Stmt;
  readonly messageExists: Stmt;

  constructor(db: Db) {
    this.applied = db.prepare('SELECT applied, applied_offset FROM oplog_state WHERE id = 1').raw();
    this.setApplied = db.prepare('UPDATE oplog_state SET applied = ?, applied_offset = ? WHERE id = 1');
    this.messageExists = db.prepare('SELECT 1 FROM messages WHERE id = ?').pluck();
    this.insertMessage = db.prepare(
      // ON CONFLICT, not OR IGNORE: only a repeated id is skipped, a CHECK violation still fails.
      'INSERT INTO messages (id, topic, payload, qos, retain, properties, expires_at, sender_id, refs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (id) DO NOTHING',
    );
    this.addRefs = db.prepare('UPDATE messages SET refs = refs + ? WHERE id = ?');
    this.collect = db.prepare('DELETE FROM messages WHERE id = ? AND refs <= 0');
    this.putSession = db.prepare(
      'INSERT OR REPLACE INTO sessions (client_id, expiry_interval, expires_at, will_topic, will_payload, will_qos, will_retain, will_properties, will_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.subscribe = db.prepare(
      'INSERT OR REPLACE INTO subscriptions (client_id, topic_filter, qos, no_local, retain_as_published, retain_handling, subscription_identifier) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.unsubscribe = db.prepare('DELETE FROM subscriptions WHERE client_id = ? AND topic_filter = ?');
    this.queueAt = db.prepare('SELECT message_id FROM queue WHERE client_id = ? AND seq = ?').pluck();
    this.putQueue = db.prepare(
      'INSERT OR REPLACE INTO queue (client_id, seq, message_id, qos, retain, subscription_ids, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.messageBytes = db.prepare(
      `SELECT ${MESSAGE_OVERHEAD} + length(topic) + length(payload) + coalesce(length(properties), 0) FROM messages WHERE id = ?`,
    ).pluck();
    this.dequeue = db.prepare('DELETE FROM queue WHERE client_id = ? AND seq = ? RETURNING message_id').pluck();
    this.inflightAt = db.prepare('SELECT message_id FROM inflight WHERE client_id = ? AND packet_id = ?').pluck();
    this.putInflight = db.prepare(
      'INSERT OR REPLACE INTO inflight (client_id, packet_id, seq, message_id, qos, retain, subscription_ids, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.complete = db.prepare('DELETE FROM inflight WHERE client_id = ? AND packet_id = ? RETURNING message_id').pluck();
    this.pubrec = db.prepare('INSERT INTO inbound_qos2 (client_id, packet_id) VALUES (?, ?) ON CONFLICT DO NOTHING');
    this.pubrel = db.prepare('DELETE FROM inbound_qos2 WHERE client_id = ? AND packet_id = ?');
    this.retainedAt = db.prepare('SELECT message_id FROM retained WHERE topic = ?').pluck();
    this.putRetained = db.prepare('INSERT OR REPLACE INTO retained (topic, message_id) VALUES (?, ?)');
    this.unretain = db.prepare('DELETE FROM retained WHERE topic = ? RETURNING message_id').pluck();
    this.queueOf = db.prepare('SELECT message_id FROM queue WHERE client_id = ?').pluck();
    this.inflightOf = db.prepare('SELECT message_id FROM inflight WHERE client_id = ?').pluck();
    this.drop = ['sessions', 'subscriptions', 'queue', 'inflight', 'inbound_qos2']
      .map((table) => db.prepare(`DELETE FROM ${table} WHERE client_id = ?`));
  }
}

export class SqliteStore implements Store {
  readonly durable = true;
  readonly #path: string;
  readonly #dataDir: string;
  readonly #interval: boolean;
  readonly #intervalMs: number;
  readonly #compactMs: number;
  readonly #compactOps: number;
  #db: Db | undefined;
  #stmts: Statements | undefined;
  #runCompaction: ((ops: readonly StoreOp[], generation: number, offset: number) => void) | undefined;
  readonly #logPath: string;
  /** The operation log, open for writing; its generation, and where the next record goes. */
  #fd: number | undefined;
  #generation = 0;
  #offset = 0;
  /** Set when the log cannot be written any more: every later write is refused with it. */
  #broken: StoreError | undefined;
  #syncs = 0;
  #cuts = 0;
  readonly #cutMs: number;
  readonly #preallocate: number;
  /** The log is cut when it reaches this size: the preallocated one (at least MIN_CUT_BYTES), or CUT_BYTES. */
  readonly #cutBytes: number;
  /** Date.now() of the last synced compaction that cut the log. */
  #lastCut = 0;
  /** 'commit' mode: writes whose record is in the log, waiting for the next sync. */
  #unsynced: Pending[] = [];
  /** Syncs running in the thread pool, in start order; each covers every record written before it started. */
  readonly #syncing: { waiting: Pending[]; done: Promise<void> }[] = [];
  #pending: Pending[] = [];
  /** Ops of the pending writes, for the size of the next journal blob. */
  #pendingOps = 0;
  #scheduled = false;
  #closed = false;
  #dirty = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #compactTimer: ReturnType<typeof setTimeout> | undefined;
  /** The ops journaled since the last compaction, netted as they come (window.ts). */
  readonly #window = new OpWindow({
    inflight: (clientId, packetId) => !this.#tracking || this.#inflightRows.get(clientId)?.has(packetId) === true,
    queue: (clientId, seq) => {
      if (!this.#tracking) return true;
      const max = this.#queueMax.get(clientId);
      return max !== undefined && seq <= max;
    },
  }, (messageId) => this.#known.delete(messageId));
  /** The names (client ids, topics) this log generation's records have written in full (journal.ts). */
  readonly #names = new LogNames();
  /** Ops journaled since the last compaction (in the log; the window keeps fewer). */
  #journaledOps = 0;
  /** Ids of messages put by writes not compacted yet (pending or journaled). */
  readonly #known = new RotatingSet<string>();
  /** How the running transaction changes each message's count (applied once per message at its end). */
  readonly #deltas = new RotatingMap<string, number>();
  /** Messages whose count may have reached 0 in the running transaction. */
  readonly #released = new RotatingSet<string>();
  /** Byte sizes (as the queue's `bytes` column counts them) of the messages stored by the running transaction. */
  readonly #sizes = new RotatingMap<string, number>();
  /**
   * What the queue and inflight tables can hold, so that a delete of a row that was never written
   * (a delivery stored, sent and acknowledged between two compactions nets down to that) costs no
   * statement: per session, the highest queue seq the table may hold (at open, and put since), and
   * the packet ids its inflight rows have. Kept from open() on; off after a failed compaction (its
   * rollback would leave them ahead of the tables) until the next open().
   */
  readonly #queueMax = new Map<string, number>();
  readonly #inflightRows = new Map<string, RotatingSet<number>>();
  #tracking = false;
  #transactions = 0;
  /** Ops a compaction left to the next one (window.ts `split`). */
  #held = 0;
  readonly #holdMs: number;
  #writes = 0;
  #logBytes = 0;
  #checkpoints = 0;
  #compactions = 0;
  readonly #flushSoon = (): void => this.#flush();
  readonly #lazySyncMs: number;
  /** Set while lazy writes wait for a sync that nothing else started. */
  #lazyTimer: ReturnType<typeof setTimeout> | undefined;
  /** An unsynced write that is not lazy waits: the next sync starts as soon as it can. */
  #eagerWaiting = false;
  readonly #lazySync = (): void => {
    this.#lazyTimer = undefined;
    if (!this.#closed) this.#startSync();
  };
  readonly #compactSoon = (): void => {
    this.#compactTimer = undefined;
    this.#compact();
  };

  constructor(options: SqliteStoreOptions) {
    this.#dataDir = options.dataDir;
    this.#path = join(options.dataDir, options.fileName ?? 'petrel.db');
    this.#logPath = `${this.#path}.oplog`;
    this.#interval = options.durability === 'interval';
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#compactMs = options.compactMs ?? 500;
    this.#compactOps = options.compactOps ?? 200_000;
    this.#cutMs = options.cutMs ?? 4000;
    this.#lazySyncMs = options.lazySyncMs ?? 100;
    this.#holdMs = options.holdMs ?? 250;
    this.#preallocate = options.preallocate ?? 0;
    this.#cutBytes = this.#preallocate > 0 ? Math.max(this.#preallocate, MIN_CUT_BYTES) : CUT_BYTES;
    if (!(this.#intervalMs > 0)) throw new RangeError('intervalMs must be a positive number of milliseconds');
    if (!(this.#compactMs > 0)) throw new RangeError('compactMs must be a positive number of milliseconds');
    if (!(this.#compactOps >= 1)) throw new RangeError('compactOps must be at least 1');
    if (!(this.#holdMs >= 0)) throw new RangeError('holdMs must be 0 or more milliseconds');
    if (!(this.#lazySyncMs >= 0)) throw new RangeError('lazySyncMs must be 0 or more milliseconds');
    if (!(Number.isSafeInteger(this.#preallocate) && this.#preallocate >= 0)) throw new RangeError('preallocate must be a number of bytes, 0 or more');
  }

  /** The database file. */
  get path(): string {
    return this.#path;
  }

  get stats(): SqliteStoreStats {
    const db = this.#db;
    return {
      transactions: this.#transactions,
      writes: this.#writes,
      checkpoints: this.#checkpoints,
      syncs: this.#syncs,
      cuts: this.#cuts,
      logBytes: this.#logBytes,
      compactions: this.#compactions,
      journaled: this.#journaledOps,
      held: this.#held,
      synchronous: db === undefined ? 0 : db.pragma('synchronous', { simple: true }) as number,
      journalMode: db === undefined ? '' : db.pragma('journal_mode', { simple: true }) as string,
    };
  }

  open(options: OpenOptions = {}): Promise<StoredState> {
    if (this.#closed) return Promise.reject(new StoreError('closed', 'the store is closed'));
    try {
      if (this.#db === undefined) this.#connect();
      else this.#compact(true);
      return Promise.resolve(this.#read(this.#db!, options.lazyQueues === true));
    } catch (err) {
      return Promise.reject(asStoreError(err, `cannot open ${this.#path}`));
    }
  }

  write(ops: readonly StoreOp[], options?: WriteOptions): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreError('closed', 'the store is closed'));
    if (this.#db === undefined) return Promise.reject(new StoreError('not-open', 'write before open()'));
    if (this.#broken !== undefined) return Promise.reject(this.#broken);
    const refused = this.#check(ops);
    if (refused !== undefined) return Promise.reject(refused);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.op === 'message') this.#known.add(op.message.id);
    }
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ ops, resolve, reject, lazy: options?.lazy === true });
      this.#pendingOps += ops.length;
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flushSoon);
      }
    });
  }

  /** Appends what the writes of this turn queued to the log now (the caller joined its turn's changes already). */
  flush(): void {
    if (this.#pending.length > 0) this.#flush();
  }

  readQueue(clientId: string, afterSeq: number, limit: number): Promise<{ entry: QueueEntry; message: StoredMessage }[]> {
    if (this.#closed) return Promise.reject(new StoreError('closed', 'the store is closed'));
    const db = this.#db;
    if (db === undefined) return Promise.reject(new StoreError('not-open', 'read before open()'));
    try {
      // Writes made before it first: a read sees what was written before it.
      this.#compact(true);
      const out: { entry: QueueEntry; message: StoredMessage }[] = [];
      for (const r of db.prepare(
        'SELECT q.client_id, q.seq, q.message_id, q.qos, q.retain, q.subscription_ids, m.topic, m.payload, m.qos, m.retain, m.properties, m.expires_at, m.sender_id'
        + ' FROM queue q JOIN messages m ON m.id = q.message_id WHERE q.client_id = ? AND q.seq > ? ORDER BY q.seq LIMIT ?',
      ).raw().iterate(clientId, afterSeq, Math.max(0, limit)) as IterableIterator<Row>) {
        const entry = queueEntry(r);
        out.push({ entry, message: storedMessage(entry.messageId, r.slice(6)) });
      }
      return Promise.resolve(out);
    } catch (err) {
      return Promise.reject(asStoreError(err, `cannot read ${this.#path}`));
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    let failure: unknown;
    try {
      this.#compact(true, true);
    } catch (err) {
      // What was journaled stays in the log; the next open() compacts it.
      failure = err;
    }
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#compactTimer !== undefined) clearTimeout(this.#compactTimer);
    if (this.#lazyTimer !== undefined) clearTimeout(this.#lazyTimer);
    await Promise.all(this.#syncing.map((x) => x.done));
    const db = this.#db;
    this.#db = undefined;
    this.#stmts = undefined;
    this.#runCompaction = undefined;
    try {
      if (this.#fd !== undefined) {
        // Whatever compaction could not move stays in the log, synced, for the next open().
        if (this.#journaledOps > 0) fdatasyncSync(this.#fd);
        this.#settleUnsynced(undefined);
        closeSync(this.#fd);
      }
      this.#fd = undefined;
      // Closing the last connection checkpoints the WAL (synced) and removes it.
      db?.close();
    } catch (err) {
      failure ??= err;
    }
    this.#settleUnsynced(failure === undefined ? undefined : asStoreError(failure, 'the operation log could not be synced'));
    if (failure !== undefined) throw asStoreError(failure, `cannot close ${this.#path}`);
  }

  /** Resolves (or, with `error`, rejects) every write waiting for a sync. */
  #settleUnsynced(error: StoreError | undefined): void {
    const waiting = this.#unsynced;
    if (waiting.length === 0) return;
    this.#unsynced = [];
    this.#eagerWaiting = false;
    for (let i = 0; i < waiting.length; i++) {
      if (error === undefined) waiting[i]!.resolve();
      else waiting[i]!.reject(error);
    }
  }

  /** Starts a sync for the unsynced writes now, or, when all of them are lazy, after lazySyncMs at the latest. */
  #nextSync(): void {
    if (this.#eagerWaiting) this.#startSync();
    else if (this.#unsynced.length > 0 && this.#lazyTimer === undefined) {
      // Not unref'd: a write's promise must settle even when nothing else keeps the process alive.
      this.#lazyTimer = setTimeout(this.#lazySync, this.#lazySyncMs);
    }
  }

  /**
   * 'commit' mode: syncs the log in the thread pool, so the event loop goes on reading and
   * writing records meanwhile. Up to MAX_SYNCS run at once (the file system joins them into its
   * own journal commits), each covering the records written before it started; when one
   * completes, its writes and those of every sync started before it resolve, in order.
   */
  #startSync(): void {
    const fd = this.#fd;
    if (this.#syncing.length >= MAX_SYNCS || this.#unsynced.length === 0 || fd === undefined) return;
    const waiting = this.#unsynced;
    this.#unsynced = [];
    this.#eagerWaiting = false;
    // This sync covers the lazy writes too: their timer has nothing left to do.
    if (this.#lazyTimer !== undefined) {
      clearTimeout(this.#lazyTimer);
      this.#lazyTimer = undefined;
    }
    this.#syncs++;
    let finished!: () => void;
    const entry = { waiting, done: new Promise<void>((resolve) => (finished = resolve)) };
    this.#syncing.push(entry);
    fdatasync(fd, (err) => {
      const at = this.#syncing.indexOf(entry);
      // This sync and the ones started before it: their records were all written before it started.
      const covered = this.#syncing.splice(0, at + 1);
      const error = err === null ? undefined : asStoreError(err, 'the operation log could not be synced');
      for (const sync of covered) {
        for (let i = 0; i < sync.waiting.length; i++) {
          if (error === undefined) sync.waiting[i]!.resolve();
          else sync.waiting[i]!.reject(error);
        }
        sync.waiting.length = 0;
      }
      finished();
      if (!this.#closed) this.#nextSync();
    });
    // More records may come while these run: another sync can start right away.
  }

  #connect(): void {
    mkdirSync(this.#dataDir, { recursive: true });
    const db = new Database(this.#path);
    try {
      migrate(db, this.#path);
      db.pragma('journal_mode = WAL');
      // Compactions are not synced; the one that cuts the log is (#compact), and recovery replays
      // the log from the offset the tables record.
      db.pragma('synchronous = FULL');
      const stmts = new Statements(db);
      this.#stmts = stmts;
      this.#runCompaction = db.transaction((ops: readonly StoreOp[], generation: number, offset: number) => {
        for (let i = 0; i < ops.length; i++) this.#apply(ops[i]!);
        const collect = stmts.collect;
        // Each message's count moves once, by the sum of what the ops did to it.
        const addRefs = stmts.addRefs;
        for (const [id, delta] of this.#deltas) if (delta !== 0) addRefs.run(delta, id);
        for (const id of this.#released) collect.run(id);
        stmts.setApplied.run(generation, offset);
      });
      // What a crash left in the log goes into the tables first (synced: the log is cut next),
      // from where the tables stopped.
      const [appliedGeneration, appliedOffset] = stmts.applied.get() as [number, number];
      let generation = appliedGeneration;
      let reusable = false;
      if (existsSync(this.#logPath)) {
        const recovered: StoreOp[] = [];
        const file = readFileSync(this.#logPath);
        reusable = isCurrentLog(file);
        const logged = logGeneration(file);
        const from = logged === undefined || logged > appliedGeneration ? 0 : logged === appliedGeneration ? appliedOffset : Number.MAX_SAFE_INTEGER;
        const log = readLog(file, recovered, from);
        if (log !== undefined && recovered.length > 0) {
          try {
            // Most of a replayed log is deliveries acknowledged before any compaction wrote them:
            // knowing which rows the tables hold, applying their deletes costs no statement.
            this.#trackTables(db);
            this.#runCompaction(netOps(recovered), log.generation, log.validBytes);
          } finally {
            this.#released.clear();
            this.#sizes.clear();
            this.#deltas.clear();
          }
        }
        if (log !== undefined) generation = Math.max(generation, log.generation);
      }
      db.pragma('synchronous = NORMAL');
      // A new generation of the log; the old one is in the tables.
      if (this.#preallocate > 0) {
        // Reused, records and all (a new generation does not read the old one's); a log of an
        // earlier format is emptied first (the first has no generation tags).
        this.#fd = openSync(this.#logPath, constants.O_RDWR | constants.O_CREAT);
        if (!reusable) ftruncateSync(this.#fd, 0);
        preallocate(this.#fd, this.#preallocate);
      } else {
        this.#fd = openSync(this.#logPath, 'w');
      }
      this.#startGeneration(generation + 1);
      this.#lastCut = Date.now();
      fdatasyncSync(this.#fd);
    } catch (err) {
      this.#tracking = false;
      if (this.#fd !== undefined) closeSync(this.#fd);
      this.#fd = undefined;
      this.#stmts = undefined;
      this.#runCompaction = undefined;
      db.close();
      throw err;
    }
    this.#db = db;
    if (this.#interval) {
      this.#timer = setInterval(() => this.#checkpoint(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  /**
   * Starts the index of what the queue and inflight tables hold (`TableRows`, kept by `#apply`
   * from then on) from the tables: every inflight row (what was in flight at the last compaction)
   * and each session's highest queue seq. `#read` builds it again with the state it returns.
   */
  #trackTables(db: Db): void {
    this.#queueMax.clear();
    this.#inflightRows.clear();
    for (const [clientId, max] of db.prepare('SELECT client_id, max(seq) FROM queue GROUP BY client_id').raw().iterate() as IterableIterator<[string, number]>) {
      this.#queueMax.set(clientId, max);
    }
    for (const [clientId, packetId] of db.prepare('SELECT client_id, packet_id FROM inflight').raw().iterate() as IterableIterator<[string, number]>) {
      let rows = this.#inflightRows.get(clientId);
      if (rows === undefined) this.#inflightRows.set(clientId, rows = new RotatingSet());
      rows.add(packetId);
    }
    this.#tracking = true;
  }

  /** Empties the log (or, preallocated, leaves the old records to be ignored) and writes the header of `generation`. */
  #startGeneration(generation: number): void {
    const fd = this.#fd!;
    if (this.#preallocate === 0) ftruncateSync(fd, 0);
    writeAll(fd, logHeader(generation), 0);
    this.#names.clear();
    this.#generation = generation;
    this.#offset = LOG_HEADER_BYTES;
  }

  /** Why `ops` cannot be stored, checked before they are queued: the write is refused alone. */
  #check(ops: readonly StoreOp[]): StoreError | undefined {
    // The message put last: its deliveries usually follow it in the same write. A reference to
    // another one looks in the store's known ids, then in the write, then in the tables.
    let last: string | undefined;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      switch (op.op) {
        case 'message':
          if (!isQos(op.message.qos)) return invalid(`message ${op.message.id}: qos ${op.message.qos}`);
          last = op.message.id;
          break;
        case 'subscribe': {
          const sub = op.subscription;
          if (!isQos(sub.qos) || !(sub.retainHandling === 0 || sub.retainHandling === 1 || sub.retainHandling === 2)) {
            return invalid(`subscription ${sub.topicFilter}: qos ${sub.qos}, retain handling ${sub.retainHandling}`);
          }
          break;
        }
        case 'enqueue':
        case 'inflight': {
          const e = op.entry;
          if (!isQos(e.qos)) return invalid(`${op.op} of ${e.clientId}: qos ${e.qos}`);
          if (op.op === 'inflight') {
            const { packetId, state } = op.entry;
            if (!Number.isInteger(packetId) || packetId < 1 || packetId > 65535 || (state !== 'publish' && state !== 'pubrel')) {
              return invalid(`inflight of ${e.clientId}: packet id ${packetId}, state ${String(state)}`);
            }
          }
          if (e.messageId !== last && !this.#holds(e.messageId, ops)) return unknownMessage(e.messageId);
          break;
        }
        case 'retain':
          if (!this.#holds(op.messageId, ops)) return unknownMessage(op.messageId);
          break;
        default:
          break;
      }
    }
    return undefined;
  }

  /** Whether message `id` is stored, pending, or put by `ops` (the write being checked). */
  #holds(id: string, ops: readonly StoreOp[]): boolean {
    return this.#known.has(id) || putIn(ops, id) || this.#stmts!.messageExists.get(id) !== undefined;
  }

  /** Appends the pending writes to the log: one record; in 'commit' mode they resolve after the next sync. */
  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    const count = this.#pendingOps;
    this.#pending = [];
    this.#pendingOps = 0;
    if (this.#broken !== undefined) {
      for (let i = 0; i < batch.length; i++) batch[i]!.reject(this.#broken);
      return;
    }
    if (count > 0) {
      const fd = this.#fd!;
      const start = this.#offset;
      const lists: (readonly StoreOp[])[] = [];
      for (let i = 0; i < batch.length; i++) lists.push(batch[i]!.ops);
      try {
        const record = encodeRecord(lists, this.#generation, this.#names);
        writeAll(fd, record, start);
        this.#offset += record.length;
        this.#logBytes += record.length;
        this.#names.commit();
      } catch (err) {
        this.#names.rollback();
        const error = asStoreError(err, 'write failed; nothing of this batch was stored');
        try {
          // Cut what part of the record reached the file, so that later records follow whole ones.
          ftruncateSync(fd, this.#offset);
        } catch (cut) {
          this.#broken = asStoreError(cut, 'the operation log cannot be written');
        }
        for (let i = 0; i < batch.length; i++) batch[i]!.reject(error);
        return;
      }
      const window = this.#window;
      window.record(start, performance.now());
      for (let i = 0; i < lists.length; i++) window.add(lists[i]!);
      window.endBatch();
      for (let i = 0; i < batch.length; i++) batch[i]!.ops = NO_OPS;
      this.#journaledOps += count;
      this.#transactions++;
      this.#dirty = true;
    }
    this.#writes += batch.length;
    if (this.#interval || count === 0) {
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve();
    } else {
      // Queued in order behind the unsynced writes; a record of lazy writes alone waits for the
      // next sync that another write starts (or for lazySyncMs): fsyncs are what a commit costs.
      for (let i = 0; i < batch.length; i++) {
        const b = batch[i]!;
        this.#unsynced.push(b);
        if (!b.lazy) this.#eagerWaiting = true;
      }
      this.#nextSync();
    }
    if (this.#journaledOps >= this.#compactOps || this.#offset >= this.#cutBytes) this.#compact();
    else if (this.#journaledOps > 0) this.#compactLater();
  }

  /** Compacts after compactMs, unless a compaction is already due. */
  #compactLater(): void {
    if (this.#compactTimer !== undefined || this.#closed) return;
    this.#compactTimer = setTimeout(this.#compactSoon, this.#compactMs);
    this.#compactTimer.unref();
  }

  /**
   * Moves the journal into the tables (netted, one transaction). A failure leaves the journal as it
   * was, to be tried again later (or at the next open); `strict` rethrows it (reads and close).
   */
  #compact(strict = false, cut = false): void {
    if (this.#compactTimer !== undefined) {
      clearTimeout(this.#compactTimer);
      this.#compactTimer = undefined;
    }
    this.#flush();
    if (this.#db === undefined) return;
    // Every cutMs (or when the log reached its preallocated size) the compaction is synced and the
    // log starts over.
    cut ||= this.#offset >= this.#cutBytes || Date.now() - this.#lastCut >= this.#cutMs;
    if (this.#journaledOps === 0 && (!cut || this.#offset === LOG_HEADER_BYTES)) return;
    // A compaction on the timer leaves the youngest deliveries for the next one (window.ts `split`);
    // one for a read, a cut or close applies everything.
    const split = strict || cut || this.#holdMs === 0 ? undefined : this.#window.split(performance.now() - this.#holdMs);
    const ops = split === undefined ? this.#window.ops() : split.apply;
    const db = this.#db!;
    try {
      if (cut) db.pragma('synchronous = FULL');
      this.#runCompaction!(netOps(ops), this.#generation, split !== undefined && split.from >= 0 ? split.from : this.#offset);
    } catch (err) {
      this.#tracking = false;
      this.#compactLater();
      if (strict) throw err;
      return;
    } finally {
      if (cut) db.pragma('synchronous = NORMAL');
      this.#released.clear();
      this.#sizes.clear();
      this.#deltas.clear();
    }
    this.#window.clear();
    this.#journaledOps = 0;
    this.#known.clear();
    this.#compactions++;
    if (split !== undefined && split.held.length > 0) {
      const held = split.held;
      this.#window.carry(held, split.heldOffsets);
      for (let i = 0; i < held.length; i++) {
        const op = held[i]!;
        if (op.op === 'message') this.#known.add(op.message.id);
      }
      this.#journaledOps = held.length;
      this.#held += held.length;
      this.#compactLater();
    }
    if (!cut) return;
    // The tables now hold, synced, what the waiting writes logged.
    this.#settleUnsynced(undefined);
    try {
      this.#startGeneration(this.#generation + 1);
      this.#lastCut = Date.now();
      this.#cuts++;
    } catch (err) {
      // The tables hold everything; a log that cannot be cut cannot take records safely either.
      this.#broken = asStoreError(err, 'the operation log cannot be written');
    }
  }

  /** 'interval' mode: syncs the log when something was written since the last sync. */
  #checkpoint(): void {
    if (!this.#dirty || this.#fd === undefined) return;
    try {
      fdatasyncSync(this.#fd);
      this.#dirty = false;
      this.#checkpoints++;
      this.#syncs++;
    } catch {
      // Left dirty: the next period tries again.
    }
  }

  #apply(op: StoreOp): void {
    const s = this.#stmts!;
    switch (op.op) {
      case 'message': {
        const m = op.message;
        const props = encodeProperties(m.properties);
        const info = s.insertMessage.run(
          m.id, m.topic, m.payload, m.qos, m.retain ? 1 : 0, props, m.expiresAt ?? null, m.senderId ?? null,
        );
        if (info.changes > 0) this.#released.add(m.id);
        this.#sizes.set(m.id, MESSAGE_OVERHEAD + m.topic.length + m.payload.length + (props?.length ?? 0));
        return;
      }
      case 'session':
        putSession(s, op.session);
        return;
      case 'dropSession': {
        for (const id of s.queueOf.all(op.clientId) as string[]) this.#unref(id);
        for (const id of s.inflightOf.all(op.clientId) as string[]) this.#unref(id);
        for (const stmt of s.drop) stmt.run(op.clientId);
        this.#inflightRows.delete(op.clientId);
        this.#queueMax.delete(op.clientId);
        return;
      }
      case 'subscribe': {
        const sub = op.subscription;
        s.subscribe.run(
          op.clientId, sub.topicFilter, sub.qos, sub.noLocal ? 1 : 0, sub.retainAsPublished ? 1 : 0, sub.retainHandling,
          sub.subscriptionIdentifier ?? null,
        );
        return;
      }
      case 'unsubscribe':
        s.unsubscribe.run(op.clientId, op.topicFilter);
        return;
      case 'enqueue': {
        const e = op.entry;
        if (!this.#ref(e.messageId)) return;
        const max = this.#queueMax.get(e.clientId);
        const absent = this.#tracking && (max === undefined || e.seq > max);
        const old = absent ? undefined : s.queueAt.get(e.clientId, e.seq) as string | undefined;
        const bytes = this.#sizes.get(e.messageId) ?? (s.messageBytes.get(e.messageId) as number | undefined) ?? 0;
        s.putQueue.run(e.clientId, e.seq, e.messageId, e.qos, e.retain ? 1 : 0, encodeNumbers(e.subscriptionIds), bytes);
        if (max === undefined || e.seq > max) this.#queueMax.set(e.clientId, e.seq);
        if (old !== undefined) this.#unref(old);
        return;
      }
      case 'dequeue': {
        if (this.#tracking) {
          const max = this.#queueMax.get(op.clientId);
          if (max === undefined || op.seq > max) return;
        }
        const old = s.dequeue.get(op.clientId, op.seq) as string | undefined;
        if (old !== undefined) this.#unref(old);
        return;
      }
      case 'inflight': {
        const e = op.entry;
        let rows = this.#inflightRows.get(e.clientId);
        const absent = this.#tracking && rows?.has(e.packetId) !== true;
        const old = absent ? undefined : s.inflightAt.get(e.clientId, e.packetId) as string | undefined;
        if (old !== e.messageId && !this.#ref(e.messageId)) return;
        s.putInflight.run(e.clientId, e.packetId, e.seq, e.messageId, e.qos, e.retain ? 1 : 0, encodeNumbers(e.subscriptionIds), e.state);
        if (rows === undefined) this.#inflightRows.set(e.clientId, rows = new RotatingSet());
        rows.add(e.packetId);
        if (old !== undefined && old !== e.messageId) this.#unref(old);
        return;
      }
      case 'complete': {
        const rows = this.#inflightRows.get(op.clientId);
        if (this.#tracking && rows?.has(op.packetId) !== true) return;
        rows?.delete(op.packetId);
        const old = s.complete.get(op.clientId, op.packetId) as string | undefined;
        if (old !== undefined) this.#unref(old);
        return;
      }
      case 'pubrec':
        s.pubrec.run(op.clientId, op.packetId);
        return;
      case 'pubrel':
        s.pubrel.run(op.clientId, op.packetId);
        return;
      case 'retain': {
        const old = s.retainedAt.get(op.topic) as string | undefined;
        if (old === op.messageId || !this.#ref(op.messageId)) return;
        s.putRetained.run(op.topic, op.messageId);
        if (old !== undefined) this.#unref(old);
        return;
      }
      case 'unretain': {
        const old = s.unretain.get(op.topic) as string | undefined;
        if (old !== undefined) this.#unref(old);
        return;
      }
    }
  }

  /**
   * Counts one more reference to message `id`; false when the store does not hold it. Writes are
   * checked for that when they are made (#check); if it happens anyway (a message whose write failed),
   * the op that names it is skipped, so that compaction never stalls on it.
   */
  #ref(id: string): boolean {
    const deltas = this.#deltas;
    const delta = deltas.get(id);
    if (delta === undefined && !this.#sizes.has(id) && this.#stmts!.messageExists.get(id) === undefined) return false;
    deltas.set(id, (delta ?? 0) + 1);
    return true;
  }

  #unref(id: string): void {
    this.#deltas.set(id, (this.#deltas.get(id) ?? 0) - 1);
    this.#released.add(id);
  }

  #read(db: Db, lazyQueues: boolean): StoredState {
    const state: StoredState = {
      sessions: [], subscriptions: [], queue: [], inflight: [], inboundQos2: [], retained: [], messages: new Map(),
    };
    for (const r of db.prepare(
      'SELECT client_id, expiry_interval, expires_at, will_topic, will_payload, will_qos, will_retain, will_properties, will_at FROM sessions',
    ).raw().iterate() as IterableIterator<Row>) {
      state.sessions.push({
        clientId: r[0] as string,
        expiryInterval: r[1] as number,
        expiresAt: opt(r[2] as number | null),
        will: r[3] === null ? undefined : {
          topic: r[3] as string,
          payload: r[4] as Buffer,
          qos: r[5] as QoS,
          retain: r[6] === 1,
          properties: decodeProperties(r[7] as string | null),
        },
        willAt: opt(r[8] as number | null),
      });
    }
    for (const r of db.prepare(
      'SELECT client_id, topic_filter, qos, no_local, retain_as_published, retain_handling, subscription_identifier FROM subscriptions',
    ).raw().iterate() as IterableIterator<Row>) {
      state.subscriptions.push({
        clientId: r[0] as string,
        subscription: {
          topicFilter: r[1] as string,
          qos: r[2] as QoS,
          noLocal: r[3] === 1,
          retainAsPublished: r[4] === 1,
          retainHandling: r[5] as 0 | 1 | 2,
          subscriptionIdentifier: opt(r[6] as number | null),
        },
      });
    }
    this.#queueMax.clear();
    this.#inflightRows.clear();
    if (lazyQueues) {
      // Counted per session in one pass of the queue's key order; the entries stay on disk.
      const summaries: NonNullable<StoredState['queueSummaries']> = [];
      for (const r of db.prepare(
        'SELECT client_id, count(*), min(seq), max(seq), sum(bytes) FROM queue GROUP BY client_id',
      ).raw().iterate() as IterableIterator<Row>) {
        summaries.push({ clientId: r[0] as string, count: r[1] as number, firstSeq: r[2] as number, lastSeq: r[3] as number, bytes: r[4] as number });
        this.#queueMax.set(r[0] as string, r[3] as number);
      }
      state.queueSummaries = summaries;
    } else {
      for (const r of db.prepare(
        'SELECT client_id, seq, message_id, qos, retain, subscription_ids FROM queue ORDER BY client_id, seq',
      ).raw().iterate() as IterableIterator<Row>) {
        const entry = queueEntry(r);
        state.queue.push(entry);
        if (!(entry.seq <= (this.#queueMax.get(entry.clientId) ?? -Infinity))) this.#queueMax.set(entry.clientId, entry.seq);
      }
    }
    for (const r of db.prepare(
      'SELECT client_id, seq, message_id, qos, retain, subscription_ids, packet_id, state FROM inflight ORDER BY client_id, seq',
    ).raw().iterate() as IterableIterator<Row>) {
      const entry: InflightEntry = { ...queueEntry(r), packetId: r[6] as number, state: r[7] as 'publish' | 'pubrel' };
      state.inflight.push(entry);
      let rows = this.#inflightRows.get(entry.clientId);
      if (rows === undefined) this.#inflightRows.set(entry.clientId, rows = new RotatingSet());
      rows.add(entry.packetId);
    }
    for (const r of db.prepare('SELECT client_id, packet_id FROM inbound_qos2').raw().iterate() as IterableIterator<Row>) {
      state.inboundQos2.push({ clientId: r[0] as string, packetId: r[1] as number });
    }
    for (const r of db.prepare('SELECT topic, message_id FROM retained').raw().iterate() as IterableIterator<Row>) {
      state.retained.push({ topic: r[0] as string, messageId: r[1] as string });
    }
    for (const r of db.prepare(lazyQueues
      ? 'SELECT id, topic, payload, qos, retain, properties, expires_at, sender_id FROM messages WHERE id IN (SELECT message_id FROM inflight UNION SELECT message_id FROM retained)'
      : 'SELECT id, topic, payload, qos, retain, properties, expires_at, sender_id FROM messages WHERE refs > 0',
    ).raw().iterate() as IterableIterator<Row>) {
      const message = storedMessage(r[0] as string, r.slice(1));
      state.messages.set(message.id, message);
    }
    this.#tracking = true;
    return state;
  }
}

function putSession(s: Statements, session: StoredSession): void {
  const w = session.will;
  s.putSession.run(
    session.clientId, session.expiryInterval, session.expiresAt ?? null,
    w?.topic ?? null, w?.payload ?? null, w?.qos ?? null, w === undefined ? null : w.retain ? 1 : 0, encodeProperties(w?.properties),
    session.willAt ?? null,
  );
}

/** A message from its columns topic, payload, qos, retain, properties, expires_at, sender_id. */
function storedMessage(id: string, r: Row): StoredMessage {
  return {
    id,
    topic: r[0] as string,
    payload: r[1] as Buffer,
    qos: r[2] as QoS,
    retain: r[3] === 1,
    properties: decodeProperties(r[4] as string | null),
    expiresAt: opt(r[5] as number | null),
    senderId: opt(r[6] as string | null),
  };
}

function queueEntry(r: Row): QueueEntry {
  return {
    clientId: r[0] as string,
    seq: r[1] as number,
    messageId: r[2] as string,
    qos: r[3] as QoS,
    retain: r[4] === 1,
    subscriptionIds: decodeNumbers(r[5] as string | null),
  };
}

const NO_OPS: readonly StoreOp[] = Object.freeze([]);

/**
 * Log syncs in flight at once in 'commit' mode. Two, not more: each fdatasync is a cache flush
 * that the hypervisor serves on the host, and on a 2-core VM four of them in flight showed up as
 * 10–20% steal time on the broker's own cores; with two, point-to-point went from 33k to 40–44k
 * messages/s at 2–5% steal (docs/benchmarks.md). A sync that starts later covers more records.
 */
const MAX_SYNCS = 2;

/** The log is cut (after a synced compaction) once it holds this many bytes, whatever the time. */
const CUT_BYTES = 64 * 1024 * 1024;
/** A small preallocation does not make every few records a cut. */
const MIN_CUT_BYTES = 1024 * 1024;

/** What a message costs beyond its topic, payload and properties in a session's byte count (message.ts MESSAGE_BYTES). */
const MESSAGE_OVERHEAD = 64;

/** Makes the file at `fd` at least `bytes` long, the new part written with zeros (written blocks, not a hole). */
function preallocate(fd: number, bytes: number): void {
  let size = fstatSync(fd).size;
  if (size >= bytes) return;
  const zeros = Buffer.alloc(Math.min(bytes - size, 1024 * 1024));
  while (size < bytes) {
    const n = Math.min(zeros.length, bytes - size);
    writeAll(fd, n === zeros.length ? zeros : zeros.subarray(0, n), size);
    size += n;
  }
}

/** Writes all of `buf` at `position`. */
function writeAll(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, position + done);
}

/** Whether `ops` puts message `id` (writes are a few ops: a scan beats building a set). */
function putIn(ops: readonly StoreOp[], id: string): boolean {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.op === 'message' && op.message.id === id) return true;
  }
  return false;
}

function unknownMessage(id: string): StoreError {
  return new StoreError('unknown-message', `write references message ${JSON.stringify(id)}, which the store does not hold`);
}

function isQos(qos: number): boolean {
  return qos === 0 || qos === 1 || qos === 2;
}

function invalid(what: string): StoreError {
  return new StoreError('failed', `write refused, a value the schema does not allow: ${what}`);
}

function opt<T>(value: T | null): T | undefined {
  return value === null ? undefined : value;
}

/** Brings the database to the newest schema, or refuses one written by newer code. */
function migrate(db: Db, path: string): void {
  const known = migrations.length;
  const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get() !== undefined;
  const version = hasTable ? (db.prepare('SELECT max(version) FROM schema_version').pluck().get() as number | null) ?? 0 : 0;
  if (version > known) {
    throw new StoreError(
      'schema-too-new',
      `${path} has schema version ${version}, but this version of Petrel knows versions up to ${known}: upgrade Petrel, or point it at another data directory`,
    );
  }
  if (version === known) return;
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    for (let v = version + 1; v <= known; v++) db.exec(migrations[v - 1]!);
    db.prepare('DELETE FROM schema_version').run();
    db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(known);
  }).immediate();
}

function asStoreError(err: unknown, context: string): StoreError {
  if (err instanceof StoreError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new StoreError('failed', `${context}: ${detail}`, { cause: err });
}
