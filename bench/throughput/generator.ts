/**
 * Load generator for one throughput run (a child of run.js, pinned to its own core).
 * Usage: node generator.js <scenario> <qos> <port> <seconds> [<CA file>]
 * (the CA that signed the broker's certificate, for the TLS and secure WebSocket scenarios).
 * Connects the subscribers and publishers, reports 'ready', publishes on 'go' for the given
 * time, then reports a FlowResult and exits.
 */
import fs from 'node:fs';
import { BenchClient, type DeliveryStats, pool } from './clients.js';
import { type BenchQoS, type FlowScenarioName, Histogram, SCENARIOS, sendToParent, waitParent } from './common.js';
import { Flow } from './flow.js';
import { type FlowSpec, flowSpec, transportOf } from './scenarios.js';
import type { ClientOptions } from './wire.js';

const HOST = '127.0.0.1';
const CONNECT_CONCURRENCY = 200;

async function connectAll(spec: FlowSpec, conn: ClientOptions, stats: DeliveryStats): Promise<{ subs: BenchClient[]; pubs: BenchClient[] }> {
  const base = { ...conn, version: spec.protocol, topicAliasMaximum: spec.topicAliasMaximum };
  const subs: BenchClient[] = [];
  await pool(spec.subscriberFilters, CONNECT_CONCURRENCY, async (filter, i) => {
    const c = new BenchClient({ ...base, persistent: spec.persistentSubscribers, ...(filter.includes('#') || filter.includes('+') ? {} : { expectedTopic: filter }) }, stats);
    subs.push(c);
    await c.handshake(`sub-${i}`);
    await c.subscribe(filter, spec.qos);
  });
  const pubs: BenchClient[] = new Array<BenchClient>(spec.publisherTopics.length);
  await pool(spec.publisherTopics, CONNECT_CONCURRENCY, async (_topics, i) => {
    const c = new BenchClient(base, undefined);
    pubs[i] = c;
    await c.handshake(`pub-${i}`);
  });
  return { subs, pubs };
}

function isFlowScenario(s: string | undefined): s is FlowScenarioName {
  return s !== undefined && s !== 'storm' && (SCENARIOS as readonly string[]).includes(s);
}

async function main(): Promise<void> {
  const [scenario, qosArg, portArg, secondsArg, caFile] = process.argv.slice(2);
  if (!isFlowScenario(scenario)) throw new Error(`unknown scenario ${scenario}`);
  const qos: BenchQoS = qosArg === '2' ? 2 : qosArg === '1' ? 1 : 0;
  const spec = flowSpec(scenario, qos);
  const stats: DeliveryStats = { delivered: 0, duplicates: 0, topicErrors: 0, lastDeliveryAt: 0,
    hist: new Histogram(), histAll: new Histogram(), steadyFrom: Number.POSITIVE_INFINITY };
  const conn: ClientOptions = {
    port: Number(portArg), host: HOST, transport: transportOf(scenario),
    ...(caFile !== undefined ? { ca: fs.readFileSync(caFile) } : {}),
  };
  const { subs, pubs } = await connectAll(spec, conn, stats);
  const flow = new Flow(spec, pubs, stats);
  for (const s of subs) s.onDelivered = flow.onDelivered;
  await sendToParent({ kind: 'ready' });
  await waitParent('go', 120_000);
  const all = [...subs, ...pubs];
  const result = await flow.run(Number(secondsArg), () => all.filter((c) => c.error !== undefined).length);
  result.aliasOnly = subs.reduce((a, c) => a + c.aliasOnly, 0);
  await sendToParent({ kind: 'result', flow: result });
  for (const c of all) c.close();
  process.exit(0);
}

main().catch(async (err: unknown) => {
  await sendToParent({ kind: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
