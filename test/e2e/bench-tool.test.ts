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
import type { ClientInfo } from '../../src/broker/index.js';
import { type Broker, createBroker } from '../../src/petrel.js';
import { type CertFiles, makeCerts } from '../helpers/certs.js';

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
  let certs: CertFiles;
  let port = 0;
  let wsPort = 0;
  let tlsPort = 0;
  let wssPort = 0;
  /** The connection metadata of every client the broker accepted, by client identifier. */
  const accepted = new Map<string, ClientInfo>();
  before(async () => {
    certs = makeCerts();
    broker = createBroker({});
    broker.on('clientConnected', (info) => accepted.set(info.clientId, info));
    port = (await broker.listen({ type: 'tcp', port: 0, host: '127.0.0.1' })).port;
    wsPort = (await broker.listen({ type: 'ws', port: 0, host: '127.0.0.1' })).port;
    tlsPort = (await broker.listen({ type: 'tls', port: 0, host: '127.0.0.1', cert: certs.cert, key: certs.key })).port;
    wssPort = (await broker.listen({ type: 'wss', port: 0, host: '127.0.0.1', cert: certs.cert, key: certs.key })).port;
  });
  after(async () => {
    await broker.close();
    certs.cleanup();
  });

  /** The accepted connections whose client identifier starts with `prefix`. */
  function connectionsOf(prefix: string): ClientInfo[] {
    return [...accepted.values()].filter((c) => c.clientId.startsWith(prefix));
  }

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

  test('ws:// p2p: every connection came over the WebSocket listener [MQTT-6.0.0-3]', async () => {
    const s = await summary(['p2p', '-c', '2', '-d', '1', '-q', '1', '--prefix', 'ws-meta-', '--url', `ws://127.0.0.1:${wsPort}/mqtt`]);
    checkP2pQos1(s, 2);
    const conns = connectionsOf('ws-meta-');
    assert.equal(conns.length, 4);
    for (const c of conns) {
      assert.equal(c.connection.listener?.type, 'ws');
      assert.equal(c.connection.listener?.port, wsPort);
      assert.equal(c.connection.headers?.['sec-websocket-protocol'], 'mqtt');
    }
  });

  test('mqtts:// with --cafile: the broker saw TLS connections, verified against the test CA', async () => {
    const s = await summary(['p2p', '-c', '2', '-d', '1', '-q', '1', '--prefix', 'tls-meta-', '--cafile', certs.caCert,
      '--url', `mqtts://localhost:${tlsPort}`]);
    checkP2pQos1(s, 2);
    assert.equal(s.url, `mqtts://localhost:${tlsPort}`);
    const conns = connectionsOf('tls-meta-');
    assert.equal(conns.length, 4);
    for (const c of conns) {
      assert.equal(c.connection.listener?.type, 'tls');
      assert.match(c.connection.tls?.protocol ?? '', /^TLSv1\.[23]$/);
    }
  });

  test('mqtts:// to an IP address verifies the certificate\'s IP SAN', async () => {
    const s = await summary(['conn', '-c', '2', '--prefix', 'tls-ip-', '--cafile', certs.caCert, '--url', `mqtts://127.0.0.1:${tlsPort}`]);
    checkConn(s, 2);
    assert.equal(connectionsOf('tls-ip-').length, 2);
  });

  test('mqtts:// without the CA: the certificate does not verify, nothing connects, exit 1', async () => {
    const run = await bench(['conn', '-c', '2', '--url', `mqtts://localhost:${tlsPort}`]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /no client could connect to mqtts:\/\/localhost:\d+: socket:UNABLE_TO_VERIFY_LEAF_SIGNATURE \(2\)/);
  });

  test('mqtts:// --insecure without the CA: connects over TLS without verifying', async () => {
    checkConn(await summary(['conn', '-c', '2', '--prefix', 'tls-insecure-', '--insecure', '--url', `mqtts://localhost:${tlsPort}`]), 2);
    for (const c of connectionsOf('tls-insecure-')) assert.equal(c.connection.listener?.type, 'tls');
  });

  test('--cert and --key: a client certificate the listener requires, over mqtts:// and wss://', async () => {
    const alice = certs.client('bench-alice');
    const mtls = { cert: certs.cert, key: certs.key, ca: certs.ca, requestCert: true, requireCert: true };
    const tlsOnly = await broker.listen({ type: 'tls', port: 0, host: '127.0.0.1', ...mtls });
    const wssOnly = await broker.listen({ type: 'wss', port: 0, host: '127.0.0.1', ...mtls });
    for (const url of [`mqtts://localhost:${tlsOnly.port}`, `wss://localhost:${wssOnly.port}/mqtt`]) {
      const prefix = `mtls-${url.slice(0, url.indexOf(':'))}-`;
      const s = await summary(['conn', '-c', '2', '--prefix', prefix, '--cafile', certs.caCert, '--cert', alice.certFile, '--key', alice.keyFile, '--url', url]);
      checkConn(s, 2);
      const conns = connectionsOf(prefix);
      assert.equal(conns.length, 2, url);
      for (const c of conns) {
        assert.equal(c.connection.tls?.authorized, true, url);
        assert.equal(c.connection.tls?.peerCertificate?.subjectCN, 'bench-alice', url);
      }
      // Without the certificate the listener refuses the handshake.
      const refused = await bench(['conn', '-c', '1', '--cafile', certs.caCert, '--url', url]);
      assert.equal(refused.code, 1, url);
    }
  });

  test('wss:// with --cafile, from two source addresses', async () => {
    const s = await summary(['p2p', '-c', '2', '-d', '1', '-q', '1', '--prefix', 'wss-meta-', '--cafile', certs.caCert,
      '--ifaddr', '127.0.0.1,127.0.0.2', '--url', `wss://localhost:${wssPort}/mqtt`]);
    checkP2pQos1(s, 2);
    const conns = connectionsOf('wss-meta-');
    assert.equal(conns.length, 4);
    for (const c of conns) {
      assert.equal(c.connection.listener?.type, 'wss');
      assert.match(c.connection.tls?.protocol ?? '', /^TLSv1\.[23]$/);
    }
    assert.deepEqual(conns.map((c) => c.connection.remoteAddress).sort(), ['127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.2']);
  });

  test('--ifaddr 127.0.0.1,127.0.0.2: connections alternate between the source addresses', async () => {
    const s = await summary(['p2p', '-c', '2', '-d', '1', '-q', '1', '--prefix', 'ifaddr-', '--ifaddr', '127.0.0.2,127.0.0.1', '-p', String(port)]);
    checkP2pQos1(s, 2);
    const conns = connectionsOf('ifaddr-');
    assert.equal(conns.length, 4);
    const bySource = new Map<string, number>();
    for (const c of conns) bySource.set(c.connection.remoteAddress ?? '?', (bySource.get(c.connection.remoteAddress ?? '?') ?? 0) + 1);
    assert.deepEqual([...bySource.entries()].sort(), [['127.0.0.1', 2], ['127.0.0.2', 2]]);
    // One listener: the addresses are the sources, not different destinations.
    for (const c of conns) assert.equal(c.connection.listener?.port, port);
  });

  test('--ifaddr with TLS and WebSocket: the source address holds for every transport', async () => {
    for (const [scheme, p, extra] of [['mqtts', tlsPort, ['--cafile', certs.caCert]], ['ws', wsPort, []]] as const) {
      const prefix = `ifaddr-${scheme}-`;
      const s = await summary(['conn', '-c', '2', '--prefix', prefix, '--ifaddr', '127.0.0.2', ...extra, '--url', `${scheme}://localhost:${p}/mqtt`]);
      checkConn(s, 2);
      const conns = connectionsOf(prefix);
      assert.equal(conns.length, 2, scheme);
      for (const c of conns) assert.equal(c.connection.remoteAddress, '127.0.0.2', scheme);
    }
  });

  test('--ifaddr with an address of no local interface: the error names it, exit 1', async () => {
    const run = await bench(['conn', '-c', '2', '--ifaddr', '192.0.2.1', '-p', String(port)]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /EADDRNOTAVAIL/);
  });

  test('--ifaddr that is not an IP address: a usage error, exit 2', async () => {
    for (const bad of ['eth0', '127.0.0.1,nope', ',']) {
      const run = await bench(['conn', '-c', '1', '--ifaddr', bad, '-p', String(port)]);
      assert.equal(run.code, 2, bad);
      assert.match(run.stderr, /--ifaddr (takes IP addresses|needs at least one address)/, bad);
    }
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
