/**
 * The SQLite store (better-sqlite3, one connection, WAL journal).
 *
 * Group commit: every `write` made during one event-loop turn is queued, and a `setImmediate`
 * applies them all, in call order, in ONE transaction of prepared statements; then each call's
 * promise resolves. If the transaction fails it is rolled back (the database is unchanged) and
 * every promise of that turn rejects.
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
 * Referencing an id that is neither stored nor stored earlier in the transaction fails it.
 *
 * The transaction runs synchronously on the event loop (better-sqlite3's model), fsync included.
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
}

/** Counters and settings for tests and diagnostics. */
export interface SqliteStoreStats {
  /** Transactions committed by `write` batches. */
  readonly transactions: number;
  /** `write` calls those transactions covered. */
  readonly writes: number;
  /** Periodic WAL checkpoints of 'interval' mode. */
  readonly checkpoints: number;
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

  constructor(db: Db) {
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
  #db: Db | undefined;
  #stmts: Statements | undefined;
  #runBatch: ((batch: readonly Pending[]) => void) | undefined;
  #pending: Pending[] = [];
  #scheduled = false;
  #closed = false;
  #dirty = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Messages whose count may have reached 0 in the running transaction. */
  readonly #released = new Set<string>();
  #transactions = 0;
  #writes = 0;
  #checkpoints = 0;
  readonly #flushSoon = (): void => this.#flush();

  constructor(options: SqliteStoreOptions) {
    this.#dataDir = options.dataDir;
    this.#path = join(options.dataDir, options.fileName ?? 'petrel.db');
    this.#interval = options.durability === 'interval';
    this.#intervalMs = options.intervalMs ?? 1000;
    if (!(this.#intervalMs > 0)) throw new RangeError('intervalMs must be a positive number of milliseconds');
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
      synchronous: db === undefined ? 0 : db.pragma('synchronous', { simple: true }) as number,
      journalMode: db === undefined ? '' : db.pragma('journal_mode', { simple: true }) as string,
    };
  }

  open(): Promise<StoredState> {
    if (this.#closed) return Promise.reject(new StoreError('closed', 'the store is closed'));
    try {
      if (this.#db === undefined) this.#connect();
      else this.#flush();
      return Promise.resolve(this.#read(this.#db!));
    } catch (err) {
      return Promise.reject(asStoreError(err, `cannot open ${this.#path}`));
    }
  }

  write(ops: readonly StoreOp[]): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreError('closed', 'the store is closed'));
    if (this.#db === undefined) return Promise.reject(new StoreError('not-open', 'write before open()'));
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ ops, resolve, reject });
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
      // Writes queued for this turn first: a read sees what was written before it.
      this.#flush();
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
    this.#flush();
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    const db = this.#db;
    this.#db = undefined;
    this.#stmts = undefined;
    this.#runBatch = undefined;
    try {
      // Closing the last connection checkpoints the WAL (synced) and removes it.
      db?.close();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(asStoreError(err, `cannot close ${this.#path}`));
    }
  }

  #connect(): void {
    mkdirSync(this.#dataDir, { recursive: true });
    const db = new Database(this.#path);
    try {
      migrate(db, this.#path);
      db.pragma('journal_mode = WAL');
      db.pragma(this.#interval ? 'synchronous = NORMAL' : 'synchronous = FULL');
      // A crash can leave messages stored by a batch whose references never came (none do, since
      // a batch is one transaction, but a database written by other code might): drop them.
      db.prepare('DELETE FROM messages WHERE refs <= 0').run();
      this.#stmts = new Statements(db);
      this.#runBatch = db.transaction((batch: readonly Pending[]) => {
        for (let i = 0; i < batch.length; i++) {
          const ops = batch[i]!.ops;
          for (let j = 0; j < ops.length; j++) this.#apply(ops[j]!);
        }
        const collect = this.#stmts!.collect;
        for (const id of this.#released) collect.run(id);
      });
    } catch (err) {
      db.close();
      throw err;
    }
    this.#db = db;
    if (this.#interval) {
      this.#timer = setInterval(() => this.#checkpoint(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    try {
      this.#runBatch!(batch);
    } catch (err) {
      const error = asStoreError(err, 'write failed; nothing of this batch was stored');
      for (let i = 0; i < batch.length; i++) batch[i]!.reject(error);
      return;
    } finally {
      this.#released.clear();
    }
    this.#transactions++;
    this.#writes += batch.length;
    this.#dirty = true;
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve();
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
        this.#ref(e.messageId);
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
        if (old !== e.messageId) this.#ref(e.messageId);
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
        if (old === op.messageId) return;
        this.#ref(op.messageId);
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

  #ref(id: string): void {
    if (this.#stmts!.ref.run(id).changes === 0) {
      throw new StoreError('unknown-message', `write references message ${JSON.stringify(id)}, which the store does not hold`);
    }
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
