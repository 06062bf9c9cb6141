/** Types, the latency histogram and small helpers shared by the runner and the load generators. */
import { performance } from 'node:perf_hooks';

export type FlowScenarioName =
  | 'p2p' | 'fanout' | 'fanin' | 'rate' | 'headline'
  | 'p2p5' | 'p2p5-expiry' | 'fanout5' | 'fanout5-expiry'
  | 'p2p-tls' | 'p2p-ws' | 'p2p-wss' | 'fanout-tls' | 'fanout-ws' | 'fanout-wss'
  | 'p2p-durable' | 'fanout-durable';
export type ScenarioName = FlowScenarioName | 'storm';
export const SCENARIOS: readonly ScenarioName[] = [
  'p2p', 'p2p-tls', 'p2p-ws', 'p2p-wss', 'fanout', 'fanout-tls', 'fanout-ws', 'fanout-wss',
  'fanin', 'rate', 'headline', 'p2p5', 'p2p5-expiry', 'fanout5', 'fanout5-expiry', 'p2p-durable', 'fanout-durable', 'storm',
];
/** How the clients reach the broker: plain TCP, TLS, WebSocket (ws://…/mqtt) or WebSocket over TLS. */
export type Transport = 'tcp' | 'tls' | 'ws' | 'wss';
/** Names accepted in BENCH_SCENARIOS that stand for several scenarios. */
export const SCENARIO_GROUPS: Readonly<Record<string, readonly ScenarioName[]>> = {
  v5: ['p2p5', 'p2p5-expiry', 'fanout5', 'fanout5-expiry'],
  /** The 5.0 scenarios with their 3.1.1 counterparts. */
  v5cmp: ['p2p', 'fanout', 'p2p5', 'p2p5-expiry', 'fanout5', 'fanout5-expiry'],
  /** Point-to-point and fan-out over every transport, TCP first. */
  transports: ['p2p', 'p2p-tls', 'p2p-ws', 'p2p-wss', 'fanout', 'fanout-tls', 'fanout-ws', 'fanout-wss'],
  flows: ['p2p', 'fanout', 'fanin', 'rate', 'headline', 'p2p5', 'p2p5-expiry', 'fanout5', 'fanout5-expiry'],
  /** QoS 1 point-to-point and fan-out to subscribers with persistent sessions (Clean Session 0). */
  durable: ['p2p-durable', 'fanout-durable'],
};

/** Scenarios whose subscribers keep persistent sessions: the brokers run with their durable stores. */
export function isDurable(scenario: ScenarioName): boolean {
  return scenario.endsWith('-durable');
}
export type BenchQoS = 0 | 1 | 2;

/** Result of one throughput run, as reported by the generator. */
export interface FlowResult {
  scenario: FlowScenarioName;
  qos: BenchQoS;
  /** MQTT protocol level of every client: 4 (3.1.1) or 5 (5.0). */
  protocol: 4 | 5;
  publishers: number;
  subscribers: number;
  /** QoS 1/2: most unacknowledged messages per publisher. */
  window: number;
  /** Messages per second per publisher; 0 = as fast as possible. */
  ratePerPublisher: number;
  /** Messages written by the publishers. */
  published: number;
  /**
   * Messages the broker acknowledged with a success code (QoS 1: PUBACK, QoS 2: PUBREC);
   * equals `published` at QoS 0.
   */
  acked: number;
  /** Acknowledgements with a failure reason code (5.0, code >= 0x80): not counted as acked. */
  refused: number;
  /** Deliveries owed for the acknowledged (QoS 0: written) messages: one per matching subscriber. */
  expected: number;
  /** PUBLISH packets received by the subscribers. */
  delivered: number;
  /** Deliveries of a (publisher, sequence number) the subscriber had already received. */
  duplicates: number;
  /** Expected deliveries that never arrived: expected − (delivered − duplicates), at least 0. */
  lost: number;
  /** Deliveries whose topic (resolved through the topic alias at 5.0) was not the subscribed one. */
  topicErrors: number;
  /** 5.0: deliveries that carried only a topic alias (the topic resolved from the client's alias map). */
  aliasOnly: number;
  /** Seconds from the start of publishing to the last delivery. */
  activeSeconds: number;
  deliveredPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  /** Seconds at the start of publishing whose messages the latency figures above leave out (warm-up). */
  warmupSeconds: number;
  /** p99 and maximum over every message, warm-up included. */
  latencyP99AllMs: number;
  latencyMaxAllMs: number;
  /** Generator CPU time (user + system) over the measured window, in seconds. */
  generatorCpuSec: number;
  /** Generator CPU as a share of the window: near 1.0 means the generator was saturated. */
  generatorCpuShare: number;
  /** Client connections that failed or were closed by the broker during the run. */
  clientErrors: number;
  /** Times publishing resumed after 2 s without any delivery (owed deliveries written off). */
  stalls: number;
  /**
   * How the wait after publishing ended: everything arrived, nothing moved for 2 s (what is
   * missing then is lost), or the 60 s bound (what is missing may still have been on its way).
   */
  drainEnd: 'complete' | 'idle' | 'timeout';
  drainSeconds: number;
  /** QoS 1/2 exchanges still open when the run ended (no PUBACK / PUBCOMP, or PUBREC never came). */
  unfinished: number;
}

/** Result of one connection-storm worker. */
export interface StormWorkerResult {
  connected: number;
  failed: number;
  /** Absolute times (ms since the epoch, sub-ms precision) of the first connect and last CONNACK. */
  startedAt: number;
  finishedAt: number;
  cpuSec: number;
}

/** Messages between the runner (parent) and a generator process (child). */
export type ChildMessage =
  | { kind: 'ready' }
  | { kind: 'result'; flow: FlowResult }
  | { kind: 'storm'; storm: StormWorkerResult }
  | { kind: 'error'; message: string };
export type ParentMessage = { kind: 'go' } | { kind: 'close' };

/** Milliseconds on a clock shared by every process of the machine. */
export function absNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Latency histogram in microseconds: exact below 1 ms, then buckets 2% wide up to ~100 s.
 * Constant memory, one array increment per sample.
 */
export class Histogram {
  static readonly #linear = 1000;
  static readonly #step = Math.log(1.02);
  readonly #counts = new Float64Array(Histogram.#linear + 600);
  count = 0;
  maxMs = Number.NaN;

  recordMs(ms: number): void {
    if (!Number.isFinite(ms)) return;
    if (!(ms <= this.maxMs)) this.maxMs = ms;
    const us = ms * 1000;
    let idx: number;
    if (us < Histogram.#linear) idx = us < 0 ? 0 : Math.floor(us);
    else idx = Histogram.#linear + Math.floor(Math.log(us / Histogram.#linear) / Histogram.#step);
    if (idx >= this.#counts.length) idx = this.#counts.length - 1;
    this.#counts[idx] = (this.#counts[idx] ?? 0) + 1;
    this.count++;
  }

  /** The q-quantile (0..1) in milliseconds; NaN when empty. */
  quantileMs(q: number): number {
    if (this.count === 0) return Number.NaN;
    const target = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i] ?? 0;
      if (seen >= target) {
        const us = i < Histogram.#linear ? i : Histogram.#linear * Math.exp((i - Histogram.#linear) * Histogram.#step);
        return us / 1000;
      }
    }
    return Number.NaN;
  }
}

/** Sends a message to the parent process; resolves once it has been handed to the channel. */
export function sendToParent(msg: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) {
      process.stdout.write(JSON.stringify(msg) + '\n');
      resolve();
      return;
    }
    process.send(msg, () => resolve());
  });
}

/** Resolves with the next message from the parent of the given kind, or rejects after `timeoutMs`. */
export function waitParent(kind: ParentMessage['kind'], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      reject(new Error(`no '${kind}' from the runner within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (msg: ParentMessage): void => {
      if (msg.kind !== kind) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Seconds of CPU (user + system) since `start`. */
export function cpuSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1e6;
}
