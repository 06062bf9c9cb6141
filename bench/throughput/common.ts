/** Types, the latency histogram and small helpers shared by the runner and the load generators. */
import { performance } from 'node:perf_hooks';

export type ScenarioName = 'fanout' | 'fanin' | 'p2p' | 'storm';
export const SCENARIOS: readonly ScenarioName[] = ['fanout', 'fanin', 'p2p', 'storm'];

/** Result of one throughput run, as reported by the generator. */
export interface FlowResult {
  scenario: ScenarioName;
  qos: 0 | 1;
  publishers: number;
  subscribers: number;
  /** Messages written by the publishers. */
  published: number;
  /** Messages acknowledged by the broker (QoS 1; equals `published` at QoS 0). */
  acked: number;
  /** PUBLISH packets received by the subscribers. */
  delivered: number;
  /** Deliveries owed (acked × subscribers per message) and not received. */
  lost: number;
  /** Seconds from the start of publishing to the last delivery. */
  activeSeconds: number;
  deliveredPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Generator CPU time (user + system) over the measured window, in seconds. */
  generatorCpuSec: number;
  /** Generator CPU as a share of the window: near 1.0 means the generator was saturated. */
  generatorCpuShare: number;
  /** Client connections that failed or were closed by the broker during the run. */
  clientErrors: number;
  /** Times publishing resumed after 500 ms without any delivery (QoS 0 drops). */
  stalls: number;
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

  recordMs(ms: number): void {
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
