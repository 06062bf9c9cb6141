/**
 * The one seam for durable state. The broker keeps its working state in memory and sends every
 * durable change to a `Store` as records (`StoreOp`), batched: one `write` is one atomic unit
 * (one transaction), and its promise resolves once the change is durable. On start, `open`
 * returns everything stored, from which the broker rebuilds sessions, queues, inflight state,
 * retained messages and deadlines.
 *
 * Messages are stored once, under a stable id, and referenced by queue entries, inflight entries
 * and retained topics; a store keeps a message while anything references it and deletes it with
 * its last reference. Times are wall-clock milliseconds (Date.now()), never monotonic clock
 * values, so that they mean the same after a restart.
 *
 * The contract suite (test/contract/store.contract.ts) is what every implementation must pass
 * unchanged: memory, SQLite, and the Redis store of the cluster.
 */
import type { Buffer } from 'node:buffer';
import type { Properties, QoS } from '../protocol/index.js';

/** A message as stored: immutable once written. */
export interface StoredMessage {
  /** Stable and unique within the store (the broker assigns it). */
  readonly id: string;
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  /** 5.0 properties to forward (Buffers, e.g. correlationData, must come back as Buffers). */
  readonly properties: Properties | undefined;
  /** Wall-clock ms after which it must not be delivered; undefined: never expires. */
  readonly expiresAt: number | undefined;
  /** The publisher's client id (No Local); undefined for messages of the broker itself. */
  readonly senderId: string | undefined;
}

export interface StoredSubscription {
  readonly topicFilter: string;
  readonly qos: QoS;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
  readonly subscriptionIdentifier: number | undefined;
}

export interface StoredWill {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties: Properties | undefined;
}

/** A session without its subscriptions, queue and inflight state (stored as their own records). */
export interface StoredSession {
  readonly clientId: string;
  /** Session Expiry Interval in seconds; 0xffffffff never expires. */
  readonly expiryInterval: number;
  /** Wall-clock ms at which the (offline) session expires; undefined while connected or never. */
  readonly expiresAt: number | undefined;
  /** The will of the connected client, published if the broker restarts without it coming back. */
  readonly will: StoredWill | undefined;
  /** Wall-clock ms at which a pending will (after a Will Delay Interval) is published; undefined: none pending. */
  readonly willAt: number | undefined;
}

/** A delivery waiting in a session's queue. `seq` orders a session's queue and inflight entries. */
export interface QueueEntry {
  readonly clientId: string;
  readonly seq: number;
  readonly messageId: string;
  /** The QoS and RETAIN flag of this delivery (after downgrade and Retain As Published). */
  readonly qos: QoS;
  readonly retain: boolean;
  readonly subscriptionIds: readonly number[] | undefined;
}

/** A QoS 1/2 delivery sent to the client and not yet completed. */
export interface InflightEntry extends QueueEntry {
  readonly packetId: number;
  /** 'publish': PUBLISH sent, PUBACK / PUBREC awaited; 'pubrel': PUBREC received, PUBREL sent, PUBCOMP awaited. */
  readonly state: 'publish' | 'pubrel';
}

export type StoreOp =
  /** Stores a message (idempotent for the same id). Written in the same batch as its first reference. */
  | { readonly op: 'message'; readonly message: StoredMessage }
  /** Creates or replaces a session record (subscriptions, queue and inflight are kept). */
  | { readonly op: 'session'; readonly session: StoredSession }
  /** Deletes a session with its subscriptions, queue, inflight and inbound QoS 2 state. */
  | { readonly op: 'dropSession'; readonly clientId: string }
  | { readonly op: 'subscribe'; readonly clientId: string; readonly subscription: StoredSubscription }
  | { readonly op: 'unsubscribe'; readonly clientId: string; readonly topicFilter: string }
  | { readonly op: 'enqueue'; readonly entry: QueueEntry }
  | { readonly op: 'dequeue'; readonly clientId: string; readonly seq: number }
  /** Creates or replaces the inflight entry of (clientId, packetId). */
  | { readonly op: 'inflight'; readonly entry: InflightEntry }
  | { readonly op: 'complete'; readonly clientId: string; readonly packetId: number }
  /** The QoS 2 receiver's state: PUBREC sent for this packet id, PUBREL awaited (exactly once across a restart). */
  | { readonly op: 'pubrec'; readonly clientId: string; readonly packetId: number }
  | { readonly op: 'pubrel'; readonly clientId: string; readonly packetId: number }
  /** Makes `messageId` the retained message of `topic` (replacing any). */
  | { readonly op: 'retain'; readonly topic: string; readonly messageId: string }
  | { readonly op: 'unretain'; readonly topic: string };

export interface StoredState {
  sessions: StoredSession[];
  subscriptions: { clientId: string; subscription: StoredSubscription }[];
  /** Queue entries in (clientId, seq) order. */
  queue: QueueEntry[];
  /** Inflight entries in (clientId, seq) order. */
  inflight: InflightEntry[];
  inboundQos2: { clientId: string; packetId: number }[];
  retained: { topic: string; messageId: string }[];
  /** Every message still referenced, by id (with `lazyQueues`: those the listed entries reference). */
  messages: Map<string, StoredMessage>;
  /**
   * With `lazyQueues`, a store may leave queue entries out of `queue` and count them here, per
   * session, instead; the broker reads them back with `readQueue` when it needs them.
   */
  queueSummaries?: QueueSummary[];
}

/** The queue entries of one session that `open({ lazyQueues: true })` left out of `queue`. */
export interface QueueSummary {
  readonly clientId: string;
  readonly count: number;
  /** Approximate bytes of their messages (payload, topic, properties), for the session's spill quota. */
  readonly bytes: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

export interface OpenOptions {
  /**
   * The caller reads queue entries back with `readQueue` as sessions need them, so the store may
   * count them per session (`queueSummaries`) rather than return them all: a restart then reads
   * sessions, subscriptions, inflight state and retained messages, not every queued message.
   */
  readonly lazyQueues?: boolean;
}

/** One session taken over by this node (`Store.loadSession`). */
export interface LoadedSession {
  /** That session alone (no retained messages); empty when the store had no such session. */
  readonly state: StoredState;
  /** Who held it before ("<node>|<token>"); undefined when nobody did. */
  readonly previousOwner: string | undefined;
}

/** How `Store.write` may treat one write. */
export interface WriteOptions {
  /**
   * No reply to a client waits for this write (the broker sets it for a turn whose only changes
   * end deliveries: PUBACK or PUBCOMP received). Losing it in a crash means a delivery is sent
   * again, which QoS 1 allows and QoS 2 answers with PUBREL, so it need not be synced on its own.
   */
  readonly lazy?: boolean;
}

export interface Store {
  /** False for the memory store: nothing survives the process. */
  readonly durable: boolean;
  /** Opens the store (creating or migrating it) and returns everything in it. Called once, first. */
  open(options?: OpenOptions): Promise<StoredState>;
  /**
   * Applies `ops` in order as one atomic unit; resolves once durable (per the store's durability
   * setting). Calls made in the same turn may share one transaction (group commit); each call's
   * promise still covers exactly its own ops. Rejects when the store failed: the broker must then
   * not acknowledge what the batch covered.
   * Writes apply in call order, whether or not the earlier ones have resolved (the broker hands
   * each over at once and never waits for the one before), and their promises settle in call order.
   * `options.lazy` says that no reply waits for this write: the store may make it durable later
   * instead of at once (the SQLite store syncs it with the next write that is not lazy, or after
   * `lazySyncMs`); a store may also treat it like any other write. It still applies in call order.
   */
  write(ops: readonly StoreOp[], options?: WriteOptions): Promise<void>;
  /**
   * Up to `limit` queue entries of `clientId` with a seq above `afterSeq`, in seq order, each with
   * its message; sees every write whose promise resolved. How the broker reads back the deliveries
   * it kept in the store only (an offline session's queue beyond its memory bound).
   */
  readQueue(clientId: string, afterSeq: number, limit: number): Promise<{ entry: QueueEntry; message: StoredMessage }[]>;
  /**
   * Optional: starts storing what the `write` calls of this turn queued now, instead of at the end
   * of the turn (for a caller that joins a turn's changes into one write itself). Promises settle
   * as they would have.
   */
  flush?(): void;
  /** Writes what is pending and closes. */
  close(): Promise<void>;
  /**
   * Optional (stores shared by the nodes of a cluster): makes this node the owner of `clientId`'s
   * session under fencing token `token` and returns what is stored of it. From then on every write
   * for that client applies only while this node is still its owner with that token.
   */
  loadSession?(clientId: string, token: number): Promise<LoadedSession>;
  /** Optional: this node lets `clientId`'s session go; resolves once every write made before is applied. */
  releaseSession?(clientId: string): Promise<void>;
}
