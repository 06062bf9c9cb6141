/** Starting, watching and stopping the brokers under test; each runs pinned to core 0. */
import { type ChildProcess, execFileSync, execSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { BenchCerts } from './certs.js';
import { sleep, type Transport } from './common.js';

/**
 * `petrel-memory`: Petrel with `--store memory`; `petrel-interval`: Petrel on SQLite with
 * `store.durability: interval` (the log synced every second, not per acknowledgement): for the
 * durable scenarios only.
 */
export type BrokerName = 'petrel' | 'petrel-memory' | 'petrel-interval' | 'mosquitto' | 'aedes';
/** The brokers run by default. */
export const BROKERS: readonly BrokerName[] = ['petrel', 'mosquitto', 'aedes'];
/** Every name BENCH_BROKERS accepts. */
export const ALL_BROKERS: readonly BrokerName[] = ['petrel', 'petrel-memory', 'petrel-interval', 'mosquitto', 'aedes'];

export const BROKER_CORE = '0';
export const GENERATOR_CORE = '1';
/**
 * Same fd limit for every broker: 65536, or the hard limit when that is lower (raising the hard
 * limit needs CAP_SYS_RESOURCE, which containers often lack).
 */
const HARD_NOFILE = Number(execSync('sh -c "ulimit -Hn"').toString().trim());
export const BROKER_NOFILE = Number.isFinite(HARD_NOFILE) && HARD_NOFILE < 65536 ? HARD_NOFILE : 65536;

/**
 * Mosquitto's production defaults except two settings: no persistence (the Debian package's
 * mosquitto.conf turns it on; Mosquitto's own default is off) and a queue bound large enough
 * never to drop (default 1000). `allow_anonymous true` is needed for a listener without
 * authentication in 2.x. Everything else is the default, among them max_inflight_messages 20,
 * max_queued_bytes 0 (no limit), max_connections -1 and set_tcp_nodelay false.
 */
export const MOSQUITTO_SETTINGS = [
  'allow_anonymous true',
  'persistence false',
  'max_queued_messages 1000000',
];

/**
 * The durable scenarios: Mosquitto with `persistence true` in the run's own directory (it saves
 * its in-memory state every autosave_interval, default 1800 s, and at shutdown: not per message).
 */
function mosquittoDurableSettings(dir: string): string[] {
  return MOSQUITTO_SETTINGS.map((l) => (l === 'persistence false' ? 'persistence true' : l)).concat(`persistence_location ${dir}/`);
}

/**
 * Petrel runs with its defaults: no config file, only the listener address and ports. The
 * WebSocket listener (on by default, port 8083) is turned off, or moved to a free port for the
 * WebSocket runs; the TLS one is added on a free port for the TLS runs.
 */
// No HTTP API: it costs nothing per message, and a fixed port would collide between brokers of one run.
export const PETREL_ARGS = ['--host', '127.0.0.1', '--http-port', 'off'];

export interface RunningBroker {
  name: BrokerName;
  pid: number;
  /** The port the clients connect to: that of the run's transport. */
  port: number;
  transport: Transport;
  child: ChildProcess;
  /** The broker's data directory in the run's temporary directory (removed by stopBroker unless BENCH_KEEP_DATA is set). */
  dataDir: string | undefined;
}

/** Where `command` puts a broker's data (the port makes it the run's own); undefined: none. */
function dataDirOf(name: BrokerName, tmp: string, port: number): string | undefined {
  if (name === 'petrel' || name === 'petrel-memory' || name === 'petrel-interval') return path.join(tmp, `petrel-data-${port}`);
  if (name === 'mosquitto') return path.join(tmp, `mosquitto-data-${port}`);
  return undefined;
}

export interface ProcSample {
  /** utime + stime in seconds. */
  cpuSec: number;
  rssKiB: number;
}

const CLK_TCK = Number(execSync('getconf CLK_TCK').toString().trim()) || 100;

export function sample(pid: number): ProcSample {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields after the command name start at field 3 (state); utime and stime are fields 14 and 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = /VmRSS:\s+(\d+)/.exec(status);
  return { cpuSec: ticks / CLK_TCK, rssKiB: Number(rss?.[1] ?? 0) };
}

/** The machine's steal and total CPU ticks so far (/proc/stat, all CPUs). */
export interface CpuTicks { steal: number; total: number }

export function cpuTicks(): CpuTicks {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user).
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  return { steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
}

/** Percent of the CPU time between two `cpuTicks` samples that was stolen. */
export function stealPct(a: CpuTicks, b: CpuTicks): number {
  const total = b.total - a.total;
  return total > 0 ? (100 * (b.steal - a.steal)) / total : 0;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Returns why the broker cannot run, or undefined when it can (installing Mosquitto if needed). */
export function unavailable(name: BrokerName, root: string): string | undefined {
  if (name === 'petrel' || name === 'petrel-memory' || name === 'petrel-interval') {
    const bin = path.join(root, 'build/src/bin/petrel.js');
    return fs.existsSync(bin) ? undefined : `${bin} does not exist yet`;
  }
  if (name === 'aedes') {
    return fs.existsSync(path.join(root, 'node_modules/aedes')) ? undefined : 'node_modules/aedes is missing (npm install)';
  }
  if (onPath('mosquitto')) return undefined;
  console.log('mosquitto is not on PATH: running `apt-get update && apt-get install -y mosquitto`');
  try {
    execSync('apt-get update && apt-get install -y mosquitto', { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  } catch (err) {
    return `installing mosquitto failed: ${err instanceof Error ? err.message : String(err)}`;
  }
  return onPath('mosquitto') ? undefined : 'mosquitto still not on PATH after apt-get install';
}

/** Petrel's listener flags for a run over `transport`; the TLS and WebSocket ports are picked by the broker (0). */
function petrelListenerArgs(transport: Transport, tmp: string, port: number, certs: BenchCerts | undefined): string[] {
  const tcp = ['--port', String(port)];
  switch (transport) {
    case 'tcp':
      return [...tcp, '--ws-port', 'off'];
    case 'ws':
      return [...tcp, '--ws-port', '0'];
    case 'tls':
      if (certs === undefined) throw new Error('no certificates for the TLS listener');
      return [...tcp, '--ws-port', 'off', '--tls-port', '0', '--cert', certs.cert, '--key', certs.key];
    case 'wss': {
      // No flag adds a secure WebSocket listener: a config file with only the listeners list.
      if (certs === undefined) throw new Error('no certificates for the secure WebSocket listener');
      const conf = path.join(tmp, `petrel-wss-${port}.json`);
      fs.writeFileSync(conf, JSON.stringify({
        listeners: [{ type: 'tcp', port }, { type: 'wss', port: 0, path: '/mqtt', cert: certs.cert, key: certs.key }],
      }, null, 2));
      return [...tcp, '--config', conf];
    }
  }
}

/** Mosquitto's listener lines: TCP on `port`, plus the run's transport on `extra`. */
function mosquittoListeners(transport: Transport, port: number, extra: number, certs: BenchCerts | undefined): string[] {
  const lines = [`listener ${port} 127.0.0.1`];
  if (transport === 'tcp') return lines;
  lines.push(`listener ${extra} 127.0.0.1`);
  if (transport === 'ws' || transport === 'wss') lines.push('protocol websockets');
  if (transport === 'tls' || transport === 'wss') {
    if (certs === undefined) throw new Error('no certificates for the TLS listener');
    lines.push(`certfile ${certs.cert}`, `keyfile ${certs.key}`);
  }
  return lines;
}

function command(name: BrokerName, transport: Transport, port: number, extra: number, root: string, tmp: string,
  certs: BenchCerts | undefined, durable: boolean): string[] {
  switch (name) {
    case 'petrel':
    case 'petrel-memory':
    case 'petrel-interval': {
      let config = process.env.BENCH_PETREL_CONFIG;
      if (name === 'petrel-interval') {
        config = path.join(tmp, `petrel-interval-${port}.json`);
        fs.writeFileSync(config, JSON.stringify({ store: { durability: 'interval' } }));
      }
      // BENCH_PETREL_NODE_FLAGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the broker.
      return [
        process.execPath, ...(process.env.BENCH_PETREL_NODE_FLAGS ?? '').split(' ').filter((f) => f !== ''),
        path.join(root, 'build/src/bin/petrel.js'), ...petrelListenerArgs(transport, tmp, port, certs), ...PETREL_ARGS,
        // The default SQLite store, in the run's own directory.
        '--data-dir', dataDirOf(name, tmp, port)!,
        ...(name === 'petrel-memory' ? ['--store', 'memory'] : []),
        // BENCH_PETREL_CONFIG: a config file, for investigations only; reported runs use the defaults.
        ...(config !== undefined && transport !== 'wss' ? ['--config', config] : []),
      ];
    }
    case 'aedes':
      if (transport !== 'tcp') throw new Error(`the Aedes bench server has no ${transport} listener`);
      return [process.execPath, path.join(root, 'build/bench/throughput/aedes-server.js'), String(port), '127.0.0.1'];
    case 'mosquitto': {
      const conf = path.join(tmp, `mosquitto-${port}.conf`);
      const dataDir = dataDirOf(name, tmp, port)!;
      if (durable) fs.mkdirSync(dataDir, { recursive: true });
      const settings = durable ? mosquittoDurableSettings(dataDir) : MOSQUITTO_SETTINGS;
      fs.writeFileSync(conf, [...mosquittoListeners(transport, port, extra, certs), ...settings, ''].join('\n'));
      return ['mosquitto', '-c', conf];
    }
  }
}

/**
 * Petrel: the port of its `listening` log record for `type`, read from the log file after
 * `offset` (where this run's output starts); bounded by `timeoutMs`.
 */
async function loggedPort(logFile: string, offset: number, type: Transport, child: ChildProcess, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`broker exited (${child.exitCode ?? child.signalCode})`);
    const text = fs.readFileSync(logFile).subarray(offset).toString('utf8');
    for (const line of text.split('\n')) {
      if (!line.includes('"listening"')) continue;
      try {
        const rec = JSON.parse(line) as { msg?: unknown; type?: unknown; port?: unknown };
        if (rec.msg === 'listening' && rec.type === type && typeof rec.port === 'number') return rec.port;
      } catch {
        // A line still being written.
      }
    }
    await sleep(50);
  }
  throw new Error(`no 'listening' record for a ${type} listener after ${timeoutMs} ms`);
}

/** Resolves once something accepts TCP connections on the port; bounded by `timeoutMs`. */
async function waitListening(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`broker exited (${child.exitCode ?? child.signalCode})`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`broker not listening on ${port} after ${timeoutMs} ms`);
}

/** Starts the broker under `prlimit` (fd limit) and `taskset` (core 0); both exec, so the PID is the broker's. */
export async function startBroker(name: BrokerName, root: string, tmp: string, transport: Transport = 'tcp',
  certs?: BenchCerts, durable = false): Promise<RunningBroker> {
  const port = await freePort();
  const extra = name === 'mosquitto' && transport !== 'tcp' ? await freePort() : 0;
  const cmd = command(name, transport, port, extra, root, tmp, certs, durable);
  const logFile = path.join(tmp, `${name}.log`);
  const log = fs.openSync(logFile, 'a');
  const offset = fs.fstatSync(log).size;
  const child = spawn('prlimit', [`--nofile=${BROKER_NOFILE}:${BROKER_NOFILE}`, 'taskset', '-c', BROKER_CORE, ...cmd], {
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  if (child.pid === undefined) throw new Error(`could not spawn ${name}`);
  const broker: RunningBroker = { name, pid: child.pid, port, transport, child, dataDir: dataDirOf(name, tmp, port) };
  try {
    await waitListening(port, child, 15_000);
    if (transport !== 'tcp') {
      broker.port = name !== 'mosquitto' ? await loggedPort(logFile, offset, transport, child, 15_000) : extra;
      await waitListening(broker.port, child, 15_000);
    }
  } catch (err) {
    await stopBroker(broker);
    throw err;
  }
  return broker;
}

/**
 * SIGTERM, wait up to 5 s, then SIGKILL and wait up to 2 s more; then removes the broker's data
 * directory (a durable run's SQLite store is tens of MB), unless BENCH_KEEP_DATA is set. The logs
 * stay in the run's temporary directory.
 */
export async function stopBroker(b: RunningBroker): Promise<void> {
  await stopProcess(b);
  if (b.dataDir !== undefined && process.env.BENCH_KEEP_DATA === undefined) fs.rmSync(b.dataDir, { recursive: true, force: true });
}

async function stopProcess(b: RunningBroker): Promise<void> {
  const exited = (): boolean => b.child.exitCode !== null || b.child.signalCode !== null;
  const waitExit = async (ms: number): Promise<boolean> => {
    for (let t = 0; t < ms && !exited(); t += 20) await sleep(20);
    return exited();
  };
  if (exited()) return;
  b.child.kill('SIGTERM');
  if (await waitExit(5000)) return;
  console.log(`  ${b.name} (pid ${b.pid}) ignored SIGTERM for 5 s: SIGKILL`);
  b.child.kill('SIGKILL');
  await waitExit(2000);
}
