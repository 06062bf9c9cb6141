/**
 * What the metrics cost: `npm run bench:metrics`.
 *
 * QoS 0 point-to-point in process: PAIRS publishers each send PUBLISH packets (in batches, one
 * chunk per event-loop turn) to their own topic, which one subscriber each receives (fake
 * Duplexes that only count PUBLISH packets). Timed: process CPU (user + system) and wall time from
 * the first batch until every subscriber got every message: the broker's own work per message.
 * Scenarios, one broker each, rounds alternating between them:
 *   counters    this build: the counters (plain increments on every packet), nobody reads them
 *   scraped     this build, and createMetrics(broker).render() every SCRAPE_EVERY batches (default
 *               100: one scrape per PAIRS × 5000 messages, some 30 ms at the rates here; a
 *               Prometheus scrapes every 15 s or so)
 *   baseline    only with BENCH_BASELINE: BrokerCore from another build (e.g. the revision before
 *               the counters), the same workload
 * Then the cost of one render() (a scrape) with CONNECTIONS idle clients connected.
 * Reported: CPU ns per message (median and minimum of ROUNDS) with the ratio to the first
 * scenario, and messages per second of wall time. Never asserted.
 * Env: BENCH_PAIRS (4), BENCH_MESSAGES per publisher per round (5000), BENCH_BATCH (50), BENCH_ROUNDS (9), BENCH_SCRAPE_EVERY (100),
 * BENCH_CONNECTIONS (10000), BENCH_BASELINE: a directory with a compiled src/ of another revision
 * (its broker/broker.js is imported).
 */
import { Buffer } from 'node:buffer';
import os from 'node:os';
import { resolve } from 'node:path';
import { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { BrokerCore } from '../src/broker/broker.js';
import { createMetrics } from '../src/ops/metrics.js';
import { encode, PacketType } from '../src/protocol/index.js';

const PAIRS = Number(process.env.BENCH_PAIRS ?? 4);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 5000);
const BATCH = Number(process.env.BENCH_BATCH ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10_000);
const SCRAPE_EVERY = Number(process.env.BENCH_SCRAPE_EVERY ?? 100);
const BASELINE = process.env.BENCH_BASELINE;
const PAYLOAD = Buffer.alloc(64, 0x61);

/** What the bench needs of a broker, whichever build it comes from. */
interface AnyBroker {
  handle(stream: Duplex, meta?: string): void;
  closeConnections(): Promise<void>;
}

/** The broker's side of a client: counts the PUBLISH packets written to it, keeps nothing. */
class Sink extends Duplex {
  publishes = 0;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    let pos = 0;
    while (pos < chunk.length) {
      const first = chunk[pos] as number;
      let len = 0;
      let mul = 1;
      let p = pos + 1;
      for (;;) {
        const b = chunk[p++] as number;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if (b < 0x80) break;
      }
      if (first >> 4 === PacketType.Publish) this.publishes++;
      pos = p + len;
    }
    cb();
  }
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

interface Setup {
  name: string;
  broker: AnyBroker;
  publishers: Sink[];
  subscribers: Sink[];
  /** Called after every SCRAPE_EVERY batches (the scraped scenario renders the metrics). */
  afterBatch: (() => Promise<unknown>) | undefined;
}

function connect(broker: AnyBroker, sink: Sink, clientId: string): void {
  broker.handle(sink, 'bench');
  sink.push(encode({ type: PacketType.Connect, protocolVersion: 4, protocolName: 'MQTT', clientId, clean: true, keepalive: 0 }, 4));
}

async function setup(name: string, broker: AnyBroker, afterBatch?: () => Promise<unknown>): Promise<Setup> {
  const publishers: Sink[] = [];
  const subscribers: Sink[] = [];
  for (let i = 0; i < PAIRS; i++) {
    const sub = new Sink();
    connect(broker, sub, `sub${i}`);
    sub.push(encode({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: `p2p/${i}`, qos: 0 }] }, 4));
    subscribers.push(sub);
    const pub = new Sink();
    connect(broker, pub, `pub${i}`);
    publishers.push(pub);
  }
  await turn();
  await turn();
  return { name, broker, publishers, subscribers, afterBatch };
}

/** BATCH PUBLISH packets to `p2p/i`, built once per publisher. */
const batches = Array.from({ length: PAIRS }, (_, i) => Buffer.concat(Array.from({ length: BATCH }, () => encode({
  type: PacketType.Publish, topic: `p2p/${i}`, payload: PAYLOAD, qos: 0, retain: false, dup: false,
}, 4))));

async function round(x: Setup): Promise<{ ns: number; rate: number }> {
  for (const s of x.subscribers) s.publishes = 0;
  const perPublisher = Math.ceil(MESSAGES / BATCH) * BATCH;
  const expected = perPublisher * PAIRS;
  const wall = performance.now();
  const start = process.cpuUsage();
  for (let sent = 0, n = 1; sent < perPublisher; sent += BATCH, n++) {
    x.publishers.forEach((p, i) => p.push(batches[i]));
    await turn();
    if (x.afterBatch !== undefined && n % SCRAPE_EVERY === 0) await x.afterBatch();
  }
  let got = 0;
  for (let i = 0; i < 1000; i++) {
    got = x.subscribers.reduce((n, s) => n + s.publishes, 0);
    if (got >= expected) break;
    await turn();
  }
  const used = process.cpuUsage(start);
  const ms = performance.now() - wall;
  if (got !== expected) throw new Error(`${x.name}: ${got} deliveries, expected ${expected}`);
  return { ns: (used.user + used.system) * 1000 / expected, rate: expected / (ms / 1000) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** CPU ms of one render() with `n` idle clients connected (median of 5). */
async function scrapeCost(n: number): Promise<{ ms: number; bytes: number }> {
  const broker = new BrokerCore({ connectTimeout: 0 });
  const sinks: Sink[] = [];
  for (let i = 0; i < n; i++) {
    const s = new Sink();
    connect(broker, s, `idle${i}`);
    sinks.push(s);
    if (i % 1000 === 999) await turn();
  }
  await turn();
  const metrics = createMetrics(broker);
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 6; i++) {
    const start = process.cpuUsage();
    bytes = (await metrics.render()).length;
    const used = process.cpuUsage(start);
    if (i > 0) times.push((used.user + used.system) / 1000);
  }
  const closed = broker.closeConnections();
  for (const s of sinks) s.destroy();
  await closed;
  return { ms: median(times), bytes };
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}`);
  console.log(`QoS 0 p2p in process: ${PAIRS} pairs, ${MESSAGES} messages per publisher per round in batches of ${BATCH}, ${PAYLOAD.length} B payload, ${ROUNDS} rounds`);
  const setups: Setup[] = [];
  if (BASELINE !== undefined) {
    const mod = await import(pathToFileURL(resolve(BASELINE, 'broker/broker.js')).href) as { BrokerCore: new (o: object) => AnyBroker };
    setups.push(await setup('baseline', new mod.BrokerCore({ maxQueuedMessages: 100_000 })));
  }
  setups.push(await setup('counters', new BrokerCore({ maxQueuedMessages: 100_000 })));
  const scraped = new BrokerCore({ maxQueuedMessages: 100_000 });
  const metrics = createMetrics(scraped);
  setups.push(await setup('scraped', scraped, () => metrics.render()));

  const ns: number[][] = setups.map(() => []);
  const rates: number[][] = setups.map(() => []);
  for (const x of setups) for (let w = 0; w < 3; w++) await round(x);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < setups.length; i++) {
      const { ns: n, rate } = await round(setups[i] as Setup);
      (ns[i] as number[]).push(n);
      (rates[i] as number[]).push(rate);
    }
  }
  const base = median(ns[0] as number[]);
  const baseMin = Math.min(...(ns[0] as number[]));
  console.log('scenario   median ns/msg  vs first   min ns/msg  vs first   median msg/s');
  setups.forEach((x, i) => {
    const med = median(ns[i] as number[]);
    const min = Math.min(...(ns[i] as number[]));
    console.log(`${x.name.padEnd(11)}${med.toFixed(0).padStart(13)}  ${(med / base).toFixed(3).padStart(7)}x  ${min.toFixed(0).padStart(11)}  ${(min / baseMin).toFixed(3).padStart(7)}x  ${median(rates[i] as number[]).toFixed(0).padStart(13)}`);
  });
  for (const x of setups) {
    const closed = x.broker.closeConnections();
    for (const s of [...x.publishers, ...x.subscribers]) s.destroy();
    await closed;
  }
  const scrape = await scrapeCost(CONNECTIONS);
  console.log(`one render() with ${CONNECTIONS} idle clients: ${scrape.ms.toFixed(1)} ms CPU, ${scrape.bytes} bytes of text`);
}

await main();
