/**
 * The SQLite store (better-sqlite3, one connection, WAL journal).
 *
 * Group commit through a journal: every `write` made during one event-loop turn is queued, and a
 * `setImmediate` writes them all, in call order, as ONE row of the `journal` table (the ops
 * encoded as one blob, journal.ts): one INSERT and one commit per turn, whatever the number of
 * messages. Then each call's promise resolves. A write is checked when it is made (references to
 * messages the store does not hold, values the schema forbids) and refused alone.
 *
 * Compaction moves the journal into the tables: every `compactMs` (and when `compactOps` ops are
 * waiting, before every read and at close) the journaled ops are netted (journal.ts `netOps`: only
 * the last op on a row counts, and messages nothing references any more are never written) and
 * applied in one transaction that also deletes those journal rows. A QoS 1 delivery that was
 * stored, sent and acknowledged between two compactions costs one journal entry and one delete.
 * After a crash, `open` compacts what the journal holds before reading the tables.
 *
 * Durability:
 * - 'commit' (default): `synchronous = FULL`; the WAL is fsynced at every commit, so a resolved
 *   write survives a process crash and a power loss.
 * - 'interval': `synchronous = NORMAL`; commits are not fsynced, and a WAL checkpoint (which
 *   syncs the WAL first) runs every `intervalMs` after writes. A resolved write survives a crash
 *   of the process (the OS holds it); on a power loss or OS crash at most the last `intervalMs`
 *   (plus one checkpoint's duration) of resolved writes can be lost, never part of a transaction.
 *
 * References: a message row counts its queue entries, inflight entries and retained topics
 * (`refs`). Counts move as ops apply; messages whose count is 0 at the end of the transaction
 * (including ones stored in it and never referenced) are deleted before commit, so a batch may
 * move a message from the queue to inflight (dequeue, then inflight) without losing it.
 *
 * Transactions run synchronously on the event loop (better-sqlite3's model), fsync included.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { QoS } from '../../protocol/index.js';
import { decodeNumbers, decodeProperties, encodeNumbers, encodeProperties } from '../codec.js';
import { StoreError } from '../errors.js';
import type {
  InflightEntry, QueueEntry, Store, StoredMessage, StoredSession, StoredState, StoreOp,
} from '../types.js';
import { decodeOps, encodeOps, netOps } from './journal.js';
import { migrations } from './schema.js';

export interface SqliteStoreOptions {
  /** Directory of the database file (created if missing). */
  dataDir: string;
  /** File name inside dataDir; default `petrel.db`. */
  fileName?: string;
  /** 'commit' (default): durable per resolved write. 'interval': flushed every `intervalMs`. */
  durability?: 'commit' | 'interval';
  /** Flush period of 'interval' mode in ms; default 1000. */
  intervalMs?: number;
  /** Journal compaction period in ms; default 50. */
  compactMs?: number;
  /** Compact at once when this many journaled ops wait; default 20,000. */
  compactOps?: number;
}

/** Counters and settings for tests and diagnostics. */
export interface SqliteStoreStats {
  /** Transactions committed by `write` batches. */
  readonly transactions: number;
  /** `write` calls those transactions covered. */
  readonly writes: number;
  /** Periodic WAL checkpoints of 'interval' mode. */
  readonly checkpoints: number;
  /** Journal compactions (each one transaction). */
  readonly compactions: number;
  /** Ops journaled since the last compaction. */
  readonly journaled: number;
  /** PRAGMA synchronous: 2 FULL, 1 NORMAL. */
  readonly synchronous: number;
  readonly journalMode: string;
}

interface Pending {
  readonly ops: readonly StoreOp[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

type Db = Database.Database;
type Stmt = Database.Statement;
type Row = unknown[];

/** The statements one transaction uses, prepared once per connection. */
class Statements {
  readonly insertMessage: Stmt;
  readonly ref: Stmt;
  readonly unref: Stmt;
  readonly collect: Stmt;
  readonly putSession: Stmt;
  readonly subscribe: Stmt;
  readonly unsubscribe: Stmt;
  readonly queueAt: Stmt;
  readonly putQueue: Stmt;
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
  readonly journal: Stmt;
  readonly journalRows: Stmt;
  readonly clearJournal: Stmt;
  readonly messageExists: Stmt;

  constructor(db: Db) {
    this.journal = db.prepare('INSERT INTO journal (ops) VALUES (?)');
    this.journalRows = db.prepare('SELECT seq, ops FROM journal ORDER BY seq').raw();
    this.clearJournal = db.prepare('DELETE FROM journal WHERE seq <= ?');
    this.messageExists = db.prepare('SELECT 1 FROM messages WHERE id = ?').pluck();
    this.insertMessage = db.prepare(
      // ON CONFLICT, not OR IGNORE: only a repeated id is skipped, a CHECK violation still fails.
      'INSERT INTO messages (id, topic, payload, qos, retain, properties, expires_at, sender_id, refs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (id) DO NOTHING',
    );
    this.ref = db.prepare('UPDATE messages SET refs = refs + 1 WHERE id = ?');
    this.unref = db.prepare('UPDATE messages SET refs = refs - 1 WHERE id = ?');
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
      'INSERT OR REPLACE INTO queue (client_id, seq, message_id, qos, retain, subscription_ids) VALUES (?, ?, ?, ?, ?, ?)',
    );
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
  #runCompaction: ((ops: readonly StoreOp[], lastSeq: number) => void) | undefined;
  #pending: Pending[] = [];
  /** Ops of the pending writes, for the size of the next journal blob. */
  #pendingOps = 0;
  #scheduled = false;
  #closed = false;
  #dirty = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #compactTimer: ReturnType<typeof setTimeout> | undefined;
  /** The ops journaled since the last compaction, one array per write, in order. */
  #journaled: (readonly StoreOp[])[] = [];
  #journaledOps = 0;
  /** The seq of the newest journal row. */
  #lastSeq = 0;
  /** Ids of messages put by writes not compacted yet (pending or journaled). */
  readonly #known = new Set<string>();
  /** Messages whose count may have reached 0 in the running transaction. */
  readonly #released = new Set<string>();
  #transactions = 0;
  #writes = 0;
  #checkpoints = 0;
  #compactions = 0;
  readonly #flushSoon = (): void => this.#flush();
  readonly #compactSoon = (): void => {
    this.#compactTimer = undefined;
    this.#compact();
  };

  constructor(options: SqliteStoreOptions) {
    this.#dataDir = options.dataDir;
    this.#path = join(options.dataDir, options.fileName ?? 'petrel.db');
    this.#interval = options.durability === 'interval';
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#compactMs = options.compactMs ?? 50;
    this.#compactOps = options.compactOps ?? 20_000;
    if (!(this.#intervalMs > 0)) throw new RangeError('intervalMs must be a positive number of milliseconds');
    if (!(this.#compactMs > 0)) throw new RangeError('compactMs must be a positive number of milliseconds');
    if (!(this.#compactOps >= 1)) throw new RangeError('compactOps must be at least 1');
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
      compactions: this.#compactions,
      journaled: this.#journaledOps,
      synchronous: db === undefined ? 0 : db.pragma('synchronous', { simple: true }) as number,
      journalMode: db === undefined ? '' : db.pragma('journal_mode', { simple: true }) as string,
    };
  }

  open(): Promise<StoredState> {
    if (this.#closed) return Promise.reject(new StoreError('closed', 'the store is closed'));
    try {
      if (this.#db === undefined) this.#connect();
      else this.#compact(true);
      return Promise.resolve(this.#read(this.#db!));
    } catch (err) {
      return Promise.reject(asStoreError(err, `cannot open ${this.#path}`));
    }
  }

  write(ops: readonly StoreOp[]): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreError('closed', 'the store is closed'));
    if (this.#db === undefined) return Promise.reject(new StoreError('not-open', 'write before open()'));
    const refused = this.#check(ops);
    if (refused !== undefined) return Promise.reject(refused);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.op === 'message') this.#known.add(op.message.id);
    }
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ ops, resolve, reject });
      this.#pendingOps += ops.length;
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flushSoon);
      }
    });
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

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    let failure: unknown;
    try {
      this.#compact(true);
    } catch (err) {
      // What was journaled stays in the journal; the next open() compacts it.
      failure = err;
    }
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#compactTimer !== undefined) clearTimeout(this.#compactTimer);
    const db = this.#db;
    this.#db = undefined;
    this.#stmts = undefined;
    this.#runCompaction = undefined;
    try {
      // Closing the last connection checkpoints the WAL (synced) and removes it.
      db?.close();
    } catch (err) {
      failure ??= err;
    }
    return failure === undefined ? Promise.resolve() : Promise.reject(asStoreError(failure, `cannot close ${this.#path}`));
  }

  #connect(): void {
    mkdirSync(this.#dataDir, { recursive: true });
    const db = new Database(this.#path);
    try {
      migrate(db, this.#path);
      db.pragma('journal_mode = WAL');
      db.pragma(this.#interval ? 'synchronous = NORMAL' : 'synchronous = FULL');
      const stmts = new Statements(db);
      this.#stmts = stmts;
      this.#runCompaction = db.transaction((ops: readonly StoreOp[], lastSeq: number) => {
        for (let i = 0; i < ops.length; i++) this.#apply(ops[i]!);
        const collect = stmts.collect;
        for (const id of this.#released) collect.run(id);
        if (lastSeq > 0) stmts.clearJournal.run(lastSeq);
      });
      // What a crash left in the journal goes into the tables first.
      const recovered: StoreOp[] = [];
      let lastSeq = 0;
      for (const [seq, blob] of stmts.journalRows.iterate() as IterableIterator<[number, Buffer]>) {
        decodeOps(blob, recovered);
        lastSeq = seq;
      }
      try {
        this.#runCompaction(netOps(recovered), lastSeq);
      } finally {
        this.#released.clear();
      }
      // A crash can leave messages stored by a batch whose references never came (none do, since
      // a batch is one transaction, but a database written by other code might): drop them.
      db.prepare('DELETE FROM messages WHERE refs <= 0').run();
    } catch (err) {
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

  /** Why `ops` cannot be stored, checked before they are queued: the write is refused alone. */
  #check(ops: readonly StoreOp[]): StoreError | undefined {
    const refers = (id: string): StoreError | undefined => {
      if (this.#known.has(id) || putIn(ops, id) || this.#stmts!.messageExists.get(id) !== undefined) return undefined;
      return new StoreError('unknown-message', `write references message ${JSON.stringify(id)}, which the store does not hold`);
    };
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      switch (op.op) {
        case 'message':
          if (!isQos(op.message.qos)) return invalid(`message ${op.message.id}: qos ${op.message.qos}`);
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
          const bad = refers(e.messageId);
          if (bad !== undefined) return bad;
          break;
        }
        case 'retain': {
          const bad = refers(op.messageId);
          if (bad !== undefined) return bad;
          break;
        }
        default:
          break;
      }
    }
    return undefined;
  }

  /** Journals the pending writes: one row, one commit. */
  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    const count = this.#pendingOps;
    this.#pending = [];
    this.#pendingOps = 0;
    if (count > 0) {
      try {
        const lists: (readonly StoreOp[])[] = [];
        for (let i = 0; i < batch.length; i++) lists.push(batch[i]!.ops);
        const blob = encodeOps(lists);
        this.#lastSeq = Number(this.#stmts!.journal.run(blob).lastInsertRowid);
        for (let i = 0; i < lists.length; i++) if (lists[i]!.length > 0) this.#journaled.push(lists[i]!);
        this.#journaledOps += count;
      } catch (err) {
        const error = asStoreError(err, 'write failed; nothing of this batch was stored');
        for (let i = 0; i < batch.length; i++) batch[i]!.reject(error);
        return;
      }
      this.#transactions++;
      this.#dirty = true;
    }
    this.#writes += batch.length;
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve();
    if (this.#journaledOps >= this.#compactOps) this.#compact();
    else if (this.#compactTimer === undefined && this.#journaledOps > 0) {
      this.#compactTimer = setTimeout(this.#compactSoon, this.#compactMs);
      this.#compactTimer.unref();
    }
  }

  /**
   * Moves the journal into the tables (netted, one transaction). A failure leaves the journal as it
   * was, to be tried again later (or at the next open); `strict` rethrows it (reads and close).
   */
  #compact(strict = false): void {
    if (this.#compactTimer !== undefined) {
      clearTimeout(this.#compactTimer);
      this.#compactTimer = undefined;
    }
    this.#flush();
    if (this.#journaled.length === 0) return;
    const ops: StoreOp[] = [];
    for (const list of this.#journaled) for (let i = 0; i < list.length; i++) ops.push(list[i]!);
    try {
      this.#runCompaction!(netOps(ops), this.#lastSeq);
    } catch (err) {
      if (this.#compactTimer === undefined && !this.#closed) {
        this.#compactTimer = setTimeout(this.#compactSoon, this.#compactMs);
        this.#compactTimer.unref();
      }
      if (strict) throw err;
      return;
    } finally {
      this.#released.clear();
    }
    this.#journaled = [];
    this.#journaledOps = 0;
    this.#known.clear();
    this.#compactions++;
  }

  #checkpoint(): void {
    if (!this.#dirty || this.#db === undefined) return;
    try {
      this.#db.pragma('wal_checkpoint(PASSIVE)');
      this.#dirty = false;
      this.#checkpoints++;
    } catch {
      // Left dirty: the next period tries again, and a broken database fails the next write.
    }
  }

  #apply(op: StoreOp): void {
    const s = this.#stmts!;
    switch (op.op) {
      case 'message': {
        const m = op.message;
        const info = s.insertMessage.run(
          m.id, m.topic, m.payload, m.qos, m.retain ? 1 : 0, encodeProperties(m.properties), m.expiresAt ?? null, m.senderId ?? null,
        );
        if (info.changes > 0) this.#released.add(m.id);
        return;
      }
      case 'session':
        putSession(s, op.session);
        return;
      case 'dropSession': {
        for (const id of s.queueOf.all(op.clientId) as string[]) this.#unref(id);
        for (const id of s.inflightOf.all(op.clientId) as string[]) this.#unref(id);
        for (const stmt of s.drop) stmt.run(op.clientId);
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
        const old = s.queueAt.get(e.clientId, e.seq) as string | undefined;
        s.putQueue.run(e.clientId, e.seq, e.messageId, e.qos, e.retain ? 1 : 0, encodeNumbers(e.subscriptionIds));
        if (old !== undefined) this.#unref(old);
        return;
      }
      case 'dequeue': {
        const old = s.dequeue.get(op.clientId, op.seq) as string | undefined;
        if (old !== undefined) this.#unref(old);
        return;
      }
      case 'inflight': {
        const e = op.entry;
        const old = s.inflightAt.get(e.clientId, e.packetId) as string | undefined;
        if (old !== e.messageId && !this.#ref(e.messageId)) return;
        s.putInflight.run(e.clientId, e.packetId, e.seq, e.messageId, e.qos, e.retain ? 1 : 0, encodeNumbers(e.subscriptionIds), e.state);
        if (old !== undefined && old !== e.messageId) this.#unref(old);
        return;
      }
      case 'complete': {
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
    return this.#stmts!.ref.run(id).changes > 0;
  }

  #unref(id: string): void {
    this.#stmts!.unref.run(id);
    this.#released.add(id);
  }

  #read(db: Db): StoredState {
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
    for (const r of db.prepare(
      'SELECT client_id, seq, message_id, qos, retain, subscription_ids FROM queue ORDER BY client_id, seq',
    ).raw().iterate() as IterableIterator<Row>) {
      state.queue.push(queueEntry(r));
    }
    for (const r of db.prepare(
      'SELECT client_id, seq, message_id, qos, retain, subscription_ids, packet_id, state FROM inflight ORDER BY client_id, seq',
    ).raw().iterate() as IterableIterator<Row>) {
      const entry: InflightEntry = { ...queueEntry(r), packetId: r[6] as number, state: r[7] as 'publish' | 'pubrel' };
      state.inflight.push(entry);
    }
    for (const r of db.prepare('SELECT client_id, packet_id FROM inbound_qos2').raw().iterate() as IterableIterator<Row>) {
      state.inboundQos2.push({ clientId: r[0] as string, packetId: r[1] as number });
    }
    for (const r of db.prepare('SELECT topic, message_id FROM retained').raw().iterate() as IterableIterator<Row>) {
      state.retained.push({ topic: r[0] as string, messageId: r[1] as string });
    }
    for (const r of db.prepare(
      'SELECT id, topic, payload, qos, retain, properties, expires_at, sender_id FROM messages WHERE refs > 0',
    ).raw().iterate() as IterableIterator<Row>) {
      const message = storedMessage(r[0] as string, r.slice(1));
      state.messages.set(message.id, message);
    }
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

/** Whether `ops` puts message `id` (writes are a few ops: a scan beats building a set). */
function putIn(ops: readonly StoreOp[], id: string): boolean {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.op === 'message' && op.message.id === id) return true;
  }
  return false;
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
