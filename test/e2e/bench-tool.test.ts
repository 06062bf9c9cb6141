/**
 * `petrel bench` as users run it (`node build/src/bin/petrel.js bench ...`) against an
 * in-process Petrel broker (TCP and WebSocket listeners on port 0) and against Mosquitto: the
 * JSON summary's shape, no loss at QoS 1 [MQTT-4.3.2-1], consistent counts, and a clear error
 * with a non-zero exit code when nothing listens. No timing is asserted.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Summary } from '../../src/bench/run.js';
import { type Broker, createBroker } from '../../src/petrel.js';

const BIN = fileURLToPath(new URL('../../src/bin/petrel.js', import.meta.url));
const MOSQUITTO = '/usr/sbin/mosquitto';
/** Bounds one run of the tool (2 s of load, connects and the wait for deliveries, on a loaded machine). */
const RUN_MS = 60_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function bench(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'bench', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`petrel bench ${args.join(' ')} did not exit within ${RUN_MS} ms; stderr: ${stderr}`));
    }, RUN_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function summary(args: string[]): Promise<Summary> {
  const run = await bench([...args, '--json']);
  assert.equal(run.code, 0, `exit ${run.code}; stderr: ${run.stderr}`);
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 1, 'one JSON object on stdout');
  // Not a TTY: progress is plain lines on stderr.
  for (const line of run.stderr.split('\n').filter((l) => l !== '')) assert.match(line, /^t=\d+s sent=\d+ .*recv=\d+ .*conn=\d+ err=\d+$/);
  return JSON.parse(lines[0] as string) as Summary;
}

function checkShape(s: Summary): void {
  for (const key of ['p50', 'p90', 'p99', 'p999', 'max', 'count', 'mean'] as const) {
    assert.equal(typeof s.latencyMs[key], 'number');
    assert.equal(typeof s.connectMs[key], 'number');
  }
  assert.equal(typeof s.throughput.sentPerSec, 'number');
  assert.equal(typeof s.throughput.receivedPerSec, 'number');
  assert.equal(typeof s.cpu.usPerMessage, 'number');
  assert.equal(typeof s.errors, 'object');
  assert.ok(s.latencyMs.p50 <= s.latencyMs.p90 && s.latencyMs.p90 <= s.latencyMs.p99 && s.latencyMs.p99 <= s.latencyMs.p999 && s.latencyMs.p999 <= s.latencyMs.max);
}

/** p2p at QoS 1: every acknowledged message arrives, once. */
function checkP2pQos1(s: Summary, pairs: number): void {
  checkShape(s);
  assert.equal(s.scenario, 'p2p');
  assert.deepEqual(s.clients, { requested: 2 * pairs, connected: 2 * pairs, failed: 0 });
  assert.equal(s.publishers, pairs);
  assert.equal(s.subscribers, pairs);
  assert.ok(s.sent > 0);
  assert.equal(s.acked, s.sent);
  assert.equal(s.expected, s.acked);
  assert.equal(s.lost, 0);
  assert.equal(s.duplicates, 0);
  assert.equal(s.received, s.sent);
  assert.equal(s.unfinished, 0);
  assert.equal(s.drain, 'complete');
  assert.equal(s.latencyMs.count, s.received);
  assert.equal(s.connectMs.count, 2 * pairs);
  assert.deepEqual(s.errors, {});
}

function checkFanout(s: Summary, subscribers: number): void {
  checkShape(s);
  assert.equal(s.publishers, 1);
  assert.equal(s.subscribers, subscribers);
  assert.equal(s.expected, s.acked * subscribers);
  assert.equal(s.lost, 0);
  assert.equal(s.received, s.expected);
}

function checkConn(s: Summary, count: number): void {
  checkShape(s);
  assert.deepEqual(s.clients, { requested: count, connected: count, failed: 0 });
  assert.equal(s.connectMs.count, count);
  assert.equal(s.sent, 0);
  assert.equal(s.expected, null);
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('petrel bench against Petrel', () => {
  let broker: Broker;
  let port = 0;
  let wsPort = 0;
  before(async () => {
    broker = createBroker({});
    port = (await broker.listen({ type: 'tcp', port: 0, host: '127.0.0.1' })).port;
    wsPort = (await broker.listen({ type: 'ws', port: 0, host: '127.0.0.1' })).port;
  });
  after(() => broker.close());

  test('p2p --count 4 --duration 2 --qos 1: no loss, counts agree [MQTT-4.3.2-1]', async () => {
    checkP2pQos1(await summary(['p2p', '--count', '4', '--duration', '2', '--qos', '1', '-p', String(port)]), 4);
  });

  test('p2p at QoS 2 over 5.0 with a message count: every message once [MQTT-4.3.3-1]', async () => {
    const s = await summary(['p2p', '-c', '2', '-d', '5', '-q', '2', '-V', '5', '-n', '500', '--inflight', '8', '-p', String(port)]);
    checkP2pQos1(s, 2);
    assert.equal(s.sent, 1000);
  });

  test('conn: a connect storm reports every connect time', async () => {
    checkConn(await summary(['conn', '-c', '20', '-R', '500', '-p', String(port)]), 20);
  });

  test('fanout at QoS 1: each message to every subscriber', async () => {
    checkFanout(await summary(['fanout', '-c', '3', '-d', '2', '-q', '1', '-p', String(port)]), 3);
  });

  test('ws:// p2p at QoS 1', async () => {
    const s = await summary(['p2p', '-c', '2', '-d', '2', '-q', '1', '--url', `ws://127.0.0.1:${wsPort}/mqtt`]);
    checkP2pQos1(s, 2);
    assert.equal(s.url, `ws://127.0.0.1:${wsPort}/mqtt`);
  });

  test('a port where nothing listens: a clear error and exit code 1', async () => {
    const closed = await freePort();
    const run = await bench(['p2p', '-c', '2', '-d', '1', '-p', String(closed)]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`no client could connect to mqtt://127\\.0\\.0\\.1:${closed}: socket:ECONNREFUSED \\(4\\)`));
  });

  test('a usage error exits 2', async () => {
    const run = await bench(['nosuch']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown scenario 'nosuch'/);
  });
});

describe('petrel bench against Mosquitto', { skip: existsSync(MOSQUITTO) ? false : `${MOSQUITTO} not installed` }, () => {
  let child: ChildProcess;
  let port = 0;
  let dir = '';
  before(async () => {
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'petrel-bench-mosq-'));
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n`);
    child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}`);
      const ok = await new Promise<boolean>((resolve) => {
        const s = tcpConnect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      });
      if (ok) break;
      if (i >= 100) throw new Error('mosquitto did not listen');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  after(async () => {
    if (child.exitCode === null && child.pid !== undefined) {
      const exited = once(child, 'exit');
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('p2p --count 4 --duration 2 --qos 1: no loss, counts agree [MQTT-4.3.2-1]', async () => {
    checkP2pQos1(await summary(['p2p', '--count', '4', '--duration', '2', '--qos', '1', '-p', String(port)]), 4);
  });

  test('conn and fanout', async () => {
    checkConn(await summary(['conn', '-c', '10', '-p', String(port)]), 10);
    checkFanout(await summary(['fanout', '-c', '3', '-d', '2', '-q', '1', '-p', String(port)]), 3);
  });
});
