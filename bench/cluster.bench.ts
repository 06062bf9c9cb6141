/**
 * The cluster hop: fan-out and p2p through 1, 2 and 3 in-process Petrel nodes over one real
 * redis-server (started here, appendonly yes, appendfsync always). p2p: one publisher on node 1,
 * one subscriber on the last node (so with 1 node no hop). Fan-out: one publisher on node 1, one
 * subscriber on every node. BENCH_MESSAGES (default 20,000) QoS BENCH_QOS (default 1) messages
 * of 64 bytes, published in windows of 100. Reports messages/s at the subscribers, the median and
 * p99 end-to-end latency (a timestamp in the payload), and CPU (this process: every node and the
 * clients) per delivered message; the difference to the 1-node run is what the hop costs.
 * redis-server's own CPU is not included. Run: npm run bench:cluster.
 */
import { Buffer } from 'node:buffer';
import mqtt, { type MqttClient } from 'mqtt';
import { ClusterNode } from '../src/cluster/index.js';
import { type Broker, createBroker } from '../src/petrel.js';
import { RedisServer } from '../test/helpers/redis-server.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 20_000);
const QOS = Number(process.env.BENCH_QOS ?? 1) as 0 | 1;
const WINDOW = 100;

interface Node { broker: Broker; cluster: ClusterNode; url: string }

async function startNodes(redisUrl: string, n: number, run: number): Promise<Node[]> {
  const out: Node[] = [];
  for (let i = 0; i < n; i++) {
    const cluster = new ClusterNode({ redis: redisUrl, nodeId: `bench-${run}-${i}`, prefix: `bench${run}:` });
    const broker = createBroker({ cluster });
    await cluster.start(broker);
    const l = await broker.listen({ port: 0, host: '127.0.0.1', type: 'tcp' });
    out.push({ broker, cluster, url: `mqtt://127.0.0.1:${l.port}` });
  }
  return out;
}

async function connect(url: string, clientId: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, { clientId, protocolVersion: 5, reconnectPeriod: 0 });
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

async function scenario(redisUrl: string, kind: 'p2p' | 'fanout', n: number, run: number): Promise<string> {
  const nodes = await startNodes(redisUrl, n, run);
  const targets = kind === 'p2p' ? [nodes[n - 1]!] : nodes;
  const subs = await Promise.all(targets.map((node, i) => connect(node.url, `sub-${i}`)));
  const latencies: number[] = [];
  let received = 0;
  const expected = MESSAGES * subs.length;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  for (const s of subs) {
    s.on('message', (_t: string, payload: Buffer) => {
      latencies.push(performance.now() - payload.readDoubleLE(0));
      if (++received === expected) done();
    });
    await s.subscribeAsync('bench/t', { qos: QOS });
  }
  // Every other node knows the subscriptions before the run starts.
  for (;;) {
    const ready = nodes.every((node) => targets.every((t) => t === node || node.cluster.routesOf(t.cluster.nodeId).includes('bench/t')));
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const pub = await connect(nodes[0]!.url, 'pub');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let sent = 0; sent < MESSAGES; sent += WINDOW) {
    const batch: Promise<unknown>[] = [];
    for (let i = 0; i < WINDOW && sent + i < MESSAGES; i++) {
      const payload = Buffer.alloc(64);
      payload.writeDoubleLE(performance.now(), 0);
      batch.push(pub.publishAsync('bench/t', payload, { qos: QOS }));
    }
    await Promise.all(batch);
  }
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((x, y) => x - y);
  await Promise.all([...subs, pub].map((c) => c.endAsync(true)));
  for (const node of nodes) {
    await node.cluster.close();
    await node.broker.close();
  }
  const perMsg = (cpu.user + cpu.system) / expected;
  return `| ${kind} | ${n} | ${Math.round(expected / seconds).toLocaleString('en-US')} | ${pct(latencies, 0.5).toFixed(2)} | ${pct(latencies, 0.99).toFixed(2)} | ${perMsg.toFixed(1)} |`;
}

const redis = await RedisServer.start({ appendOnly: true });
try {
  console.log(`QoS ${QOS}, ${MESSAGES} messages of 64 bytes, windows of ${WINDOW}`);
  console.log('| scenario | nodes | deliveries/s | p50 ms | p99 ms | CPU µs per delivery |');
  console.log('|---|---|---|---|---|---|');
  let run = 0;
  for (const kind of ['p2p', 'fanout'] as const) {
    for (const n of [1, 2, 3]) console.log(await scenario(redis.url, kind, n, run++));
  }
} finally {
  await redis.close();
}
