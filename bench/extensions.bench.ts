/**
 * What the extension API costs on the message path: `npm run bench:extensions`.
 *
 * One in-process publisher sends QoS 0 PUBLISH packets (in batches, one chunk per event-loop turn)
 * to a BrokerCore that fans each out to N in-process receivers (fake Duplexes that only count
 * PUBLISH packets). Timed: process CPU (user + system) from the first batch until every receiver
 * got every message, so it is the broker's own work: decode, hooks, route, encode, write.
 * Scenarios, one broker each, rounds alternating between them:
 *   none              no hooks, no interceptors
 *   emptied           a publish and a delivery interceptor added and removed again before the run
 *   trivial           one publish interceptor returning its message, and authorizeDelivery () => true
 * Reported: CPU ns per published message and per delivery, median and minimum of ROUNDS, with the
 * ratio to `none`. On a shared machine the minimum is the steadier figure. Never asserted.
 * Env: BENCH_RECEIVERS (default 10), BENCH_MESSAGES per round (2000), BENCH_BATCH per turn (50), BENCH_ROUNDS (9).
 */
import { Buffer } from 'node:buffer';
import os from 'node:os';
import { Duplex } from 'node:stream';
import { BrokerCore } from '../src/broker/broker.js';
import { encode, PacketType } from '../src/protocol/index.js';

const RECEIVERS = Number(process.env.BENCH_RECEIVERS ?? 10);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 2000);
const BATCH = Number(process.env.BENCH_BATCH ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const PAYLOAD = Buffer.alloc(64, 0x61);

interface Scenario { name: string; configure: (broker: BrokerCore) => void }

const scenarios: Scenario[] = [
  { name: 'none', configure: () => {} },
  {
    name: 'emptied',
    configure: (b) => {
      b.intercept('publish', (m) => m)();
      b.intercept('delivery', (m) => m)();
    },
  },
  {
    name: 'trivial',
    configure: (b) => {
      b.intercept('publish', (m) => m);
      b.setHook('authorizeDelivery', () => true);
    },
  },
];

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

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Setup { s: Scenario; broker: BrokerCore; publisher: Sink; sinks: Sink[] }

async function setup(s: Scenario): Promise<Setup> {
  const broker = new BrokerCore({ maxQueuedMessages: 100_000 });
  s.configure(broker);
  const connect = (sink: Sink, clientId: string): void => {
    broker.handle(sink, 'bench');
    sink.push(encode({ type: PacketType.Connect, protocolVersion: 4, protocolName: 'MQTT', clientId, clean: true, keepalive: 0 }, 4));
  };
  const sinks: Sink[] = [];
  for (let i = 0; i < RECEIVERS; i++) {
    const sink = new Sink();
    connect(sink, `r${i}`);
    sink.push(encode({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'bench/ext/+', qos: 0 }] }, 4));
    sinks.push(sink);
  }
  const publisher = new Sink();
  connect(publisher, 'publisher');
  await turn();
  await turn();
  return { s, broker, publisher, sinks };
}

/** BATCH PUBLISH packets in one chunk, built once. */
const batch = Buffer.concat(Array.from({ length: BATCH }, (_, i) => encode({
  type: PacketType.Publish, topic: `bench/ext/${i % 4}`, payload: PAYLOAD, qos: 0, retain: false, dup: false,
}, 4)));

async function round(x: Setup): Promise<number> {
  for (const sink of x.sinks) sink.publishes = 0;
  const expected = Math.ceil(MESSAGES / BATCH) * BATCH * RECEIVERS;
  const start = process.cpuUsage();
  for (let sent = 0; sent < MESSAGES; sent += BATCH) {
    x.publisher.push(batch);
    await turn();
  }
  let got = 0;
  for (let i = 0; i < 1000; i++) {
    got = x.sinks.reduce((n, sink) => n + sink.publishes, 0);
    if (got >= expected) break;
    await turn();
  }
  const used = process.cpuUsage(start);
  if (got !== expected) throw new Error(`${x.s.name}: ${got} deliveries, expected ${expected}`);
  return (used.user + used.system) * 1000 / (expected / RECEIVERS);
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}`);
  console.log(`1 publisher, ${RECEIVERS} receivers, QoS 0, ${MESSAGES} messages per round in batches of ${BATCH}, ${PAYLOAD.length} B payload, ${ROUNDS} rounds`);
  const setups: Setup[] = [];
  for (const s of scenarios) setups.push(await setup(s));
  const times: number[][] = scenarios.map(() => []);
  for (const x of setups) for (let w = 0; w < 3; w++) await round(x);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < setups.length; i++) (times[i] as number[]).push(await round(setups[i] as Setup));
  }
  const base = median(times[0] as number[]);
  const baseMin = Math.min(...(times[0] as number[]));
  console.log('scenario   median ns/msg  ns/delivery  vs none    min ns/msg  vs none');
  scenarios.forEach((s, i) => {
    const ns = median(times[i] as number[]);
    const min = Math.min(...(times[i] as number[]));
    console.log(`${s.name.padEnd(11)}${ns.toFixed(0).padStart(13)}  ${(ns / RECEIVERS).toFixed(0).padStart(11)}  ${(ns / base).toFixed(2).padStart(6)}x  ${min.toFixed(0).padStart(11)}  ${(min / baseMin).toFixed(2).padStart(6)}x`);
  });
  for (const x of setups) {
    const closed = x.broker.closeConnections();
    for (const sink of [...x.sinks, x.publisher]) sink.destroy();
    await closed;
  }
}

await main();
