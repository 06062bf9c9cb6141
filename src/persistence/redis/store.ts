/**
 * The Redis store (ioredis): single Redis, Sentinel or Redis Cluster.
 *
 * Group commit: every `write` made during one event-loop turn is queued, and a `setImmediate`
 * sends them all, in call order, as ONE Lua script call (`scripts.ts`): Redis runs a script
 * atomically, and the script checks every reference before it changes anything, so a batch is
 * applied whole or not at all. Then each call's promise resolves; if the batch fails, every
 * promise of that turn rejects. Batches go out on one connection, in order.
 *
 * Keys: all under `<prefix>{store}:` (default prefix `petrel:`), one hash tag, so the store lives
 * in one slot of a Redis Cluster and a script may touch a session's keys, the messages and the
 * retained topics together. Messages are stored once with a reference count (`n`), as in the
 * SQLite store; one whose count is 0 at the end of a batch is deleted.
 *
 * Durability is the server's: with `appendonly yes` and `appendfsync always` a resolved write
 * survives a crash of Redis; with `appendfsync everysec` up to about a second of resolved writes
 * can be lost. With replicas (Sentinel, Cluster) a failover can lose what the master had not
 * replicated yet; `waitReplicas` makes every batch wait (WAIT) for that many replicas.
 */
import { Buffer } from 'node:buffer';
import type { QoS } from '../../protocol/index.js';
import { decodeProperties, encodeProperties } from '../codec.js';
import { StoreError } from '../errors.js';
import type {
  InflightEntry, LoadedSession, QueueEntry, Store, StoredMessage, StoredSession, StoredState, StoredSubscription, StoreOp, WriteOptions,
} from '../types.js';
import { connectRedis, type RedisConnection } from './connection.js';
import { LOAD_SESSION_SCRIPT, OWNED_SESSIONS_SCRIPT, READ_ALL_SCRIPT, READ_QUEUE_SCRIPT, WRITE_SCRIPT } from './scripts.js';

export interface RedisStoreOptions {
  /** A Redis URL (see connection.ts), or a connection the caller owns (not closed by the store). */
  redis: string | RedisConnection;
  /** Key prefix; default `petrel:`. Every key is `<prefix>{store}:…`. */
  prefix?: string;
  /** Replicas each batch waits for (WAIT); default 0. */
  waitReplicas?: number;
  /** Timeout of that WAIT in ms; default 1000. */
  waitTimeoutMs?: number;
  /**
   * A node of a cluster whose nodes share the store: `open` returns only the sessions this node
   * owns, retained topics are this node's own (`t:<node>`), and `loadSession` takes a session over.
   */
  node?: string;
  /** Called with the client ids whose writes were skipped because another node owns their session now. */
  onLost?: (clientIds: string[]) => void;
}

export interface RedisStoreStats {
  /** Script calls that committed `write` batches. */
  readonly transactions: number;
  /** `write` calls those batches covered. */
  readonly writes: number;
}

interface Pending {
  readonly ops: readonly StoreOp[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

type Arg = string | Buffer;
type Reply = Buffer | Reply[] | number | null;

interface Scripted {
  petrelWriteBuffer(key: string, ...args: Arg[]): Promise<unknown>;
  petrelReadAllBuffer(key: string, retainedKey: string, node: string): Promise<Reply[]>;
  petrelLoadSessionBuffer(key: string, clientId: string, owner: string): Promise<Reply[]>;
  petrelOwnedBuffer(key: string, node: string): Promise<Buffer[]>;
  petrelReadQueueBuffer(key: string, clientId: string, afterSeq: string, limit: string): Promise<Buffer[]>;
}

export class RedisStore implements Store {
  readonly durable = true;
  readonly #redis: RedisConnection;
  readonly #owned: boolean;
  readonly #key: string;
  readonly #waitReplicas: number;
  readonly #waitTimeoutMs: number;
  readonly #node: string;
  readonly #retainedKey: string;
  /** Client id -> the owner value ("<node>|<token>") its writes are fenced with. */
  readonly #owners = new Map<string, string>();
  onLost: ((clientIds: string[]) => void) | undefined;
  #opened = false;
  #closed = false;
  #pending: Pending[] = [];
  #scheduled = false;
  /** The last batch sent: close() waits for it. */
  #last: Promise<void> = Promise.resolve();
  #transactions = 0;
  #writes = 0;
  readonly #flushSoon = (): void => this.#flush();

  constructor(options: RedisStoreOptions) {
    this.#owned = typeof options.redis === 'string';
    this.#redis = typeof options.redis === 'string' ? connectRedis(options.redis, { connectionName: 'petrel-store' }) : options.redis;
    this.#key = `${options.prefix ?? 'petrel:'}{store}:`;
    this.#waitReplicas = options.waitReplicas ?? 0;
    this.#waitTimeoutMs = options.waitTimeoutMs ?? 1000;
    this.#node = options.node ?? '';
    this.#retainedKey = this.#node === '' ? 't' : `t:${this.#node}`;
    this.onLost = options.onLost;
    const r = this.#redis;
    r.defineCommand('petrelWrite', { numberOfKeys: 1, lua: WRITE_SCRIPT });
    r.defineCommand('petrelReadAll', { numberOfKeys: 1, lua: READ_ALL_SCRIPT, readOnly: true });
    r.defineCommand('petrelLoadSession', { numberOfKeys: 1, lua: LOAD_SESSION_SCRIPT });
    r.defineCommand('petrelOwned', { numberOfKeys: 1, lua: OWNED_SESSIONS_SCRIPT, readOnly: true });
    r.defineCommand('petrelReadQueue', { numberOfKeys: 1, lua: READ_QUEUE_SCRIPT, readOnly: true });
  }

  /** The base key (with its hash tag) every key of this store starts with. */
  get keyBase(): string {
    return this.#key;
  }

  get stats(): RedisStoreStats {
    return { transactions: this.#transactions, writes: this.#writes };
  }

  get #scripts(): Scripted {
    return this.#redis as unknown as Scripted;
  }

  async open(): Promise<StoredState> {
    if (this.#closed) throw new StoreError('closed', 'the store is closed');
    try {
      if (this.#redis.status === 'wait') await this.#redis.connect();
      this.#opened = true;
      this.#flush();
      const reply = await this.#scripts.petrelReadAllBuffer(this.#key, this.#retainedKey, this.#node);
      const owners = pairs(reply[3]);
      for (let i = 0; i + 1 < owners.length; i += 2) this.#owners.set(owners[i]!.toString('utf8'), owners[i + 1]!.toString('utf8'));
      return readState(reply);
    } catch (err) {
      throw asStoreError(err, 'cannot open the Redis store');
    }
  }

  /**
   * Takes `clientId`'s session over for this node (see Store.loadSession): what was written before
   * is sent first, on the same connection, so the session read is the latest.
   */
  async loadSession(clientId: string, token: number): Promise<LoadedSession> {
    if (this.#closed) throw new StoreError('closed', 'the store is closed');
    if (!this.#opened) throw new StoreError('not-open', 'read before open()');
    if (this.#node === '') throw new StoreError('failed', 'loadSession needs the node option');
    this.#flush();
    const owner = `${this.#node}|${token}`;
    const reply = this.#scripts.petrelLoadSessionBuffer(this.#key, clientId, owner);
    // Writes flushed from now on are fenced with the new owner.
    this.#owners.set(clientId, owner);
    try {
      const r = await reply;
      const prev = pairs(r[3]);
      return { state: readState(r), previousOwner: prev.length === 2 ? prev[1]!.toString('utf8') : undefined };
    } catch (err) {
      throw asStoreError(err, 'cannot load a session from the Redis store');
    }
  }

  /** This node lets the session go: resolves once every write made before is applied. */
  async releaseSession(clientId: string): Promise<void> {
    if (this.#closed || !this.#opened) return;
    this.#flush();
    this.#owners.delete(clientId);
    await this.#last.catch(() => undefined);
  }

  /**
   * Applies `ops` (all for `clientId`) only while `owner` still owns the session; true when applied.
   * A survivor acting for a dead node uses it: the node, back or a client's new node, wins.
   */
  async writeIfOwner(clientId: string, owner: string, ops: readonly StoreOp[]): Promise<boolean> {
    const args: Arg[] = [this.#retainedKey, '1', clientId, owner];
    for (const op of ops) encodeOp(op, args);
    try {
      const lost = await this.#scripts.petrelWriteBuffer(this.#key, ...args);
      return !(Array.isArray(lost) && lost.length > 0);
    } catch (err) {
      throw asStoreError(err, 'write failed');
    }
  }

  /** The sessions `node` owns: client id, owner value and session record (a survivor reading a dead node's). */
  async ownedSessions(node: string): Promise<{ clientId: string; owner: string; session: StoredSession }[]> {
    const flat = await this.#scripts.petrelOwnedBuffer(this.#key, node);
    const out: { clientId: string; owner: string; session: StoredSession }[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const clientId = flat[i]!.toString('utf8');
      out.push({ clientId, owner: flat[i + 1]!.toString('utf8'), session: decodeSession(clientId, flat[i + 2]!.toString('utf8')) });
    }
    return out;
  }

  /** `options.lazy` changes nothing here: every write is applied at once. */
  write(ops: readonly StoreOp[], _options?: WriteOptions): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreError('closed', 'the store is closed'));
    if (!this.#opened) return Promise.reject(new StoreError('not-open', 'write before open()'));
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ ops, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flushSoon);
      }
    });
  }

  async readQueue(clientId: string, afterSeq: number, limit: number): Promise<{ entry: QueueEntry; message: StoredMessage }[]> {
    if (this.#closed) throw new StoreError('closed', 'the store is closed');
    if (!this.#opened) throw new StoreError('not-open', 'read before open()');
    // Writes queued for this turn go first, on the same connection: a read sees what was written before it.
    this.#flush();
    let flat: Buffer[];
    try {
      flat = await this.#scripts.petrelReadQueueBuffer(this.#key, clientId, String(afterSeq), String(Math.max(0, Math.floor(limit))));
    } catch (err) {
      throw asStoreError(err, 'cannot read the Redis store');
    }
    const out: { entry: QueueEntry; message: StoredMessage }[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const entry = queueEntry(clientId, Number(flat[i]!.toString('latin1')), flat[i + 1]!);
      out.push({ entry, message: decodeMessage(entry.messageId, flat[i + 2]!) });
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#opened) this.#flush();
    this.#closed = true;
    await this.#last.catch(() => undefined);
    if (this.#owned) {
      try {
        await this.#redis.quit();
      } catch {
        this.#redis.disconnect();
      }
    }
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    const args: Arg[] = [this.#retainedKey, '0'];
    const owners = this.#owners;
    let fenced: Set<string> | undefined;
    for (let i = 0; i < batch.length; i++) {
      const ops = batch[i]!.ops;
      for (let j = 0; j < ops.length; j++) {
        const op = ops[j]!;
        encodeOp(op, args);
        if (owners.size === 0) continue;
        const cid = clientOf(op);
        if (cid !== undefined && owners.has(cid)) (fenced ??= new Set()).add(cid);
      }
    }
    if (fenced !== undefined) {
      const header: Arg[] = [this.#retainedKey, String(fenced.size)];
      for (const cid of fenced) header.push(cid, owners.get(cid)!);
      args.splice(0, 2, ...header);
    }
    const sent = this.#scripts.petrelWriteBuffer(this.#key, ...args).then((lost) => {
      if (Array.isArray(lost) && lost.length > 0) this.onLost?.((lost as Buffer[]).map((b) => b.toString('utf8')));
    });
    const done = this.#waitReplicas > 0
      ? sent.then(() => (this.#redis as unknown as { wait(n: number, t: number): Promise<number> }).wait(this.#waitReplicas, this.#waitTimeoutMs))
      : sent;
    this.#last = done.then(() => {
      this.#transactions++;
      this.#writes += batch.length;
      for (let i = 0; i < batch.length; i++) batch[i]!.resolve();
    }, (err: unknown) => {
      const error = asStoreError(err, 'write failed; nothing of this batch was stored');
      for (let i = 0; i < batch.length; i++) batch[i]!.reject(error);
    });
  }
}

// ---- Encodings -------------------------------------------------------------------------------

function clientOf(op: StoreOp): string | undefined {
  switch (op.op) {
    case 'session': return op.session.clientId;
    case 'enqueue': case 'inflight': return op.entry.clientId;
    case 'dropSession': case 'subscribe': case 'unsubscribe': case 'dequeue': case 'complete': case 'pubrec': case 'pubrel': return op.clientId;
    default: return undefined;
  }
}

function withId(id: string, rest: string): string {
  return `${Buffer.byteLength(id)}:${id}${rest}`;
}

function encodeOp(op: StoreOp, out: Arg[]): void {
  switch (op.op) {
    case 'message':
      out.push('M', op.message.id, encodeMessage(op.message));
      return;
    case 'session':
      out.push('S', op.session.clientId, encodeSession(op.session));
      return;
    case 'dropSession':
      out.push('D', op.clientId);
      return;
    case 'subscribe': {
      const s = op.subscription;
      out.push('B', op.clientId, s.topicFilter, JSON.stringify([s.qos, s.noLocal ? 1 : 0, s.retainAsPublished ? 1 : 0, s.retainHandling, s.subscriptionIdentifier ?? null]));
      return;
    }
    case 'unsubscribe':
      out.push('U', op.clientId, op.topicFilter);
      return;
    case 'enqueue': {
      const e = op.entry;
      out.push('E', e.clientId, String(e.seq), e.messageId, withId(e.messageId, JSON.stringify([e.qos, e.retain ? 1 : 0, e.subscriptionIds ?? null])));
      return;
    }
    case 'dequeue':
      out.push('Q', op.clientId, String(op.seq));
      return;
    case 'inflight': {
      const e = op.entry;
      out.push('I', e.clientId, String(e.packetId), e.messageId,
        withId(e.messageId, JSON.stringify([e.seq, e.qos, e.retain ? 1 : 0, e.subscriptionIds ?? null, e.state === 'pubrel' ? 1 : 0])));
      return;
    }
    case 'complete':
      out.push('C', op.clientId, String(op.packetId));
      return;
    case 'pubrec':
      out.push('R', op.clientId, String(op.packetId));
      return;
    case 'pubrel':
      out.push('L', op.clientId, String(op.packetId));
      return;
    case 'retain':
      out.push('T', op.topic, op.messageId);
      return;
    case 'unretain':
      out.push('X', op.topic);
      return;
  }
}

/** `<header length>:<header JSON><payload>`. */
export function encodeMessage(m: StoredMessage): Buffer {
  const header = Buffer.from(JSON.stringify([m.topic, m.qos, m.retain ? 1 : 0, encodeProperties(m.properties), m.expiresAt ?? null, m.senderId ?? null]));
  const lead = Buffer.from(`${header.length}:`);
  return Buffer.concat([lead, header, m.payload], lead.length + header.length + m.payload.length);
}

export function decodeMessage(id: string, data: Buffer): StoredMessage {
  const colon = data.indexOf(0x3a);
  const len = Number(data.toString('latin1', 0, colon));
  const start = colon + 1;
  const h = JSON.parse(data.toString('utf8', start, start + len)) as [string, QoS, number, string | null, number | null, string | null];
  return {
    id,
    topic: h[0],
    payload: Buffer.from(data.subarray(start + len)),
    qos: h[1],
    retain: h[2] === 1,
    properties: decodeProperties(h[3]),
    expiresAt: h[4] ?? undefined,
    senderId: h[5] ?? undefined,
  };
}

function encodeSession(s: StoredSession): string {
  const w = s.will;
  return JSON.stringify([
    s.expiryInterval, s.expiresAt ?? null,
    w === undefined ? null : [w.topic, w.payload.toString('base64'), w.qos, w.retain ? 1 : 0, encodeProperties(w.properties)],
    s.willAt ?? null,
  ]);
}

function decodeSession(clientId: string, text: string): StoredSession {
  const r = JSON.parse(text) as [number, number | null, [string, string, QoS, number, string | null] | null, number | null];
  const w = r[2];
  return {
    clientId,
    expiryInterval: r[0],
    expiresAt: r[1] ?? undefined,
    will: w === null ? undefined : { topic: w[0], payload: Buffer.from(w[1], 'base64'), qos: w[2], retain: w[3] === 1, properties: decodeProperties(w[4]) },
    willAt: r[3] ?? undefined,
  };
}

function splitId(v: Buffer): [string, string] {
  const colon = v.indexOf(0x3a);
  const len = Number(v.toString('latin1', 0, colon));
  return [v.toString('utf8', colon + 1, colon + 1 + len), v.toString('utf8', colon + 1 + len)];
}

function queueEntry(clientId: string, seq: number, v: Buffer): QueueEntry {
  const [messageId, rest] = splitId(v);
  const r = JSON.parse(rest) as [QoS, number, number[] | null];
  return { clientId, seq, messageId, qos: r[0], retain: r[1] === 1, subscriptionIds: r[2] ?? undefined };
}

function inflightEntry(clientId: string, packetId: number, v: Buffer): InflightEntry {
  const [messageId, rest] = splitId(v);
  const r = JSON.parse(rest) as [number, QoS, number, number[] | null, number];
  return {
    clientId, seq: r[0], messageId, qos: r[1], retain: r[2] === 1, subscriptionIds: r[3] ?? undefined, packetId, state: r[4] === 1 ? 'pubrel' : 'publish',
  };
}

function decodeSubscription(filter: string, text: string): StoredSubscription {
  const r = JSON.parse(text) as [QoS, number, number, 0 | 1 | 2, number | null];
  return { topicFilter: filter, qos: r[0], noLocal: r[1] === 1, retainAsPublished: r[2] === 1, retainHandling: r[3], subscriptionIdentifier: r[4] ?? undefined };
}

function pairs(reply: Reply | undefined): Buffer[] {
  return Array.isArray(reply) ? reply as Buffer[] : [];
}

function readState(reply: Reply[]): StoredState {
  const state: StoredState = {
    sessions: [], subscriptions: [], queue: [], inflight: [], inboundQos2: [], retained: [], messages: new Map(),
  };
  const s = pairs(reply[0]);
  for (let i = 0; i + 1 < s.length; i += 2) state.sessions.push(decodeSession(s[i]!.toString('utf8'), s[i + 1]!.toString('utf8')));
  const t = pairs(reply[1]);
  for (let i = 0; i + 1 < t.length; i += 2) state.retained.push({ topic: t[i]!.toString('utf8'), messageId: t[i + 1]!.toString('utf8') });
  const m = pairs(reply[2]);
  for (let i = 0; i + 1 < m.length; i += 2) {
    const id = m[i]!.toString('utf8');
    state.messages.set(id, decodeMessage(id, m[i + 1]!));
  }
  const clients: { cid: string; at: number }[] = [];
  for (let at = 4; at + 4 < reply.length; at += 5) clients.push({ cid: (reply[at] as Buffer).toString('utf8'), at });
  clients.sort((a, b) => (a.cid < b.cid ? -1 : a.cid > b.cid ? 1 : 0));
  for (const { cid, at } of clients) {
    const b = pairs(reply[at + 1]);
    for (let i = 0; i + 1 < b.length; i += 2) state.subscriptions.push({ clientId: cid, subscription: decodeSubscription(b[i]!.toString('utf8'), b[i + 1]!.toString('utf8')) });
    const d = pairs(reply[at + 2]);
    const queue: QueueEntry[] = [];
    for (let i = 0; i + 1 < d.length; i += 2) queue.push(queueEntry(cid, Number(d[i]!.toString('latin1')), d[i + 1]!));
    queue.sort((x, y) => x.seq - y.seq);
    state.queue.push(...queue);
    const f = pairs(reply[at + 3]);
    const inflight: InflightEntry[] = [];
    for (let i = 0; i + 1 < f.length; i += 2) inflight.push(inflightEntry(cid, Number(f[i]!.toString('latin1')), f[i + 1]!));
    inflight.sort((x, y) => x.seq - y.seq);
    state.inflight.push(...inflight);
    for (const pid of pairs(reply[at + 4])) state.inboundQos2.push({ clientId: cid, packetId: Number(pid.toString('latin1')) });
  }
  return state;
}

function asStoreError(err: unknown, context: string): StoreError {
  if (err instanceof StoreError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  const code = detail.includes('unknown-message') ? 'unknown-message' : 'failed';
  return new StoreError(code, `${context}: ${detail}`, { cause: err });
}
