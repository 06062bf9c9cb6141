/**
 * `npm run bench:tool`: `petrel bench p2p` at QoS 0 and QoS 1 against Petrel (its default
 * settings; a child listening on port 0, the port read from its `listening` log record) and
 * Mosquitto (`mosquitto -c <temporary config>` on a free port), one broker at a time, each
 * stopped by its PID. One row per broker and QoS: delivered/s, p50 / p99 latency and loss.
 * With taskset available the broker runs on core 0 and the tool on core 1, as in `npm run bench`.
 *
 * Env: BENCH_SECONDS (default 5), BENCH_PAIRS (p2p pairs, default 4), BENCH_SIZE (payload bytes, default 64),
 * BENCH_BROKERS (petrel,mosquitto), BENCH_QOS (0,1).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Summary } from '../src/bench/run.js';
import { freePort, MOSQUITTO_SETTINGS } from './throughput/brokers.js';
import { sleep } from './throughput/common.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PETREL = path.join(ROOT, 'build/src/bin/petrel.js');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const PAIRS = Number(process.env.BENCH_PAIRS ?? 4);
const SIZE = Number(process.env.BENCH_SIZE ?? 64);
const BROKERS = (process.env.BENCH_BROKERS ?? 'petrel,mosquitto').split(',').map((s) => s.trim()).filter((s) => s !== '');
const QOS = (process.env.BENCH_QOS ?? '0,1').split(',').map((s) => Number(s.trim()));
const START_MS = 15_000;
const STOP_MS = 5_000;

const pinned = spawnSync('taskset', ['-c', '0', 'true']).status === 0 && os.cpus().length >= 2;
const onCore = (core: string, cmd: string[]): string[] => (pinned ? ['taskset', '-c', core, ...cmd] : cmd);

interface Running {
  name: string;
  child: ChildProcess;
  pid: number;
  port: number;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves with the first line `match` accepts from the child's stdout; bounded by `ms`. */
function firstLine<T>(child: ChildProcess, ms: number, match: (line: string) => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => done(new Error(`nothing matching within ${ms} ms`)), ms);
    const onData = (chunk: string): void => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const value = match(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        if (value !== undefined) return done(undefined, value);
      }
    };
    const onExit = (): void => done(new Error(`exited with ${child.exitCode ?? child.signalCode}`));
    const done = (err: Error | undefined, value?: T): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (err !== undefined) reject(err);
      else resolve(value as T);
    };
    child.stdout?.setEncoding('utf8').on('data', onData);
    child.once('exit', onExit);
  });
}

async function startPetrel(tmp: string): Promise<Running> {
  // Defaults but for where it listens and keeps its data (the default SQLite store, in the run's directory).
  const cmd = onCore('0', [process.execPath, PETREL, '--host', '127.0.0.1', '--port', '0', '--ws-port', 'off', '--http-port', 'off', '--data-dir', path.join(tmp, 'petrel-data')]);
  const child = spawn(cmd[0] as string, cmd.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  if (child.pid === undefined) throw new Error('could not spawn petrel');
  const port = await firstLine(child, START_MS, (line) => {
    try {
      const rec = JSON.parse(line) as { msg?: unknown; type?: unknown; port?: unknown };
      return rec.msg === 'listening' && rec.type === 'tcp' && typeof rec.port === 'number' ? rec.port : undefined;
    } catch {
      return undefined;
    }
  });
  // Keep reading its log so that a full pipe never stalls it.
  child.stdout?.resume();
  return { name: 'petrel', child, pid: child.pid, port };
}

async function startMosquitto(tmp: string): Promise<Running> {
  const port = await freePort();
  const conf = path.join(tmp, `mosquitto-${port}.conf`);
  fs.writeFileSync(conf, [`listener ${port} 127.0.0.1`, ...MOSQUITTO_SETTINGS, ''].join('\n'));
  const cmd = onCore('0', ['mosquitto', '-c', conf]);
  const child = spawn(cmd[0] as string, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  if (child.pid === undefined) throw new Error('could not spawn mosquitto');
  child.stderr?.resume();
  // Mosquitto logs nothing on stdout we could wait for: a bench `conn` run is the readiness probe.
  const deadline = Date.now() + START_MS;
  for (;;) {
    if (exited(child)) throw new Error(`mosquitto exited with ${child.exitCode ?? child.signalCode}`);
    const probe = spawnSync(process.execPath, [PETREL, 'bench', 'conn', '-c', '1', '-p', String(port), '--json'], { timeout: 10_000 });
    if (probe.status === 0) break;
    if (Date.now() > deadline) throw new Error(`mosquitto not listening on ${port} after ${START_MS} ms`);
    await sleep(100);
  }
  return { name: 'mosquitto', child, pid: child.pid, port };
}

/** SIGTERM to the PID, wait up to 5 s, then SIGKILL. */
async function stop(b: Running): Promise<void> {
  if (exited(b.child)) return;
  const gone = new Promise<void>((resolve) => b.child.once('exit', () => resolve()));
  process.kill(b.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    console.error(`${b.name} (pid ${b.pid}) ignored SIGTERM for ${STOP_MS} ms: SIGKILL`);
    if (!exited(b.child)) process.kill(b.pid, 'SIGKILL');
  }, STOP_MS);
  await gone;
  clearTimeout(timer);
}

function runTool(port: number, qos: number): Summary {
  const cmd = onCore('1', [process.execPath, PETREL, 'bench', 'p2p', '-c', String(PAIRS), '-d', String(SECONDS), '-q', String(qos),
    '-s', String(SIZE), '-p', String(port), '--json']);
  const run = spawnSync(cmd[0] as string, cmd.slice(1), { encoding: 'utf8', timeout: (SECONDS + 120) * 1000, maxBuffer: 1 << 24 });
  if (run.status !== 0) throw new Error(`petrel bench exited with ${run.status ?? run.signal}: ${run.stderr.trim().split('\n').at(-1) ?? ''}`);
  return JSON.parse(run.stdout.trim()) as Summary;
}

const rows: string[][] = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-bench-tool-'));
try {
  console.log(`petrel bench p2p: ${PAIRS} pairs, ${SIZE} B payload, ${SECONDS} s per run, MQTT 3.1.1; ` +
    `${pinned ? 'broker on core 0, tool on core 1' : 'not pinned (no taskset or one core)'}; load ${os.loadavg()[0]?.toFixed(2)}`);
  for (const name of BROKERS) {
    for (const qos of QOS) {
      // A fresh broker per run, as in `npm run bench`.
      const b = name === 'petrel' ? await startPetrel(tmp) : name === 'mosquitto' ? await startMosquitto(tmp) : undefined;
      if (b === undefined) throw new Error(`unknown broker ${name} (petrel, mosquitto)`);
      try {
        const s = runTool(b.port, qos);
        const delivered = s.throughput.receivedPerSec;
        rows.push([name, String(qos), delivered.toFixed(0), s.latencyMs.p50.toFixed(2), s.latencyMs.p99.toFixed(2),
          s.lost === null ? 'n/a' : String(s.lost), String(s.duplicates), s.drain]);
        console.error(`  ${name} QoS ${qos}: ${delivered.toFixed(0)} delivered/s`);
      } finally {
        await stop(b);
      }
    }
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

const head = ['broker', 'QoS', 'delivered/s', 'p50 ms', 'p99 ms', 'lost', 'duplicates', 'drain'];
console.log(`| ${head.join(' | ')} |`);
console.log(`|${head.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`);
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
