/**
 * The broker's side of the store seam: durable changes become `StoreOp` records, collected and
 * written in batches (the store may join the batches of one turn into one transaction), and what
 * a store holds is turned back into sessions, subscriptions, retained messages and deadlines on
 * start. Only persistent sessions (Session Expiry Interval above 0) are stored.
 *
 * What is durable: sessions (expiry, pending will, the will of a connected client), their
 * subscriptions (SUBACK is sent once they are committed), retained messages, the QoS 1/2
 * deliveries of persistent sessions (queue and inflight entries, written as the session reports
 * them through `DurableSink`) and the inbound QoS 2 packet ids awaiting PUBREL. The acknowledgement
 * of a PUBLISH waits for the commit of everything its routing wrote (handlers/publish.ts `ack`).
 * Times are stored as wall-clock milliseconds and converted to and from the broker's clock.
 *
 * Delivered before durable: the PUBACK of a QoS 1 PUBLISH (not retained, not in a cluster, not
 * changed by a delivery interceptor) whose every stored entry was acknowledged by its receiver
 * before the commit came goes without waiting for it (still in order behind the connection's
 * earlier replies). Nothing acknowledged can be lost then: each persistent receiver has the
 * message and said so. A crash before the sync may leave the message's records in the log
 * without their ends, and a restart then resends it, which QoS 1 allows. QoS 2 never goes early:
 * its PUBREC promises the stored "PUBREC sent" state [MQTT-4.3.3-2], and so do SUBACK, PUBREL and
 * PUBCOMP.
 *
 * A message is written once and counted by the entries that reference it (`Message.storeRefs`, the
 * store's own rule): when a message that the store dropped (no reference left) is referenced
 * again, e.g. a shared-group delivery moved from a clean session, it is written again.
 */
import { randomBytes } from 'node:crypto';
import type { WillMessage } from '../protocol/index.js';
import type { InflightEntry, QueueEntry, Store, StoredMessage, StoredState, StoredSubscription, StoreOp, WriteOptions } from '../persistence/types.js';
import type { Clock } from '../session/clock.js';
import { createMessage, type DeliveryWaiter, type Message } from './message.js';
import type { DurableSink, Outgoing, Session, SubRecord } from './session.js';
import { BrokerCounters } from './counters.js';

/** What `replyAfterCommit` needs of a connection. */
export interface ReplyTarget {
  readonly phase: string;
  fail(err: unknown): void;
}

/**
 * The replies of one connection that wait for the same commit: they share one promise chain link.
 * A link whose every reply is an early one (a QoS 1 PUBACK, see the header) also resolves once
 * the messages of its replies were acknowledged by all their stored receivers (`delivered`).
 */
class ReplyLink implements DeliveryWaiter {
  /** The commit they wait for (undefined: only the link before). */
  readonly wait: Promise<void> | undefined;
  readonly sends: (() => void)[];
  after: Promise<void> | undefined = undefined;
  /** Its sends ran (or its commit failed): a later reply must not join it, even before `chains` forgets it. */
  fired = false;
  /** Replies that must wait for the commit itself. */
  blocking = 0;
  /** Messages of its early replies that stored receivers have not all acknowledged yet. */
  outstanding = 0;
  /** Resolves the early wait; undefined once used (the link takes no more replies then). */
  release: (() => void) | undefined = undefined;
  /** The batch that counts this link among its early waiters, until it went. */
  #batch: EarlyCount | undefined = undefined;
  /** Told how many replies a release before the commit let go (its counters). */
  #durability: Durability | undefined = undefined;

  constructor(wait: Promise<void> | undefined, send: () => void) {
    this.wait = wait;
    this.sends = [send];
  }

  /** The link takes `send`; `early`: the message of a QoS 1 PUBACK that may go before the commit. */
  join(send: () => void, early: Message | undefined): void {
    this.sends.push(send);
    this.#track(early);
  }

  #track(early: Message | undefined): void {
    // A message with a waiter already: delivered as copies (DELIVERED_AS_COPY), or (never
    // expected: one PUBLISH, one message) another link's, which one count cannot serve.
    if (early === undefined || early.ackWaiter !== undefined) this.blocking++;
    else if (early.storeRefs > 0) {
      early.ackWaiter = this;
      this.outstanding++;
    }
  }

  /** For a first reply that may go early (its message `early`): the early wait. */
  start(early: Message, durability: Durability): Promise<void> {
    this.#track(early);
    const p = new Promise<void>((resolve) => (this.release = resolve));
    this.#durability = durability;
    const batch = durability.collecting;
    if (batch !== undefined) {
      this.#batch = batch;
      batch.early++;
    }
    this.#check();
    return p;
  }

  /** The link no longer waits for its batch's sync to go. */
  #leave(): void {
    const batch = this.#batch;
    if (batch === undefined) return;
    this.#batch = undefined;
    batch.early--;
  }

  delivered(): void {
    this.outstanding--;
    this.#check();
  }

  #check(): void {
    const release = this.release;
    if (release === undefined || this.blocking > 0 || this.outstanding > 0) return;
    this.release = undefined;
    this.#leave();
    this.#durability?.releasedEarly(this.sends.length);
    release();
  }

  /** After its replies went (or failed): a message that still names the link as its waiter keeps nothing alive. */
  done(): void {
    this.sends.length = 0;
    this.release = undefined;
    this.#leave();
  }

  /** Whether a reply of this turn may still join. */
  get open(): boolean {
    return !this.fired && (this.release !== undefined || this.blocking > 0);
  }
}

const LAZY: WriteOptions = Object.freeze({ lazy: true });
/**
 * How long a batch of deliveries may be held back before it is written (see `Durability.#write`).
 * A point-to-point receiver acknowledges in 0.1–0.3 ms here, a sync takes 0.3–0.7 ms under load.
 */
const HOLD_MS = 1;
/** See `Durability.#holdShare`. */
const HOLD_MIN_SHARE = 0.2;
const HOLD_PAUSE_MS = 100;

/** A turn's collection held back before it is written (see `Durability.#write`). */
interface Held {
  ops: StoreOp[];
  readonly batch: Batch | undefined;
  /** Only ends of deliveries, and no reply waits. */
  readonly ends: boolean;
  /** When (performance.now()) it is written at the latest. */
  readonly due: number;
  /** When its first op came. */
  readonly start: number;
}

/**
 * `ops` without the messages whose every delivery in them ended in them too: a 'message' op, its
 * 'inflight' ops (state 'publish': new rows, each followed by the 'complete' of its row) and
 * those 'complete' ops go; a message that anything else references (a queue entry, a retained
 * topic, a PUBREL state, a delivery still open, a second write of it) keeps all its ops. The rest
 * keep their order.
 */
export function unwritten(ops: readonly StoreOp[]): readonly StoreOp[] {
  const mask = droppable([{ ops: ops as StoreOp[] }])?.[0];
  return mask === undefined ? ops : ops.filter((_, i) => mask[i] !== 1);
}

/** Per turn (in order, taken as one run of ops), which ops `unwritten` leaves out; undefined: none. */
function droppable(turns: readonly { readonly ops: readonly StoreOp[] }[]): (Uint8Array | undefined)[] | undefined {
  let messages: Map<string, HeldMessage> | undefined;
  for (let t = 0; t < turns.length; t++) {
    const ops = turns[t]!.ops;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.op !== 'message') continue;
      messages ??= new Map();
      // Written twice (its references went and came back): left alone.
      const twice = messages.get(op.message.id);
      if (twice !== undefined) twice.blocked = true;
      else messages.set(op.message.id, { open: 0, blocked: false, at: [t, i] });
    }
  }
  if (messages === undefined) return undefined;
  // Open deliveries of held messages by session and packet id.
  const rows = new Map<string, Map<number, HeldMessage>>();
  for (let t = 0; t < turns.length; t++) {
    const ops = turns[t]!.ops;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      switch (op.op) {
        case 'inflight': {
          const m = messages.get(op.entry.messageId);
          if (m === undefined) break;
          let byId = rows.get(op.entry.clientId);
          if (byId === undefined) rows.set(op.entry.clientId, byId = new Map());
          if (op.entry.state !== 'publish' || byId.has(op.entry.packetId)) {
            m.blocked = true;
            break;
          }
          byId.set(op.entry.packetId, m);
          m.open++;
          m.at.push(t, i);
          break;
        }
        case 'complete': {
          const byId = rows.get(op.clientId);
          const m = byId?.get(op.packetId);
          if (m === undefined) break;
          byId!.delete(op.packetId);
          m.open--;
          m.at.push(t, i);
          break;
        }
        case 'enqueue':
          blockHeld(messages, op.entry.messageId);
          break;
        case 'retain':
          blockHeld(messages, op.messageId);
          break;
        default:
          break;
      }
    }
  }
  let masks: (Uint8Array | undefined)[] | undefined;
  for (const m of messages.values()) {
    if (m.open !== 0 || m.blocked) continue;
    masks ??= new Array<Uint8Array | undefined>(turns.length).fill(undefined);
    for (let k = 0; k < m.at.length; k += 2) {
      const t = m.at[k]!;
      (masks[t] ??= new Uint8Array(turns[t]!.ops.length))[m.at[k + 1]!] = 1;
    }
  }
  return masks;
}

interface HeldMessage {
  /** Deliveries opened and not ended in the ops. */
  open: number;
  /** Referenced by anything else: all its ops stay. */
  blocked: boolean;
  /** Its ops, as pairs of turn and index. */
  at: number[];
}

function blockHeld(messages: Map<string, HeldMessage>, id: string): void {
  const m = messages.get(id);
  if (m !== undefined) m.blocked = true;
}

/** Reply links of a batch that wait for it or for their messages' delivery, whichever comes first. */
interface EarlyCount {
  early: number;
}

interface Batch extends EarlyCount {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
  /** A reply that must wait for the commit itself waits for this batch. */
  eager: boolean;
}

/** The last link of each connection's reply chain (`chains` holds its promise). */
const links = new WeakMap<object, ReplyLink>();

/**
 * Runs `send` (a reply to the client) once what is pending in the store is committed (and `also`,
 * e.g. a cluster forward, has settled), after the connection's earlier replies that waited too, so
 * that replies keep their order [MQTT-4.6.0-2]; at once when nothing waits. A failed write ends
 * the connection instead (0x80). Replies of a connection that wait for the same batch (a window of
 * QoS 1 PUBLISHes read in one turn) join one link of the chain: no promise or closure per reply
 * beyond `send` itself.
 */
export function replyAfterCommit<C extends ReplyTarget>(
  durability: Durability | undefined, chains: WeakMap<C, Promise<void>>, c: C, send: () => void, failure: () => Error,
  also?: Promise<unknown>, early?: Message,
): void {
  const before = chains.get(c);
  const commit = durability !== undefined && durability.pending ? durability.commit(early !== undefined && also === undefined) : undefined;
  if (commit === undefined && also === undefined && before === undefined) return send();
  if (also === undefined && before !== undefined) {
    const last = links.get(c);
    if (last !== undefined && last.open && last.after === before && (commit === undefined || commit === last.wait)) {
      // A reply that stored nothing (nothing pending) holds no early link back.
      if (commit === undefined && early === undefined) last.sends.push(send);
      else last.join(send, early);
      return;
    }
  }
  const link = new ReplyLink(also === undefined ? commit : undefined, send);
  const soon = commit !== undefined && also === undefined && early !== undefined ? link.start(early, durability as Durability) : undefined;
  if (soon === undefined) link.blocking = 1;
  const gate: Promise<unknown> | undefined = soon === undefined ? commit : Promise.race([commit as Promise<void>, soon]);
  const wait: Promise<unknown> | undefined = also === undefined ? gate : commit === undefined ? also : Promise.all([commit, also]);
  const after = (before === undefined ? (wait as Promise<unknown>) : before.then(() => wait)).then(() => {
    link.fired = true;
    const sends = link.sends;
    for (let i = 0; i < sends.length && c.phase !== 'closed'; i++) sends[i]!();
    link.done();
  }, () => {
    link.fired = true;
    link.done();
    c.fail(failure());
  });
  link.after = after;
  chains.set(c, after);
  links.set(c, link);
  void after.then(() => {
    if (chains.get(c) !== after) return;
    chains.delete(c);
    links.delete(c);
  });
}

export class Durability implements DurableSink {
  readonly store: Store;
  readonly #clock: Clock;
  readonly #wall: () => number;
  /** The ops of the batch being collected: handed to the store as one write at the end of the turn. */
  #ops: StoreOp[] = [];
  /** Ops were added since the last commit() call (`pending`). */
  #added = false;
  /** What commit() returned for the batch being collected (made on the first call). */
  #batch: Batch | undefined;
  #scheduled = false;
  readonly #writeSoon = (): void => {
    this.#scheduled = false;
    this.#write(false);
  };
  /** The turns held back, oldest first (see #write). */
  #held: Held[] = [];
  /**
   * How much holding turns back pays: a running share of the held messages that were left out.
   * Where receivers acknowledge later than HOLD_MS (a saturated fan-out), holding only delays;
   * below HOLD_MIN_SHARE the turns are written at once for HOLD_PAUSE_MS, then tried again.
   */
  #holdShare = 1;
  #holdPausedUntil = 0;
  /** Set while turns are held: fires when the oldest is due. */
  #holdTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #holdOver = (): void => {
    this.#holdTimer = undefined;
    const held = this.#held;
    const now = performance.now();
    let due = 1;
    while (due < held.length && held[due]!.due <= now) due++;
    this.#release(due, true);
    if (held.length > 0) this.#holdTimer = setTimeout(this.#holdOver, Math.max(0, held[0]!.due - now));
  };
  /** Message ids: a boot prefix and a counter, unique across restarts (kept on the Message, `storeId`). */
  readonly #prefix = randomBytes(6).toString('base64url');
  #next = 0;
  /** Client ids whose session is in the store. */
  readonly #stored = new Set<string>();
  /** The latest write: close() waits for it. */
  #last: Promise<void> = Promise.resolve();
  /** Called with an error when a write fails (the broker logs it). */
  onError: ((err: unknown) => void) | undefined;
  /** Batches, records, failures and latencies of the writes (counters.ts). */
  readonly #counters: BrokerCounters;
  /** When (performance.now()) the first record of the batch being collected came. */
  #batchStart = 0;
  /** Every op of the batch being collected ends a delivery ('complete'). */
  #onlyEnds = true;
  /** Every op of the batch is a delivery to a receiver online: message, inflight, dequeue or complete. */
  #onlyDeliveries = true;

  constructor(store: Store, clock: Clock, wall: () => number, counters: BrokerCounters = new BrokerCounters()) {
    this.store = store;
    this.#clock = clock;
    this.#wall = wall;
    this.#counters = counters;
  }

  /** Clock time → wall-clock ms. */
  toWall(t: number): number {
    return Math.round(this.#wall() + (t - this.#clock.now()));
  }

  /** Wall-clock ms → clock time. */
  fromWall(w: number): number {
    return this.#clock.now() + (w - this.#wall());
  }

  /** Whether ops were added since the last commit() call: a reply must wait for commit() then. */
  get pending(): boolean {
    return this.#added;
  }

  #add(op: StoreOp): void {
    if (this.#ops.length === 0) this.#batchStart = performance.now();
    this.#ops.push(op);
    if (op.op !== 'complete') {
      this.#onlyEnds = false;
      if (op.op !== 'message' && op.op !== 'inflight' && op.op !== 'dequeue') this.#onlyDeliveries = false;
    }
    this.#added = true;
    if (this.#scheduled) return;
    this.#scheduled = true;
    // Everything a turn collects goes to the store as one write at its end.
    setImmediate(this.#writeSoon);
  }

  /**
   * Resolves once everything collected so far is durable; rejects when the store failed. Every
   * call in one turn gets the same promise: the turn's ops are one write, handed to the store at
   * the end of the turn (a store applies writes in call order, so a write never waits for the one
   * before it).
   */
  commit(early = false): Promise<void> {
    this.#added = false;
    if (this.#ops.length === 0) {
      // Turns held back are part of "so far": they go to the store now.
      if (this.#held.length > 0) this.#write(true);
      return this.#last;
    }
    let batch = this.#batch;
    if (batch === undefined) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#batch = batch = { promise, resolve, reject, eager: false, early: 0 };
    }
    // `early`: the caller's reply may go before the commit (replyAfterCommit); any other waits for it.
    if (!early) batch.eager = true;
    return batch.promise;
  }

  /** `replies` QoS 1 PUBACKs were let go before their commit (ReplyLink). */
  releasedEarly(replies: number): void {
    this.#counters.storeEarlyAcks += replies;
  }

  /** The batch being collected, for a reply link that may go before its commit (it counts itself in `early`). */
  get collecting(): EarlyCount | undefined {
    return this.#batch;
  }

  /**
   * Ends the turn's collection: hands it to the store (with every turn held before it), or holds
   * it back; `now`: write everything now (close).
   *
   * A turn whose ops are only deliveries to receivers online (message, inflight, dequeue,
   * complete) and that no reply waits for, or only QoS 1 PUBACKs that may go early, is held back
   * for HOLD_MS: the receivers usually acknowledge within that time, and a message whose every
   * delivery ended meanwhile is then left out of the write with its deliveries (`unwritten`), so
   * it costs the store nothing. What a crash loses of the held ops is what no reply promised:
   * deliveries whose PUBACK went early (their receivers have the message), PUBACKs not sent yet
   * (the publisher sends again) and ends of deliveries (a resend). A turn with any other op, or a
   * reply that must wait for the commit, is written at its end, with everything held before it.
   */
  #write(now: boolean): void {
    const ops = this.#ops;
    if (ops.length > 0) {
      const batch = this.#batch;
      const onlyEnds = this.#onlyEnds;
      if (!(this.#onlyDeliveries && (batch === undefined ? onlyEnds : !batch.eager))) now = true;
      else if (this.#holdShare < HOLD_MIN_SHARE && this.#held.length === 0) {
        if (performance.now() < this.#holdPausedUntil) now = true;
        else this.#holdShare = HOLD_MIN_SHARE;
      }
      this.#ops = [];
      this.#batch = undefined;
      this.#onlyEnds = true;
      this.#onlyDeliveries = true;
      // Ends alone promise nothing: a later reply need not wait for them.
      if (batch === undefined && onlyEnds) this.#added = false;
      this.#held.push({ ops, batch, ends: batch === undefined && onlyEnds, due: performance.now() + HOLD_MS, start: this.#batchStart });
    }
    const held = this.#held;
    if (held.length === 0) return;
    if (now) {
      if (this.#holdTimer !== undefined) {
        clearTimeout(this.#holdTimer);
        this.#holdTimer = undefined;
      }
      // A turn written at its own end was not held: looking for what to leave out would find little.
      this.#release(held.length, held.length > 1);
    } else this.#holdTimer ??= setTimeout(this.#holdOver, HOLD_MS);
  }

  /**
   * Writes the `count` oldest held turns as one write, leaving out (with `prune`), from every
   * held turn, the messages delivered and acknowledged within them. It is lazy unless a reply still waits for
   * one of them (a reply that went early waits no more), or ops that no reply waits for but that
   * are not mere ends of deliveries are in it.
   */
  #release(count: number, prune: boolean): void {
    const held = this.#held;
    const drop = prune ? droppable(held) : undefined;
    const out: StoreOp[] = [];
    const batches: Batch[] = [];
    let sync = false;
    let dropped = 0;
    let opsIn = 0;
    for (let t = 0; t < held.length; t++) opsIn += held[t]!.ops.length;
    const start = held[0]!.start;
    for (let t = 0; t < count; t++) {
      const turn = held[t]!;
      const ops = turn.ops;
      const mask = drop?.[t];
      for (let i = 0; i < ops.length; i++) {
        if (mask !== undefined && mask[i] === 1) dropped++;
        else out.push(ops[i]!);
      }
      const batch = turn.batch;
      if (batch !== undefined) {
        batches.push(batch);
        if (batch.eager || batch.early > 0) sync = true;
      } else if (!turn.ends) sync = true;
    }
    // The turns still held lose what was dropped from them too.
    for (let t = count; t < held.length; t++) {
      const mask = drop?.[t];
      if (mask === undefined) continue;
      const turn = held[t]!;
      const kept: StoreOp[] = [];
      for (let i = 0; i < turn.ops.length; i++) {
        if (mask[i] === 1) dropped++;
        else kept.push(turn.ops[i]!);
      }
      turn.ops = kept;
    }
    held.splice(0, count);
    const counters = this.#counters;
    counters.storeUnwritten += dropped;
    if (prune && opsIn > 0) {
      this.#holdShare = this.#holdShare * 0.75 + 0.25 * (dropped / opsIn);
      if (this.#holdShare < HOLD_MIN_SHARE) this.#holdPausedUntil = performance.now() + HOLD_PAUSE_MS;
    }
    if (out.length === 0) {
      // Every message of these turns was delivered and acknowledged: nothing is left to store.
      for (let i = 0; i < batches.length; i++) batches[i]!.resolve();
      return;
    }
    // A write that only ended deliveries (PUBACK, PUBCOMP received), or whose replies all went
    // early, is lazy: lost in a crash, it costs a resend that QoS 1 allows and that QoS 2 answers
    // with PUBREL [MQTT-4.4.0-1]; it need not cost a sync of its own.
    const writeStart = performance.now();
    const store = this.store;
    const write = sync ? store.write(out) : store.write(out, LAZY);
    store.flush?.();
    // The count, not the ops: a write waiting for its sync keeps nothing of the turns alive.
    const opCount = out.length;
    this.#last = write.then(() => {
      const end = performance.now();
      counters.storeBatches++;
      counters.storeOps += opCount;
      counters.storeWrite.observe((end - writeStart) / 1000);
      counters.storeCommit.observe((end - start) / 1000);
      for (let i = 0; i < batches.length; i++) batches[i]!.resolve();
    }, (err: unknown) => {
      counters.storeErrors++;
      this.onError?.(err);
      for (let i = 0; i < batches.length; i++) batches[i]!.reject(err);
    });
  }

  /**
   * The message's id, counting one more reference; the message is written with its first one (and
   * again if referenced after its last reference went: the store may have dropped it then). The
   * count is per Message object; two objects of one stored id (read back twice) may each write it,
   * which the store takes as one.
   */
  #message(msg: Message): string {
    let id = msg.storeId;
    if (id === undefined) msg.storeId = id = `${this.#prefix}.${(this.#next++).toString(36)}`;
    if (msg.storeRefs++ > 0) return id;
    const stored: StoredMessage = {
      id, topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain, properties: msg.properties,
      expiresAt: msg.expiresAt === undefined ? undefined : this.toWall(msg.expiresAt), senderId: msg.senderId,
    };
    this.#add({ op: 'message', message: stored });
    return id;
  }

  #unref(msg: Message): void {
    if (msg.storeRefs > 0) msg.storeRefs--;
  }

  #entry(session: Session, o: Outgoing, messageId: string): QueueEntry {
    return { clientId: session.clientId, seq: o.seq, messageId, qos: o.qos, retain: o.retain, subscriptionIds: o.subIds };
  }

  #inflight(session: Session, o: Outgoing, messageId: string, state: 'publish' | 'pubrel'): InflightEntry {
    return {
      clientId: session.clientId, seq: o.seq, messageId, qos: o.qos, retain: o.retain, subscriptionIds: o.subIds, packetId: o.packetId, state,
    };
  }

  // ---- DurableSink: the deliveries of persistent sessions -----------------------------------

  queued(session: Session, o: Outgoing): void {
    this.#add({ op: 'enqueue', entry: this.#entry(session, o, this.#message(o.msg)) });
  }

  unqueued(session: Session, o: Outgoing): void {
    this.#add({ op: 'dequeue', clientId: session.clientId, seq: o.seq });
    this.#unref(o.msg);
  }

  sent(session: Session, o: Outgoing, fromQueue: boolean): void {
    // The new reference first, so the message's count never passes 0 in between.
    const messageId = this.#message(o.msg);
    if (fromQueue) this.unqueued(session, o);
    this.#add({ op: 'inflight', entry: this.#inflight(session, o, messageId, 'publish') });
  }

  released(session: Session, o: Outgoing): void {
    this.#add({ op: 'inflight', entry: this.#inflight(session, o, o.msg.storeId as string, 'pubrel') });
  }

  completed(session: Session, o: Outgoing): void {
    this.#add({ op: 'complete', clientId: session.clientId, packetId: o.packetId });
    this.#unref(o.msg);
  }

  acknowledged(session: Session, o: Outgoing): void {
    this.completed(session, o);
    const msg = o.msg;
    const waiter = msg.ackWaiter;
    if (waiter === undefined || msg.storeRefs > 0) return;
    msg.ackWaiter = undefined;
    waiter.delivered();
  }

  pubrec(session: Session, packetId: number): void {
    this.#add({ op: 'pubrec', clientId: session.clientId, packetId });
  }

  pubrel(session: Session, packetId: number): void {
    this.#add({ op: 'pubrel', clientId: session.clientId, packetId });
  }

  /** Reads spilled queue entries back once what is pending is committed; a failure is logged and refills nothing. */
  load(session: Session, afterSeq: number, limit: number): void {
    const clientId = session.clientId;
    void this.commit().catch(() => undefined)
      .then(() => this.store.readQueue(clientId, afterSeq, limit))
      .then((rows) => {
        const now = this.#clock.now();
        const byId = new Map<string, Message>();
        const out: Outgoing[] = [];
        for (const { entry: e, message: m } of rows) {
          let msg = byId.get(m.id);
          if (msg === undefined) byId.set(m.id, msg = this.toMessage(m, now));
          out.push({
            msg, qos: e.qos, retain: e.retain, subIds: e.subscriptionIds === undefined ? undefined : [...e.subscriptionIds], group: undefined,
            packetId: 0, released: false, deferred: false, sentAt: now, seq: e.seq,
          });
        }
        session.refilled(out, now);
      }, (err: unknown) => {
        this.onError?.(err);
        session.refilled(undefined, this.#clock.now());
      });
  }

  /** A message read back from the store; its expiry counts down in wall-clock time across a restart. */
  toMessage(m: StoredMessage, now: number): Message {
    const remaining = m.expiresAt === undefined ? undefined : Math.max(0, this.fromWall(m.expiresAt) - now);
    const properties = m.properties === undefined || remaining === undefined ? m.properties
      : { ...m.properties, messageExpiryInterval: Math.ceil(remaining / 1000) };
    const msg = createMessage({ topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain, properties, senderId: m.senderId, now });
    msg.storeId = m.id;
    return msg;
  }

  /** A persistent session was opened or resumed by a connection with `will`. */
  sessionConnected(session: Session, will: WillMessage | undefined): void {
    this.#stored.add(session.clientId);
    this.#add({
      op: 'session',
      session: {
        clientId: session.clientId, expiryInterval: session.expiryInterval, expiresAt: undefined, willAt: undefined,
        will: will === undefined ? undefined : { topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, properties: will.properties },
      },
    });
  }

  /** A persistent session went offline; `willAt` / `will`: a will waiting for its delay. */
  sessionDetached(session: Session, will: WillMessage | undefined, willAt: number | undefined): void {
    this.#stored.add(session.clientId);
    this.#add({
      op: 'session',
      session: {
        clientId: session.clientId, expiryInterval: session.expiryInterval,
        expiresAt: session.expiresAt === undefined ? undefined : this.toWall(session.expiresAt),
        will: will === undefined ? undefined : { topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, properties: will.properties },
        willAt: willAt === undefined ? undefined : this.toWall(willAt),
      },
    });
  }

  /** A session ended (or is no longer persistent): its stored record, if any, goes, with its deliveries. */
  sessionEnded(session: Session): void {
    for (const o of session.stored()) {
      this.#unref(o.msg);
      o.seq = 0;
    }
    session.durable = undefined;
    session.forgetSpilled();
    if (!this.#stored.delete(session.clientId)) return;
    this.#add({ op: 'dropSession', clientId: session.clientId });
  }

  subscribed(clientId: string, topicFilter: string, rec: SubRecord): void {
    const subscription: StoredSubscription = {
      topicFilter, qos: rec.qos, noLocal: rec.noLocal, retainAsPublished: rec.retainAsPublished, retainHandling: rec.retainHandling,
      subscriptionIdentifier: rec.subIds?.[0],
    };
    this.#add({ op: 'subscribe', clientId, subscription });
  }

  unsubscribed(clientId: string, topicFilter: string): void {
    this.#add({ op: 'unsubscribe', clientId, topicFilter });
  }

  retained(msg: Message): void {
    const messageId = this.#message(msg);
    this.#add({ op: 'retain', topic: msg.topic, messageId });
  }

  /** The retained message `old` of its topic was cleared (or replaced: then `retained` follows). */
  unretained(old: Message, replaced: boolean): void {
    if (!replaced) this.#add({ op: 'unretain', topic: old.topic });
    this.#unref(old);
  }

  /** Remembers the id of a message read back from the store (so it is not written again). */
  known(msg: Message, id: string): void {
    msg.storeId = id;
  }

  /** One stored reference (queue, inflight or retained entry) to the known message `msg` was read back. */
  referenced(msg: Message): void {
    msg.storeRefs++;
  }

  /** A session read back from the store. */
  knownSession(clientId: string): void {
    this.#stored.add(clientId);
  }

  /** What the store holds; queue entries may stay on disk (read back with readQueue as sessions drain). */
  open(): Promise<StoredState> {
    return this.store.open({ lazyQueues: true });
  }

  async close(): Promise<void> {
    const last = this.commit();
    this.#write(true);
    await last.catch(() => undefined);
    await this.store.close();
  }
}
