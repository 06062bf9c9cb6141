/**
 * The session registry: the one owner of the broker's sessions and pending wills. Opening,
 * resuming, taking over, detaching, expiring and ending a session, and publishing the wills those
 * steps release, all happen here; other modules read sessions and change them only through
 * `Session` methods. Durable stores hook in at these steps.
 */
import type { WillMessage } from '../protocol/index.js';
import type { TimerWheel } from '../session/timer-wheel.js';
import type { BrokerEmitter, ClientInfo } from './events.js';
import type { Durability } from './durability.js';
import type { BrokerCounters } from './counters.js';
import { type DropSink, Session, type SessionLimits } from './session.js';

/** A will waiting for its Will Delay Interval [MQTT-3.1.3-9]. */
export class PendingWill {
  /** `client`: who set the will (its ACL still applies when the will is published). */
  constructor(readonly clientId: string, readonly will: WillMessage, readonly at: number, readonly client: ClientInfo | undefined) {}
}

/** What the registry needs from the broker around it. */
export interface RegistryHost extends DropSink {
  readonly durability: Durability | undefined;
  readonly events: BrokerEmitter;
  readonly wheel: TimerWheel<unknown>;
  readonly sessionLimits: SessionLimits;
  readonly counters: BrokerCounters;
  /** Takes a session's subscriptions out of the router and hands its shared-group messages on ('ended') or those an online member can take ('lost'). */
  unroute(session: Session, why: 'ended' | 'lost' | 'moved'): void;
  publishWill(clientId: string, will: WillMessage, client: ClientInfo | undefined): void;
}

export class SessionRegistry {
  readonly #host: RegistryHost;
  readonly #sessions = new Map<string, Session>();
  readonly #pendingWills = new Map<string, PendingWill>();

  constructor(host: RegistryHost) {
    this.#host = host;
  }

  get(clientId: string): Session | undefined {
    return this.#sessions.get(clientId);
  }

  get size(): number {
    return this.#sessions.size;
  }

  values(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /** Whether `session` is still the registered session of its client (not ended or replaced). */
  isCurrent(session: Session): boolean {
    return this.#sessions.get(session.clientId) === session;
  }

  pendingWill(clientId: string): PendingWill | undefined {
    return this.#pendingWills.get(clientId);
  }

  /**
   * The session for an accepted CONNECT: resumed unless `clean` [MQTT-3.1.2-4] [MQTT-3.1.2-5], or
   * new. Deadlines that passed since the last timer tick count as passed: an expired session is not
   * resumed, and a will whose delay is over is published before the client comes back.
   */
  open(clientId: string, clean: boolean, now: number): { session: Session; present: boolean } {
    const host = this.#host;
    const pending = this.#pendingWills.get(clientId);
    if (pending !== undefined && now >= pending.at) this.willDue(pending);
    let session = this.#sessions.get(clientId);
    if (session !== undefined && session.link === undefined && session.expiresAt !== undefined && now >= session.expiresAt) {
      this.end(session);
      host.counters.sessionsExpired++;
      host.events.fire('sessionExpired', clientId);
      session = undefined;
    }
    if (session !== undefined && clean) {
      this.end(session);
      session = undefined;
    }
    if (session === undefined) {
      session = new Session(clientId, host.sessionLimits, host);
      this.#sessions.set(clientId, session);
      host.events.fire('sessionCreated', clientId);
      return { session, present: false };
    }
    host.events.fire('sessionResumed', clientId);
    session.expiresAt = undefined;
    // [MQTT-3.1.3-9]: the will is not sent when the session resumes within the will delay.
    this.#pendingWills.delete(clientId);
    return { session, present: true };
  }

  /**
   * A session read back from the store on start: offline, expiring at `expiresAt` (clock time;
   * undefined: never), with a will waiting until `willAt` when one was pending.
   */
  restore(clientId: string, expiryInterval: number, expiresAt: number | undefined, will: WillMessage | undefined, willAt: number | undefined): Session {
    const host = this.#host;
    const session = new Session(clientId, host.sessionLimits, host);
    session.expiryInterval = expiryInterval;
    session.expiresAt = expiresAt;
    session.durable = host.durability;
    this.#sessions.set(clientId, session);
    if (expiresAt !== undefined) host.wheel.schedule(session, expiresAt);
    if (will !== undefined && willAt !== undefined) {
      const pending = new PendingWill(clientId, will, willAt, undefined);
      this.#pendingWills.set(clientId, pending);
      host.wheel.schedule(pending, willAt);
    }
    return session;
  }

  /**
   * The session's connection ended (`will`: its will, unless it was cancelled): the will is
   * published or waits its delay, and the session ends now (expiry 0) or is scheduled to expire.
   */
  detach(session: Session, will: WillMessage | undefined, now: number, client: ClientInfo | undefined): void {
    const host = this.#host;
    // The will is published as its client's: with the client's ACL and identity for authorizePublish.
    if (will !== undefined) this.#scheduleWill(session, will, now, client);
    // A shared-subscription member that goes away hands its unacknowledged messages to the
    // others: all of them if its session ends now (end), else those an online member can take.
    if (session.expiryInterval === 0) this.end(session);
    else host.unroute(session, 'lost');
    if (session.expiryInterval !== 0 && session.expiryInterval !== 0xffffffff) {
      session.expiresAt = now + session.expiryInterval * 1000;
      host.wheel.schedule(session, session.expiresAt);
    }
    if (session.expiryInterval !== 0 && host.durability !== undefined) {
      const pending = this.#pendingWills.get(session.clientId);
      host.durability.sessionDetached(session, pending?.will, pending?.at);
    }
  }

  /** Ends a session: its subscriptions leave the router and a delayed will is published now [MQTT-3.1.3-9]. */
  end(session: Session): void {
    if (this.#sessions.get(session.clientId) === session) this.#sessions.delete(session.clientId);
    this.#host.unroute(session, 'ended');
    session.clearSubscriptions();
    this.#host.durability?.sessionEnded(session);
    session.reset();
    const pending = this.#pendingWills.get(session.clientId);
    if (pending !== undefined) this.willDue(pending);
  }

  /**
   * The session moves to another node of a cluster: it leaves this broker (router, memory)
   * without ending, so nothing of it is dropped from the store, where the other node reads it.
   * A will waiting for its delay goes with the stored record (published now when `publishWill`).
   */
  release(session: Session, publishWill: boolean): void {
    if (this.#sessions.get(session.clientId) === session) this.#sessions.delete(session.clientId);
    this.#host.unroute(session, 'moved');
    session.clearSubscriptions();
    for (const o of session.stored()) o.msg.storeRefs = Math.max(0, o.msg.storeRefs - 1);
    session.durable = undefined;
    session.forgetSpilled();
    session.reset();
    const pending = this.#pendingWills.get(session.clientId);
    if (pending === undefined) return;
    this.#pendingWills.delete(session.clientId);
    if (publishWill) this.#host.publishWill(pending.clientId, pending.will, pending.client);
  }

  /** An offline session's expiry deadline came (timer wheel): ends it when it is due. */
  expireIfDue(session: Session, now: number): void {
    if (session.expiresAt === undefined || now < session.expiresAt) return;
    this.end(session);
    this.#host.counters.sessionsExpired++;
    this.#host.events.fire('sessionExpired', session.clientId);
  }

  /** A pending will's delay is over (or its session ended): it is published, once. */
  willDue(pending: PendingWill): void {
    if (this.#pendingWills.get(pending.clientId) !== pending) return;
    this.#pendingWills.delete(pending.clientId);
    this.#host.publishWill(pending.clientId, pending.will, pending.client);
    // A stored offline session no longer has a will waiting.
    const session = this.#sessions.get(pending.clientId);
    if (session !== undefined && session.link === undefined) this.#host.durability?.sessionDetached(session, undefined, undefined);
  }

  #scheduleWill(session: Session, will: WillMessage, now: number, client: ClientInfo | undefined): void {
    const delay = will.properties?.willDelayInterval ?? 0;
    if (delay === 0 || session.expiryInterval === 0) {
      this.#host.publishWill(session.clientId, will, client);
      return;
    }
    const pending = new PendingWill(session.clientId, will, now + delay * 1000, client);
    this.#pendingWills.set(session.clientId, pending);
    this.#host.wheel.schedule(pending, pending.at);
  }
}
