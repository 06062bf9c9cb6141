/**
 * The broker's side of the store seam: durable changes become `StoreOp` records, collected and
 * written in batches (the store may join the batches of one turn into one transaction), and what
 * a store holds is turned back into sessions, subscriptions, retained messages and deadlines on
 * start. Only persistent sessions (Session Expiry Interval above 0) are stored.
 *
 * What is durable today: sessions (expiry, pending will, the will of a connected client), their
 * subscriptions (SUBACK is sent once they are committed) and retained messages (a QoS 1/2 PUBLISH
 * that sets one is acknowledged once it is committed). Times are stored as wall-clock
 * milliseconds and converted to and from the broker's clock.
 */
import { randomBytes } from 'node:crypto';
import type { WillMessage } from '../protocol/index.js';
import type { Store, StoredMessage, StoredState, StoredSubscription, StoreOp } from '../persistence/types.js';
import type { Clock } from '../session/clock.js';
import type { Message } from './message.js';
import type { Session, SubRecord } from './session.js';

export class Durability {
  readonly store: Store;
  readonly #clock: Clock;
  readonly #wall: () => number;
  #ops: StoreOp[] = [];
  #scheduled = false;
  /** Message ids: a boot prefix and a counter, unique across restarts. */
  readonly #prefix = randomBytes(6).toString('base64url');
  #next = 0;
  readonly #ids = new WeakMap<Message, string>();
  /** Client ids whose session is in the store. */
  readonly #stored = new Set<string>();
  /** The write in progress, if any: commits wait for it so that writes keep their order. */
  #last: Promise<void> = Promise.resolve();
  /** Called with an error when a write fails (the broker logs it). */
  onError: ((err: unknown) => void) | undefined;

  constructor(store: Store, clock: Clock, wall: () => number) {
    this.store = store;
    this.#clock = clock;
    this.#wall = wall;
  }

  /** Clock time → wall-clock ms. */
  toWall(t: number): number {
    return Math.round(this.#wall() + (t - this.#clock.now()));
  }

  /** Wall-clock ms → clock time. */
  fromWall(w: number): number {
    return this.#clock.now() + (w - this.#wall());
  }

  get pending(): boolean {
    return this.#ops.length > 0;
  }

  #add(op: StoreOp): void {
    this.#ops.push(op);
    if (this.#scheduled) return;
    this.#scheduled = true;
    // Writes nobody waits for still go out at the end of the turn.
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#ops.length > 0) void this.commit().catch(() => undefined);
    });
  }

  /** Writes everything collected so far; resolves once it is durable, rejects when the store failed. */
  commit(): Promise<void> {
    const ops = this.#ops;
    if (ops.length === 0) return this.#last;
    this.#ops = [];
    const write = this.#last.then(() => this.store.write(ops), () => this.store.write(ops));
    this.#last = write.catch((err: unknown) => {
      this.onError?.(err);
    });
    return write;
  }

  #message(msg: Message): string {
    let id = this.#ids.get(msg);
    if (id !== undefined) return id;
    id = `${this.#prefix}.${(this.#next++).toString(36)}`;
    this.#ids.set(msg, id);
    const stored: StoredMessage = {
      id, topic: msg.topic, payload: msg.payload, qos: msg.qos, retain: msg.retain, properties: msg.properties,
      expiresAt: msg.expiresAt === undefined ? undefined : this.toWall(msg.expiresAt), senderId: msg.senderId,
    };
    this.#add({ op: 'message', message: stored });
    return id;
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

  /** A session ended (or is no longer persistent): its stored record, if any, goes. */
  sessionEnded(clientId: string): void {
    if (!this.#stored.delete(clientId)) return;
    this.#add({ op: 'dropSession', clientId });
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

  unretained(topic: string): void {
    this.#add({ op: 'unretain', topic });
  }

  /** Remembers the id of a message read back from the store (so it is not written again). */
  known(msg: Message, id: string): void {
    this.#ids.set(msg, id);
  }

  /** A session read back from the store. */
  knownSession(clientId: string): void {
    this.#stored.add(clientId);
  }

  open(): Promise<StoredState> {
    return this.store.open();
  }

  async close(): Promise<void> {
    await this.commit().catch(() => undefined);
    await this.store.close();
  }
}
