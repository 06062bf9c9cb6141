/**
 * Broker CPU per delivered PUBLISH, 3.1.1 vs 5.0 receivers: `npm run bench:v5-delivery`.
 *
 * One BrokerCore fans each message out to N in-process receivers. Each receiver is a fake
 * Duplex: what the broker writes is kept (not decoded) while the clock runs, so the time is the
 * broker's own work (route, per-receiver encode, batch, stream write). One round publishes one
 * message and waits for the broker's end-of-turn flush. QoS 1 receivers are acknowledged between
 * timed rounds (their PUBACKs are not timed). Scenarios:
 *   3.1.1              MQTT 3.1.1 receivers
 *   5.0                5.0 receivers without topic aliases (the shared-encoding path)
 *   5.0+alias          Topic Alias Maximum 10 (the common MQTT.js setting)
 *   5.0+alias+expiry   the same, every message with a Message Expiry Interval
 *   5.0+subid          a subscription identifier on each subscription, no aliases
 * Every message also carries a content type and a user property for the 5.0 receivers.
 * Reported: process CPU time (user + system, so other load on the machine does not count) per
 * delivery, median and minimum of ROUNDS, each with its ratio to 3.1.1 at the same QoS. On a
 * shared machine the minimum is the steadier figure.
 * Env: BENCH_ONLY (scenario names, comma separated), BENCH_QOS (0 or 1), BENCH_RECEIVERS (default 1000), BENCH_MESSAGES per round (default 100), BENCH_ROUNDS (9).
 */
import { Buffer } from 'node:buffer';
import os from 'node:os';
import { Duplex } from 'node:stream';
import { BrokerCore } from '../src/broker/broker.js';
import { Decoder, encode, PacketType, type Properties, type QoS } from '../src/protocol/index.js';

const RECEIVERS = Number(process.env.BENCH_RECEIVERS ?? 1000);
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const TOPICS = ['bench/v5/room-1/temperature', 'bench/v5/room-2/temperature', 'bench/v5/room-3/humidity', 'bench/v5/room-4/co2'];
const PAYLOAD = Buffer.alloc(128, 0x61);

interface Scenario { name: string; version: 4 | 5; aliasMax: number; expiry: boolean; subId: boolean }

const allScenarios: Scenario[] = [
  { name: '3.1.1', version: 4, aliasMax: 0, expiry: false, subId: false },
  { name: '5.0', version: 5, aliasMax: 0, expiry: false, subId: false },
  { name: '5.0+alias', version: 5, aliasMax: 10, expiry: false, subId: false },
  { name: '5.0+alias+expiry', version: 5, aliasMax: 10, expiry: true, subId: false },
  { name: '5.0+subid', version: 5, aliasMax: 0, expiry: false, subId: true },
];
/** BENCH_ONLY=name,name runs a subset (3.1.1 is always kept as the reference). */
const only = process.env.BENCH_ONLY?.split(',');
const scenarios = allScenarios.filter((s) => only === undefined || s.name === '3.1.1' || only.includes(s.name));
const QOS: QoS[] = process.env.BENCH_QOS === undefined ? [0, 1] : [Number(process.env.BENCH_QOS) as QoS];

/**
 * The broker's side of a receiver. What the broker writes is walked packet by packet (a few
 * byte reads) to count PUBLISHes and note QoS 1 packet identifiers; nothing is retained, so the
 * bench adds no garbage of its own. The last chunk is kept to be decoded between rounds.
 */
class Sink extends Duplex {
  publishes = 0;
  ids: number[] = [];
  last: Buffer | undefined;
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
      if (first >> 4 === PacketType.Publish) {
        this.publishes++;
        if ((first & 0x06) !== 0) {
          const idAt = p + 2 + (((chunk[p] as number) << 8) | (chunk[p + 1] as number));
          this.ids.push(((chunk[idAt] as number) << 8) | (chunk[idAt + 1] as number));
        }
      }
      pos = p + len;
    }
    this.last = chunk;
    cb();
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function setup(s: Scenario, qos: QoS): Promise<{ broker: BrokerCore; sinks: Sink[] }> {
  const broker = new BrokerCore({ maxInflight: 65535, maxQueuedMessages: 100_000 });
  const sinks: Sink[] = [];
  for (let i = 0; i < RECEIVERS; i++) {
    const sink = new Sink();
    broker.handle(sink, 'bench');
    const props: Properties | undefined = s.version === 5 ? { receiveMaximum: 65535, topicAliasMaximum: s.aliasMax } : undefined;
    sink.push(encode({
      type: PacketType.Connect, protocolVersion: s.version, protocolName: 'MQTT', clientId: `r${i}`, clean: true, keepalive: 0,
      ...(props === undefined ? {} : { properties: props }),
    }, s.version));
    sink.push(encode({
      type: PacketType.Subscribe, packetId: 1,
      subscriptions: [{ topicFilter: 'bench/v5/#', qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
      ...(s.subId ? { properties: { subscriptionIdentifiers: [i + 1] } } : {}),
    }, s.version));
    sinks.push(sink);
  }
  await turn();
  await turn();
  drain(sinks, s.version);
  return { broker, sinks };
}

/** Checks that the last chunk decodes; acknowledges QoS 1 PUBLISHes; returns the PUBLISH count since the last call. */
function drain(sinks: Sink[], version: 4 | 5): number {
  let publishes = 0;
  for (const sink of sinks) {
    publishes += sink.publishes;
    sink.publishes = 0;
    if (sink.last !== undefined) new Decoder({ protocolVersion: version }).push(sink.last);
    sink.last = undefined;
    const ids = sink.ids;
    if (ids.length === 0) continue;
    const acks = Buffer.allocUnsafe(4 * ids.length);
    ids.forEach((id, i) => acks.writeUInt32BE(0x40020000 + id, 4 * i));
    sink.ids = [];
    sink.push(acks);
  }
  return publishes;
}

async function round(s: Scenario, broker: BrokerCore, sinks: Sink[], qos: QoS, seq: number): Promise<number> {
  const properties: Properties = {
    contentType: 'application/json', userProperties: [['source', 'sensor-7']],
    ...(s.expiry ? { messageExpiryInterval: 3600 } : {}),
  };
  const start = process.cpuUsage();
  for (let m = 0; m < MESSAGES; m++) {
    void broker.publish({ topic: TOPICS[(seq + m) % TOPICS.length] as string, payload: PAYLOAD, qos, properties });
    await turn();
  }
  // A turn that writes to many connections may leave its writes for the next (busy-turn coalescing).
  await turn();
  const used = process.cpuUsage(start);
  const ns = (used.user + used.system) * 1000;
  const delivered = drain(sinks, s.version);
  if (delivered !== MESSAGES * RECEIVERS) throw new Error(`${s.name}: ${delivered} deliveries, expected ${MESSAGES * RECEIVERS}`);
  await turn();
  return ns / delivered;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}`);
  console.log(`${RECEIVERS} receivers, ${MESSAGES} messages per round, ${PAYLOAD.length} B payload, median of ${ROUNDS} rounds`);
  for (const qos of QOS) {
    const setups = [];
    for (const s of scenarios) setups.push({ s, ...(await setup(s, qos)) });
    const times: number[][] = scenarios.map(() => []);
    // Warm-up, then the scenarios alternate round by round so that drift hits all alike.
    for (const x of setups) for (let w = 0; w < 2; w++) await round(x.s, x.broker, x.sinks, qos, w);
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < setups.length; i++) {
        const x = setups[i] as (typeof setups)[number];
        (times[i] as number[]).push(await round(x.s, x.broker, x.sinks, qos, r));
      }
    }
    const base = median(times[0] as number[]);
    console.log(`\nQoS ${qos}`);
    const baseMin = Math.min(...(times[0] as number[]));
    console.log('scenario            median ns  vs 3.1.1    min ns  vs 3.1.1');
    scenarios.forEach((s, i) => {
      const ns = median(times[i] as number[]);
      const min = Math.min(...(times[i] as number[]));
      console.log(`${s.name.padEnd(20)}${ns.toFixed(0).padStart(9)}  ${(ns / base).toFixed(2).padStart(7)}x ${min.toFixed(0).padStart(9)}  ${(min / baseMin).toFixed(2).padStart(7)}x`);
    });
    for (const x of setups) {
      const closed = x.broker.closeConnections();
      for (const sink of x.sinks) sink.destroy();
      await closed;
    }
  }
}

await main();
