/**
 * A session (§4.1): subscriptions, the outbound QoS 1/2 window, the bounded queue behind it,
 * and the inbound QoS 2 identifiers awaiting PUBREL. It outlives its connection when the
 * session expiry interval allows (Clean Session 0 in 3.1.1). Invariants:
 * - at most `window` QoS 1/2 messages are in flight to the client (Receive Maximum [MQTT-4.9.0-1]);
 * - the queue never holds more than `maxQueued` messages nor more than `maxQueuedBytes` bytes
 *   (`messageBytes` of each queued delivery, counted per session even when the message is shared);
 *   when full, QoS 0 is dropped first;
 * - inflight entries keep send order, which is the resend order on reconnect [MQTT-4.6.0-1];
 * - with a store, an offline persistent session whose queue is full spills QoS 1/2 deliveries to
 *   the store (up to `maxStoredBytes`); while anything is spilled, every QoS 1/2 delivery goes
 *   behind it (spilled too), and spilled entries are read back in seq order as the queue drains.
 */
import { Buffer } from 'node:buffer';
import type { QoS, Subscription } from '../protocol/index.js';
import type { SharedGroup } from '../router/index.js';
import { Deque } from '../session/deque.js';
import type { DropReason } from './events.js';
import { createMessage, isExpired, type Message, sizeOf } from './message.js';
import { withBit } from '../session/bits.js';
import { InflightTable } from '../session/inflight.js';
import { RotatingSet } from '../session/rotating.js';

/** How an acknowledgement from the client matched the session's deliveries. */
export type AckResult = 'done' | 'unknown' | 'mismatch';

/** One delivery of a message to this session. */
export interface Outgoing {
  readonly msg: Message;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly subIds: number[] | undefined;
  /** The shared subscription group this delivery was chosen by, if any. */
  readonly group: SharedGroup<SubRecord> | undefined;
  packetId: number;
  /** false: PUBLISH sent, awaiting PUBACK / PUBREC; true: PUBREL sent, awaiting PUBCOMP. */
  released: boolean;
  /** Unacknowledged from an earlier connection, waiting for a free slot of the new Receive Maximum. */
  deferred: boolean;
  sentAt: number;
  /** Position in the session's stored queue / inflight order; 0: not in the store. */
  seq: number;
}

/** A subscription as stored in the router: one per (client, filter). */
export interface SubRecord extends Required<Subscription> {
  readonly session: Session;
  /** [subscription identifier] when the SUBSCRIBE carried one, shared by every delivery. */
  subIds: number[] | undefined;
  /** Set for $share/{group}/{filter} subscriptions. */
  group: SharedGroup<SubRecord> | undefined;
}

/** What a session needs from its live connection. */
export interface SessionLink {
  readonly version: number;
  /** True while the socket does not accept more bytes; deliveries wait in the queue. */
  readonly congested: boolean;
  /** Writes a PUBLISH; returns false when the message cannot be sent to this client (too large). */
  sendPublish(now: number, msg: Message, qos: QoS, retain: boolean, subIds: number[] | undefined, packetId: number, dup: boolean): boolean;
  sendPubrel(packetId: number): void;
}

export interface DropSink {
  dropped(session: Session, msg: Message, reason: DropReason): void;
  /** The online session's queue reached its high-water mark: whoever is publishing to it should wait. */
  backlogged(session: Session): void;
  /** The session no longer holds publishers back (drained, stalled, offline or reset). */
  relieved(session: Session): void;
}

/**
 * Where a persistent session's QoS 1/2 delivery state goes when the broker has a store
 * (durability.ts). Set on the session only then (`Session.durable`): without a store a delivery
 * pays one field read. Entries with `seq` 0 are not in the store and are never reported.
 */
export interface DurableSink {
  /** `o` (seq assigned) waits in the queue. */
  queued(session: Session, o: Outgoing): void;
  /** The stored queue entry `o` left the queue without being sent (dropped, moved). */
  unqueued(session: Session, o: Outgoing): void;
  /** `o` was sent and awaits PUBACK / PUBREC; `fromQueue`: it was a stored queue entry until now. */
  sent(session: Session, o: Outgoing, fromQueue: boolean): void;
  /** PUBREC came for `o`: PUBREL sent, PUBCOMP awaited. */
  released(session: Session, o: Outgoing): void;
  /** The inflight entry `o` ended (dropped, moved, refused with a PUBREC error). */
  completed(session: Session, o: Outgoing): void;
  /** The inflight entry `o` ended with its receiver's PUBACK or PUBCOMP. */
  acknowledged(session: Session, o: Outgoing): void;
  /** Inbound QoS 2: PUBREC is to be sent for `packetId` / PUBREL came for it. */
  pubrec(session: Session, packetId: number): void;
  pubrel(session: Session, packetId: number): void;
  /** Reads back up to `limit` spilled queue entries after `afterSeq`, then calls `session.refilled`. */
  load(session: Session, afterSeq: number, limit: number): void;
}

/** A publisher held back by a backlogged session (flow control); woken once it drains or stalls. */
export interface Waiter {
  unblock(session: Session): void;
}

/** Queue limits from the broker's options; one object shared by every session. */
export interface SessionLimits {
  /** maxInflight: the window before the client's Receive Maximum caps it. */
  readonly window: number;
  readonly maxQueued: number;
  /** 0: no byte bound. */
  readonly maxQueuedBytes: number;
  readonly queueQos0Offline: boolean;
  /** With a store: bytes an offline persistent session may spill to it beyond its full queue; 0: none. */
  readonly maxStoredBytes: number;
  /** Flow control: publishers wait at `highWater` queued messages until the queue drains to `lowWater`. */
  readonly highWater: number;
  readonly lowWater: number;
}

export function sessionLimits(o: {
  maxInflight: number; maxQueuedMessages: number; maxQueuedBytes: number; queueQos0Offline: boolean; maxStoredBytesPerSession?: number;
}): SessionLimits {
  // Half the queue: the other half absorbs what publishers already sent before they wait.
  const highWater = o.maxQueuedMessages > 1 ? Math.ceil(o.maxQueuedMessages / 2) : Number.POSITIVE_INFINITY;
  return {
    window: o.maxInflight, maxQueued: o.maxQueuedMessages, maxQueuedBytes: o.maxQueuedBytes, queueQos0Offline: o.queueQos0Offline,
    maxStoredBytes: o.maxStoredBytesPerSession ?? 0,
    highWater, lowWater: Math.floor(highWater / 2),
  };
}

/** Watches a backlogged session for progress on the timer wheel (flow control, see `highWater`). */
export class StallWatch {
  constructor(readonly session: Session) {}
}

/**
 * The queue of every session that has queued nothing yet (most idle sessions): reading it costs
 * nothing, and `#enqueue` gives the session its own deque before the first push. Never written.
 */
const NO_QUEUE = new Deque<Outgoing>();

type Spare = { -readonly [K in keyof Outgoing]: Outgoing[K] };
/**
 * Deliveries that ended (acknowledged, or a queued QoS 0 sent) and that nothing else refers to,
 * kept for the next `deliver` of any session. At QoS 1 towards many subscribers a delivery lives
 * from PUBLISH to PUBACK, long enough to survive a young collection: allocated per delivery,
 * these objects were most of what each scavenge copied and promoted. Reused, they stay in the
 * old generation and nothing is allocated per delivery. Only entries the store no longer holds
 * (seq 0: never stored, or `#unstore`d; the durable sink copies what it writes and keeps no
 * reference) come back here; their message is let go at once, so a spare keeps no payload.
 */
const spares: Spare[] = [];
const MAX_SPARES = 4096;
const NO_MESSAGE: Message = createMessage({ topic: '', payload: Buffer.alloc(0), qos: 0, retain: false, now: 0 });

function newOutgoing(msg: Message, qos: QoS, retain: boolean, subIds: number[] | undefined, group: SharedGroup<SubRecord> | undefined, now: number): Outgoing {
  const o = spares.pop();
  if (o === undefined) return { msg, qos, retain, subIds, group, packetId: 0, released: false, deferred: false, sentAt: now, seq: 0 };
  o.msg = msg;
  o.qos = qos;
  o.retain = retain;
  o.subIds = subIds;
  o.group = group;
  o.sentAt = now;
  return o;
}

/** `o` ended and nobody refers to it any more (see `spares`). */
function recycle(o: Outgoing): void {
  if (o.seq !== 0 || spares.length >= MAX_SPARES) return;
  const s = o as Spare;
  s.msg = NO_MESSAGE;
  s.subIds = undefined;
  s.group = undefined;
  s.packetId = 0;
  s.released = false;
  s.deferred = false;
  spares.push(s);
}

/** A stored session's delivery counters, one object instead of six fields on every session. */
class StoreState {
  sink: DurableSink | undefined;
  /** The last `seq` given to a stored delivery. */
  seq = 0;
  /** Queue entries in the store only (spilled), their bytes, and the seq after which they start. */
  spilled = 0;
  spilledBytes = 0;
  spillAfter = 0;
  loading = false;
}

/** Bits of `Session.#flags`. */
const RETRY_SCHEDULED = 1;
const STALLED = 2;
const WATCHING = 4;

export class Session {
  readonly clientId: string;
  #subscriptions: Map<string, SubRecord> | undefined;
  #inflight: InflightTable<Outgoing> | undefined;
  /** Deliveries waiting for the link or the window; the shared empty NO_QUEUE until the first one. */
  queue: Deque<Outgoing> = NO_QUEUE;
  /** Inbound QoS 2 packet identifiers awaiting PUBREL [MQTT-4.3.3-9]; created on first use. */
  #inboundQos2: RotatingSet<number> | undefined;
  link: SessionLink | undefined;
  /** Seconds the session outlives its connection; 0xFFFFFFFF: forever. */
  expiryInterval = 0;
  /** Clock time when an offline session ends, or undefined while connected / never. */
  expiresAt: number | undefined;
  window: number;
  /** The broker's queue limits, one object shared by every session. */
  readonly limits: SessionLimits;
  dropped = 0;
  /** retryScheduled, stalled and watching as bits: one field instead of three. */
  #flags = 0;
  /** Marker used by the router to merge overlapping subscriptions in one fan-out. */
  routeMark = 0;
  /** Clock time of the last delivery written or acknowledgement received. */
  lastProgress = 0;
  #waiters: Waiter[] | undefined;
  #nextId = 1;
  /** Inflight entries marked deferred (see `resend`). */
  #deferred = 0;
  /** `messageBytes` of every queued delivery. */
  #queuedBytes = 0;
  readonly #drops: DropSink;
  /** What a session with a store keeps (see StoreState); created when it first needs it: most sessions never do. */
  #store: StoreState | undefined;

  constructor(clientId: string, limits: SessionLimits, drops: DropSink) {
    this.clientId = clientId;
    this.window = limits.window;
    this.limits = limits;
    this.#drops = drops;
  }

  /** Set while the session is persistent and the broker has a store: its QoS 1/2 deliveries are stored. */
  get durable(): DurableSink | undefined {
    return this.#store?.sink;
  }

  set durable(sink: DurableSink | undefined) {
    if (sink !== undefined || this.#store !== undefined) this.#st.sink = sink;
  }

  get #st(): StoreState {
    return (this.#store ??= new StoreState());
  }

  /** Whether the 3.1.1 resend timer is on the wheel (one per session). */
  get retryScheduled(): boolean {
    return (this.#flags & RETRY_SCHEDULED) !== 0;
  }

  set retryScheduled(on: boolean) {
    this.#flags = withBit(this.#flags, RETRY_SCHEDULED, on);
  }

  /** No progress (nothing written, nothing acknowledged) for the slow-subscriber timeout: publishers no longer wait for it. */
  get stalled(): boolean {
    return (this.#flags & STALLED) !== 0;
  }

  set stalled(on: boolean) {
    this.#flags = withBit(this.#flags, STALLED, on);
  }

  /** Whether the stall watch is on the timer wheel. */
  get watching(): boolean {
    return (this.#flags & WATCHING) !== 0;
  }

  set watching(on: boolean) {
    this.#flags = withBit(this.#flags, WATCHING, on);
  }

  /** Publishers should wait for this session: online, not stalled, queue at the high-water mark. */
  get backlogged(): boolean {
    return this.link !== undefined && !this.stalled && this.#overHighWater();
  }

  /** Holds `w` until the queue drains (or stalls, or the link goes). */
  wait(w: Waiter): void {
    (this.#waiters ??= []).push(w);
  }

  get waiting(): number {
    return this.#waiters?.length ?? 0;
  }

  /** Releases every waiting publisher, after the current call stack (never inside a delivery). */
  release(): void {
    this.#drops.relieved(this);
    const waiters = this.#waiters;
    if (waiters === undefined) return;
    this.#waiters = undefined;
    queueMicrotask(() => {
      for (const w of waiters) w.unblock(this);
    });
  }

  /** Subscriptions by the filter the client sent ($share/ included). Read-only: change them with the methods below. */
  get subscriptions(): ReadonlyMap<string, SubRecord> {
    return (this.#subscriptions ??= new Map());
  }

  /** Adds or replaces the subscription of `rec.topicFilter` as the client sent it ($share/ included). */
  setSubscription(topicFilter: string, rec: SubRecord): void {
    (this.#subscriptions ??= new Map()).set(topicFilter, rec);
  }

  /** Removes a subscription; returns it, or undefined when there was none. */
  deleteSubscription(topicFilter: string): SubRecord | undefined {
    const rec = this.#subscriptions?.get(topicFilter);
    if (rec !== undefined) this.#subscriptions?.delete(topicFilter);
    return rec;
  }

  clearSubscriptions(): void {
    this.#subscriptions = undefined;
  }

  /** Whether PUBREC was sent for this inbound QoS 2 packet id and PUBREL is awaited [MQTT-4.3.3-9]. */
  awaitsPubrel(packetId: number): boolean {
    return this.#inboundQos2?.has(packetId) === true;
  }

  /** Inbound QoS 2 flows awaiting PUBREL (bounded by the Receive Maximum for 5.0 [MQTT-3.3.4-7]). */
  get inboundQos2Count(): number {
    return this.#inboundQos2?.size ?? 0;
  }

  /** PUBREC sent for an inbound QoS 2 PUBLISH: a repeat of it is not routed again until PUBREL [MQTT-4.3.3-10]. */
  receivedQos2(packetId: number): void {
    (this.#inboundQos2 ??= new RotatingSet()).add(packetId);
    this.durable?.pubrec(this, packetId);
  }

  /** PUBREL arrived: the flow ends; false when the packet id was not awaited. */
  releasedQos2(packetId: number): boolean {
    if (this.#inboundQos2?.delete(packetId) !== true) return false;
    this.durable?.pubrel(this, packetId);
    return true;
  }

  /** QoS 1/2 deliveries awaiting acknowledgement, in send order; created on first use. */
  get inflight(): InflightTable<Outgoing> {
    return (this.#inflight ??= new InflightTable());
  }

  /** How many deliveries are in flight, without creating the map (metrics read every session). */
  get inflightCount(): number {
    return this.#inflight?.size ?? 0;
  }

  /** How many subscriptions the session holds, without creating the map. */
  get subscriptionCount(): number {
    return this.#subscriptions?.size ?? 0;
  }

  /** Queue entries held only in the store (spilled by an offline persistent session). */
  get spilledCount(): number {
    return this.#store?.spilled ?? 0;
  }

  /** Hands a message to the session: sent now if the link and the window allow, queued otherwise. */
  deliver(msg: Message, qos: QoS, retain: boolean, subIds: number[] | undefined, now: number, group?: SharedGroup<SubRecord>): void {
    const link = this.link;
    if (qos === 0) {
      if (link !== undefined && !link.congested && this.queue.length === 0) {
        if (!link.sendPublish(now, msg, 0, retain, subIds, 0, false)) this.#drops.dropped(this, msg, 'too-large');
        return;
      }
      if (link === undefined && !this.limits.queueQos0Offline) return;
    }
    const o = newOutgoing(msg, qos, retain, subIds, group, now);
    if (link !== undefined && !link.congested && this.queue.length === 0 && this.inflight.size < this.window && this.spilled === 0) {
      this.#send(link, o, now, false);
      return;
    }
    this.#enqueue(o);
  }

  /** Bytes of the deliveries waiting in the queue (`messageBytes` each). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  #enqueue(o: Outgoing): void {
    const size = sizeOf(o.msg);
    const maxBytes = this.limits.maxQueuedBytes;
    // Behind what is spilled, or offline with a full queue: into the store, if the quota allows.
    if (this.durable !== undefined && o.qos !== 0 && (this.spilled > 0
      || (this.link === undefined && (this.queue.length >= this.limits.maxQueued || (maxBytes > 0 && this.#queuedBytes + size > maxBytes))))
      && this.#spill(o, size)) return;
    while (this.queue.length >= this.limits.maxQueued || (maxBytes > 0 && this.#queuedBytes + size > maxBytes)) {
      // Full: QoS 0 goes first, then the newcomer.
      const victim = o.qos === 0 || (maxBytes > 0 && size > maxBytes) ? o : this.queue.removeFirst(isQos0);
      this.dropped++;
      this.#drops.dropped(this, (victim ?? o).msg, this.stalled ? 'slow-subscriber' : 'queue-full');
      if (victim === undefined || victim === o) return;
      this.#queuedBytes -= sizeOf(victim.msg);
    }
    if (this.queue === NO_QUEUE) this.queue = new Deque<Outgoing>();
    this.queue.push(o);
    this.#queuedBytes += size;
    const durable = this.durable;
    if (durable !== undefined && o.qos !== 0) {
      o.seq = ++this.#st.seq;
      durable.queued(this, o);
    }
    if (this.link !== undefined && !this.stalled && this.#overHighWater()) this.#drops.backlogged(this);
  }

  #spill(o: Outgoing, size: number): boolean {
    const durable = this.durable;
    const quota = this.limits.maxStoredBytes;
    if (durable === undefined || quota === 0 || this.#st.spilledBytes + size > quota) return false;
    if (this.#st.spilled === 0) this.#st.spillAfter = this.#st.seq;
    o.seq = ++this.#st.seq;
    durable.queued(this, o);
    this.#st.spilled++;
    this.#st.spilledBytes += size;
    return true;
  }

  /** Queue entries kept in the store only, waiting to be read back. */
  get spilled(): number {
    return this.#store?.spilled ?? 0;
  }

  /** Online with room in the queue: the next spilled entries are read back (one read at a time). */
  #refill(): void {
    const durable = this.durable;
    const st = this.#store;
    if (st === undefined || st.spilled === 0 || st.loading || durable === undefined || this.link === undefined) return;
    const room = this.limits.maxQueued - this.queue.length;
    if (room <= 0 || this.queue.length > this.limits.lowWater) return;
    st.loading = true;
    durable.load(this, st.spillAfter, room);
  }

  /** Spilled entries read back (`load`), in seq order; undefined when the read failed (tried again on the next pump). */
  refilled(entries: readonly Outgoing[] | undefined, now: number): void {
    this.#st.loading = false;
    if (entries === undefined || this.durable === undefined || this.#st.spilled === 0) return;
    for (const o of entries) {
      if (o.seq <= this.#st.spillAfter) continue;
      this.#st.spillAfter = o.seq;
      this.#st.spilled--;
      this.#st.spilledBytes -= sizeOf(o.msg);
      if (this.queue === NO_QUEUE) this.queue = new Deque<Outgoing>();
      this.queue.push(o);
      this.#queuedBytes += sizeOf(o.msg);
    }
    // Nothing more in the store than what was read: the counts are settled.
    if (entries.length === 0 || this.#st.spilled <= 0) {
      this.#st.spilled = 0;
      this.#st.spilledBytes = 0;
    }
    if (this.link !== undefined) this.pump(now);
  }

  /** At the high-water mark: half the queue's message bound, or half its byte bound. */
  #overHighWater(): boolean {
    const l = this.limits;
    return this.queue.length >= l.highWater || (l.maxQueuedBytes > 0 && this.#queuedBytes * 2 >= l.maxQueuedBytes);
  }

  /** Drained to the low-water mark: a quarter of the message bound and of the byte bound. */
  #underLowWater(): boolean {
    const l = this.limits;
    return this.queue.length <= l.lowWater && (l.maxQueuedBytes === 0 || this.#queuedBytes * 4 <= l.maxQueuedBytes);
  }

  #dequeue(): Outgoing {
    const o = this.queue.shift() as Outgoing;
    this.#queuedBytes -= sizeOf(o.msg);
    return o;
  }

  /** `fromQueue`: `o` was just taken from the queue (a stored entry there when its seq is set). */
  #send(link: SessionLink, o: Outgoing, now: number, fromQueue: boolean): void {
    if (o.qos === 0) {
      this.lastProgress = now;
      if (!link.sendPublish(now, o.msg, 0, o.retain, o.subIds, 0, false)) this.#drops.dropped(this, o.msg, 'too-large');
      recycle(o);
      return;
    }
    o.packetId = this.#allocateId();
    o.sentAt = now;
    this.lastProgress = now;
    if (!link.sendPublish(now, o.msg, o.qos, o.retain, o.subIds, o.packetId, false)) {
      this.#unstore(o, false);
      this.#drops.dropped(this, o.msg, 'too-large');
      return;
    }
    this.inflight.set(o.packetId, o);
    const durable = this.durable;
    if (durable !== undefined) {
      const queued = fromQueue && o.seq !== 0;
      if (!queued) o.seq = ++this.#st.seq;
      durable.sent(this, o, queued);
    }
  }

  /** `o` left the queue (`inflight` false) or the inflight window without completing: out of the store too. */
  #unstore(o: Outgoing, inflight: boolean): void {
    const durable = this.durable;
    if (durable === undefined || o.seq === 0) return;
    if (inflight) durable.completed(this, o);
    else durable.unqueued(this, o);
    o.seq = 0;
  }

  #allocateId(): number {
    let id = this.#nextId;
    while (this.inflight.has(id)) id = id === 65535 ? 1 : id + 1;
    this.#nextId = id === 65535 ? 1 : id + 1;
    return id;
  }

  /** Moves queued messages to the link while the window and the socket allow. */
  pump(now: number): void {
    const link = this.link;
    if (link === undefined) return;
    const before = this.queue.length;
    while (this.queue.length > 0 && !link.congested) {
      const o = this.queue.peek() as Outgoing;
      if (isExpired(o.msg, now)) {
        this.#dequeue();
        this.#unstore(o, false);
        this.#drops.dropped(this, o.msg, 'expired');
        continue;
      }
      if (o.qos > 0 && this.inflight.size >= this.window) break;
      this.#dequeue();
      this.#send(link, o, now, true);
    }
    if (this.queue.length < before) {
      // It moves again: a stalled session that makes progress is a slow one, which publishers wait for.
      this.stalled = false;
      if (this.#underLowWater()) this.release();
    }
    if (this.spilled > 0) this.#refill();
  }

  /**
   * PUBACK (QoS 1) or PUBCOMP (QoS 2) ends a delivery. 'unknown': no delivery has this
   * identifier; 'mismatch': one has, but it does not await this acknowledgement (PUBACK for
   * QoS 2, PUBCOMP for QoS 1 or before PUBREC), which is a protocol error.
   */
  complete(packetId: number, qos: 1 | 2, now: number): AckResult {
    const o = this.inflight.get(packetId);
    if (o === undefined) return 'unknown';
    if (o.qos !== qos || (qos === 2 && !o.released)) return 'mismatch';
    this.lastProgress = now;
    this.#undefer(o);
    this.inflight.delete(packetId);
    const durable = this.durable;
    if (durable !== undefined && o.seq !== 0) {
      durable.acknowledged(this, o);
      o.seq = 0;
    }
    recycle(o);
    this.#freed(now);
    return 'done';
  }

  #undefer(o: Outgoing): void {
    if (!o.deferred) return;
    o.deferred = false;
    this.#deferred--;
  }

  /** A slot of the window is free: a deferred resend goes first, then the queue. */
  #freed(now: number): void {
    if (this.#deferred > 0 && this.link !== undefined) this.#resendDeferred(this.link, now);
    if (this.queue.length > 0 || this.spilled > 0) this.pump(now);
  }

  /**
   * PUBREC: the QoS 2 delivery moves to its release step. A failure reason code (0x80 or above)
   * ends it: no PUBREL follows. 'mismatch': the identifier belongs to a QoS 1 delivery.
   */
  received(packetId: number, failed: boolean, now: number): AckResult {
    const o = this.inflight.get(packetId);
    if (o === undefined) return 'unknown';
    if (o.qos !== 2) return 'mismatch';
    this.lastProgress = now;
    // The client may acknowledge what it got before the reconnect, ahead of our resend.
    this.#undefer(o);
    if (failed) {
      this.inflight.delete(packetId);
      this.#unstore(o, true);
      this.#freed(now);
      return 'done';
    }
    // A repeated PUBREC (after a resent PUBREL) changes nothing.
    if (!o.released && o.seq !== 0) this.durable?.released(this, o);
    o.released = true;
    o.sentAt = now;
    return 'done';
  }

  /** On reconnect with a resumed session: resend unacknowledged PUBLISH with DUP and PUBREL, in order [MQTT-4.4.0-1]. */
  resend(now: number): void {
    const link = this.link;
    if (link === undefined) return;
    if (this.#inflight !== undefined) {
      // [MQTT-3.3.4-9]: the new connection's Receive Maximum bounds what is resent at once; the
      // rest waits (keeping its packet identifier) until acknowledgements free slots.
      let sent = 0;
      for (const o of this.#inflight.values()) {
        if (sent < this.window) {
          this.#undefer(o);
          if (this.#resendOne(link, o, now)) sent++;
        } else if (!o.deferred) {
          o.deferred = true;
          this.#deferred++;
        }
      }
    }
    if (this.queue.length > 0 || this.spilled > 0) this.pump(now);
  }

  #resendDeferred(link: SessionLink, now: number): void {
    for (const o of this.inflight.values()) {
      if (!o.deferred) continue;
      this.#undefer(o);
      if (this.#resendOne(link, o, now)) return;
    }
  }

  /**
   * Resends the inflight entries sent at or before `before` (3.1.1 retry timer) and returns the
   * earliest send time of those still awaiting acknowledgement (the resent ones included), or
   * undefined when none is: the timer's next deadline is that time plus the retry interval.
   */
  resendOlderThan(before: number, now: number): number | undefined {
    const link = this.link;
    if (link === undefined || this.#inflight === undefined) return undefined;
    let oldest: number | undefined;
    for (const o of this.#inflight.values()) {
      if (o.deferred) continue;
      if (o.sentAt <= before && !this.#resendOne(link, o, now)) continue;
      if (oldest === undefined || o.sentAt < oldest) oldest = o.sentAt;
    }
    return oldest;
  }

  /**
   * Resends one entry with DUP (or its PUBREL). A PUBLISH the client can no longer take (larger
   * than its new Maximum Packet Size) is discarded as if sent [MQTT-3.1.2-25], freeing its slot.
   */
  #resendOne(link: SessionLink, o: Outgoing, now: number): boolean {
    o.sentAt = now;
    if (o.released) {
      link.sendPubrel(o.packetId);
      return true;
    }
    if (link.sendPublish(now, o.msg, o.qos, o.retain, o.subIds, o.packetId, true)) return true;
    this.inflight.delete(o.packetId);
    this.#unstore(o, true);
    this.#drops.dropped(this, o.msg, 'too-large');
    return false;
  }

  /**
   * Takes back the QoS 1/2 deliveries a shared group gave this session and that the client has
   * not acknowledged (released QoS 2 stays: the client has it) and that `movable` accepts, so
   * the group can give them to another member.
   */
  withdrawShared(movable: (o: Outgoing) => boolean): Outgoing[] {
    if (this.#inflight === undefined && this.queue.length === 0) return [];
    const match = (o: Outgoing): boolean => o.group !== undefined && !o.released && movable(o);
    const out: Outgoing[] = [];
    for (const o of this.inflight.values()) {
      if (!match(o)) continue;
      this.inflight.delete(o.packetId);
      if (o.deferred) this.#deferred--;
      this.#unstore(o, true);
      out.push(o);
    }
    for (const o of this.queue.removeAll(match)) {
      this.#queuedBytes -= sizeOf(o.msg);
      this.#unstore(o, false);
      out.push(o);
    }
    return out;
  }

  /**
   * Delivery state read back from the store (restore.ts), in seq order: queue entries and
   * inflight entries (packet ids kept; `released`: PUBREL was sent). Nothing is written back.
   */
  restoreQueued(o: Outgoing): void {
    if (this.queue === NO_QUEUE) this.queue = new Deque<Outgoing>();
    this.queue.push(o);
    this.#queuedBytes += sizeOf(o.msg);
    if (o.seq > this.#st.seq) this.#st.seq = o.seq;
  }

  /** A queue entry read back on start that does not fit the queue's bounds: it stays in the store only. */
  restoreSpilled(o: Outgoing): void {
    if (this.#st.spilled === 0) this.#st.spillAfter = o.seq - 1;
    this.#st.spilled++;
    this.#st.spilledBytes += sizeOf(o.msg);
    if (o.seq > this.#st.seq) this.#st.seq = o.seq;
  }

  /** `count` queue entries (seq `firstSeq`..`lastSeq`, `bytes` in all) that stay in the store only, after what is queued and spilled. */
  restoreSpilledRun(count: number, bytes: number, firstSeq: number, lastSeq: number): void {
    if (this.#st.spilled === 0) this.#st.spillAfter = firstSeq - 1;
    this.#st.spilled += count;
    this.#st.spilledBytes += bytes;
    if (lastSeq > this.#st.seq) this.#st.seq = lastSeq;
  }

  /** The store no longer holds this session's deliveries (it is not persistent any more): nothing is spilled. */
  forgetSpilled(): void {
    const st = this.#store;
    if (st === undefined) return;
    st.spilled = 0;
    st.spilledBytes = 0;
  }

  /** Whether a queue entry of `bytes` read back on start still fits the queue's bounds. */
  fitsQueue(bytes: number): boolean {
    const l = this.limits;
    return this.spilled === 0 && this.queue.length < l.maxQueued && (l.maxQueuedBytes === 0 || this.#queuedBytes + bytes <= l.maxQueuedBytes);
  }

  restoreInflight(o: Outgoing): void {
    this.inflight.set(o.packetId, o);
    if (o.seq > this.#st.seq) this.#st.seq = o.seq;
    if (o.packetId >= this.#nextId) this.#nextId = o.packetId === 65535 ? 1 : o.packetId + 1;
  }

  restoreQos2(packetId: number): void {
    (this.#inboundQos2 ??= new RotatingSet()).add(packetId);
  }

  /** Every delivery that the store holds for this session (seq set), queue and inflight. */
  *stored(): IterableIterator<Outgoing> {
    if (this.#inflight !== undefined) for (const o of this.#inflight.values()) if (o.seq !== 0) yield o;
    for (const o of this.queue) if (o.seq !== 0) yield o;
  }

  /** Drops all delivery state (clean start, session end). Subscriptions are removed by the caller. */
  reset(): void {
    this.#inflight = undefined;
    this.#deferred = 0;
    this.queue = NO_QUEUE;
    this.#queuedBytes = 0;
    if (this.#store !== undefined) {
      this.#store.spilled = 0;
      this.#store.spilledBytes = 0;
    }
    this.#inboundQos2 = undefined;
    this.release();
  }
}

const isQos0 = (o: Outgoing): boolean => o.qos === 0;
