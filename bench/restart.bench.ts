/**
 * Restart time of the standalone server on a full data directory: BENCH_SESSIONS (default
 * 100,000) offline persistent sessions, each with one subscription, and BENCH_QUEUED (default
 * 1,000,000) queued 128-byte QoS 1 messages spread over them. The data directory is filled by
 * writing the store directly with SqliteStore batches (1,000 sessions per transaction, the
 * records the broker itself writes), not by driving a server. Then, BENCH_RUNS times (default
 * 3), the time from spawning `petrel --data-dir <dir>` to its `listening` log record, the
 * server's RSS then, and its own 'store opened' counts; the server is stopped with SIGTERM (by
 * PID) after each run. Reports the data directory size (db + WAL) per queued message.
 * Run: npm run bench:restart. Files go to a temporary directory, removed at the end.
 */
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { SqliteStore, type StoredMessage, type StoreOp } from '../src/persistence/index.js';

const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 100_000);
const QUEUED = Number(process.env.BENCH_QUEUED ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const START_MS = 600_000;
const BIN = join(import.meta.dirname, '../src/bin/petrel.js');

const root = mkdtempSync(join(os.tmpdir(), 'petrel-restart-bench-'));
const payload = Buffer.alloc(128, 0x61);

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function message(id: string): StoredMessage {
  return { id, topic: 'devices/telemetry', payload, qos: 1, retain: false, properties: undefined, expiresAt: undefined, senderId: 'publisher-1' };
}

function dirBytes(dir: string): number {
  let bytes = 0;
  for (const f of readdirSync(dir)) bytes += statSync(join(dir, f)).size;
  return bytes;
}

async function fill(dataDir: string): Promise<void> {
  const writer = new SqliteStore({ dataDir, durability: 'interval' });
  await writer.open();
  const start = process.hrtime.bigint();
  const perSession = SESSIONS === 0 ? 0 : Math.ceil(QUEUED / SESSIONS);
  // Offline for an hour from now: none expires during the runs.
  const expiresAt = Date.now() + 3_600_000 * 24;
  let queued = 0;
  for (let s = 0; s < SESSIONS; s += 1000) {
    const ops: StoreOp[] = [];
    for (let c = s; c < Math.min(SESSIONS, s + 1000); c++) {
      const clientId = `client-${c}`;
      ops.push({ op: 'session', session: { clientId, expiryInterval: 86_400 * 2, expiresAt, will: undefined, willAt: undefined } });
      ops.push({
        op: 'subscribe', clientId,
        subscription: { topicFilter: `devices/${c}/#`, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionIdentifier: undefined },
      });
      for (let k = 0; k < perSession && queued < QUEUED; k++, queued++) {
        const id = `m${queued}`;
        ops.push({ op: 'message', message: message(id) }, { op: 'enqueue', entry: { clientId, seq: k, messageId: id, qos: 1, retain: false, subscriptionIds: undefined } });
      }
    }
    await writer.write(ops);
  }
  await writer.close();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const bytes = dirBytes(dataDir);
  console.log(`filled in ${seconds.toFixed(1)} s: ${fmt(SESSIONS)} sessions, ${fmt(SESSIONS)} subscriptions, ${fmt(queued)} queued messages; ` +
    `data dir ${fmt(bytes / 1e6)} MB` + (queued > 0 ? `, ${(bytes / queued).toFixed(1)} bytes per queued message (sessions included)` : ''));
}

interface Run {
  seconds: number;
  rssMiB: number;
  opened: Record<string, unknown> | undefined;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

/** Spawns the server on `dataDir`; resolves at its `listening` record (bounded), then stops it by PID. */
function restart(dataDir: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    // BENCH_PETREL_NODE_FLAGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the server.
    const flags = (process.env.BENCH_PETREL_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
    const child = spawn(process.execPath, [...flags, BIN, '--port', '0', '--ws-port', 'off', '--http-port', 'off', '--host', '127.0.0.1', '--data-dir', dataDir],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = child.pid;
    if (pid === undefined) {
      reject(new Error('could not spawn petrel'));
      return;
    }
    let out = '';
    let opened: Record<string, unknown> | undefined;
    let result: Run | undefined;
    const timer = setTimeout(() => {
      process.kill(pid, 'SIGKILL');
      reject(new Error(`no listening record after ${START_MS} ms`));
    }, START_MS);
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      let nl: number;
      while (result === undefined && (nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec.msg === 'store opened') opened = rec;
        if (rec.msg === 'listening') {
          result = { seconds: Number(process.hrtime.bigint() - start) / 1e9, rssMiB: rssMiB(pid), opened };
          clearTimeout(timer);
          process.kill(pid, 'SIGTERM');
        }
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (result !== undefined) resolve(result);
      else reject(new Error(`petrel exited (${code ?? signal}) before listening`));
    });
  });
}

console.log(`Petrel restart benchmark; node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}; ` +
  `load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}; files in ${root}`);
try {
  if (!existsSync(BIN)) throw new Error(`${BIN} does not exist: npm run build:all first`);
  const dataDir = join(root, 'data');
  await fill(dataDir);
  const empty = join(root, 'empty');
  const base = await restart(empty);
  console.log(`empty data dir: listening after ${base.seconds.toFixed(2)} s, RSS ${base.rssMiB.toFixed(0)} MiB`);
  for (let run = 1; run <= RUNS; run++) {
    const r = await restart(dataDir);
    const o = r.opened ?? {};
    console.log(`restart #${run}: listening after ${r.seconds.toFixed(2)} s, RSS ${r.rssMiB.toFixed(0)} MiB; store opened: ` +
      `${String(o.sessions)} sessions, ${String(o.subscriptions)} subscriptions` +
      (o.queued !== undefined ? `, ${String(o.queued)} queued` : '') + `; data dir ${fmt(dirBytes(dataDir) / 1e6)} MB; load ${os.loadavg()[0]?.toFixed(2)}`);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
