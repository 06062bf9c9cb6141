/**
 * The standalone server as a child process (`node build/src/bin/petrel.js`): flags, signals, its
 * JSON log on stdout; and the library's listener options: port 0, port fallback, several
 * brokers in one process.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt, { type IConnackPacket, type MqttClient } from 'mqtt';
import { FLAGS, usage } from '../../src/config/load.js';
import { type Broker, createBroker } from '../../src/petrel.js';
import { ReasonCode } from '../../src/protocol/index.js';
import { clientOptions, connectClient, endAll, Inbox, waitFor, withTimeout } from '../helpers/mqttjs.js';

/** Compiled CLI, next to this compiled test: build/test/e2e → build/src/bin. */
const BIN = fileURLToPath(new URL('../../src/bin/petrel.js', import.meta.url));
/** The repository's package.json and README: build/test/e2e → three levels up. */
const PACKAGE = fileURLToPath(new URL('../../../package.json', import.meta.url));
const README = fileURLToPath(new URL('../../../README.md', import.meta.url));
/** Starting node on a loaded machine can be slow; this bounds start-up and refusal. */
const START_MS = 15_000;
/** The shutdown bound the server promises. */
const STOP_MS = 5000;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface RunningServer {
  child: ChildProcess;
  host: string;
  port: number;
  url: string;
  exited: Promise<Exit>;
  stderr: () => string;
  stdout: () => string;
}

function spawnPetrel(args: string[]): { child: ChildProcess; exited: Promise<Exit>; stdout: () => string; stderr: () => string } {
  // Tests never bind fixed ports: without a --ws-port of its own, a test's server opens no WebSocket listener.
  const noWs = args.includes('--ws-port') ? args : [...args, '--ws-port', 'off'];
  // ... nor an HTTP API (test/e2e/http-api.test.ts starts it on port 0).
  const ws = noWs.includes('--http-port') ? noWs : [...noWs, '--http-port', 'off'];
  // ... and keeps its store (the default SQLite one) in a directory of its own.
  const all = [...ws, '--data-dir', mkdtempSync(join(tmpdir(), 'petrel-e2e-data-'))];
  const child = spawn(process.execPath, [BIN, ...all], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => { out += s; });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const exited = new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  return { child, exited, stdout: () => out, stderr: () => err };
}

/** Kills the process if the test left it running, and waits for it. */
async function reap(child: ChildProcess, exited: Promise<Exit>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await withTimeout(exited, STOP_MS, 'the server process to be reaped');
}

/** The JSON log records on stdout so far; a line that is not JSON fails the test. */
function records(stdout: string): Record<string, unknown>[] {
  return stdout.split('\n').filter((l) => l.length > 0).map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return assert.fail(`stdout line is not JSON: ${line}`);
    }
  });
}

/** Resolves with the first complete stdout record whose `msg` is `msg`. */
function waitForRecord(p: { child: ChildProcess; exited: Promise<Exit>; stdout: () => string; stderr: () => string }, msg: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const onData = (): void => {
      const out = p.stdout();
      const complete = out.slice(0, out.lastIndexOf('\n') + 1);
      const found = records(complete).find((r) => r.msg === msg);
      if (found === undefined) return;
      p.child.stdout?.off('data', onData);
      resolve(found);
    };
    p.child.stdout?.on('data', onData);
    onData();
    void p.exited.then((e) => reject(new Error(`petrel exited (${e.code ?? e.signal}) before logging "${msg}": ${p.stderr()}`)));
  });
}

/** Starts the CLI and resolves once it logged its `listening` record (JSON, with host and port). */
async function startPetrel(t: TestContext, args: string[]): Promise<RunningServer> {
  const p = spawnPetrel(args);
  t.after(() => reap(p.child, p.exited));
  const record = await withTimeout(waitForRecord(p, 'listening'), START_MS, 'petrel to log its listening record');
  assert.equal(typeof record.host, 'string');
  assert.equal(typeof record.port, 'number');
  const host = record.host as string;
  const port = record.port as number;
  return { child: p.child, host, port, url: `mqtt://127.0.0.1:${port}`, exited: p.exited, stderr: p.stderr, stdout: p.stdout };
}

/** Runs the CLI expecting it to refuse to start; resolves with its exit and output. */
async function runRefused(t: TestContext, args: string[]): Promise<Exit & { stdout: string; stderr: string }> {
  const p = spawnPetrel(args);
  t.after(() => reap(p.child, p.exited));
  const exit = await withTimeout(p.exited, START_MS, 'petrel to exit');
  return { ...exit, stdout: p.stdout(), stderr: p.stderr() };
}

function tempConfig(t: TestContext, name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-e2e-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** A plain TCP server holding a port on 127.0.0.1. */
async function occupyPort(): Promise<Server> {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1' }, resolve);
  });
  return server;
}

function portOf(server: Server): number {
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

/** Subscribes, publishes, and checks the message comes back through the broker at `url`. */
async function roundTrip(url: string, v: 4 | 5, clients: MqttClient[], tag: string): Promise<void> {
  const sub = await connectClient(url, v, { clientId: `${tag}-sub` });
  const pub = await connectClient(url, v, { clientId: `${tag}-pub` });
  clients.push(sub, pub);
  const inbox = new Inbox(sub);
  await sub.subscribeAsync(`${tag}/#`, { qos: 1 });
  await pub.publishAsync(`${tag}/x`, `hello ${tag}`, { qos: 1 });
  const got = await inbox.next(`${tag}/x`);
  assert.equal(got.payload, `hello ${tag}`);
}

describe('petrel CLI', () => {
  test('--port 0 --host 127.0.0.1: logs the bound port; clients connect and publish/subscribe works', async (t) => {
    const server = await startPetrel(t, ['--port', '0', '--host', '127.0.0.1']);
    assert.equal(server.host, '127.0.0.1');
    assert.ok(server.port > 0);
    const clients: MqttClient[] = [];
    t.after(() => endAll(clients));
    await roundTrip(server.url, 4, clients, 'v4');
    await roundTrip(server.url, 5, clients, 'v5');
  });

  test('--config with a YAML file: listener and broker keys are applied', async (t) => {
    const path = tempConfig(t, 'petrel.yaml', [
      'port: 0', 'host: 127.0.0.1', 'logLevel: info', 'broker:', '  maxPacketSize: 4096', '  receiveMaximum: 20', '',
    ].join('\n'));
    const server = await startPetrel(t, ['--config', path]);
    assert.equal(server.host, '127.0.0.1');
    const clients: MqttClient[] = [];
    t.after(() => endAll(clients));
    // A 5.0 CONNACK carries the broker's limits: the file's values show up there.
    const client = mqtt.connect(server.url, clientOptions(5, { clientId: 'yaml' }));
    clients.push(client);
    const [connack] = (await waitFor(client, 'connect')) as [IConnackPacket];
    assert.equal(connack.properties?.maximumPacketSize, 4096);
    assert.equal(connack.properties?.receiveMaximum, 20);
    await roundTrip(server.url, 4, clients, 'yaml');
  });

  test('--config with a JSON file, overridden by --port and --host flags', async (t) => {
    const path = tempConfig(t, 'petrel.json', JSON.stringify({ port: 1, host: '0.0.0.0', portFallback: 0, broker: { maxPacketSize: 8192, maximumQoS: 1 } }));
    const server = await startPetrel(t, ['--config', path, '--port', '0', '--host', '127.0.0.1']);
    assert.equal(server.host, '127.0.0.1');
    assert.notEqual(server.port, 1);
    const clients: MqttClient[] = [];
    t.after(() => endAll(clients));
    const client = mqtt.connect(server.url, clientOptions(5, { clientId: 'json' }));
    clients.push(client);
    const [connack] = (await waitFor(client, 'connect')) as [IConnackPacket];
    assert.equal(connack.properties?.maximumPacketSize, 8192);
    assert.equal(connack.properties?.maximumQoS, 1);
  });

  test('portFallback in the config file: a taken port moves the server to a following free one', async (t) => {
    const blocker = await occupyPort();
    t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const taken = portOf(blocker);
    const path = tempConfig(t, 'fallback.yaml', `port: ${taken}\nhost: 127.0.0.1\nportFallback: 10\n`);
    const server = await startPetrel(t, ['--config', path]);
    assert.notEqual(server.port, taken);
    assert.ok(server.port > taken && server.port <= taken + 10, `port ${server.port} follows ${taken}`);
    const clients: MqttClient[] = [];
    t.after(() => endAll(clients));
    await roundTrip(server.url, 4, clients, 'fallback');
  });

  for (const flag of ['--help', '-h']) {
    test(`${flag} prints the usage, listing every flag the loader accepts, and exits 0`, async (t) => {
      const result = await runRefused(t, [flag]);
      assert.deepEqual([result.code, result.signal], [0, null]);
      assert.match(result.stdout, /^Usage: petrel/);
      for (const name of Object.keys(FLAGS)) assert.match(result.stdout, new RegExp(`--${name}\\b`), `--${name} is listed`);
      assert.match(result.stdout, /-c, --config/);
      assert.match(result.stdout, /-p, --port/);
      assert.equal(result.stderr, '');
      // The README shows the same rows.
      const readme = readFileSync(README, 'utf8');
      for (const row of usage().split('\n').filter((l) => l.startsWith('  '))) assert.ok(readme.includes(row), `README lacks: ${row}`);
    });
  }

  test('--version prints the version of package.json and exits 0', async (t) => {
    const { version } = JSON.parse(readFileSync(PACKAGE, 'utf8')) as { version: string };
    const result = await runRefused(t, ['--version']);
    assert.deepEqual([result.code, result.signal], [0, null]);
    assert.equal(result.stdout, `petrel ${version}\n`);
  });

  test('an unknown flag exits 2 with a message on stderr pointing to --help', async (t) => {
    const result = await runRefused(t, ['--bogus']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--bogus/);
    assert.match(result.stderr, /petrel --help/);
    assert.equal(result.stdout, '');
  });

  test('SIGHUP does not stop the server: it logs a reload request and keeps serving', async (t) => {
    const server = await startPetrel(t, ['--port', '0', '--host', '127.0.0.1']);
    const clients: MqttClient[] = [];
    t.after(() => endAll(clients));
    for (let i = 0; i < 2; i++) {
      const before = records(server.stdout()).filter((r) => r.msg === 'reload requested').length;
      assert.equal(server.child.kill('SIGHUP'), true);
      await withTimeout(new Promise<void>((resolve, reject) => {
        const check = (): void => {
          const out = server.stdout();
          if (records(out.slice(0, out.lastIndexOf('\n') + 1)).filter((r) => r.msg === 'reload requested').length > before) {
            server.child.stdout?.off('data', check);
            resolve();
          }
        };
        server.child.stdout?.on('data', check);
        void server.exited.then((e) => reject(new Error(`petrel exited after SIGHUP (${e.code ?? e.signal})`)));
      }), START_MS, 'the reload record');
    }
    assert.equal(server.child.exitCode, null);
    await roundTrip(server.url, 4, clients, 'after-hup');
  });

  test('every stdout line is a JSON record: listening, client connected and disconnected at the default level', async (t) => {
    const server = await startPetrel(t, ['--port', '0', '--host', '127.0.0.1']);
    const client = await connectClient(server.url, 5, { clientId: 'logged' });
    const closed = waitFor(client, 'close', STOP_MS);
    await client.endAsync();
    await closed;
    assert.equal(server.child.kill('SIGTERM'), true);
    const exit = await withTimeout(server.exited, STOP_MS, 'the process to exit');
    assert.deepEqual(exit, { code: 0, signal: null });
    const all = records(server.stdout());
    const listening = all.find((r) => r.msg === 'listening');
    assert.ok(listening !== undefined);
    assert.deepEqual([listening.host, listening.port, listening.level], ['127.0.0.1', server.port, 30]);
    const connected = all.find((r) => r.msg === 'client connected');
    assert.deepEqual([connected?.clientId, connected?.protocolVersion, typeof connected?.remote], ['logged', 5, 'string']);
    const disconnected = all.find((r) => r.msg === 'client disconnected');
    assert.deepEqual([disconnected?.clientId, disconnected?.reasonCode], ['logged', 0]);
  });

  const refusals: [string, (t: TestContext) => string[], RegExp][] = [
    ['an unknown top-level key in YAML', (t) => ['--config', tempConfig(t, 'bad.yaml', 'port: 0\nbogusKey: 1\n')], /"bogusKey"/],
    ['an unknown broker key in JSON', (t) => ['--config', tempConfig(t, 'bad.json', '{"broker":{"maxInFlight":5}}')], /"broker\.maxInFlight"/],
    ['a bad broker value', (t) => ['--config', tempConfig(t, 'bad2.yaml', 'broker:\n  maxInflight: 0\n')], /"broker\.maxInflight"/],
    ['a bad top-level value', (t) => ['--config', tempConfig(t, 'bad3.yaml', 'logLevel: loud\n')], /"logLevel"/],
    ['a bad --port flag', () => ['--port', '99999', '--host', '127.0.0.1'], /"port"/],
    ['a non-numeric --port flag', () => ['--port', 'x'], /"port"/],
  ];
  for (const [name, args, keyPattern] of refusals) {
    test(`refuses to start on ${name}: non-zero exit, stderr names the key`, async (t) => {
      const result = await runRefused(t, args(t));
      assert.notEqual(result.code, 0);
      assert.notEqual(result.code, null, 'exited on its own, not by a signal');
      assert.match(result.stderr, keyPattern);
      assert.doesNotMatch(result.stdout, /listening/);
    });
  }

  test('a taken port without fallback: non-zero exit with the reason on stderr', async (t) => {
    const blocker = await occupyPort();
    t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const result = await runRefused(t, ['--port', String(portOf(blocker)), '--host', '127.0.0.1']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /EADDRINUSE/);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} with connected clients: they see the connection close and the process exits 0 within 5 s`, async (t) => {
      const server = await startPetrel(t, ['--port', '0', '--host', '127.0.0.1']);
      const clients: MqttClient[] = [];
      t.after(() => endAll(clients));
      const v4 = await connectClient(server.url, 4, { clientId: 'stay-4' });
      const v5 = await connectClient(server.url, 5, { clientId: 'stay-5' });
      clients.push(v4, v5);
      const closed4 = waitFor(v4, 'close', STOP_MS);
      const closed5 = waitFor(v5, 'close', STOP_MS);
      const disconnect5 = waitFor(v5, 'disconnect', STOP_MS);
      assert.equal(server.child.kill(signal), true);
      const exit = await withTimeout(server.exited, STOP_MS, `the process to exit after ${signal}`);
      assert.deepEqual(exit, { code: 0, signal: null });
      await closed4;
      await closed5;
      // 5.0 clients are told why: DISCONNECT 0x8B Server shutting down.
      const [packet] = await disconnect5;
      assert.equal(packet.reasonCode, ReasonCode.ServerShuttingDown);
    });
  }
});

describe('library listeners', () => {
  test('portFallback: a port held by another server is skipped for a following, working one', async (t) => {
    const blocker = await occupyPort();
    const broker = createBroker();
    const clients: MqttClient[] = [];
    t.after(async () => {
      await endAll(clients);
      await broker.close();
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    });
    const taken = portOf(blocker);
    const listener = await broker.listen({ port: taken, host: '127.0.0.1', portFallback: 10 });
    assert.notEqual(listener.port, taken);
    assert.ok(listener.port > taken && listener.port <= taken + 10, `port ${listener.port} follows ${taken}`);
    await roundTrip(`mqtt://127.0.0.1:${listener.port}`, 4, clients, 'lib-fallback');
    // The blocker still owns its port: the broker did not steal it.
    assert.equal(portOf(blocker), taken);
  });

  test('without portFallback a taken port is an error (EADDRINUSE)', async (t) => {
    const blocker = await occupyPort();
    const broker = createBroker();
    t.after(async () => {
      await broker.close();
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    });
    await assert.rejects(broker.listen({ port: portOf(blocker), host: '127.0.0.1' }), (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE');
  });

  test('several independent brokers in one process, each on port 0', async (t) => {
    const brokers: Broker[] = [];
    const clients: MqttClient[] = [];
    t.after(async () => {
      await endAll(clients);
      await Promise.all(brokers.map((b) => b.close()));
    });
    const ports: number[] = [];
    const inboxes: Inbox[] = [];
    for (let i = 0; i < 3; i++) {
      const broker = createBroker();
      brokers.push(broker);
      ports.push((await broker.listen({ port: 0, host: '127.0.0.1' })).port);
    }
    assert.equal(new Set(ports).size, 3, `distinct ports ${ports.join(', ')}`);
    for (const port of ports) {
      // The same client id on every broker: sessions are per broker, so no takeover.
      const client = await connectClient(`mqtt://127.0.0.1:${port}`, 4, { clientId: 'same-id' });
      clients.push(client);
      const inbox = new Inbox(client);
      inboxes.push(inbox);
      await client.subscribeAsync('shared/topic', { qos: 1 });
    }
    for (let i = 0; i < brokers.length; i++) await brokers[i]?.publish({ topic: 'shared/topic', payload: `from ${i}`, qos: 1 });
    for (let i = 0; i < inboxes.length; i++) {
      const got = await inboxes[i]?.next('shared/topic');
      assert.equal(got?.payload, `from ${i}`);
    }
    // Each broker saw exactly its own message and its own client.
    for (const broker of brokers) {
      assert.equal(broker.stats.messagesReceived, 1);
      assert.deepEqual(broker.clients().map((c) => c.clientId), ['same-id']);
    }
    assert.ok(clients.every((c) => c.connected));
    // Closing one leaves the others serving.
    await brokers[0]?.close();
    await roundTrip(`mqtt://127.0.0.1:${ports[1]}`, 4, clients, 'still-1');
    await roundTrip(`mqtt://127.0.0.1:${ports[2]}`, 4, clients, 'still-2');
  });
});
