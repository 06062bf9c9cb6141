/**
 * Codec benchmark: Petrel vs mqtt-packet on the same inputs, in one run. For each case, decode
 * (the same Buffer fed to Petrel's Decoder and to mqtt-packet's parser, counting packets
 * emitted) and encode (Petrel's encode vs mqtt-packet's generate). Each pair warms up, then the
 * two alternate for a fixed time (BENCH_MS per side, default 1000) and medians are compared.
 * Run: npm run bench:codec
 */
import { Buffer } from 'node:buffer';
import os from 'node:os';
import mqttPacket from 'mqtt-packet';
import { Decoder, encode, type Packet, PacketType } from '../src/protocol/index.js';
import { toMqttPacket } from '../test/helpers/codec-mqtt-packet.js';

const RUN_MS = Number(process.env.BENCH_MS ?? 1000);
const WARMUP_MS = Math.max(200, RUN_MS / 3);

interface Case { name: string; version: 3 | 4 | 5; packet: Packet }

const payload = Buffer.alloc(128, 0x61);
const props5 = { messageExpiryInterval: 3600, contentType: 'application/json', userProperties: [['source', 'sensor-7']] as Array<[string, string]> };
const cases: Case[] = [
  { name: 'PUBLISH QoS 0, 128 B, 3.1.1', version: 4, packet: { type: PacketType.Publish, topic: 'sensors/building-1/floor-2/temp', payload, qos: 0, retain: false, dup: false } },
  { name: 'PUBLISH QoS 1, 128 B, 3.1.1', version: 4, packet: { type: PacketType.Publish, topic: 'sensors/building-1/floor-2/temp', payload, qos: 1, retain: false, dup: false, packetId: 4242 } },
  { name: 'PUBLISH QoS 0, 128 B, 5.0 + 3 props', version: 5, packet: { type: PacketType.Publish, topic: 'sensors/building-1/floor-2/temp', payload, qos: 0, retain: false, dup: false, properties: props5 } },
  { name: 'PUBLISH QoS 1, 128 B, 5.0 + 3 props', version: 5, packet: { type: PacketType.Publish, topic: 'sensors/building-1/floor-2/temp', payload, qos: 1, retain: false, dup: false, packetId: 4242, properties: props5 } },
  {
    name: 'CONNECT 3.1.1 (will, user, password)', version: 4,
    packet: {
      type: PacketType.Connect, protocolVersion: 4, protocolName: 'MQTT', clientId: 'client-0001', clean: true, keepalive: 60,
      username: 'alice', password: Buffer.from('secret'), will: { topic: 'status/client-0001', payload: Buffer.from('offline'), qos: 1, retain: true },
    },
  },
  {
    name: 'CONNECT 5.0 (properties, will)', version: 5,
    packet: {
      type: PacketType.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: 'client-0001', clean: true, keepalive: 60,
      username: 'alice', password: Buffer.from('secret'),
      properties: { sessionExpiryInterval: 300, receiveMaximum: 100, topicAliasMaximum: 10 },
      will: { topic: 'status/client-0001', payload: Buffer.from('offline'), qos: 1, retain: true, properties: { willDelayInterval: 5 } },
    },
  },
  {
    name: 'SUBSCRIBE 3.1.1 (3 filters)', version: 4,
    packet: {
      type: PacketType.Subscribe, packetId: 7,
      subscriptions: [{ topicFilter: 'sensors/+/temp', qos: 1 }, { topicFilter: 'alerts/#', qos: 2 }, { topicFilter: 'cmd/client-0001', qos: 0 }],
    },
  },
  {
    name: 'SUBSCRIBE 5.0 (3 filters, sub id)', version: 5,
    packet: {
      type: PacketType.Subscribe, packetId: 7, properties: { subscriptionIdentifiers: [12] },
      subscriptions: [
        { topicFilter: 'sensors/+/temp', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        { topicFilter: 'alerts/#', qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 1 },
        { topicFilter: 'cmd/client-0001', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 2 },
      ],
    },
  },
];

/** Calls `op` (which returns how many operations it did) in batches for `ms`; returns ops/s. */
function measure(op: () => number, ms: number): number {
  const batch = 1000;
  const start = process.hrtime.bigint();
  const limit = BigInt(Math.round(ms * 1e6));
  let ops = 0;
  let elapsed = 0n;
  do {
    for (let i = 0; i < batch; i++) ops += op();
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < limit);
  return ops / (Number(elapsed) / 1e9);
}

const ROUNDS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/**
 * Warms both up, then alternates them for ROUNDS rounds of RUN_MS / ROUNDS each and takes the
 * median of each side, so a change in machine load hits both sides alike.
 */
function benchPair(petrel: () => number, other: () => number): { petrel: number; other: number } {
  measure(petrel, WARMUP_MS);
  measure(other, WARMUP_MS);
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    a.push(measure(petrel, RUN_MS / ROUNDS));
    b.push(measure(other, RUN_MS / ROUNDS));
  }
  return { petrel: median(a), other: median(b) };
}

function petrelDecode(c: Case, bytes: Buffer): () => number {
  const d = new Decoder({ protocolVersion: c.version });
  return () => d.push(bytes).length;
}

function mqttPacketDecode(c: Case, bytes: Buffer): () => number {
  const parser = mqttPacket.parser({ protocolVersion: c.version });
  let count = 0;
  parser.on('packet', () => { count++; });
  parser.on('error', (e: unknown) => { throw e; });
  return () => {
    const before = count;
    parser.parse(bytes);
    return count - before;
  };
}

interface Row { name: string; op: string; petrel: number; other: number }
const rows: Row[] = [];

for (const c of cases) {
  const bytes = encode(c.packet, c.version);
  const theirs = toMqttPacket(c.packet, c.version);
  const generated = mqttPacket.generate(theirs, { protocolVersion: c.version });
  // Sanity: both libraries decode the input to exactly one packet and produce the same size.
  if (petrelDecode(c, bytes)() !== 1 || mqttPacketDecode(c, bytes)() !== 1) throw new Error(`${c.name}: input does not decode to one packet`);
  if (generated.length !== bytes.length) throw new Error(`${c.name}: encodings differ in size (${bytes.length} vs ${generated.length})`);

  rows.push({ name: c.name, op: 'decode', ...benchPair(petrelDecode(c, bytes), mqttPacketDecode(c, bytes)) });
  rows.push({
    name: c.name, op: 'encode',
    ...benchPair(
      () => (encode(c.packet, c.version).length > 0 ? 1 : 0),
      () => (mqttPacket.generate(theirs, { protocolVersion: c.version }).length > 0 ? 1 : 0),
    ),
  });
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
console.log(`codec benchmark: Node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), ${RUN_MS} ms per side per measurement, ${ROUNDS} alternating rounds, medians\n`);
console.log('| Case | Op | Petrel ops/s | mqtt-packet ops/s | Petrel / mqtt-packet |');
console.log('|---|---|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.name} | ${r.op} | ${fmt(r.petrel)} | ${fmt(r.other)} | ${(r.petrel / r.other).toFixed(2)}x |`);
