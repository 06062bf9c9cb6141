/**
 * The broker's counters: what `BrokerCore.metrics()` reports and `$SYS` publishes. Invariants:
 * - on the packet path a count is a plain increment of a preallocated field or typed-array slot
 *   (indexed by packet type, drop reason or hook kind): no Map lookup, no closure, no allocation;
 * - everything derived (sums, gauges, per-listener counts) is computed when someone reads a
 *   snapshot (`snapshot` in broker.ts), never per packet;
 * - latencies are histograms over fixed buckets (seconds), so recording one is a short scan of
 *   a constant array and two additions.
 */
import type { DropReason } from './events.js';

/** Slots of the per-packet-type arrays: the 4-bit type of the fixed header. */
export const PACKET_TYPES = 16;

/** Every drop reason, in the order of `BrokerCounters.dropped`. */
export const DROP_REASONS: readonly DropReason[] = ['queue-full', 'expired', 'too-large', 'no-receiver', 'slow-subscriber'];
const DROP_INDEX: Readonly<Record<DropReason, number>> = {
  'queue-full': 0, expired: 1, 'too-large': 2, 'no-receiver': 3, 'slow-subscriber': 4,
};

/**
 * User code whose latency is measured: the four hooks ('delivery' is authorizeDelivery together
 * with the delivery interceptors, once per receiver), the publish and will interceptors (each
 * interceptor call) and the steps of enhanced authentication mechanisms.
 */
export const HOOK_KINDS = ['authenticate', 'authorizePublish', 'authorizeSubscribe', 'delivery', 'publishInterceptor', 'willInterceptor', 'authMechanism'] as const;
export type HookKind = (typeof HOOK_KINDS)[number];

/** Upper bounds (seconds) of the latency buckets: 10 µs to 5 s; a last bucket takes the rest. */
export const LATENCY_BOUNDS: readonly number[] = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** A histogram over LATENCY_BOUNDS: `counts[i]` holds the observations in bucket i (not cumulative). */
export class LatencyHistogram {
  readonly counts = new Float64Array(LATENCY_BOUNDS.length + 1);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    const bounds = LATENCY_BOUNDS;
    let i = 0;
    while (i < bounds.length && seconds > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += seconds;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    return { bounds: LATENCY_BOUNDS, counts: Array.from(this.counts), sum: this.sum, count: this.count };
  }
}

export interface HistogramSnapshot {
  /** Upper bounds in seconds; `counts` has one more entry, for observations above the last. */
  bounds: readonly number[];
  /** Observations per bucket (not cumulative). */
  counts: number[];
  /** Sum of the observations, in seconds. */
  sum: number;
  count: number;
}

/** Accepted CONNECTs of one listener and protocol level (a per-connection count, not per packet). */
interface ConnectCount {
  listener: string;
  protocolVersion: number;
  total: number;
}

export class BrokerCounters {
  /** Packets received and their bytes (whole packets, fixed header included), by packet type. */
  readonly packetsIn = new Float64Array(PACKET_TYPES);
  readonly bytesIn = new Float64Array(PACKET_TYPES);
  /** Packets handed to connections for writing and their bytes, by packet type. */
  readonly packetsOut = new Float64Array(PACKET_TYPES);
  readonly bytesOut = new Float64Array(PACKET_TYPES);
  /** Deliveries dropped, by reason (DROP_REASONS order). */
  readonly dropped = new Float64Array(DROP_REASONS.length);
  /** CONNECTs accepted (CONNACK 0), CONNECTs refused (a CONNACK failure code or a close before CONNACK). */
  connectsAccepted = 0;
  /** Sessions ended by their expiry interval. */
  sessionsExpired = 0;
  /** Most sessions (connected or not) seen at once, sampled when a snapshot or $SYS update is taken. */
  sessionsMaximum = 0;
  readonly #connects = new Map<string, ConnectCount>();
  /** Latency of user code, by HOOK_KINDS. */
  readonly hooks: Readonly<Record<HookKind, LatencyHistogram>>;
  /** Store batches committed, records in them, failed writes. */
  storeBatches = 0;
  storeOps = 0;
  storeErrors = 0;
  /** QoS 1 acknowledgements sent before their commit: every stored receiver had acknowledged the message (durability.ts). */
  storeEarlyAcks = 0;
  /** Ops left out of the store: messages delivered and acknowledged before their batch was written, with their deliveries. */
  storeUnwritten = 0;
  /** From the first record of a batch to its commit: how long a durable change waits. */
  readonly storeCommit = new LatencyHistogram();
  /** The store's write call alone, per batch. */
  readonly storeWrite = new LatencyHistogram();

  constructor() {
    const hooks = {} as Record<HookKind, LatencyHistogram>;
    for (const kind of HOOK_KINDS) hooks[kind] = new LatencyHistogram();
    this.hooks = hooks;
  }

  drop(reason: DropReason): void {
    const i = DROP_INDEX[reason];
    this.dropped[i] = (this.dropped[i] as number) + 1;
  }

  /** A CONNECT was accepted on `listener` (undefined, counted as 'none': a stream handed over without a listener). */
  connected(listener: string | undefined, protocolVersion: number): void {
    this.connectsAccepted++;
    const name = listener ?? 'none';
    const key = `${name}\u0000${protocolVersion}`;
    const entry = this.#connects.get(key);
    if (entry !== undefined) entry.total++;
    else this.#connects.set(key, { listener: name, protocolVersion, total: 1 });
  }

  /** Accepted CONNECTs per listener and protocol level, since start. */
  connects(): { listener: string; protocolVersion: number; total: number }[] {
    return [...this.#connects.values()].map((c) => ({ ...c }));
  }
}
