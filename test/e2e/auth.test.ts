/**
 * The standalone server's `auth:` section and `plugins:` as a user runs them: the real server
 * (`petrel --config <file>`) as a child process, MQTT.js clients at 3.1.1 and 5.0, password files
 * from `mosquitto_passwd` and `petrel passwd`, an ACL file in Mosquitto's syntax, JSON Web Tokens
 * (HS256 secret and a JWKS served by the test), an HTTP webhook served by the test, SIGHUP
 * reloads and plugin modules. Every refusal is checked with both protocol versions' codes.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { clientOptions, connectClient, endAll, Inbox, type Version, WAIT_MS, withTimeout } from '../helpers/mqttjs.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../src/bin/petrel.js', import.meta.url));
/** Starting node (and reading scrypt hashes) on a loaded machine can be slow; this bounds it. */
const START_MS = 15_000;
const V4_V5: readonly Version[] = [4, 5];
const vname = (v: Version): string => (v === 5 ? '5.0' : '3.1.1');

type LogRecord = Record<string, unknown>;

interface Petrel {
  child: ChildProcess;
  port: number;
  url: string;
  records: () => LogRecord[];
  /** The first record from index `from` on that passes `pred` (waits, bounded). */
  waitFor: (pred: (r: LogRecord) => boolean, what: string, from?: number) => Promise<LogRecord>;
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-auth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function serverArgs(configFile: string): string[] {
  return ['--config', configFile, '--port', '0', '--ws-port', 'off', '--http-port', 'off', '--host', '127.0.0.1'];
}

function writeConfig(dir: string, config: Record<string, unknown>, name = 'petrel.json'): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify({ logLevel: 'info', ...config }));
  return file;
}

/** Starts `petrel --config <config>` on a free port; killed after the test. */
async function startPetrel(t: TestContext, dir: string, config: Record<string, unknown>): Promise<Petrel> {
  const child = spawn(process.execPath, [BIN, ...serverArgs(writeConfig(dir, config))], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
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
  const records = (): LogRecord[] => out.slice(0, out.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogRecord);
  const waitFor = (pred: (r: LogRecord) => boolean, what: string, from = 0): Promise<LogRecord> => {
    let check = (): void => undefined;
    return withTimeout(new Promise<LogRecord>((resolve, reject) => {
      check = (): void => {
        const found = records().slice(from).find(pred);
        if (found === undefined) return;
        waiters.delete(check);
        resolve(found);
      };
      waiters.add(check);
      check();
      void exited.then(() => reject(new Error(`petrel exited before ${what}: ${err}`)));
    }), START_MS, what).finally(() => waiters.delete(check));
  };
  const listening = await waitFor((r) => r.msg === 'listening', 'the listening record');
  const port = listening.port as number;
  return { child, port, url: `mqtt://127.0.0.1:${port}`, records, waitFor };
}

/** Runs the server expecting it to fail at start; resolves with its exit code and stderr. */
function startFails(dir: string, config: Record<string, unknown>): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...serverArgs(writeConfig(dir, config, 'failing.json'))], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  let stderr = '';
  child.stdout.resume();
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  return withTimeout(new Promise<{ code: number | null; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code, stderr }))), START_MS, 'petrel to exit')
    .finally(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
}

/** MQTT.js clients of one test, ended after it. */
function clientsOf(t: TestContext): { connect: (url: string, v: Version, extra?: IClientOptions) => Promise<MqttClient> } {
  const clients: MqttClient[] = [];
  t.after(() => endAll(clients));
  return {
    connect: async (url, v, extra = {}) => {
      const c = await connectClient(url, v, extra);
      clients.push(c);
      return c;
    },
  };
}

const codeOf = (err: unknown): unknown => (typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined);

/** Connects expecting a CONNACK refusal; resolves with its reason code (5.0) or return code (3.1.1). */
async function refusal(url: string, v: Version, extra: IClientOptions = {}): Promise<unknown> {
  const client = mqtt.connect(url, clientOptions(v, extra));
  try {
    return await withTimeout(new Promise<unknown>((resolve, reject) => {
      client.once('connect', () => reject(new Error('the server accepted a client it should refuse')));
      client.once('error', (err) => resolve(codeOf(err)));
    }), WAIT_MS, 'a CONNACK refusal');
  } finally {
    client.end(true);
  }
}

/** What the server answers the client's SUBSCRIBE of `filter` with (granted QoS or failure code). */
async function subackOf(client: MqttClient, filter: string): Promise<unknown> {
  try {
    const granted = await withTimeout(client.subscribeAsync(filter, { qos: 1 }), WAIT_MS, `SUBACK for ${filter}`);
    return granted[0]?.qos;
  } catch (err) {
    // MQTT.js rejects a refused SUBSCRIBE with the SUBACK attached.
    const packet = typeof err === 'object' && err !== null ? (err as { packet?: { granted?: unknown[] } }).packet : undefined;
    return packet?.granted?.[0];
  }
}

/** The refused-SUBSCRIBE code: 5.0 0x87 Not authorized, 3.1.1 0x80 Failure [MQTT-3.9.3-2]. */
const subRefused = (v: Version): number => (v === 5 ? 0x87 : 0x80);

/**
 * A QoS 1 PUBLISH the server must refuse: 5.0 PUBACK 0x87 Not authorized; 3.1.1 has no way to
 * say no, so the PUBLISH is acknowledged and dropped.
 */
async function publishRefused(client: MqttClient, v: Version, topic: string, payload = 'forbidden'): Promise<void> {
  const sent = withTimeout(client.publishAsync(topic, payload, { qos: 1 }), WAIT_MS, `PUBACK for ${topic}`);
  if (v === 5) await assert.rejects(sent, (err) => codeOf(err) === 0x87, `PUBACK 0x87 for ${topic}`);
  else await sent;
}

/** Runs `petrel passwd [-c] <file> <user>` with the password on stdin. */
function petrelPasswd(file: string, user: string, password: string, create = false): Promise<void> {
  return withTimeout(new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'passwd', ...(create ? ['-c'] : []), file, user], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`petrel passwd exited ${code}: ${stderr}`))));
    child.stdin.on('error', () => undefined);
    child.stdin.end(`${password}\n`);
  }), START_MS, 'petrel passwd');
}

async function mosquittoPasswd(file: string, user: string, password: string, create = false): Promise<void> {
  await run('mosquitto_passwd', [...(create ? ['-c'] : []), '-b', file, user, password], { timeout: START_MS });
}

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

/** A node:http server on 127.0.0.1 (closed after the test); resolves with its base URL. */
async function httpServer(t: TestContext, handler: Handler): Promise<string> {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (s: string) => { body += s; });
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A URL on a port nothing listens on (bound, then closed). */
async function deadUrl(path: string): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}${path}`;
}

const json = (res: ServerResponse, value: unknown): void => {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
};

const connectedAs = (clientId: string) => (r: LogRecord): boolean => r.msg === 'client connected' && r.clientId === clientId;

describe('petrel auth: section and plugins, end to end', () => {
  test('no auth section: a warning about anonymous access at start, and anyone connects', async (t) => {
    const dir = tempDir(t);
    const petrel = await startPetrel(t, dir, {});
    const warning = await petrel.waitFor((r) => r.level === 40 && /anonymous/.test(String(r.msg)), 'the anonymous-access warning');
    assert.match(String(warning.msg), /no auth configured/);
    const clients = clientsOf(t);
    for (const v of V4_V5) {
      await clients.connect(petrel.url, v, { clientId: `anon-${v}` });
      await clients.connect(petrel.url, v, { clientId: `named-${v}`, username: 'anyone', password: 'anything' });
    }
  });

  test('passwordFile from mosquitto_passwd and petrel passwd: good passwords in; wrong password, unknown user → 0x86 / 4; anonymous → 0x87 / 5 [MQTT-3.1.4-3]', async (t) => {
    const dir = tempDir(t);
    const passwd = join(dir, 'passwd');
    await mosquittoPasswd(passwd, 'alice', 'alice-pw', true);
    await petrelPasswd(passwd, 'bob', 'bob-pw');
    const petrel = await startPetrel(t, dir, { auth: { passwordFile: passwd } });
    // A password file turns anonymous access off, so there is nothing to warn about.
    assert.equal(petrel.records().some((r) => r.level === 40 && /anonymous/.test(String(r.msg))), false);
    const clients = clientsOf(t);
    for (const v of V4_V5) {
      await clients.connect(petrel.url, v, { clientId: `alice-${v}`, username: 'alice', password: 'alice-pw' });
      await clients.connect(petrel.url, v, { clientId: `bob-${v}`, username: 'bob', password: 'bob-pw' });
      assert.equal((await petrel.waitFor(connectedAs(`bob-${v}`), 'bob to connect')).username, 'bob');
      const bad = v === 5 ? 0x86 : 4;
      assert.equal(await refusal(petrel.url, v, { username: 'alice', password: 'bob-pw' }), bad, `${vname(v)} wrong password`);
      assert.equal(await refusal(petrel.url, v, { username: 'bob' }), bad, `${vname(v)} username without password`);
      assert.equal(await refusal(petrel.url, v, { username: 'carol', password: 'alice-pw' }), bad, `${vname(v)} unknown user`);
      assert.equal(await refusal(petrel.url, v, {}), v === 5 ? 0x87 : 5, `${vname(v)} anonymous`);
    }
  });

  test('passwordFile with anonymous: true lets anonymous clients in (with a warning) and still checks passwords', async (t) => {
    const dir = tempDir(t);
    const passwd = join(dir, 'passwd');
    await mosquittoPasswd(passwd, 'alice', 'alice-pw', true);
    const petrel = await startPetrel(t, dir, { auth: { passwordFile: passwd, anonymous: true } });
    await petrel.waitFor((r) => r.level === 40 && /anonymous access is on/.test(String(r.msg)), 'the anonymous-access warning');
    const clients = clientsOf(t);
    for (const v of V4_V5) {
      await clients.connect(petrel.url, v, { clientId: `anon-${v}` });
      await clients.connect(petrel.url, v, { clientId: `alice-${v}`, username: 'alice', password: 'alice-pw' });
      assert.equal(await refusal(petrel.url, v, { username: 'alice', password: 'nope' }), v === 5 ? 0x86 : 4);
    }
  });

  test('aclFile in Mosquitto syntax: grants deliver; a forbidden PUBLISH is refused (5.0 PUBACK 0x87; 3.1.1 acked) and not delivered; forbidden SUBSCRIBE → 0x87 / 0x80; topic deny filters deliveries', async (t) => {
    const dir = tempDir(t);
    const aclFile = join(dir, 'acl');
    writeFileSync(aclFile, [
      '# Anonymous clients may read the public tree.',
      'topic read public/#',
      '',
      '# alice feeds the sensor tree and the public tree.',
      'user alice',
      'topic write a/#',
      'topic write public/#',
      '',
      '# bob reads the sensor tree, but not the secret.',
      'user bob',
      'topic read a/#',
      'topic deny a/secret',
      '',
      '# Everyone with a username has a private tree.',
      'pattern readwrite users/%u/#',
      '',
    ].join('\n'));
    // No password file: usernames are taken as given, as Mosquitto does.
    const petrel = await startPetrel(t, dir, { auth: { aclFile } });
    const clients = clientsOf(t);
    for (const v of V4_V5) {
      const alice = await clients.connect(petrel.url, v, { clientId: `alice-${v}`, username: 'alice' });
      const bob = await clients.connect(petrel.url, v, { clientId: `bob-${v}`, username: 'bob' });
      const anon = await clients.connect(petrel.url, v, { clientId: `anon-${v}` });
      const aliceIn = new Inbox(alice);
      const bobIn = new Inbox(bob);
      const anonIn = new Inbox(anon);
      assert.equal(await subackOf(bob, 'a/#'), 1);
      assert.equal(await subackOf(anon, 'public/#'), 1);
      assert.equal(await subackOf(alice, 'users/alice/#'), 1);

      // Allowed publish reaches the subscriber.
      await alice.publishAsync('a/temp', `t-${v}`, { qos: 1 });
      assert.equal((await bobIn.next('a/temp')).payload, `t-${v}`);
      // bob's `topic deny a/secret` filters the delivery although a/# was granted.
      await alice.publishAsync('a/secret', 's', { qos: 1 });
      await alice.publishAsync('a/after-secret', 'sentinel', { qos: 1 });
      await bobIn.next('a/after-secret');
      assert.deepEqual(bobIn.on('a/secret'), [], `${vname(v)}: a/secret must not reach bob`);

      // Anonymous clients may only read: their PUBLISH is refused and reaches nobody.
      await publishRefused(anon, v, 'public/news');
      await alice.publishAsync('public/after', 'sentinel', { qos: 1 });
      await anonIn.next('public/after');
      assert.deepEqual(anonIn.on('public/news'), []);
      // bob may not write into alice's private tree (pattern %u), alice may.
      await publishRefused(bob, v, 'users/alice/inbox');
      await alice.publishAsync('users/alice/note', 'own', { qos: 1 });
      await aliceIn.next('users/alice/note');
      assert.deepEqual(aliceIn.on('users/alice/inbox'), []);
      // alice has no grant for b/: refused.
      await publishRefused(alice, v, 'b/x');

      // Forbidden subscriptions.
      assert.equal(await subackOf(anon, 'a/#'), subRefused(v), `${vname(v)} anonymous a/#`);
      assert.equal(await subackOf(bob, 'users/alice/#'), subRefused(v), `${vname(v)} bob into alice's tree`);
      assert.equal(await subackOf(bob, 'a/secret'), subRefused(v), `${vname(v)} bob a/secret`);
      assert.equal(await subackOf(alice, 'a/#'), subRefused(v), `${vname(v)} alice has write only`);
      await Promise.all([alice, bob, anon].map((c) => c.endAsync()));
    }
  });

  test('aclFile and an offline persistent session: messages queued while away are filtered by the same read rules', async (t) => {
    const dir = tempDir(t);
    const aclFile = join(dir, 'acl');
    writeFileSync(aclFile, 'user alice\ntopic write a/#\n\nuser bob\ntopic read a/#\ntopic deny a/secret\n');
    const petrel = await startPetrel(t, dir, { auth: { aclFile } });
    const clients = clientsOf(t);
    const alice = await clients.connect(petrel.url, 5, { clientId: 'alice', username: 'alice' });
    for (const v of V4_V5) {
      const persistent: IClientOptions = { clientId: `bob-${v}`, username: 'bob', clean: false,
        ...(v === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}) };
      const bob = await clients.connect(petrel.url, v, persistent);
      assert.equal(await subackOf(bob, 'a/#'), 1);
      assert.equal(await subackOf(bob, 'a/secret'), subRefused(v));
      await bob.endAsync();
      await petrel.waitFor((r) => r.msg === 'client disconnected' && r.clientId === `bob-${v}`, 'bob to leave');
      await alice.publishAsync('a/secret', 'queued secret', { qos: 1 });
      await alice.publishAsync(`a/${v}/ok`, 'queued', { qos: 1 });
      const back = mqtt.connect(petrel.url, clientOptions(v, persistent));
      const inbox = new Inbox(back);
      t.after(() => endAll([back]));
      await inbox.next(`a/${v}/ok`);
      assert.deepEqual(inbox.messages.map((m) => m.topic), [`a/${v}/ok`]);
    }
  });

  test('SIGHUP re-reads the password and ACL files; a broken ACL file is logged and the previous rules stay', async (t) => {
    const dir = tempDir(t);
    const passwd = join(dir, 'passwd');
    const aclFile = join(dir, 'acl');
    await mosquittoPasswd(passwd, 'alice', 'alice-pw', true);
    writeFileSync(aclFile, 'user alice\ntopic readwrite r/one\n');
    const petrel = await startPetrel(t, dir, { auth: { passwordFile: passwd, aclFile } });
    const clients = clientsOf(t);
    const alice = new Map<Version, MqttClient>();
    const inbox = new Map<Version, Inbox>();
    for (const v of V4_V5) {
      const c = await clients.connect(petrel.url, v, { clientId: `alice-${v}`, username: 'alice', password: 'alice-pw' });
      alice.set(v, c);
      inbox.set(v, new Inbox(c));
      assert.equal(await subackOf(c, 'r/one'), 1);
      assert.equal(await subackOf(c, 'r/two'), subRefused(v));
      await publishRefused(c, v, 'r/two');
      assert.equal(await refusal(petrel.url, v, { username: 'dave', password: 'dave-pw' }), v === 5 ? 0x86 : 4);
    }

    // Add dave (petrel passwd replaces the file atomically) and give alice r/two.
    await petrelPasswd(passwd, 'dave', 'dave-pw');
    writeFileSync(aclFile, 'user alice\ntopic readwrite r/one\ntopic readwrite r/two\n\nuser dave\ntopic readwrite d/#\n');
    let mark = petrel.records().length;
    petrel.child.kill('SIGHUP');
    const reloaded = await petrel.waitFor((r) => r.msg === 'reload requested', 'the reload record', mark);
    assert.deepEqual(reloaded.reloaded, [passwd, aclFile]);
    for (const v of V4_V5) {
      const dave = await clients.connect(petrel.url, v, { clientId: `dave-${v}`, username: 'dave', password: 'dave-pw' });
      const daveIn = new Inbox(dave);
      assert.equal(await subackOf(dave, 'd/#'), 1);
      await dave.publishAsync('d/x', 'dave', { qos: 1 });
      await daveIn.next('d/x');
      // The connection opened before the reload follows the new rules.
      const c = alice.get(v) as MqttClient;
      assert.equal(await subackOf(c, 'r/two'), 1);
      await c.publishAsync('r/two', `new rule ${v}`, { qos: 1 });
      assert.equal((await (inbox.get(v) as Inbox).next('r/two')).payload, `new rule ${v}`);
    }

    // A broken ACL file: reload failed, the previous rules stay (the password file still reloads).
    writeFileSync(aclFile, 'user alice\ntopic readwrite r/#\ntopci read d/#\n');
    mark = petrel.records().length;
    petrel.child.kill('SIGHUP');
    const failed = await petrel.waitFor((r) => typeof r.msg === 'string' && r.msg.startsWith('reload failed'), 'the reload failure record', mark);
    assert.equal(failed.file, aclFile);
    assert.match(JSON.stringify(failed.err), /line 3/);
    assert.deepEqual((await petrel.waitFor((r) => r.msg === 'reload requested', 'the reload record', mark)).reloaded, [passwd]);
    for (const v of V4_V5) {
      const c = alice.get(v) as MqttClient;
      // r/three would be granted by the broken file's r/#; the old rules refuse it.
      assert.equal(await subackOf(c, 'r/three'), subRefused(v));
      await publishRefused(c, v, 'r/three');
      await c.publishAsync('r/two', `still ${v}`, { qos: 1 });
      await (inbox.get(v) as Inbox).until((m) => m.some((x) => x.payload === `still ${v}`), 'r/two under the old rules');
      await clients.connect(petrel.url, v, { clientId: `dave-again-${v}`, username: 'dave', password: 'dave-pw' });
    }
  });

  test('jwt with an HS256 secret: the token as password, username from sub; expired → 0x86 / 4; an acl claim limits publishing (0x87)', async (t) => {
    const dir = tempDir(t);
    const secret = 'a shared secret long enough for HS256';
    const key = new TextEncoder().encode(secret);
    const petrel = await startPetrel(t, dir, { auth: { jwt: { secret } } });
    const sign = (claims: Record<string, unknown>, exp: number | string = '1h'): Promise<string> =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(exp).sign(key);
    const clients = clientsOf(t);
    for (const v of V4_V5) {
      const token = await sign({ sub: `erin-${v}` });
      const watcher = await clients.connect(petrel.url, v, { clientId: `watcher-${v}`, username: 'ignored', password: token });
      assert.equal((await petrel.waitFor(connectedAs(`watcher-${v}`), 'the JWT client to connect')).username, `erin-${v}`);
      const watched = new Inbox(watcher);
      await watcher.subscribeAsync('t/#', { qos: 1 });

      const expired = await sign({ sub: 'late' }, Math.floor(Date.now() / 1000) - 3600);
      assert.equal(await refusal(petrel.url, v, { username: 'late', password: expired }), v === 5 ? 0x86 : 4, `${vname(v)} expired`);
      const forged = await new SignJWT({ sub: 'mallory' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h')
        .sign(new TextEncoder().encode('some other secret of the same length!'));
      assert.equal(await refusal(petrel.url, v, { username: 'mallory', password: forged }), v === 5 ? 0x86 : 4, `${vname(v)} wrong key`);
      assert.equal(await refusal(petrel.url, v, {}), v === 5 ? 0x87 : 5, `${vname(v)} anonymous`);

      const limited = await clients.connect(petrel.url, v, { clientId: `limited-${v}`, username: 'x',
        password: await sign({ sub: 'limited', acl: { pub: ['t/ok'], sub: ['t/#'] } }) });
      await limited.publishAsync('t/ok', `ok ${v}`, { qos: 1 });
      await publishRefused(limited, v, 't/no');
      assert.equal(await subackOf(limited, 'u/#'), subRefused(v));
      await limited.publishAsync('t/ok', `after ${v}`, { qos: 1 });
      await watched.until((m) => m.some((x) => x.payload === `after ${v}`), 'the sentinel');
      assert.deepEqual(watched.messages.map((m) => `${m.topic} ${m.payload}`), [`t/ok ok ${v}`, `t/ok after ${v}`]);
    }
  });

  test('jwt with an aclFile: the ACL sees the username from the token (pattern %u), not the CONNECT username', async (t) => {
    const dir = tempDir(t);
    const secret = 'a shared secret long enough for HS256';
    const aclFile = join(dir, 'acl');
    writeFileSync(aclFile, 'pattern readwrite users/%u/#\n');
    const petrel = await startPetrel(t, dir, { auth: { jwt: { secret }, aclFile } });
    const clients = clientsOf(t);
    for (const v of V4_V5) {
      const token = await new SignJWT({ sub: `frank-${v}` }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h')
        .sign(new TextEncoder().encode(secret));
      const c = await clients.connect(petrel.url, v, { clientId: `frank-${v}`, username: `claimed-${v}`, password: token });
      const inbox = new Inbox(c);
      assert.equal(await subackOf(c, `users/claimed-${v}/#`), subRefused(v), `${vname(v)}: the CONNECT username gives nothing`);
      assert.equal(await subackOf(c, `users/frank-${v}/#`), 1);
      await publishRefused(c, v, `users/claimed-${v}/x`);
      await c.publishAsync(`users/frank-${v}/x`, 'mine', { qos: 1 });
      await inbox.next(`users/frank-${v}/x`);
    }
  });

  test('jwt with a jwksUrl: tokens signed by a JWKS key connect; JWKS unreachable → 0x88 / 3', async (t) => {
    const dir = tempDir(t);
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const base = await httpServer(t, (req, _body, res) => {
      if (req.url === '/jwks.json') json(res, { keys: [jwk] });
      else res.writeHead(404).end();
    });
    const sign = (sub: string): Promise<string> =>
      new SignJWT({ sub }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setExpirationTime('1h').sign(privateKey);
    const petrel = await startPetrel(t, dir, { auth: { jwt: { jwksUrl: `${base}/jwks.json` } } });
    const down = await startPetrel(t, tempDir(t), { auth: { jwt: { jwksUrl: await deadUrl('/jwks.json') } } });
    const clients = clientsOf(t);
    for (const v of V4_V5) {
      await clients.connect(petrel.url, v, { clientId: `jwks-${v}`, username: 'u', password: await sign(`jwks-user-${v}`) });
      assert.equal((await petrel.waitFor(connectedAs(`jwks-${v}`), 'the JWKS client to connect')).username, `jwks-user-${v}`);
      assert.equal(await refusal(down.url, v, { username: 'u', password: await sign('nobody') }), v === 5 ? 0x88 : 3, `${vname(v)} JWKS down`);
    }
  });

  test('http webhook: allow, deny (0x87 / 5, or the hook\'s reasonCode), authorizeUrl refusing PUBLISH and SUBSCRIBE; service down: onError deny → 0x88 / 3, allow → connects', async (t) => {
    const dir = tempDir(t);
    const base = await httpServer(t, (req, body, res) => {
      const q = JSON.parse(body) as Record<string, unknown>;
      if (req.url === '/auth') {
        const password = typeof q.password === 'string' ? Buffer.from(q.password, 'base64').toString() : undefined;
        if (q.username === 'banned') return json(res, { allow: false, reasonCode: 0x8a });
        return json(res, { allow: q.username === 'good' && password === 'pw', username: 'from-hook' });
      }
      if (req.url === '/acl') return json(res, { allow: !String(q.topic).startsWith('no/') });
      res.writeHead(404).end();
    });
    const petrel = await startPetrel(t, dir, { auth: { http: { url: `${base}/auth`, authorizeUrl: `${base}/acl`, cacheTtl: 0 } } });
    const deny = await startPetrel(t, tempDir(t), { auth: { http: { url: await deadUrl('/auth'), onError: 'deny', timeout: 2000 } } });
    const allow = await startPetrel(t, tempDir(t), { auth: { http: { url: await deadUrl('/auth'), onError: 'allow', timeout: 2000 } } });
    const clients = clientsOf(t);
    for (const v of V4_V5) {
      const good = await clients.connect(petrel.url, v, { clientId: `good-${v}`, username: 'good', password: 'pw' });
      assert.equal((await petrel.waitFor(connectedAs(`good-${v}`), 'the webhook client to connect')).username, 'from-hook');
      const inbox = new Inbox(good);
      assert.equal(await refusal(petrel.url, v, { username: 'good', password: 'wrong' }), v === 5 ? 0x87 : 5, `${vname(v)} deny`);
      assert.equal(await refusal(petrel.url, v, { username: 'banned', password: 'pw' }), v === 5 ? 0x8a : 5, `${vname(v)} hook's code`);
      assert.equal(await refusal(petrel.url, v, {}), v === 5 ? 0x87 : 5, `${vname(v)} anonymous`);

      assert.equal(await subackOf(good, 'yes/#'), 1);
      assert.equal(await subackOf(good, 'no/#'), subRefused(v), `${vname(v)} authorizeUrl refuses the SUBSCRIBE`);
      await publishRefused(good, v, 'no/x');
      await good.publishAsync('yes/after', 'sentinel', { qos: 1 });
      await inbox.next('yes/after');
      assert.deepEqual(inbox.messages.map((m) => m.topic), ['yes/after']);

      assert.equal(await refusal(deny.url, v, { username: 'good', password: 'pw' }), v === 5 ? 0x88 : 3, `${vname(v)} webhook down, onError deny`);
      await clients.connect(allow.url, v, { clientId: `down-allow-${v}`, username: 'good', password: 'pw' });
      await good.endAsync();
    }
  });

  test('plugins: a module from plugins: rewrites topics; a module that is not a plugin stops the server naming plugins[0].module', async (t) => {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'prefix-plugin.mjs'), [
      'export default {',
      "  name: 'prefix',",
      '  setup(broker, options) {',
      "    broker.intercept('publish', (m) => ({ ...m, topic: options.prefix + m.topic }));",
      '  },',
      '};',
      '',
    ].join('\n'));
    writeFileSync(join(dir, 'not-a-plugin.mjs'), 'export const answer = 42;\n');
    // The module path is relative to the server's working directory (the temp dir).
    const petrel = await startPetrel(t, dir, { plugins: [{ module: './prefix-plugin.mjs', options: { prefix: 'rewritten/' } }] });
    assert.ok(petrel.records().some((r) => r.msg === 'plugin loaded' && r.plugin === 'prefix'));
    const clients = clientsOf(t);
    for (const v of V4_V5) {
      const c = await clients.connect(petrel.url, v, { clientId: `plug-${v}` });
      const inbox = new Inbox(c);
      await c.subscribeAsync('#', { qos: 1 });
      await c.publishAsync(`in/${v}`, 'x', { qos: 1 });
      await inbox.next(`rewritten/in/${v}`);
      assert.deepEqual(inbox.messages.map((m) => m.topic), [`rewritten/in/${v}`]);
    }
    const failed = await startFails(dir, { plugins: [{ module: './not-a-plugin.mjs' }] });
    assert.notEqual(failed.code, 0);
    assert.notEqual(failed.code, null);
    assert.match(failed.stderr, /plugins\[0\]\.module/);
  });
});
