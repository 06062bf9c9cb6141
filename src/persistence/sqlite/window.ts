/**
 * The ops journaled since the last compaction, netted as they come (the SQLite store's window).
 *
 * `netOps` (journal.ts) nets a whole window at compaction; until then every op object, and every
 * message with its payload, stayed alive for up to `compactMs`: long enough to survive the young
 * generation's collections, which then copied them and promoted them (the collector's work grew
 * with the window, not with what it held at the end). Most ops of a window cancel out long before
 * the compaction: a QoS 1 delivery stored, sent and acknowledged in a few milliseconds is a
 * message, an inflight and a complete op, and nets to nothing. This window drops such ops as soon
 * as a later op makes them moot, so that they die young:
 *
 * - an op on a queue, inflight or inbound QoS 2 row, or on a retained topic, supersedes the window's
 *   earlier op on the same row (only the last op on a row counts, as in `netOps`);
 * - a 'complete' or 'dequeue' of a row that the tables do not hold (the store knows, `TableRows`)
 *   deletes nothing and is not kept;
 * - a message whose op is in the window and that no kept op of the window references any more,
 *   at the end of a batch of writes, is dropped (`netOps` would not write it either): as in the
 *   memory store, a message with no reference left is gone, and a later reference must put it
 *   again. The store forgets its id (`onDrop`).
 *
 * What stays is a subset of the window's ops that `netOps` turns into the same end state as the
 * whole window: every dropped op is one that `netOps` would drop, or one that would change nothing
 * when applied (a delete of an absent row). A 'dropSession' only ends
 * the row index of its session; `netOps` supersedes the session's earlier ops at compaction.
 */
import type { StoreOp } from '../types.js';
import { InflightTable } from '../../session/inflight.js';
import { RotatingMap, RotatingSet } from '../../session/rotating.js';

/** What the tables may hold, asked when a delete comes: false only when the store knows the row is absent. */
export interface TableRows {
  inflight(clientId: string, packetId: number): boolean;
  queue(clientId: string, seq: number): boolean;
}

/** A window's slot array larger than this is let go at `clear` instead of kept for the next one. */
const MAX_KEPT_SLOTS = 1 << 20;

/** Where the window's latest op on each row of a table is, by the row's key. */
interface RowIndex<K> {
  get(key: K): number | undefined;
  set(key: K, at: number): void;
  delete(key: K): boolean;
}

/**
 * The window index of the latest op on each row of one session. Inflight rows are keyed by
 * packet id, which the store checked (1..65535) before the op reached the window: an
 * open-addressing table over typed arrays (session/inflight.ts), which, unlike a Map, allocates
 * nothing as a delivery's row comes and goes.
 */
class Rows {
  readonly queue = new RotatingMap<number, number>();
  readonly inflight = new InflightTable<number>();
  readonly inboundQos2 = new RotatingMap<number, number>();
}

/** A message the window's ops reference: where its 'message' op is (-1: not in the window), and how many kept ops reference it. */
interface Held {
  at: number;
  refs: number;
}

export class OpWindow {
  /** The ops in journal order; a dropped op leaves a hole. */
  #ops: (StoreOp | undefined)[] = [];
  /**
   * Slots used in `#ops`. The array is kept from one compaction to the next (emptied, not
   * replaced): a window holds a few hundred thousand slots, and growing a new array to that size
   * every compaction copied it a dozen times over.
   */
  #count = 0;
  /** The records added (`record`, `carry`): the slot of each one's first op, its log offset, and when it was written. */
  #recordSlots: number[] = [];
  #recordOffsets: number[] = [];
  #recordTimes: number[] = [];
  #live = 0;
  /** The session of the latest op, and its rows (consecutive ops are often one session's). */
  #lastClient: string | undefined;
  #lastRows: Rows | undefined;
  readonly #sessions = new RotatingMap<string, Rows>();
  /** Sessions that a 'dropSession' in the window drops (`split` holds none of their ops). */
  readonly #dropped = new RotatingSet<string>();
  readonly #retained = new RotatingMap<string, number>();
  readonly #messages = new RotatingMap<string, Held>();
  /** The message `#ref` or a 'message' op looked up last, and its entry in `#messages`. */
  #lastId: string | undefined;
  #lastHeld: Held | undefined;
  /** Messages whose count reached 0 in the batch being added: dropped at its end unless referenced again. */
  readonly #unreferenced: string[] = [];
  readonly #table: TableRows;
  readonly #onDrop: (messageId: string) => void;

  constructor(table: TableRows, onDrop: (messageId: string) => void) {
    this.#table = table;
    this.#onDrop = onDrop;
  }

  /** Ops kept (not dropped) in the window. */
  get size(): number {
    return this.#live;
  }

  /** Starts the ops of a new log record: written at log `offset` at time `at` (performance.now()). */
  record(offset: number, at: number): void {
    this.#recordSlots.push(this.#count);
    this.#recordOffsets.push(offset);
    this.#recordTimes.push(at);
  }

  /** Adds the ops of one write of the current record, in order. Call `endBatch` after the last write of a batch. */
  add(ops: readonly StoreOp[]): void {
    for (let i = 0; i < ops.length; i++) this.#add(ops[i]!);
  }

  /** Drops the messages that no kept op references any more. */
  endBatch(): void {
    const list = this.#unreferenced;
    if (list.length === 0) return;
    const messages = this.#messages;
    for (let i = 0; i < list.length; i++) {
      const id = list[i]!;
      const held = messages.get(id);
      if (held === undefined || held.refs > 0 || held.at < 0) continue;
      this.#ops[held.at] = undefined;
      this.#live--;
      this.#forget(id);
      this.#onDrop(id);
    }
    list.length = 0;
  }

  /** The kept ops in journal order (the window is emptied by `clear`, once they are applied). */
  ops(): StoreOp[] {
    const out: StoreOp[] = [];
    const ops = this.#ops;
    const count = this.#count;
    for (let i = 0; i < count; i++) {
      const op = ops[i];
      if (op !== undefined) out.push(op);
    }
    return out;
  }

  /**
   * Splits the window for a compaction that leaves young deliveries to the next one: a delivery
   * sent in a record written at `young` or later (performance.now()) will likely be acknowledged
   * soon, and then nets away in the next window instead of being written to the tables now and
   * deleted by the next compaction. Held: the 'inflight' ops of records written since `young`
   * whose message was put in the window (none of a session that the window drops), and those
   * 'message' ops (also applied now when other ops need them: a message put twice is stored once).
   * `from` is the log offset of the oldest record with a held op (-1: none held): the compaction
   * must record that its tables cover the log only up to there, so that a recovery replays the
   * held ops (and, again, the applied ops after them: applying an op a second time changes
   * nothing, since every op sets its row whatever the row held).
   */
  split(young: number): { apply: StoreOp[]; held: StoreOp[]; heldOffsets: number[]; from: number } {
    const ops = this.#ops;
    const count = this.#count;
    const times = this.#recordTimes;
    let first = count;
    for (let r = times.length - 1; r >= 0 && times[r]! >= young; r--) first = this.#recordSlots[r]!;
    const holds = new Uint8Array(count);
    for (let i = first; i < count; i++) {
      const op = ops[i];
      if (op?.op !== 'inflight' || this.#dropped.has(op.entry.clientId)) continue;
      // Only with its message op: a message the tables hold may be deleted by this compaction
      // (its other references gone) while the held delivery still needs it.
      const at = this.#messages.get(op.entry.messageId)?.at ?? -1;
      if (at < 0) continue;
      holds[i] = 1;
      holds[at] = 2;
    }
    const apply: StoreOp[] = [];
    const held: StoreOp[] = [];
    const heldOffsets: number[] = [];
    let from = -1;
    const slots = this.#recordSlots;
    let r = -1;
    for (let i = 0; i < count; i++) {
      const op = ops[i];
      if (op === undefined) continue;
      if (holds[i] !== 1) apply.push(op);
      if (holds[i] === 0) continue;
      held.push(op);
      // The record op i came in: the last one that starts at or before it.
      while (r + 1 < slots.length && slots[r + 1]! <= i) r++;
      const offset = this.#recordOffsets[r]!;
      heldOffsets.push(offset);
      if (from < 0 || offset < from) from = offset;
    }
    return { apply, held, heldOffsets, from };
  }

  /** Puts back ops that a compaction held (`split`), with the log offsets of their records, before any later record. */
  carry(ops: readonly StoreOp[], offsets: readonly number[]): void {
    for (let i = 0; i < ops.length; i++) {
      // As records of their own, never young again.
      if (i === 0 || offsets[i] !== offsets[i - 1]) this.record(offsets[i]!, -Infinity);
      this.#add(ops[i]!);
    }
  }

  clear(): void {
    const ops = this.#ops;
    if (ops.length > MAX_KEPT_SLOTS) this.#ops = [];
    else ops.fill(undefined, 0, this.#count);
    this.#count = 0;
    this.#recordSlots = [];
    this.#recordOffsets = [];
    this.#recordTimes = [];
    this.#lastClient = undefined;
    this.#lastRows = undefined;
    this.#live = 0;
    this.#sessions.clear();
    this.#dropped.clear();
    this.#retained.clear();
    this.#messages.clear();
    this.#lastId = this.#lastHeld = undefined;
    this.#unreferenced.length = 0;
  }

  #rows(clientId: string): Rows {
    if (clientId === this.#lastClient) return this.#lastRows!;
    let rows = this.#sessions.get(clientId);
    if (rows === undefined) this.#sessions.set(clientId, rows = new Rows());
    this.#lastClient = clientId;
    this.#lastRows = rows;
    return rows;
  }

  #push(op: StoreOp): number {
    this.#live++;
    const ops = this.#ops;
    const at = this.#count++;
    if (at < ops.length) ops[at] = op;
    else ops.push(op);
    return at;
  }

  #add(op: StoreOp): void {
    switch (op.op) {
      case 'message': {
        const held = this.#messages.get(op.message.id);
        // A repeated put of the same message changes nothing: the first one stays.
        if (held !== undefined && held.at >= 0) return;
        const at = this.#push(op);
        if (held === undefined) {
          const fresh: Held = { at, refs: 0 };
          this.#messages.set(op.message.id, fresh);
          this.#lastId = op.message.id;
          this.#lastHeld = fresh;
        } else held.at = at;
        return;
      }
      case 'dropSession':
        // Its earlier ops stay (netOps supersedes them); later ones start a new index.
        this.#sessions.delete(op.clientId);
        this.#dropped.add(op.clientId);
        if (op.clientId === this.#lastClient) this.#lastClient = this.#lastRows = undefined;
        this.#push(op);
        return;
      case 'enqueue':
        this.#ref(op.entry.messageId);
        this.#supersede(this.#rows(op.entry.clientId).queue, op.entry.seq, this.#push(op));
        return;
      case 'dequeue':
        this.#delete(this.#rows(op.clientId).queue, op.seq, op, this.#table.queue(op.clientId, op.seq));
        return;
      case 'inflight':
        this.#ref(op.entry.messageId);
        this.#supersede(this.#rows(op.entry.clientId).inflight, op.entry.packetId, this.#push(op));
        return;
      case 'complete':
        this.#delete(this.#rows(op.clientId).inflight, op.packetId, op, this.#table.inflight(op.clientId, op.packetId));
        return;
      case 'pubrec':
      case 'pubrel':
        this.#supersede(this.#rows(op.clientId).inboundQos2, op.packetId, this.#push(op));
        return;
      case 'retain':
        this.#ref(op.messageId);
        this.#supersede(this.#retained, op.topic, this.#push(op));
        return;
      case 'unretain':
        this.#supersede(this.#retained, op.topic, this.#push(op));
        return;
      default:
        this.#push(op);
    }
  }

  /** A delete of row `key`: drops the window's op on the row, and is kept only when the tables may hold the row. */
  #delete(rows: RowIndex<number>, key: number, op: StoreOp, inTables: boolean): void {
    this.#supersede(rows, key, -1);
    if (inTables) rows.set(key, this.#push(op));
    else rows.delete(key);
  }

  /** Makes `at` the latest op on the row `key` of `rows` (-1: the caller sets it) and drops the op it supersedes. */
  #supersede<K>(rows: RowIndex<K>, key: K, at: number): void {
    const prev = rows.get(key);
    if (at >= 0) rows.set(key, at);
    if (prev === undefined) return;
    const old = this.#ops[prev];
    if (old === undefined) return;
    this.#ops[prev] = undefined;
    this.#live--;
    const id = old.op === 'enqueue' || old.op === 'inflight' ? old.entry.messageId : old.op === 'retain' ? old.messageId : undefined;
    if (id !== undefined) this.#unref(id);
  }

  #ref(id: string): void {
    // A message's deliveries follow it: the last message looked up is nearly always the one.
    if (id === this.#lastId) {
      this.#lastHeld!.refs++;
      return;
    }
    let held = this.#messages.get(id);
    if (held === undefined) this.#messages.set(id, held = { at: -1, refs: 1 });
    else held.refs++;
    this.#lastId = id;
    this.#lastHeld = held;
  }

  #forget(id: string): void {
    this.#messages.delete(id);
    if (id === this.#lastId) this.#lastId = this.#lastHeld = undefined;
  }

  #unref(id: string): void {
    const held = this.#messages.get(id);
    if (held === undefined) return;
    if (--held.refs <= 0) {
      if (held.at >= 0) this.#unreferenced.push(id);
      else this.#forget(id);
    }
  }
}
