/**
 * Connection and traffic limits, owned by BrokerState: connected clients per listener and in
 * total, new connections per second per listener and per source address, flapping client ids,
 * and the inbound message / byte budget of each client. Counters and windows live here, not on
 * the connections; every table is bounded. Time comes from the broker's clock: one-second
 * windows start at the first event counted in them.
 */
import { type PublishPacket, ReasonCode } from '../protocol/index.js';
import type { Clock } from '../session/clock.js';
import type { TimerWheel } from '../session/timer-wheel.js';
import type { ListenerInfo } from '../transport/types.js';
import type { Connection } from './connection.js';
import type { ResolvedOptions } from './options.js';

/** Source addresses tracked per listener for maxConnectionRatePerSource; the oldest window goes first beyond it. */
export const MAX_SOURCES = 10_000;
/** Client ids tracked for flapping detection; the oldest entry goes first beyond it. */
export const MAX_FLAP_IDS = 10_000;

const WINDOW_MS = 1000;

/** Events counted in one window that started at `start`. */
class Window {
  constructor(public start: number, public count: number) {}
}

/** Connects of one client id in the flap window, and the end of its ban (0: not banned). */
class FlapRecord {
  constructor(public start: number, public count: number, public bannedUntil: number) {}
}

/**
 * A client's inbound budget in its current one-second window. It is also the timer wheel entry
 * that ends a throttle: when it fires the window is over and the client is read again.
 */
export class InboundBudget {
  start = 0;
  messages = 0;
  bytes = 0;
  constructor(readonly conn: Connection) {}
}

/** Whether the window of `key` in `table` has room for one more event (`limit` per second). */
function rateAllows(table: Map<string, Window>, key: string, limit: number, now: number): boolean {
  const w = table.get(key);
  if (w === undefined) return true;
  return now - w.start >= WINDOW_MS || w.count < limit;
}

/** Counts one event at `now` in the window of `key`; the table holds at most `max` keys. */
function rateCount(table: Map<string, Window>, key: string, now: number, max: number): void {
  const w = table.get(key);
  if (w !== undefined && now - w.start < WINDOW_MS) {
    w.count++;
    return;
  }
  // A new window goes to the end of the table: the table is in order of window start, so the
  // windows that are over are at its front, and the oldest is the first to go when it is full.
  if (w !== undefined) table.delete(key);
  evictOldest(table, max, (old) => now - old.start >= WINDOW_MS);
  table.set(key, new Window(now, 1));
}

/** Makes room for one entry: the oldest goes, and with it every stale entry at the front (each is removed once: amortised O(1)). */
function evictOldest<V>(table: Map<string, V>, max: number, stale: (v: V) => boolean): void {
  if (table.size < max) return;
  for (const [k, v] of table) {
    if (table.size < max && !stale(v)) break;
    table.delete(k);
  }
}

export class Limits {
  readonly #options: ResolvedOptions;
  readonly #clock: Clock;
  readonly #wheel: TimerWheel<unknown>;
  /** Connected (CONNECT accepted) clients by listener name. */
  readonly #perListener = new Map<string, number>();
  /** Connection rate windows by listener name, and per source address by listener name. */
  readonly #listenerRate = new Map<string, Window>();
  readonly #sourceRate = new Map<string, Map<string, Window>>();
  readonly #flaps = new Map<string, FlapRecord>();
  readonly #budgets = new Map<Connection, InboundBudget>();
  /** True when maxInboundMessageRate or maxInboundByteRate is set: only then is a PUBLISH counted. */
  readonly inbound: boolean;
  /** Set by the broker: reports a ban (the clientBanned event and a warning). */
  onBanned: ((clientId: string, remoteAddress: string | undefined, until: number) => void) | undefined;

  constructor(options: ResolvedOptions, clock: Clock, wheel: TimerWheel<unknown>) {
    this.#options = options;
    this.#clock = clock;
    this.#wheel = wheel;
    this.inbound = options.maxInboundMessageRate > 0 || options.maxInboundByteRate > 0;
  }

  // ---- connected clients --------------------------------------------------------------------

  /**
   * 0 when `c` may become connected, else 0x97 Quota exceeded: the broker (maxConnections) or its
   * listener (limits.maxConnections) has as many connected clients as allowed. `old` is the
   * connection `c` takes over (same client id): it leaves as `c` comes, so it is not counted.
   */
  connectionQuota(c: Connection, connected: number, old: Connection | undefined): number {
    const max = this.#options.maxConnections;
    if (max > 0 && connected - (old === undefined ? 0 : 1) >= max) return ReasonCode.QuotaExceeded;
    const listener = c.meta.listener;
    const perListener = listener?.limits?.maxConnections ?? 0;
    if (listener !== undefined && perListener > 0) {
      const same = old !== undefined && old.meta.listener?.name === listener.name ? 1 : 0;
      if ((this.#perListener.get(listener.name) ?? 0) - same >= perListener) return ReasonCode.QuotaExceeded;
    }
    return ReasonCode.Success;
  }

  /** `c` became connected (it is in BrokerState.connections). */
  connected(c: Connection): void {
    const name = c.meta.listener?.name;
    if (name !== undefined) this.#perListener.set(name, (this.#perListener.get(name) ?? 0) + 1);
  }

  /** `c` left BrokerState.connections. */
  disconnected(c: Connection): void {
    const name = c.meta.listener?.name;
    if (name === undefined) return;
    const n = (this.#perListener.get(name) ?? 1) - 1;
    if (n > 0) this.#perListener.set(name, n);
    else this.#perListener.delete(name);
  }

  /** Connected clients of the listener named `name`. */
  connectedOn(name: string): number {
    return this.#perListener.get(name) ?? 0;
  }

  // ---- connection rate ----------------------------------------------------------------------

  /**
   * At CONNECT: 0 when the listener's maxConnectionRate and maxConnectionRatePerSource allow one
   * more new connection in this second (it is then counted), else 0x9F Connection rate exceeded
   * (a refused CONNECT is not counted).
   */
  connectRate(c: Connection): number {
    const listener: ListenerInfo | undefined = c.meta.listener;
    const limits = listener?.limits;
    if (listener === undefined || limits === undefined) return ReasonCode.Success;
    const { maxConnectionRate: perListener, maxConnectionRatePerSource: perSource } = limits;
    if (perListener === 0 && perSource === 0) return ReasonCode.Success;
    const now = this.#clock.now();
    const source = c.meta.remoteAddress;
    let sources: Map<string, Window> | undefined;
    if (perSource > 0 && source !== undefined) {
      sources = this.#sourceRate.get(listener.name);
      if (sources === undefined) this.#sourceRate.set(listener.name, (sources = new Map()));
      if (!rateAllows(sources, source, perSource, now)) return ReasonCode.ConnectionRateExceeded;
    }
    if (perListener > 0 && !rateAllows(this.#listenerRate, listener.name, perListener, now)) return ReasonCode.ConnectionRateExceeded;
    if (sources !== undefined) rateCount(sources, source as string, now, MAX_SOURCES);
    if (perListener > 0) rateCount(this.#listenerRate, listener.name, now, Infinity);
    return ReasonCode.Success;
  }

  /** Source addresses tracked for the listener named `name` (at most MAX_SOURCES). */
  sourcesTracked(name: string): number {
    return this.#sourceRate.get(name)?.size ?? 0;
  }

  // ---- flapping -----------------------------------------------------------------------------

  /**
   * At an accepted CONNECT of `clientId`: false while the id is banned, or when this connect is
   * more than flapThreshold in flapWindow seconds (the ban starts now, for flapBanTime seconds,
   * and is reported). Off when flapThreshold is 0.
   */
  mayConnect(clientId: string, remoteAddress: string | undefined): boolean {
    const { flapThreshold: threshold, flapWindow, flapBanTime } = this.#options;
    if (threshold === 0) return true;
    const now = this.#clock.now();
    const table = this.#flaps;
    const r = table.get(clientId);
    if (r !== undefined && r.bannedUntil > now) return false;
    if (r !== undefined && now - r.start < flapWindow * 1000) {
      if (++r.count <= threshold) return true;
      // Banned: the record moves to the end of the table (the newest), so the ban outlives the
      // eviction of older records for as long as possible.
      r.bannedUntil = now + flapBanTime * 1000;
      r.start = now;
      r.count = 0;
      table.delete(clientId);
      table.set(clientId, r);
      this.onBanned?.(clientId, remoteAddress, r.bannedUntil);
      return false;
    }
    if (r !== undefined) table.delete(clientId);
    evictOldest(table, MAX_FLAP_IDS, (old) => old.bannedUntil <= now && now - old.start >= flapWindow * 1000);
    table.set(clientId, new FlapRecord(now, 1, 0));
    return true;
  }

  /** Client ids tracked for flapping (at most MAX_FLAP_IDS). */
  get flapsTracked(): number {
    return this.#flaps.size;
  }

  // ---- inbound rate -------------------------------------------------------------------------

  /**
   * Whether `p` from `c` fits in the client's budget for the current second (it is then counted).
   * When it does not, the client is throttled: its PUBLISH wait, its stream is not read, and at
   * the window's end (on the timer wheel) it is read again. The first PUBLISH of a window always
   * fits, however large. Only called when `inbound` is true.
   */
  admit(c: Connection, p: PublishPacket): boolean {
    let b = this.#budgets.get(c);
    if (b === undefined) this.#budgets.set(c, (b = new InboundBudget(c)));
    const now = this.#clock.now();
    if (now - b.start >= WINDOW_MS) {
      b.start = now;
      b.messages = 0;
      b.bytes = 0;
    }
    const { maxInboundMessageRate: maxMessages, maxInboundByteRate: maxBytes } = this.#options;
    const bytes = p.payload.length + p.topic.length;
    if (b.messages > 0 && ((maxMessages > 0 && b.messages >= maxMessages) || (maxBytes > 0 && b.bytes + bytes > maxBytes))) {
      c.throttle();
      this.#wheel.schedule(b, b.start + WINDOW_MS);
      return false;
    }
    b.messages++;
    b.bytes += bytes;
    return true;
  }

  /** The wheel entry of a throttled client fired: at the end of its window it is read again. */
  release(b: InboundBudget, now: number): void {
    const c = b.conn;
    if (c.phase === 'closed') return;
    if (now - b.start < WINDOW_MS) {
      this.#wheel.schedule(b, b.start + WINDOW_MS);
      return;
    }
    c.unthrottle(now);
  }

  /** The connection ended: its budget goes. */
  closed(c: Connection): void {
    if (this.inbound) this.#budgets.delete(c);
  }
}
