/**
 * End-to-end throughput benchmark: Petrel, Mosquitto and Aedes, one at a time, each on core 0,
 * driven by raw-socket load generators on core 1. A fresh broker is started for every run.
 *
 * Env: BENCH_SECONDS (default 10), BENCH_BROKERS (petrel,mosquitto,aedes),
 * BENCH_SCENARIOS (p2p,p2p-tls,p2p-ws,p2p-wss,fanout,fanout-tls,fanout-ws,fanout-wss,fanin,rate,headline,
 * p2p5,p2p5-expiry,fanout5,fanout5-expiry,p2p-durable,fanout-durable,storm; groups: transports, v5, v5cmp,
 * flows, durable), BENCH_QOS (0,1,2),
 * BENCH_STORM_CLIENTS (19000). The -tls, -ws and -wss scenarios are p2p and fanout over TLS,
 * WebSocket and secure WebSocket, with a certificate made for the run (certs.ts). The -durable
 * scenarios (QoS 1, subscribers with persistent sessions) run Petrel on its default SQLite store,
 * Petrel with `--store memory` (broker name petrel-memory, added by default when a durable
 * scenario is chosen; never run for the others), Petrel with `store.durability: interval`
 * (petrel-interval, when named in BENCH_BROKERS) and Mosquitto with `persistence true`.
 * Brokers' logs stay in the run's temporary directory; their data directories are removed after
 * each run unless BENCH_KEEP_DATA is set.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ALL_BROKERS, BROKERS, type BrokerName, type RunningBroker, cpuTicks, sample, startBroker, stealPct, stopBroker, unavailable } from './brokers.js';
import { type BenchCerts, makeBenchCerts } from './certs.js';
import { Child } from './children.js';
import { type BenchQoS, type FlowScenarioName, isDurable, SCENARIO_GROUPS, SCENARIOS, type ScenarioName, sleep } from './common.js';
import { flowText, report, type RunRecord, type StormRecord, title } from './report.js';
import { protocolOf, qosLevelsOf, STORM_CLIENTS, STORM_WORKERS, transportOf } from './scenarios.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const OUT_DIR = path.join(ROOT, '.bench-tmp');
const MiB = 1024;

function list<T extends string>(env: string | undefined, all: readonly T[], groups: Readonly<Record<string, readonly T[]>> = {}): T[] {
  if (env === undefined || env.trim() === '') return [...all];
  const wanted: string[] = env.split(',').map((s) => s.trim()).flatMap((w): readonly string[] => groups[w] ?? [w]);
  const bad = wanted.filter((w) => !(all as readonly string[]).includes(w));
  if (bad.length > 0) throw new Error(`unknown value(s) ${bad.join(', ')}; expected some of ${all.join(', ')}`);
  return all.filter((a) => wanted.includes(a));
}

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
/**
 * A flow run during which the hypervisor took more than this share (percent) of the machine's CPU
 * (steal time) is run again, up to BENCH_STEAL_RETRIES more times; the run with the least steal
 * is reported, with the number of attempts. Default 5%; 100 turns the retries off.
 */
const MAX_STEAL = Number(process.env.BENCH_MAX_STEAL ?? 5);
const STEAL_RETRIES = Number(process.env.BENCH_STEAL_RETRIES ?? 2);
const STORM_TOTAL = Number(process.env.BENCH_STORM_CLIENTS ?? STORM_CLIENTS);

async function runFlow(b: RunningBroker, scenario: FlowScenarioName, qos: BenchQoS, certs: BenchCerts | undefined): Promise<RunRecord> {
  const ca = b.transport === 'tls' || b.transport === 'wss' ? [certs?.ca ?? ''] : [];
  const gen = new Child('generator.js', [scenario, String(qos), String(b.port), String(SECONDS), ...ca]);
  const load1 = os.loadavg()[0] ?? 0;
  try {
    await gen.expect('ready', 120_000);
    const before = sample(b.pid);
    const ticks = cpuTicks();
    const t0 = Date.now();
    gen.send({ kind: 'go' });
    const { flow } = await gen.expect('result', SECONDS * 1000 + 60_000);
    const after = sample(b.pid);
    const steal = stealPct(ticks, cpuTicks());
    const cpu = after.cpuSec - before.cpuSec;
    const rec: RunRecord = {
      broker: b.name, scenario, qos, protocol: flow.protocol, load1, load1After: os.loadavg()[0] ?? 0, stealPct: steal,
      flow: {
        ...flow, brokerCpuSec: cpu, brokerCpuUsPerMsg: (cpu * 1e6) / Math.max(1, flow.delivered),
        brokerCpuShare: cpu / ((Date.now() - t0) / 1000), brokerRssMiB: after.rssKiB / MiB,
      },
    };
    const f = rec.flow;
    console.log(`    ${f?.deliveredPerSec.toFixed(0)} msg/s delivered, p50 ${f?.latencyP50Ms.toFixed(2)} ms, p99 ${f?.latencyP99Ms.toFixed(2)} ms, ` +
      `max ${f?.latencyMaxMs.toFixed(1)} ms (after ${flow.warmupSeconds} s warm-up; whole run p99 ${flow.latencyP99AllMs.toFixed(2)}, max ${flow.latencyMaxAllMs.toFixed(1)} ms), broker ${f?.brokerCpuUsPerMsg.toFixed(2)} µs/msg (CPU ${((f?.brokerCpuShare ?? 0) * 100).toFixed(0)}%), ` +
      `RSS ${f?.brokerRssMiB.toFixed(1)} MiB, generator CPU ${(flow.generatorCpuShare * 100).toFixed(0)}%, window ${flow.window}, steal ${steal.toFixed(1)}%`);
    if (flow.drainEnd !== 'complete') {
      console.log(`    wait after publishing: ${flow.drainEnd} after ${flow.drainSeconds.toFixed(1)} s; ${flow.unfinished} QoS ${qos} exchanges still open; ` +
        `${flow.published} published, ${flow.acked} acknowledged`);
    }
    if (flow.lost > 0) {
      const msg = `${flow.lost} of ${flow.expected} expected deliveries missing`;
      if (qos > 0) console.log(`\n    !!!!!! LOST AT QoS ${qos}: ${msg} (against acknowledged messages) !!!!!!\n`);
      else console.log(`    (QoS 0: ${msg})`);
    }
    if (flow.duplicates > 0) console.log(`    ${qos === 2 ? '!!!!!! ' : ''}${flow.duplicates} duplicate deliveries at QoS ${qos}`);
    if (flow.protocol === 5) console.log(`    ${flow.aliasOnly} of ${flow.delivered} deliveries carried only a topic alias`);
    if (flow.refused > 0) console.log(`    ${flow.refused} PUBLISHes refused with a failure reason code`);
    if (flow.topicErrors > 0) console.log(`    !!! ${flow.topicErrors} deliveries on a wrong or unresolvable topic`);
    if (flow.clientErrors > 0) console.log(`    !!! ${flow.clientErrors} client connections failed or were closed by the broker`);
    return rec;
  } finally {
    await gen.exit(15_000);
  }
}

async function runStorm(b: RunningBroker): Promise<RunRecord> {
  await sleep(500);
  const before = sample(b.pid);
  const per = Math.ceil(STORM_TOTAL / STORM_WORKERS);
  const workers = Array.from({ length: STORM_WORKERS }, (_, w) =>
    new Child('storm.js', [String(b.port), String(w), String(Math.min(per, STORM_TOTAL - w * per))]));
  try {
    await Promise.all(workers.map((w) => w.expect('ready', 30_000)));
    for (const w of workers) w.send({ kind: 'go' });
    const results = (await Promise.all(workers.map((w) => w.expect('storm', 300_000)))).map((m) => m.storm);
    await sleep(2000);
    const after = sample(b.pid);
    const connected = results.reduce((a, r) => a + r.connected, 0);
    const seconds = (Math.max(...results.map((r) => r.finishedAt)) - Math.min(...results.map((r) => r.startedAt))) / 1000;
    const storm: StormRecord = {
      clients: STORM_TOTAL, connected, failed: results.reduce((a, r) => a + r.failed, 0), seconds,
      connectsPerSec: connected / seconds,
      rssBeforeMiB: before.rssKiB / MiB, rssAfterMiB: after.rssKiB / MiB,
      rssPerConnKiB: (after.rssKiB - before.rssKiB) / Math.max(1, connected),
      brokerCpuSec: after.cpuSec - before.cpuSec,
      generatorCpuSec: results.reduce((a, r) => a + r.cpuSec, 0),
    };
    console.log(`    ${connected}/${STORM_TOTAL} connected in ${seconds.toFixed(2)} s (${storm.connectsPerSec.toFixed(0)}/s), ` +
      `RSS ${storm.rssBeforeMiB.toFixed(1)} -> ${storm.rssAfterMiB.toFixed(1)} MiB (${storm.rssPerConnKiB.toFixed(1)} KiB/conn)`);
    if (storm.failed > 0) console.log(`    !!! ${storm.failed} connections failed`);
    return { broker: b.name, scenario: 'storm', qos: undefined, protocol: 4, load1: os.loadavg()[0] ?? 0, storm };
  } finally {
    for (const w of workers) w.send({ kind: 'close' });
    await Promise.all(workers.map((w) => w.exit(30_000)));
  }
}

async function runOne(name: BrokerName, scenario: ScenarioName, qos: BenchQoS | undefined, tmp: string,
  certs: BenchCerts | undefined): Promise<RunRecord> {
  const protocol = scenario === 'storm' ? 4 : protocolOf(scenario);
  const transport = scenario === 'storm' ? 'tcp' : transportOf(scenario);
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${name}: ${title(scenario, qos, protocol)} (load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')})`);
  if (name === 'aedes' && protocol === 5) {
    console.log('    skipped: Aedes 1.x refuses MQTT 5.0 CONNECT');
    return { broker: name, scenario, qos, protocol, load1: os.loadavg()[0] ?? 0, skipped: 'no MQTT 5.0' };
  }
  if (name === 'aedes' && transport !== 'tcp') {
    console.log(`    skipped: the Aedes bench server listens on TCP only`);
    return { broker: name, scenario, qos, protocol, load1: os.loadavg()[0] ?? 0, skipped: `TCP only` };
  }
  if (name === 'aedes' && isDurable(scenario)) {
    console.log('    skipped: the Aedes bench server keeps no durable state');
    return { broker: name, scenario, qos, protocol, load1: os.loadavg()[0] ?? 0, skipped: 'no durable store' };
  }
  let broker: RunningBroker | undefined;
  try {
    broker = await startBroker(name, ROOT, tmp, transport, certs, isDurable(scenario));
    return scenario === 'storm' ? await runStorm(broker) : await runFlow(broker, scenario, qos ?? 0, certs);
  } catch (err) {
    // One line: the message lands in a table cell.
    const error = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ');
    console.log(`    FAILED: ${error}`);
    return { broker: name, scenario, qos, protocol, load1: os.loadavg()[0] ?? 0, error };
  } finally {
    if (broker !== undefined) await stopBroker(broker);
  }
}

/** Runs `run` again while the hypervisor stole more than MAX_STEAL% of the CPU (see MAX_STEAL); the least stolen run. */
async function leastStolen(run: () => Promise<RunRecord>): Promise<RunRecord> {
  let best = await run();
  let last = best;
  for (let attempt = 2; attempt <= 1 + STEAL_RETRIES && (best.stealPct ?? 0) > MAX_STEAL; attempt++) {
    console.log(`    steal ${last.stealPct?.toFixed(1)}% > ${MAX_STEAL}%: run again (attempt ${attempt} of ${1 + STEAL_RETRIES})`);
    last = await run();
    if (last.flow !== undefined && (last.stealPct ?? 0) < (best.stealPct ?? 0)) best = last;
    best.attempts = attempt;
  }
  return best;
}

async function main(): Promise<void> {
  const scenarios = list(process.env.BENCH_SCENARIOS, SCENARIOS, SCENARIO_GROUPS);
  const defaults = scenarios.some(isDurable) ? ALL_BROKERS : BROKERS;
  const brokers = process.env.BENCH_BROKERS === undefined || process.env.BENCH_BROKERS.trim() === ''
    ? [...defaults] : list(process.env.BENCH_BROKERS, ALL_BROKERS);
  const qosList = list(process.env.BENCH_QOS, ['0', '1', '2'] as const).map((q): BenchQoS => (q === '2' ? 2 : q === '1' ? 1 : 0));
  if (!(SECONDS > 0 && SECONDS <= 600)) throw new Error('BENCH_SECONDS must be in (0, 600]');
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-bench-'));
  const ready = brokers.filter((b) => {
    const why = unavailable(b, ROOT);
    if (why !== undefined) console.log(`SKIPPING ${b}: ${why}`);
    return why === undefined;
  });
  const certs = scenarios.some((s) => s !== 'storm' && (transportOf(s) === 'tls' || transportOf(s) === 'wss'))
    ? makeBenchCerts(tmp) : undefined;
  const load0 = os.loadavg();
  console.log(`brokers: ${ready.join(', ')}; scenarios: ${scenarios.join(', ')}; QoS ${qosList.join(',')}; ${SECONDS} s per run; logs in ${tmp}`);
  console.log(`load average at start: ${load0.map((l) => l.toFixed(2)).join(' ')} (${os.cpus().length} CPUs)`);
  const records: RunRecord[] = [];
  for (const scenario of scenarios) {
    for (const qos of scenario === 'storm' ? [undefined] : qosList.filter((q) => qosLevelsOf(scenario).includes(q))) {
      for (const b of ready) {
        // Petrel without a store is the same broker as petrel outside the durable scenarios.
        if ((b === 'petrel-memory' || b === 'petrel-interval') && !isDurable(scenario)) continue;
        records.push(await leastStolen(() => runOne(b, scenario, qos, tmp, certs)));
      }
    }
  }
  if (certs !== undefined) fs.rmSync(certs.key, { force: true });
  const loadEnd = os.loadavg();
  const loads = records.map((r) => r.load1);
  const loadLine = `load average (1 min) at start ${load0[0]?.toFixed(2)}, at end ${loadEnd[0]?.toFixed(2)}, ` +
    `per run ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}; ${os.cpus().length} CPUs`;
  const text = `${loadLine}\n\n${report(records, ready)}`;
  console.log(`\n${flowText(records)}\n\nMarkdown:\n\n${text}`);
  const meta = {
    date: new Date().toISOString(), seconds: SECONDS, node: process.version, cpus: os.cpus().map((c) => c.model)[0], brokers: ready,
    loadStart: load0, loadEnd, env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_'))),
  };
  const stamp = meta.date.replace(/[:.]/g, '-');
  for (const name of [`throughput-${stamp}`, 'throughput-latest']) {
    fs.writeFileSync(path.join(OUT_DIR, `${name}.json`), JSON.stringify({ ...meta, records }, null, 2));
    fs.writeFileSync(path.join(OUT_DIR, `${name}.md`), text);
  }
  console.log(`results: ${path.join(OUT_DIR, `throughput-${stamp}.json`)}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : String(err));
  process.exit(1);
});
