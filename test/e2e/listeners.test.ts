/**
 * The standalone server with every listener type at once, as a user runs it: a `listeners:`
 * config (and the --tls-port / --ws-port flags), real clients on each (MQTT.js over all four,
 * mosquitto_pub / mosquitto_sub over TCP and TLS), and certificates re-read on SIGHUP without
 * dropping connections. Certificates are test fixtures (test/helpers/certs.ts).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { MqttClient } from 'mqtt';
import { type CertFiles, makeCerts } from '../helpers/certs.js';
import { connectClient, endAll, Inbox, WAIT_MS, withTimeout } from '../helpers/mqttjs.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../src/bin/petrel.js', import.meta.url));
const START_MS = 15_000;

interface Petrel {
  child: ChildProcess;
  /** Port by listener type (the first of each type). */
  ports: Map<string, number>;
  records: () => Record<string, unknown>[];
  waitFor: (pred: (r: Record<string, unknown>) => boolean, what: string) => Promise<Record<string, unknown>>;
}

async function startPetrel(t: TestContext, args: string[], listeners: number): Promise<Petrel> {
  const data = mkdtempSync(join(tmpdir(), 'petrel-listeners-data-'));
  t.after(() => rmSync(data, { recursive: true, force: true }));
  const child = spawn(process.execPath, [BIN, ...args, '--http-port', 'off', '--data-dir', data], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    for (const w of [...waiters]) w();
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await withTimeout(exited, 5000, 'petrel to exit');
  });
  const records = (): Record<string, unknown>[] => out.slice(0, out.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const waitFor = (pred: (r: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> =>
    withTimeout(new Promise((resolve, reject) => {
      const check = (): void => {
        const found = records().find(pred);
        if (found === undefined) return;
        waiters.delete(check);
        resolve(found);
      };
      waiters.add(check);
      check();
      void exited.then(() => reject(new Error(`petrel exited before ${what}: ${err}`)));
    }), START_MS, what);
  await withTimeout((async () => {
    for (;;) {
      if (records().filter((r) => r.msg === 'listening').length >= listeners) return;
      await new Promise<void>((resolve, reject) => {
        const w = (): void => {
          waiters.delete(w);
          resolve();
        };
        waiters.add(w);
        void exited.then(() => reject(new Error(`petrel exited: ${err}`)));
      });
    }
  })(), START_MS, `${listeners} listening records`);
  const ports = new Map<string, number>();
  for (const r of records().filter((x) => x.msg === 'listening')) {
    if (!ports.has(r.type as string)) ports.set(r.type as string, r.port as number);
  }
  return { child, ports, records, waitFor };
}

/** The Subject CN of the certificate a TLS listener presents now. */
async function presentedCn(port: number, ca: Buffer): Promise<string | undefined> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
  socket.on('error', () => undefined);
  await withTimeout(new Promise((resolve) => socket.once('secureConnect', resolve)), WAIT_MS, 'TLS handshake');
  const cn = socket.getPeerCertificate().subject.CN;
  socket.destroy();
  return Array.isArray(cn) ? cn[0] : cn;
}

describe('petrel with TCP, TLS, WebSocket and secure WebSocket listeners', () => {
  test('a listeners: config opens all four; MQTT.js on each, mosquitto_pub/sub over TCP and TLS; SIGHUP swaps the certificate', async (t) => {
    const certs: CertFiles = makeCerts();
    t.after(() => certs.cleanup());
    // The server reads these paths; the test later replaces their contents and sends SIGHUP.
    const certFile = join(certs.dir, 'live.crt');
    const keyFile = join(certs.dir, 'live.key');
    copyFileSync(certs.serverCert, certFile);
    copyFileSync(certs.serverKey, keyFile);
    const config = join(certs.dir, 'petrel.json');
    writeFileSync(config, JSON.stringify({
      host: '127.0.0.1',
      logLevel: 'info',
      listeners: [
        { type: 'tcp', port: 0 },
        { type: 'tls', name: 'mqtts', port: 0, cert: certFile, key: keyFile, ca: certs.caCert, requestCert: true },
        { type: 'ws', port: 0 },
        { type: 'wss', port: 0, cert: certFile, key: keyFile },
      ],
    }));
    const petrel = await startPetrel(t, ['--config', config], 4);
    const port = (type: string): number => petrel.ports.get(type) as number;
    assert.deepEqual([...petrel.ports.keys()], ['tcp', 'tls', 'ws', 'wss']);
    assert.equal(petrel.records().find((r) => r.type === 'tls')?.listener, 'mqtts');

    const clients: MqttClient[] = [];
    t.after(() => endAll(clients));
    const urls = [`mqtt://127.0.0.1:${port('tcp')}`, `mqtts://127.0.0.1:${port('tls')}`, `ws://127.0.0.1:${port('ws')}/mqtt`,
      `wss://127.0.0.1:${port('wss')}/mqtt`];
    const subscriber = await connectClient(urls[2] as string, 5, { clientId: 'browser' });
    clients.push(subscriber);
    const inbox = new Inbox(subscriber);
    await subscriber.subscribeAsync('e2e/#', { qos: 1 });
    for (const [i, url] of urls.entries()) {
      const c = await connectClient(url, 4, { clientId: `pub-${i}`, ca: certs.ca });
      clients.push(c);
      await c.publishAsync(`e2e/${i}`, `via ${new URL(url).protocol}`, { qos: 1 });
    }
    await inbox.count(4);
    assert.deepEqual(inbox.messages.map((m) => m.payload).sort(), ['via mqtt:', 'via mqtts:', 'via ws:', 'via wss:']);

    // mosquitto_sub over TLS (with a client certificate) waits for one message; mosquitto_pub
    // publishes it over plain TCP.
    const bob = certs.client('bob');
    const sub = execFile('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port('tls')), '--cafile', certs.caCert,
      '--cert', bob.certFile, '--key', bob.keyFile, '--insecure', '-i', 'mosq-sub', '-t', 'mosq/+', '-q', '1', '-C', '1', '-W', '20', '-v']);
    const subOut = new Promise<string>((resolve, reject) => {
      let text = '';
      sub.stdout?.on('data', (s: string) => { text += s; });
      // 'close', not 'exit': the output may still be in the pipe when the process exits.
      sub.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`mosquitto_sub exited ${code}`))));
    });
    await petrel.waitFor((r) => r.msg === 'client connected' && r.clientId === 'mosq-sub', 'mosquitto_sub to connect');
    const connected = petrel.records().find((r) => r.msg === 'client connected' && r.clientId === 'mosq-sub');
    assert.equal(connected?.listener, 'mqtts');
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port('tcp')), '-t', 'mosq/tcp', '-m', 'from mosquitto_pub', '-q', '1', '-r'], { timeout: 20_000 });
    assert.equal((await withTimeout(subOut, 25_000, 'mosquitto_sub output')).trim(), 'mosq/tcp from mosquitto_pub');
    // And mosquitto_pub over TLS, to the WebSocket subscriber.
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port('tls')), '--cafile', certs.caCert, '--insecure',
      '-t', 'e2e/mosq', '-m', 'tls from mosquitto_pub', '-q', '1'], { timeout: 20_000 });
    assert.equal((await inbox.next('e2e/mosq')).payload, 'tls from mosquitto_pub');

    // SIGHUP: new certificate files take effect for new connections; open ones keep working.
    assert.equal(await presentedCn(port('tls'), certs.ca), 'localhost');
    const renewed = certs.server('renewed.localhost');
    copyFileSync(renewed.certFile, certFile);
    copyFileSync(renewed.keyFile, keyFile);
    const reloads = petrel.records().filter((r) => r.msg === 'reload requested').length;
    petrel.child.kill('SIGHUP');
    const reload = await petrel.waitFor((r) => r.msg === 'reload requested' && petrel.records().filter((x) => x.msg === 'reload requested').length > reloads, 'the reload record');
    assert.deepEqual(reload.reloaded, ['mqtts', `wss:${port('wss')}`]);
    assert.equal(await presentedCn(port('tls'), certs.ca), 'renewed.localhost');
    assert.equal(await presentedCn(port('wss'), certs.ca), 'renewed.localhost');
    const tlsPublisher = clients[2] as MqttClient;
    await tlsPublisher.publishAsync('e2e/after', 'still connected', { qos: 1 });
    assert.equal((await inbox.next('e2e/after')).payload, 'still connected');

    // A broken certificate file on the next SIGHUP is logged and the listener keeps the last good one.
    writeFileSync(certFile, 'not a certificate');
    petrel.child.kill('SIGHUP');
    await petrel.waitFor((r) => r.msg === 'certificate reload failed' && r.listener === 'mqtts', 'the failed reload record');
    assert.equal(await presentedCn(port('tls'), certs.ca), 'renewed.localhost');
  });

  test('--tls-port with --cert / --key and --ws-port 0: TCP, WebSocket and TLS from flags alone', async (t) => {
    const certs = makeCerts();
    t.after(() => certs.cleanup());
    const petrel = await startPetrel(t, ['--port', '0', '--ws-port', '0', '--tls-port', '0', '--cert', certs.serverCert,
      '--key', certs.serverKey, '--host', '127.0.0.1'], 3);
    assert.deepEqual([...petrel.ports.keys()], ['tcp', 'ws', 'tls']);
    const clients: MqttClient[] = [];
    t.after(() => endAll(clients));
    for (const url of [`mqtt://127.0.0.1:${petrel.ports.get('tcp')}`, `ws://127.0.0.1:${petrel.ports.get('ws')}/mqtt`,
      `mqtts://127.0.0.1:${petrel.ports.get('tls')}`]) {
      clients.push(await connectClient(url, 5, { ca: certs.ca }));
    }
    assert.equal(clients.every((c) => c.connected), true);
  });

  test('a tls listener without a key, or an unreadable certificate file, stops the server at start with the key named', async (t) => {
    const certs = makeCerts();
    t.after(() => certs.cleanup());
    const noKey = join(certs.dir, 'nokey.json');
    writeFileSync(noKey, JSON.stringify({ listeners: [{ type: 'tls', port: 0, cert: certs.serverCert }] }));
    const a = await run(process.execPath, [BIN, '--config', noKey, '--store', 'memory'], { timeout: 15_000 }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((a as { code: number }).code, 2);
    assert.match((a as { stderr: string }).stderr, /listeners\[0\]\.key/);
    const missing = join(certs.dir, 'missing.json');
    writeFileSync(missing, JSON.stringify({ host: '127.0.0.1', listeners: [{ type: 'tls', port: 0, cert: join(certs.dir, 'nope.crt'), key: certs.serverKey }] }));
    const b = await run(process.execPath, [BIN, '--config', missing, '--store', 'memory'], { timeout: 15_000 }).catch((e: { code: number; stderr: string }) => e);
    assert.notEqual((b as { code: number }).code, 0);
    assert.match((b as { stderr: string }).stderr, /nope\.crt/);
  });
});
