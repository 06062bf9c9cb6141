/**
 * The publishing loop. Publishers are served round-robin from one setImmediate-driven pump;
 * a publisher is skipped while its socket is congested (write returned false, until 'drain')
 * or, at QoS 1, while its window of unacknowledged messages is full. Publishing pauses while
 * more than `maxOutstanding` deliveries are owed, so broker queues stay bounded.
 */
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import type { BenchClient, DeliveryStats } from './clients.js';
import { cpuSince, type FlowResult, sleep } from './common.js';
import type { FlowSpec } from './scenarios.js';
import { PublishTemplate } from './wire.js';

/** Most messages written per pump turn before yielding to the event loop (reads). */
const PER_TURN = 2048;
/** With nothing delivered for this long, owed QoS 0 deliveries are written off. */
const STALL_MS = 500;
const DRAIN_IDLE_MS = 1000;
const DRAIN_MAX_MS = 10_000;

class Publisher {
  writable = true;
  inflight = 0;
  sent = 0;
  acked = 0;
  #nextId = 0;
  #cursor = 0;

  constructor(readonly client: BenchClient, readonly templates: PublishTemplate[]) {}

  /** Writes `k` messages in one buffer; returns false when the socket is congested. */
  write(k: number): boolean {
    const ts = this.templates;
    let size = 0;
    for (let i = 0, c = this.#cursor; i < k; i++, c = (c + 1) % ts.length) size += (ts[c] as PublishTemplate).bytes.length;
    const out = Buffer.allocUnsafe(size);
    const now = performance.now();
    let at = 0;
    for (let i = 0; i < k; i++) {
      this.#nextId = this.#nextId === 0xffff ? 1 : this.#nextId + 1;
      at = (ts[this.#cursor] as PublishTemplate).stamp(out, at, this.#nextId, now);
      this.#cursor = (this.#cursor + 1) % ts.length;
    }
    this.sent += k;
    if (ts[0]?.qos !== 0) this.inflight += k;
    return this.client.socket.write(out);
  }
}

export class Flow {
  readonly #pubs: Publisher[];
  #cursor = 0;
  #scheduled = false;
  #gated = false;
  #stopped = false;
  #sent = 0;
  #writtenOff = 0;
  #stalls = 0;

  constructor(private readonly spec: FlowSpec, clients: BenchClient[], private readonly stats: DeliveryStats) {
    this.#pubs = clients.map((c, i) => this.#publisher(c, spec.publisherTopics[i] ?? []));
  }

  /** Call on every read that delivered messages. */
  readonly onDelivered = (): void => {
    if (this.#gated) { this.#gated = false; this.#wake(); }
  };

  async run(seconds: number, clientErrors: () => number): Promise<FlowResult> {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    this.stats.lastDeliveryAt = t0;
    const ticker = setInterval(() => this.#tick(), 50);
    this.#wake();
    await sleep(seconds * 1000);
    this.#stopped = true;
    await this.#drain();
    clearInterval(ticker);
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuSince(cpu0);
    const s = this.stats;
    const acked = this.#pubs.reduce((a, p) => a + (this.spec.qos === 0 ? p.sent : p.acked), 0);
    const active = Math.max(1e-3, (s.lastDeliveryAt - t0) / 1000);
    return {
      scenario: this.spec.scenario, qos: this.spec.qos,
      publishers: this.#pubs.length, subscribers: this.spec.subscriberFilters.length,
      published: this.#sent, acked, delivered: s.delivered,
      lost: Math.max(0, acked * this.spec.fanout - s.delivered),
      activeSeconds: active, deliveredPerSec: s.delivered / active,
      latencyP50Ms: s.hist.quantileMs(0.5), latencyP99Ms: s.hist.quantileMs(0.99),
      generatorCpuSec: cpu, generatorCpuShare: cpu / wall,
      clientErrors: clientErrors(), stalls: this.#stalls,
    };
  }

  #publisher(client: BenchClient, topics: string[]): Publisher {
    const p = new Publisher(client, topics.map((t) => new PublishTemplate(t, this.spec.qos)));
    client.onAck = () => {
      p.inflight--;
      p.acked++;
      this.#wake();
    };
    client.socket.on('drain', () => { p.writable = true; this.#wake(); });
    return p;
  }

  #owed(): number {
    return this.#sent * this.spec.fanout - this.stats.delivered - this.#writtenOff;
  }

  #wake(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(this.#pump);
  }

  readonly #pump = (): void => {
    this.#scheduled = false;
    if (this.#stopped) return;
    const { batch, window, qos, maxOutstanding } = this.spec;
    const pubs = this.#pubs;
    let budget = PER_TURN;
    for (let visited = 0; visited < pubs.length && budget > 0; visited++) {
      if (this.#owed() >= maxOutstanding) { this.#gated = true; return; }
      const p = pubs[this.#cursor] as Publisher;
      this.#cursor = (this.#cursor + 1) % pubs.length;
      if (!p.writable || p.client.error !== undefined) continue;
      const k = Math.min(batch, budget, qos === 0 ? batch : window - p.inflight);
      if (k <= 0) continue;
      if (!p.write(k)) p.writable = false;
      budget -= k;
      this.#sent += k;
    }
    if (budget < PER_TURN) this.#wake();
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

  /** Waits until everything owed has arrived, or nothing moved for a second; bounded. */
  async #drain(): Promise<void> {
    const start = performance.now();
    let last = -1;
    let lastChange = start;
    while (performance.now() - start < DRAIN_MAX_MS) {
      const inflight = this.#pubs.reduce((a, p) => a + (p.client.error === undefined ? p.inflight : 0), 0);
      if (inflight === 0 && this.#owed() <= 0) return;
      const progress = this.stats.delivered + this.#pubs.reduce((a, p) => a + p.acked, 0);
      if (progress !== last) { last = progress; lastChange = performance.now(); }
      if (performance.now() - lastChange > DRAIN_IDLE_MS) return;
      await sleep(20);
    }
  }
}
