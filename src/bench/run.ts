/**
 * A bench run: connect the clients at the asked rate, drive the publishers for the duration
 * (or their message count), wait for what is owed to arrive, disconnect, summarise. Every phase
 * is bounded in time; every loop in count.
 */
import { readFileSync } from 'node:fs';
import type { BenchTarget } from '../transport/bench-sockets.js';
import { BenchClient, type ClientSetup, PUBLISH_LIMIT, type PublishRole, type Stats, type SubscribeRole } from './client.js';
import { Histogram } from './histogram.js';
import { type BenchOptions, expandTopic } from './options.js';
import { LossTracker, nowMs, streamId } from './payload.js';

export interface Summary {
  scenario: string;
  url: string;
  protocolVersion: number;
  qos: number;
  payloadBytes: number;
  clients: { requested: number; connected: number; failed: number };
  publishers: number;
  subscribers: number;
  /** Seconds of load (from the first PUBLISH to the end of the wait for deliveries). */
  seconds: number;
  sent: number;
  acked: number;
  received: number;
  /** Deliveries owed for acknowledged (QoS 0: written) messages of this run; null when not known (pub, sub, conn). */
  expected: number | null;
  lost: number | null;
  duplicates: number;
  throughput: { sentPerSec: number; receivedPerSec: number };
  latencyMs: Percentiles;
  connectMs: Percentiles;
  errors: Record<string, number>;
  /** QoS 1/2 messages without their final acknowledgement when the run ended. */
  unfinished: number;
  /** How the wait for deliveries ended. */
  drain: 'complete' | 'idle' | 'timeout' | 'none';
  cpu: { userMs: number; systemMs: number; usPerMessage: number };
}

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Where progress goes: a terminal gets one line rewritten in place. */
export interface ProgressOut {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** Connect phase bound beyond count / rate; drain bounds. */
const CONNECT_SLACK_MS = 30_000;
const DRAIN_IDLE_MS = 2_000;
const DRAIN_MAX_MS = 15_000;
/** Most PUBLISH one publisher writes in one turn, and the socket backlog at which it waits. */
const BURST = 256;
const HIGH_WATER = 256 * 1024;
/** Connections started per connect tick at most. */
const CONNECT_TICK_MS = 10;
/** QoS 0 at full speed: deliveries on their way per publisher before it waits, and when missing ones are written off. */
const QOS0_WINDOW = 1024;
const QOS0_STALL_MS = 500;

function percentiles(h: Histogram, scale: number): Percentiles {
  const r = (v: number): number => Math.round((v / scale) * 1000) / 1000;
  return {
    count: h.count, p50: r(h.percentile(50)), p90: r(h.percentile(90)), p99: r(h.percentile(99)),
    p999: r(h.percentile(99.9)), max: r(h.count === 0 ? 0 : h.max), mean: r(h.mean),
  };
}

/** Replaces every topic level holding a pattern by `+`, for subscribers of many publishers' topics. */
function wildcardFor(pattern: string): string {
  return pattern.split('/').map((level) => (/%(i|c|rand)/.test(level) ? '+' : level)).join('/');
}

export function targetUrl(o: BenchOptions): string {
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return `${o.scheme}://${host}:${o.port}${o.scheme === 'ws' || o.scheme === 'wss' ? o.path : ''}`;
}

export class BenchRun {
  readonly stats: Stats = {
    sent: 0, acked: 0, received: 0, connected: 0, failed: 0, errors: new Map(),
    latency: new Histogram(), connectTime: new Histogram(),
  };
  readonly loss = new LossTracker(Math.floor(Math.random() * 0x1000));
  readonly clients: BenchClient[] = [];
  readonly #publishers: BenchClient[] = [];
  readonly #subscribers: BenchClient[] = [];
  readonly #dirty: BenchClient[] = [];
  #flushScheduled = false;
  #tickImmediate: ReturnType<typeof setImmediate> | undefined;
  #tickTimer: ReturnType<typeof setTimeout> | undefined;
  #publishing = false;
  #loadStart = 0;
  #loadEnd = 0;
  #stopAt = 0;
  #onPublishDone: (() => void) | undefined;
  /** QoS 0 end-to-end bound (0: none); see #qos0Full. */
  #qos0Bound = 0;
  #qos0Seen = 0;
  #qos0Since = 0;
  #writtenOff = 0;

  constructor(readonly o: BenchOptions, readonly progress: ProgressOut | undefined) {}

  #target(): BenchTarget {
    const o = this.o;
    const t: BenchTarget = { scheme: o.scheme, host: o.host, port: o.port, path: o.path, insecure: o.insecure };
    if (o.cafile !== undefined) t.ca = readFileSync(o.cafile);
    if (o.cert !== undefined) t.cert = readFileSync(o.cert);
    if (o.key !== undefined) t.key = readFileSync(o.key);
    return t;
  }

  #build(): void {
    const o = this.o;
    const target = this.#target();
    const setupFor = (n: number): ClientSetup => ({
      target, localAddress: o.ifaddr.length > 0 ? o.ifaddr[n % o.ifaddr.length] : undefined, version: o.version,
      clientId: `${o.clientIdPrefix}${n}`, keepalive: o.keepalive, username: o.username, password: o.password,
      stats: this.stats, loss: this.loss,
      dirty: (c) => this.#markDirty(c), wake: () => this.#wake(),
    });
    const limit = o.messages > 0 ? Math.min(o.messages, PUBLISH_LIMIT) : PUBLISH_LIMIT;
    const pubRole = (publisher: number, topic: string): PublishRole => ({
      topic, qos: o.qos, size: o.size, publisher, stream: streamId(this.loss.runTag, publisher), window: o.inflight, limit,
    });
    let n = 0;
    const add = (pub: PublishRole | undefined, sub: SubscribeRole | undefined, setup: ClientSetup): BenchClient => {
      const c = new BenchClient(setup, pub, sub);
      this.clients.push(c);
      if (pub !== undefined) this.#publishers.push(c);
      if (sub !== undefined) this.#subscribers.push(c);
      return c;
    };
    switch (o.scenario) {
      case 'conn':
        for (let i = 0; i < o.count; i++) add(undefined, undefined, setupFor(n++));
        break;
      case 'pub':
        for (let i = 0; i < o.count; i++) {
          const s = setupFor(n++);
          add(pubRole(i, expandTopic(o.topic, i, s.clientId)), undefined, s);
        }
        break;
      case 'sub':
        for (let i = 0; i < o.count; i++) {
          const s = setupFor(n++);
          add(undefined, { filter: expandTopic(o.topic, i, s.clientId), qos: o.qos, subscriber: i }, s);
        }
        break;
      case 'fanout':
      case 'fanin': {
        const subs = o.scenario === 'fanout' ? o.count : o.others;
        const pubs = o.scenario === 'fanout' ? o.others : o.count;
        const filter = wildcardFor(o.topic);
        for (let i = 0; i < subs; i++) add(undefined, { filter, qos: o.qos, subscriber: i }, setupFor(n++));
        for (let i = 0; i < pubs; i++) {
          const s = setupFor(n++);
          add(pubRole(i, expandTopic(o.topic, i, s.clientId)), undefined, s);
        }
        break;
      }
      case 'p2p': {
        const pubSetups = [];
        for (let i = 0; i < o.count; i++) pubSetups.push(setupFor(o.count + i));
        for (let i = 0; i < o.count; i++) {
          const topic = expandTopic(o.topic, i, (pubSetups[i] as ClientSetup).clientId);
          add(undefined, { filter: topic, qos: o.qos, subscriber: i }, setupFor(i));
        }
        for (let i = 0; i < o.count; i++) {
          const s = pubSetups[i] as ClientSetup;
          add(pubRole(i, expandTopic(o.topic, i, s.clientId)), undefined, s);
        }
        break;
      }
    }
  }

  /** Owed deliveries: between the publishers and subscribers that are both connected. */
  #declareOwed(): void {
    const o = this.o;
    if (o.scenario === 'p2p') {
      for (let i = 0; i < this.#publishers.length; i++) {
        const pub = this.#publishers[i] as BenchClient;
        const sub = this.#subscribers[i] as BenchClient;
        if (pub.ready && sub.ready) this.loss.expect(i, i);
      }
    } else if (o.scenario === 'fanout' || o.scenario === 'fanin') {
      for (const pub of this.#publishers) {
        if (!pub.ready || pub.publish === undefined) continue;
        for (const sub of this.#subscribers) if (sub.ready && sub.subscribe !== undefined) this.loss.expect(pub.publish.publisher, sub.subscribe.subscriber);
      }
    }
  }

  #markDirty(c: BenchClient): void {
    this.#dirty.push(c);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const dirty = this.#dirty;
    for (let i = 0; i < dirty.length; i++) (dirty[i] as BenchClient).flush();
    dirty.length = 0;
  }

  #wake(): void {
    if (!this.#publishing || this.#tickImmediate !== undefined) return;
    if (this.#tickTimer !== undefined) {
      clearTimeout(this.#tickTimer);
      this.#tickTimer = undefined;
    }
    this.#tickImmediate = setImmediate(() => this.#tick());
  }

  /** One publishing turn: every publisher writes what it owes (rate mode) or what its window allows. */
  #tick(): void {
    this.#tickImmediate = undefined;
    this.#tickTimer = undefined;
    if (!this.#publishing) return;
    const now = nowMs();
    const interval = this.o.interval;
    let wrote = 0;
    let busy = false;
    let active = 0;
    let nextDue = Number.POSITIVE_INFINITY;
    const pubs = this.#publishers;
    if (this.#qos0Bound > 0 && this.#qos0Full(now)) {
      this.#tickTimer = setTimeout(() => this.#tick(), 1);
      return;
    }
    for (let i = 0; i < pubs.length; i++) {
      const c = pubs[i] as BenchClient;
      const pub = c.publish;
      if (pub === undefined || !c.ready) continue;
      if (c.seq >= pub.limit) continue;
      active++;
      if (c.backlog >= HIGH_WATER) {
        busy = true;
        continue;
      }
      let n = BURST;
      if (interval > 0) {
        const due = Math.floor((now - c.startMs) / interval) + 1 - c.seq;
        if (due <= 0) {
          const at = c.startMs + c.seq * interval;
          if (at < nextDue) nextDue = at;
          continue;
        }
        if (due < n) n = due;
      }
      const k = c.pump(n, now);
      wrote += k;
      if (k === n && interval === 0) busy = true;
      else if (k === n) nextDue = now;
    }
    if (now >= this.#stopAt || active === 0) {
      this.#stopPublishing();
      return;
    }
    if (busy && wrote > 0) this.#tickImmediate = setImmediate(() => this.#tick());
    else if (busy) this.#tickTimer = setTimeout(() => this.#tick(), 1);
    else if (nextDue !== Number.POSITIVE_INFINITY) this.#tickTimer = setTimeout(() => this.#tick(), Math.max(0, Math.min(nextDue - nowMs(), this.#stopAt - now)));
    else this.#tickTimer = setTimeout(() => this.#tick(), Math.min(50, Math.max(1, this.#stopAt - now))); // QoS 1/2 windows full: an ack wakes us
  }

  /**
   * QoS 0 at full speed with known receivers: true while more deliveries are on their way than
   * QOS0_WINDOW per publisher, so the run measures the broker's rate, not the growth of its
   * queues. Deliveries missing for QOS0_STALL_MS are written off (QoS 0 may be dropped).
   */
  #qos0Full(now: number): boolean {
    const outstanding = this.loss.expected - this.loss.unique - this.#writtenOff;
    if (outstanding <= this.#qos0Bound) {
      this.#qos0Since = 0;
      return false;
    }
    if (this.loss.unique !== this.#qos0Seen || this.#qos0Since === 0) {
      this.#qos0Seen = this.loss.unique;
      this.#qos0Since = now;
      return true;
    }
    if (now - this.#qos0Since < QOS0_STALL_MS) return true;
    this.#writtenOff += outstanding;
    this.#qos0Since = 0;
    return false;
  }

  #stopPublishing(): void {
    if (!this.#publishing) return;
    this.#publishing = false;
    if (this.#tickTimer !== undefined) clearTimeout(this.#tickTimer);
    if (this.#tickImmediate !== undefined) clearImmediate(this.#tickImmediate);
    this.#tickTimer = undefined;
    this.#tickImmediate = undefined;
    this.#onPublishDone?.();
  }

  #progressLine(t: number, last: { sent: number; received: number }): void {
    const out = this.progress;
    if (out === undefined) return;
    const s = this.stats;
    let errors = 0;
    for (const n of s.errors.values()) errors += n;
    const line = `t=${t}s sent=${s.sent} (${s.sent - last.sent}/s) recv=${s.received} (${s.received - last.received}/s) conn=${s.connected} err=${errors}`;
    last.sent = s.sent;
    last.received = s.received;
    out.write(out.isTTY === true ? `\r\x1b[K${line}` : `${line}\n`);
  }

  async run(): Promise<Summary> {
    const o = this.o;
    this.#build();
    const s = this.stats;
    const cpu0 = process.cpuUsage();
    const t0 = nowMs();
    const last = { sent: 0, received: 0 };
    const progress = setInterval(() => this.#progressLine(Math.round((nowMs() - t0) / 1000), last), 1000);
    const pinger = o.keepalive > 0 ? setInterval(() => {
      for (const c of this.clients) c.ping();
    }, (o.keepalive * 1000) / 2) : undefined;
    let drain: Summary['drain'] = 'none';
    try {
      await this.#connectAll();
      this.#declareOwed();
      const pubsReady = this.#publishers.filter((c) => c.ready).length;
      if (o.scenario !== 'conn' && s.connected > 0) {
        this.#loadStart = nowMs();
        this.#stopAt = this.#loadStart + o.durationS * 1000;
        if (pubsReady > 0) {
          let i = 0;
          for (const c of this.#publishers) c.startMs = this.#loadStart + (o.interval * i++) / this.#publishers.length;
          const done = new Promise<void>((resolve) => (this.#onPublishDone = resolve));
          const known = o.scenario === 'p2p' || o.scenario === 'fanout' || o.scenario === 'fanin';
          if (o.qos === 0 && o.interval === 0 && known) this.#qos0Bound = QOS0_WINDOW * pubsReady * Math.max(1, this.#subscribers.length / (o.scenario === 'p2p' ? this.#subscribers.length : 1));
          this.#publishing = true;
          this.#tick();
          await done;
          drain = await this.#drain();
        } else {
          await new Promise((resolve) => setTimeout(resolve, o.durationS * 1000));
        }
        this.#loadEnd = nowMs();
      }
    } finally {
      clearInterval(progress);
      if (pinger !== undefined) clearInterval(pinger);
      this.#stopPublishing();
      if (this.progress?.isTTY === true) this.progress.write('\n');
    }
    const connected = s.connected;
    await Promise.all(this.clients.map((c) => c.close(2000)));
    const cpu = process.cpuUsage(cpu0);
    return this.#summary(connected, drain, cpu);
  }

  /** Starts `rate` connections per second; resolves when every one is ready or failed (bounded). */
  async #connectAll(): Promise<void> {
    const o = this.o;
    const clients = this.clients;
    const pending: Promise<boolean>[] = [];
    const start = nowMs();
    const deadline = start + (clients.length / o.rate) * 1000 + CONNECT_SLACK_MS;
    let started = 0;
    await new Promise<void>((resolve) => {
      const step = (): void => {
        const due = Math.min(clients.length, Math.floor(((nowMs() - start) / 1000) * o.rate) + 1);
        while (started < due) pending.push((clients[started++] as BenchClient).start());
        if (started < clients.length) setTimeout(step, CONNECT_TICK_MS);
        else resolve();
      };
      step();
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - nowMs()))));
    await Promise.race([Promise.all(pending), timedOut]);
    clearTimeout(timer);
    for (const c of clients) c.abandon('timeout:connect');
  }

  /** Waits for owed deliveries and open QoS 1/2 exchanges; bounded by idle and total time. */
  async #drain(): Promise<Summary['drain']> {
    const start = nowMs();
    let lastChange = start;
    let seen = -1;
    for (let i = 0; i < DRAIN_MAX_MS / 20 + 1; i++) {
      const s = this.stats;
      const inflight = this.#publishers.reduce((n, c) => n + (c.ready ? c.inflight : 0), 0);
      const owed = this.#subscribers.length > 0 && this.o.scenario !== 'pub' ? this.loss.expected : 0;
      const got = this.loss.unique;
      if (inflight === 0 && got >= owed) return 'complete';
      const progress = s.received + s.acked;
      const now = nowMs();
      if (progress !== seen) {
        seen = progress;
        lastChange = now;
      } else if (now - lastChange >= DRAIN_IDLE_MS) {
        return 'idle';
      }
      if (now - start >= DRAIN_MAX_MS) return 'timeout';
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return 'timeout';
  }

  #summary(connected: number, drain: Summary['drain'], cpu: NodeJS.CpuUsage): Summary {
    const o = this.o;
    const s = this.stats;
    const seconds = this.#loadEnd > this.#loadStart ? (this.#loadEnd - this.#loadStart) / 1000 : 0;
    const known = o.scenario === 'p2p' || o.scenario === 'fanout' || o.scenario === 'fanin';
    let unfinished = 0;
    for (const c of this.#publishers) unfinished += c.inflight;
    const delivered = o.scenario === 'pub' || o.scenario === 'conn' ? s.sent : s.received;
    const rate = (n: number): number => (seconds > 0 ? Math.round(n / seconds) : 0);
    return {
      scenario: o.scenario,
      url: targetUrl(o),
      protocolVersion: o.version,
      qos: o.qos,
      payloadBytes: o.size,
      clients: { requested: this.clients.length, connected, failed: s.failed },
      publishers: this.#publishers.length,
      subscribers: this.#subscribers.length,
      seconds: Math.round(seconds * 1000) / 1000,
      sent: s.sent,
      acked: s.acked,
      received: s.received,
      expected: known ? this.loss.expected : null,
      lost: known ? this.loss.lost : null,
      duplicates: this.loss.duplicates,
      throughput: { sentPerSec: rate(s.sent), receivedPerSec: rate(s.received) },
      latencyMs: percentiles(s.latency, 1000),
      connectMs: percentiles(s.connectTime, 1000),
      errors: Object.fromEntries([...s.errors.entries()].sort()),
      unfinished,
      drain,
      cpu: {
        userMs: Math.round(cpu.user / 1000), systemMs: Math.round(cpu.system / 1000),
        usPerMessage: delivered > 0 ? Math.round(((cpu.user + cpu.system) / delivered) * 1000) / 1000 : 0,
      },
    };
  }
}
