/**
 * The memory store: the broker's default. Not durable (nothing survives the process); it keeps
 * the same state a durable store would, so `open()` after writes returns what was written (the
 * contract suite relies on that) and the reference rules are the same as SQLite's: a message is
 * kept while a queue entry, an inflight entry or a retained topic references it, and dropped at
 * the end of the write that removed its last reference. A write is atomic: every referenced
 * message id is checked before anything is applied, so a rejected write changes nothing.
 */
import { StoreError } from './errors.js';
import type {
  InflightEntry, QueueEntry, Store, StoredMessage, StoredSession, StoredState, StoredSubscription, StoreOp, WriteOptions,
} from './types.js';
import { RotatingMap, RotatingSet } from '../session/rotating.js';

interface Held { readonly message: StoredMessage; refs: number }

const resolved = Promise.resolve();

export class MemoryStore implements Store {
  readonly durable = false;
  readonly #messages = new RotatingMap<string, Held>();
  readonly #sessions = new Map<string, StoredSession>();
  readonly #subscriptions = new RotatingMap<string, RotatingMap<string, StoredSubscription>>();
  readonly #queue = new RotatingMap<string, RotatingMap<number, QueueEntry>>();
  readonly #inflight = new RotatingMap<string, RotatingMap<number, InflightEntry>>();
  readonly #inboundQos2 = new RotatingMap<string, RotatingSet<number>>();
  readonly #retained = new RotatingMap<string, string>();
  /** Messages whose reference count reached 0 during the current write. */
  readonly #released: string[] = [];
  #closed = false;

  open(): Promise<StoredState> {
    if (this.#closed) return Promise.reject(new StoreError('closed', 'the store is closed'));
    const state: StoredState = {
      sessions: [...this.#sessions.values()],
      subscriptions: [],
      queue: [],
      inflight: [],
      inboundQos2: [],
      retained: [],
      messages: new Map(),
    };
    for (const [clientId, subs] of this.#subscriptions) {
      for (const subscription of subs.values()) state.subscriptions.push({ clientId, subscription });
    }
    for (const clientId of [...this.#queue.keys()].sort()) {
      state.queue.push(...[...this.#queue.get(clientId)!.values()].sort(bySeq));
    }
    for (const clientId of [...this.#inflight.keys()].sort()) {
      state.inflight.push(...[...this.#inflight.get(clientId)!.values()].sort(bySeq));
    }
    for (const [clientId, ids] of this.#inboundQos2) {
      for (const packetId of ids) state.inboundQos2.push({ clientId, packetId });
    }
    for (const [topic, messageId] of this.#retained) state.retained.push({ topic, messageId });
    for (const [id, held] of this.#messages) if (held.refs > 0) state.messages.set(id, held.message);
    return Promise.resolve(state);
  }

  /** `options.lazy` changes nothing here: every write is applied at once. */
  write(ops: readonly StoreOp[], _options?: WriteOptions): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreError('closed', 'the store is closed'));
    const missing = this.#missingReference(ops);
    if (missing !== undefined) {
      return Promise.reject(new StoreError('unknown-message', `write references message ${JSON.stringify(missing)}, which the store does not hold`));
    }
    for (let i = 0; i < ops.length; i++) this.#apply(ops[i]!);
    const released = this.#released;
    for (let i = 0; i < released.length; i++) {
      const id = released[i]!;
      if (this.#messages.get(id)?.refs === 0) this.#messages.delete(id);
    }
    released.length = 0;
    return resolved;
  }

  readQueue(clientId: string, afterSeq: number, limit: number): Promise<{ entry: QueueEntry; message: StoredMessage }[]> {
    if (this.#closed) return Promise.reject(new StoreError('closed', 'the store is closed'));
    const entries = [...(this.#queue.get(clientId)?.values() ?? [])].filter((e) => e.seq > afterSeq).sort(bySeq).slice(0, Math.max(0, limit));
    return Promise.resolve(entries.map((entry) => ({ entry, message: this.#messages.get(entry.messageId)!.message })));
  }

  close(): Promise<void> {
    this.#closed = true;
    return resolved;
  }

  /** The first message id referenced by `ops` that is neither stored nor stored earlier in `ops`. */
  #missingReference(ops: readonly StoreOp[]): string | undefined {
    let added: Set<string> | undefined;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      let id: string;
      if (op.op === 'message') {
        (added ??= new Set()).add(op.message.id);
        continue;
      } else if (op.op === 'enqueue' || op.op === 'inflight') id = op.entry.messageId;
      else if (op.op === 'retain') id = op.messageId;
      else continue;
      if (!this.#messages.has(id) && added?.has(id) !== true) return id;
    }
    return undefined;
  }

  #apply(op: StoreOp): void {
    switch (op.op) {
      case 'message':
        if (!this.#messages.has(op.message.id)) {
          this.#messages.set(op.message.id, { message: op.message, refs: 0 });
          this.#released.push(op.message.id);
        }
        return;
      case 'session':
        this.#sessions.set(op.session.clientId, op.session);
        return;
      case 'dropSession':
        this.#dropSession(op.clientId);
        return;
      case 'subscribe':
        inner(this.#subscriptions, op.clientId).set(op.subscription.topicFilter, op.subscription);
        return;
      case 'unsubscribe':
        this.#subscriptions.get(op.clientId)?.delete(op.topicFilter);
        return;
      case 'enqueue':
        this.#put(this.#queue, op.entry.clientId, op.entry.seq, op.entry);
        return;
      case 'dequeue':
        this.#remove(this.#queue, op.clientId, op.seq);
        return;
      case 'inflight':
        this.#put(this.#inflight, op.entry.clientId, op.entry.packetId, op.entry);
        return;
      case 'complete':
        this.#remove(this.#inflight, op.clientId, op.packetId);
        return;
      case 'pubrec': {
        let ids = this.#inboundQos2.get(op.clientId);
        if (ids === undefined) this.#inboundQos2.set(op.clientId, ids = new RotatingSet());
        ids.add(op.packetId);
        return;
      }
      case 'pubrel': {
        const ids = this.#inboundQos2.get(op.clientId);
        if (ids !== undefined && ids.delete(op.packetId) && ids.size === 0) this.#inboundQos2.delete(op.clientId);
        return;
      }
      case 'retain': {
        this.#ref(op.messageId);
        const old = this.#retained.get(op.topic);
        this.#retained.set(op.topic, op.messageId);
        if (old !== undefined) this.#unref(old);
        return;
      }
      case 'unretain': {
        const old = this.#retained.get(op.topic);
        if (old !== undefined) {
          this.#retained.delete(op.topic);
          this.#unref(old);
        }
        return;
      }
    }
  }

  #put<E extends QueueEntry>(table: RotatingMap<string, RotatingMap<number, E>>, clientId: string, key: number, entry: E): void {
    this.#ref(entry.messageId);
    const entries = inner(table, clientId);
    const old = entries.get(key);
    entries.set(key, entry);
    if (old !== undefined) this.#unref(old.messageId);
  }

  #remove(table: RotatingMap<string, RotatingMap<number, QueueEntry>>, clientId: string, key: number): void {
    const entries = table.get(clientId);
    const old = entries?.get(key);
    if (old === undefined) return;
    entries!.delete(key);
    if (entries!.size === 0) table.delete(clientId);
    this.#unref(old.messageId);
  }

  #dropSession(clientId: string): void {
    this.#sessions.delete(clientId);
    this.#subscriptions.delete(clientId);
    this.#inboundQos2.delete(clientId);
    for (const table of [this.#queue, this.#inflight]) {
      const entries = table.get(clientId);
      if (entries === undefined) continue;
      table.delete(clientId);
      for (const entry of entries.values()) this.#unref(entry.messageId);
    }
  }

  #ref(id: string): void {
    this.#messages.get(id)!.refs++;
  }

  #unref(id: string): void {
    const held = this.#messages.get(id);
    if (held !== undefined && --held.refs === 0) this.#released.push(id);
  }
}

function inner<K, V>(outer: RotatingMap<string, RotatingMap<K, V>>, key: string): RotatingMap<K, V> {
  let map = outer.get(key);
  if (map === undefined) outer.set(key, map = new RotatingMap());
  return map;
}

function bySeq(a: QueueEntry, b: QueueEntry): number {
  return a.seq - b.seq;
}
