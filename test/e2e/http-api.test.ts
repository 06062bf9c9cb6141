/**
 * The HTTP API of the standalone server, as a child process: the admin key created at first
 * start (printed once, stored as a digest in the data directory, still valid and not printed
 * after a restart), and an MQTT.js client listed, reached by a publish over HTTP, and kicked.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connectClient, endAll, Inbox, waitFor, withTimeout } from '../helpers/mqttjs.js';

const BIN = fileURLToPath(new URL('../../src/bin/petrel.js', import.meta.url));
const START_MS = 15_000;

interface Petrel {
  child: ChildProcess;
  mqttPort: number;
  httpPort: number;
  stdout: () => string;
  stderr: () => string;
  stop: () => Promise<void>;
}

async function startPetrel(t: TestContext, dataDir: string): Promise<Petrel> {
  const child = spawn(process.execPath, [BIN, '--port', '0', '--ws-port', 'off', '--http-port', '0', '--host', '127.0.0.1', '--data-dir', dataDir],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const ports = new Promise<{ tcp: number; http: number }>((resolve, reject) => {
    const found: Record<string, number> = {};
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      for (const line of out.split('\n').slice(0, -1)) {
        const r = JSON.parse(line) as { msg?: string; type?: string; port?: number };
        if (r.msg === 'listening' && typeof r.type === 'string' && typeof r.port === 'number') found[r.type] = r.port;
      }
      if (found.tcp !== undefined && found.http !== undefined) resolve({ tcp: found.tcp, http: found.http });
    });
    void exited.then(() => reject(new Error(`petrel exited before listening: ${err}`)));
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await withTimeout(exited, 10_000, 'petrel to stop');
  };
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const { tcp, http } = await withTimeout(ports, START_MS, 'the listening records');
  return { child, mqttPort: tcp, httpPort: http, stdout: () => out, stderr: () => err, stop };
}

describe('the server\'s HTTP API', () => {
  test('first start prints an admin key once and stores only its digest; after a restart it still works and is not printed', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'petrel-http-e2e-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const first = await startPetrel(t, dir);
    const printed = /HTTP API admin key \(shown only this once\): (petrel_\S+)/.exec(first.stderr());
    assert.ok(printed !== null, `no key on stderr: ${first.stderr()}`);
    const key = printed[1] as string;
    const record = first.stdout().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((r) => typeof r.msg === 'string' && r.msg.startsWith('HTTP API admin key created'));
    assert.equal(record?.apiKey, key, 'the log record carries it too');
    const stored = readFileSync(join(dir, 'http-api-key.json'), 'utf8');
    assert.ok(!stored.includes(key.slice(7)), 'the key itself is not stored');
    assert.match(stored, /"hash":"sha256:[0-9a-f]{64}"/);
    const url = `http://127.0.0.1:${first.httpPort}`;
    assert.equal((await fetch(`${url}/api/v1/stats`)).status, 401);
    assert.equal((await fetch(`${url}/api/v1/stats`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
    await first.stop();

    const second = await startPetrel(t, dir);
    assert.doesNotMatch(second.stderr(), /admin key/);
    assert.doesNotMatch(second.stdout(), /admin key created/);
    const stats = await fetch(`http://127.0.0.1:${second.httpPort}/api/v1/stats`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(stats.status, 200);
    assert.equal(((await stats.json()) as { code: number }).code, 1);
    assert.equal((await fetch(`http://127.0.0.1:${second.httpPort}/health`)).status, 200);
    await second.stop();
  });

  test('an MQTT.js client is listed, gets a message published over HTTP, and is kicked', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'petrel-http-e2e-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const p = await startPetrel(t, dir);
    const key = (/admin key \(shown only this once\): (\S+)/.exec(p.stderr()) as RegExpExecArray)[1] as string;
    const api = (path: string, init: RequestInit = {}): Promise<Response> => fetch(`http://127.0.0.1:${p.httpPort}${path}`, {
      ...init, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    });
    const client = await connectClient(`mqtt://127.0.0.1:${p.mqttPort}`, 5, { clientId: 'e2e-device' });
    t.after(() => endAll([client]));
    const inbox = new Inbox(client);
    await client.subscribeAsync('e2e/#', { qos: 1 });

    const list = (await (await api('/api/v1/clients')).json()) as { data: { list: { clientId: string; listener: string; protoVer: number }[] } };
    const me = list.data.list.find((c) => c.clientId === 'e2e-device');
    assert.ok(me !== undefined, JSON.stringify(list));
    assert.equal(me.protoVer, 5);
    const listeners = (await (await api('/api/v1/listeners')).json()) as { data: { type: string; connections: number }[] };
    assert.equal(listeners.data.find((l) => l.type === 'tcp')?.connections, 1);

    const pub = await api('/api/v1/mqtt/publish', { method: 'POST', body: JSON.stringify({ topic: 'e2e/hello', payload: 'aGk=', encoding: 'base64', qos: 1 }) });
    assert.deepEqual(await pub.json(), { code: 1, data: { receivers: 1 } });
    assert.equal((await inbox.next('e2e/hello')).payload, 'hi');

    const closed = waitFor(client, 'close');
    const kicked = await api('/api/v1/clients/delete?clientId=e2e-device', { method: 'POST' });
    assert.deepEqual(await kicked.json(), { code: 1 });
    await closed;
    const after = (await (await api('/api/v1/clients')).json()) as { data: { totalRow: number } };
    assert.equal(after.data.totalRow, 0);
    await p.stop();
  });
});
