/**
 * `petrel pub` and `petrel sub` as processes, with mosquitto_pub / mosquitto_sub options, against
 * a Petrel broker (TCP and WebSocket listeners) and a real Mosquitto; exit codes as theirs
 * (0, 1 for errors, 27 for a `-W` timeout).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Broker, createBroker } from '../../src/petrel.js';
import { withTimeout } from '../helpers/mqttjs.js';

const BIN = fileURLToPath(new URL('../../src/bin/petrel.js', import.meta.url));
const RUN_MS = 20_000;

interface Result { code: number | null; stdout: string; stderr: string }

/** Runs `petrel <args>` (stdin: `input`); resolves once its pipes closed. */
function petrel(args: string[], input?: string): Promise<Result> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  child.stdin.end(input ?? '');
  const done = new Promise<Result>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return withTimeout(done, RUN_MS, `petrel ${args.join(' ')}`).finally(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
}

/**
 * Starts `petrel sub` and resolves once the broker saw its subscription (so a publish after it is
 * not missed), with the run's result to come (wrapped: an async function would wait for it).
 */
async function subscribed(broker: Broker, args: string[]): Promise<{ result: Promise<Result> }> {
  const seen = new Promise<void>((resolve) => broker.once('subscribed', () => resolve()));
  const result = petrel(['sub', ...args]);
  await withTimeout(seen, RUN_MS, 'petrel sub to subscribe');
  return { result };
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

describe('petrel pub / petrel sub against Petrel', () => {
  let broker: Broker;
  let port: number;
  let wsPort: number;
  before(async () => {
    broker = createBroker({ authenticate: (ctx) => ctx.username !== 'mallory' });
    port = (await broker.listen({ port: 0, host: '127.0.0.1' })).port;
    wsPort = (await broker.listen({ type: 'ws', port: 0, host: '127.0.0.1' })).port;
  });
  after(() => broker.close());

  test('pub -m at QoS 1 reaches sub -v -C 1; both exit 0', async () => {
    const sub = await subscribed(broker, ['-h', '127.0.0.1', '-p', String(port), '-t', 'cli/#', '-q', '1', '-v', '-C', '1', '-W', '15']);
    const pub = await petrel(['pub', '-h', '127.0.0.1', '-p', String(port), '-t', 'cli/a', '-m', 'hello cli', '-q', '1']);
    assert.equal(pub.code, 0, pub.stderr);
    const got = await sub.result;
    assert.deepEqual([got.code, got.stdout], [0, 'cli/a hello cli\n'], got.stderr);
  });

  test('pub -l sends one message per stdin line (over ws://), sub -C 3 -F prints them in order', async () => {
    const sub = await subscribed(broker, ['-L', `ws://127.0.0.1:${wsPort}/mqtt`, '-t', 'lines/x', '-q', '2', '-C', '3', '-F', '%q %p\\n', '-W', '15']);
    const pub = await petrel(['pub', '-L', `ws://127.0.0.1:${wsPort}`, '-t', 'lines/x', '-l', '-q', '2'], 'one\ntwo\nthree\n');
    assert.equal(pub.code, 0, pub.stderr);
    const got = await sub.result;
    assert.deepEqual([got.code, got.stdout], [0, '2 one\n2 two\n2 three\n']);
  });

  test('pub -f -r retains a file\'s bytes; a later sub --json gets it with retain 1 and user properties from -D', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'petrel-cli-'));
    try {
      const file = join(dir, 'payload.txt');
      writeFileSync(file, 'from a file');
      const pub = await petrel(['pub', '-p', String(port), '-h', '127.0.0.1', '-t', 'kept/f', '-f', file, '-r', '-q', '1',
        '-D', 'publish', 'user-property', 'origin', 'cli']);
      assert.equal(pub.code, 0, pub.stderr);
      const got = await petrel(['sub', '-p', String(port), '-h', '127.0.0.1', '-t', 'kept/#', '-q', '1', '-C', '1', '--json', '-W', '15']);
      assert.equal(got.code, 0, got.stderr);
      const line = JSON.parse(got.stdout) as Record<string, unknown>;
      assert.deepEqual([line.topic, line.payload, line.retain, line.qos, line.user_properties], ['kept/f', 'from a file', 1, 1, { origin: 'cli' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('sub -W times out with exit code 27; a refused connection and a refused CONNACK exit 1; a bad option exits 1', async () => {
    const timeout = await petrel(['sub', '-p', String(port), '-h', '127.0.0.1', '-t', 'nothing/here', '-W', '1']);
    assert.equal(timeout.code, 27);
    const closedPort = await freePort();
    const refused = await petrel(['pub', '-p', String(closedPort), '-h', '127.0.0.1', '-t', 'x', '-m', 'y']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /ECONNREFUSED/);
    const denied = await petrel(['pub', '-p', String(port), '-h', '127.0.0.1', '-t', 'x', '-m', 'y', '-u', 'mallory', '-P', 'x']);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /0x86/);
    const bad = await petrel(['pub', '-p', String(port), '-t', 'x']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /exactly one of -m/);
  });
});

describe('petrel pub / petrel sub against Mosquitto', () => {
  let child: ChildProcess;
  let port = 0;
  let dir = '';
  before(async () => {
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'petrel-cli-mosq-'));
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
    child = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'ignore'] });
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = tcpConnect({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(true); });
        s.once('error', () => resolve(false));
      });
      if (ok) break;
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

  test('petrel pub -r to Mosquitto, read back by petrel sub (3.1.1) and by mosquitto_sub', async () => {
    const pub = await petrel(['pub', '-p', String(port), '-h', '127.0.0.1', '-t', 'm/one', '-m', 'to mosquitto', '-r', '-q', '1', '-V', '311']);
    assert.equal(pub.code, 0, pub.stderr);
    const got = await petrel(['sub', '-p', String(port), '-h', '127.0.0.1', '-t', 'm/#', '-C', '1', '-v', '-V', '311', '-W', '15']);
    assert.deepEqual([got.code, got.stdout], [0, 'm/one to mosquitto\n']);
    const theirs = await withTimeout(new Promise<string>((resolve, reject) => {
      execFile('mosquitto_sub', ['-p', String(port), '-h', '127.0.0.1', '-t', 'm/#', '-C', '1', '-v', '-W', '10'], (err, stdout) => (err ? reject(err) : resolve(stdout)));
    }), RUN_MS, 'mosquitto_sub');
    assert.equal(theirs, 'm/one to mosquitto\n');
  });
});
