/**
 * The publishing loop. Unpaced runs serve publishers round-robin from one setImmediate-driven
 * pump; a publisher is skipped while its socket is congested (write returned false, until
 * 'drain') or, at QoS 1/2, while its window of unacknowledged messages is full. Publishing
 * pauses while more than `maxOutstanding` deliveries are owed, so broker queues stay bounded.
 * Paced runs (`ratePerPublisher` > 0) write each publisher's due messages from a 5 ms timer.
 */
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type { BenchClient, DeliveryStats } from './clients.js';
import { cpuSince, type FlowResult, sleep } from './common.js';
import { fanoutOf, type FlowSpec } from './scenarios.js';
import { PublishTemplate } from './wire.js';

/** Most messages written per pump turn before yielding to the event loop (reads). */
const PER_TURN = 2048;
/**
 * With nothing delivered for this long while paused, owed deliveries are written off (dropped by
 * the broker). Long enough that a broker starved of CPU on a busy machine is not taken for one
 * that dropped.
 */
const STALL_MS = 2000;
/** After publishing stops: wait while deliveries or acknowledgements still arrive, up to 2 s apart and 60 s in all. */
const DRAIN_IDLE_MS = 2000;
const DRAIN_MAX_MS = 60_000;
const PACE_MS = 5;

/**
 * The latency percentiles leave out the messages sent in the first seconds of publishing (every
 * broker alike): a JIT-compiled broker runs its first deliveries unoptimized, and the connection
 * phase's garbage is still being collected. The whole run's p99 and maximum are reported beside.
 * BENCH_WARMUP_SECONDS (default 2), at most a quarter of the run.
 */
function warmupOf(seconds: number): number {
  const asked = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
  return Math.max(0, Math.min(Number.isFinite(asked) ? asked : 2, seconds / 4));
}

class Publisher {
  writable = true;
  inflight = 0;
  sent = 0;
  /** Subscribers owed per message written (sum of template weights). */
  sentWeight = 0;
  acked = 0;
  refused = 0;
  /** Deliveries owed for the acknowledged messages. */
  expected = 0;
  /** Weight of the message in flight under each packet id. */
  readonly #weightById = new Uint16Array(65536);
  #nextId = 0;
  #cursor = 0;

  constructor(readonly client: BenchClient, readonly templates: PublishTemplate[], readonly window: number) {}

  /** Writes `k` messages in one buffer; returns false when the socket is congested. */
  write(k: number): boolean {
    const ts = this.templates;
    let size = 0;
    for (let i = 0, c = this.#cursor; i < k; i++, c = (c + 1) % ts.length) size += (ts[c] as PublishTemplate).bytes.length;
    const out = Buffer.allocUnsafe(size);
    const now = performance.now();
    const qos = ts[0]?.qos ?? 0;
    let at = 0;
    for (let i = 0; i < k; i++) {
      const t = ts[this.#cursor] as PublishTemplate;
      this.#nextId = this.#nextId === 0xffff ? 1 : this.#nextId + 1;
      at = t.stamp(out, at, this.#nextId, now);
      this.sentWeight += t.weight;
      if (qos > 0) this.#weightById[this.#nextId] = t.weight;
      else this.expected += t.weight;
      this.#cursor = (this.#cursor + 1) % ts.length;
    }
    this.sent += k;
    if (qos > 0) this.inflight += k;
    else this.acked += k;
    return this.client.socket.write(out);
  }

  readonly onAck = (packetId: number, first: boolean, accepted: boolean, done: boolean): void => {
    if (first) {
      if (accepted) { this.acked++; this.expected += this.#weightById[packetId] as number; } else this.refused++;
    }
    if (done) this.inflight--;
  };
}

export class Flow {
  readonly #pubs: Publisher[];
  #cursor = 0;
  #scheduled = false;
  #gated = false;
  #stopped = false;
  #sentWeight = 0;
  #writtenOff = 0;
  #stalls = 0;
  #t0 = 0;

  constructor(private readonly spec: FlowSpec, clients: BenchClient[], private readonly stats: DeliveryStats) {
    let stream = 0;
    this.#pubs = clients.map((c, i) => {
      const templates = (spec.publisherTopics[i] ?? []).map((t) =>
        new PublishTemplate(t, spec.qos, spec.protocol, spec.messageExpiry, stream++, fanoutOf(spec, t)));
      return this.#publisher(c, templates);
    });
  }

  /** Call on every read that delivered messages. */
  readonly onDelivered = (): void => {
    if (this.#gated) { this.#gated = false; this.#wake(); }
  };

  async run(seconds: number, clientErrors: () => number): Promise<FlowResult> {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    this.#t0 = t0;
    this.stats.lastDeliveryAt = t0;
    const warmupSeconds = warmupOf(seconds);
    this.stats.steadyFrom = t0 + warmupSeconds * 1000;
    const paced = this.spec.ratePerPublisher > 0;
    const ticker = paced ? setInterval(this.#pace, PACE_MS) : setInterval(() => this.#tick(), 50);
    if (!paced) this.#wake();
    await sleep(seconds * 1000);
    this.#stopped = true;
    clearInterval(ticker);
    const drainStart = performance.now();
    const drainEnd = await this.#drain();
    const drainSeconds = (performance.now() - drainStart) / 1000;
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuSince(cpu0);
    const s = this.stats;
    const sum = (f: (p: Publisher) => number): number => this.#pubs.reduce((a, p) => a + f(p), 0);
    const expected = sum((p) => p.expected);
    const unique = s.delivered - s.duplicates;
    const active = Math.max(1e-3, (s.lastDeliveryAt - t0) / 1000);
    return {
      scenario: this.spec.scenario, qos: this.spec.qos, protocol: this.spec.protocol,
      publishers: this.#pubs.length, subscribers: this.spec.subscriberFilters.length,
      window: Math.min(...this.#pubs.map((p) => p.window)), ratePerPublisher: this.spec.ratePerPublisher,
      published: sum((p) => p.sent), acked: sum((p) => p.acked), refused: sum((p) => p.refused),
      expected, delivered: s.delivered, duplicates: s.duplicates, lost: Math.max(0, expected - unique),
      topicErrors: s.topicErrors, aliasOnly: 0,
      activeSeconds: active, deliveredPerSec: s.delivered / active,
      latencyP50Ms: s.hist.quantileMs(0.5), latencyP99Ms: s.hist.quantileMs(0.99), latencyMaxMs: s.hist.maxMs,
      warmupSeconds, latencyP99AllMs: s.histAll.quantileMs(0.99), latencyMaxAllMs: s.histAll.maxMs,
      generatorCpuSec: cpu, generatorCpuShare: cpu / wall,
      clientErrors: clientErrors(), stalls: this.#stalls, drainEnd, drainSeconds,
      unfinished: sum((p) => p.inflight),
    };
  }

  #publisher(client: BenchClient, templates: PublishTemplate[]): Publisher {
    const p = new Publisher(client, templates, Math.max(1, Math.min(this.spec.window, client.receiveMaximum)));
    client.onPublisherAck = (id, first, accepted, done) => {
      p.onAck(id, first, accepted, done);
      if (done) this.#wake();
    };
    client.socket.on('drain', () => { p.writable = true; this.#wake(); });
    return p;
  }

  #owed(): number {
    return this.#sentWeight - this.stats.delivered - this.#writtenOff;
  }

  #wake(): void {
    if (this.#scheduled || this.#stopped || this.spec.ratePerPublisher > 0) return;
    this.#scheduled = true;
    setImmediate(this.#pump);
  }

  readonly #pump = (): void => {
    this.#scheduled = false;
    if (this.#stopped) return;
    const { batch, qos, maxOutstanding } = this.spec;
    const pubs = this.#pubs;
    let budget = PER_TURN;
    for (let visited = 0; visited < pubs.length && budget > 0; visited++) {
      if (this.#owed() >= maxOutstanding) { this.#gated = true; return; }
      const p = pubs[this.#cursor] as Publisher;
      this.#cursor = (this.#cursor + 1) % pubs.length;
      if (!p.writable || p.client.error !== undefined) continue;
      const k = Math.min(batch, budget, qos === 0 ? batch : p.window - p.inflight);
      if (k <= 0) continue;
      const w0 = p.sentWeight;
      if (!p.write(k)) p.writable = false;
      this.#sentWeight += p.sentWeight - w0;
      budget -= k;
    }
    if (budget < PER_TURN) this.#wake();
  };

  /** Paced runs: each publisher writes what is due at `ratePerPublisher` (staggered), within its window. */
  readonly #pace = (): void => {
    if (this.#stopped) return;
    const { batch, qos, ratePerPublisher } = this.spec;
    const elapsed = (performance.now() - this.#t0) / 1000;
    const pubs = this.#pubs;
    for (let i = 0; i < pubs.length; i++) {
      const p = pubs[i] as Publisher;
      if (!p.writable || p.client.error !== undefined) continue;
      const due = Math.floor(elapsed * ratePerPublisher + i / pubs.length) - p.sent;
      const k = Math.min(due, batch, qos === 0 ? batch : p.window - p.inflight);
      if (k <= 0) continue;
      const w0 = p.sentWeight;
      if (!p.write(k)) p.writable = false;
      this.#sentWeight += p.sentWeight - w0;
    }
  };

  /** Every 50 ms: write off QoS 0 deliveries that will never come, and make sure the pump runs. */
  #tick(): void {
    if (this.#gated && performance.now() - this.stats.lastDeliveryAt > STALL_MS) {
      this.#writtenOff += this.#owed();
      this.#stalls++;
      this.#gated = false;
    }
    this.#wake();
  }

  /** Waits until everything owed has arrived, or nothing moved for DRAIN_IDLE_MS; bounded by DRAIN_MAX_MS. */
  async #drain(): Promise<FlowResult['drainEnd']> {
    const start = performance.now();
    let last = -1;
    let lastChange = start;
    while (performance.now() - start < DRAIN_MAX_MS) {
      const inflight = this.#pubs.reduce((a, p) => a + (p.client.error === undefined ? p.inflight : 0), 0);
      const expected = this.#pubs.reduce((a, p) => a + p.expected, 0);
      if (inflight === 0 && expected - (this.stats.delivered - this.stats.duplicates) <= 0) return 'complete';
      const progress = this.stats.delivered + this.#pubs.reduce((a, p) => a + p.acked, 0);
      if (progress !== last) { last = progress; lastChange = performance.now(); }
      if (performance.now() - lastChange > DRAIN_IDLE_MS) return 'idle';
      await sleep(20);
    }
    return 'timeout';
  }
}
