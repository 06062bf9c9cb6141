/**
 * The standalone server on its default SQLite store, killed with SIGKILL (and stopped with
 * SIGTERM) and started again on the same data directory, with MQTT.js clients: persistent
 * sessions, their subscriptions, retained messages and wills are back; sessions whose expiry
 * passed while the server was down are gone and their wills published; and a kill in the middle
 * of a stream of SUBSCRIBEs and retained PUBLISHes loses nothing that was acknowledged (SUBACK and
 * PUBACK come after the commit) and never leaves a store that does not open.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient, Store } from 'mqtt';
import { clientOptions, connectClient, endAll, Inbox, WAIT_MS, withTimeout } from '../helpers/mqttjs.js';

const BIN = fileURLToPath(new URL('../../src/bin/petrel.js', import.meta.url));
const START_MS = 15_000;

type LogRecord = Record<string, unknown>;

interface Petrel {
  child: ChildProcess;
  pid: number;
  url: string;
  records: () => LogRecord[];
  /** Resolves with the first log record matching `pred` (already written or the next one). */
  waitFor: (pred: (r: LogRecord) => boolean, what: string) => Promise<LogRecord>;
  /** Sends `signal` to the server's PID and waits (bounded) for it to exit. */
  stop: (signal: 'SIGKILL' | 'SIGTERM') => Promise<void>;
}

/** A data directory removed after the test. */
function dataDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-crash-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts the server on `dir` (SQLite store, commit durability: the defaults) on a free port. */
async function startPetrel(t: TestContext, dir: string): Promise<Petrel> {
  const child = spawn(process.execPath, [BIN, '--port', '0', '--ws-port', 'off', '--http-port', 'off', '--host', '127.0.0.1', '--data-dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn petrel');
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    for (const w of [...waiters]) w();
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  t.after(async () => {
    if (alive()) process.kill(pid, 'SIGKILL');
    await withTimeout(exited, 5000, 'petrel to exit');
  });
  const records = (): LogRecord[] => out.slice(0, out.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogRecord);
  const waitFor = (pred: (r: LogRecord) => boolean, what: string): Promise<LogRecord> =>
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
  const listening = await waitFor((r) => r.msg === 'listening' && r.type === 'tcp', 'the listening record');
  const stop = async (signal: 'SIGKILL' | 'SIGTERM'): Promise<void> => {
    if (alive()) process.kill(pid, signal);
    await withTimeout(exited, START_MS, `petrel to exit on ${signal}`);
  };
  return { child, pid, url: `mqtt://127.0.0.1:${listening.port as number}`, records, waitFor, stop };
}

/** A 5.0 MQTT.js client, ended after the test. */
async function client(t: TestContext, url: string, clientId: string, extra: IClientOptions = {}): Promise<MqttClient> {
  const c = await connectClient(url, 5, { clientId, ...extra });
  t.after(() => endAll([c]));
  return c;
}

const persistent = (expiry: number): IClientOptions => ({ clean: false, properties: { sessionExpiryInterval: expiry } });

/** Connects a persistent-session client and returns it with the Session Present flag of its CONNACK. */
async function resume(t: TestContext, url: string, clientId: string, expiry: number): Promise<{ client: MqttClient; sessionPresent: boolean }> {
  const c = mqtt.connect(url, clientOptions(5, { clientId, ...persistent(expiry) }));
  t.after(() => endAll([c]));
  const [connack] = await withTimeout(new Promise<[IConnackPacket]>((resolve, reject) => {
    c.once('connect', (p) => resolve([p]));
    c.once('error', reject);
  }), WAIT_MS, `CONNACK for ${clientId}`);
  return { client: c, sessionPresent: connack.sessionPresent };
}

/** The store's 'store opened' record of this start (counts of what it read back). */
function opened(p: Petrel): LogRecord {
  const r = p.records().find((x) => x.msg === 'store opened');
  assert.ok(r !== undefined, 'a store opened record');
  return r;
}

/**
 * Resolves once `ms` of wall-clock time has passed since `since`: a session's expiry in a child
 * process runs on its own clock, which a test cannot advance; the wait is bounded by `ms`.
 */
function wallClockPassed(since: number, ms: number): Promise<void> {
  const left = since + ms - Date.now();
  return left <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, left));
}

describe('petrel on its SQLite store, killed and started again on the same data directory', () => {
  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    test(`after ${signal}: a persistent session keeps its subscriptions (sessionPresent [MQTT-3.2.2-2]), retained messages are back [MQTT-3.3.1-6]`, async (t) => {
      const dir = dataDir(t);
      const first = await startPetrel(t, dir);
      const sub = await client(t, first.url, 'crash-sub', persistent(300));
      await sub.subscribeAsync({ 'crash/live/#': { qos: 1 }, 'crash/other': { qos: 0 } });
      const pub = await client(t, first.url, 'crash-pub');
      await pub.publishAsync('crash/retained/a', 'kept a', { qos: 1, retain: true });
      await pub.publishAsync('crash/retained/b', 'kept b', { qos: 1, retain: true });
      // The retained message removed before the stop must stay removed.
      await pub.publishAsync('crash/retained/c', 'gone', { qos: 1, retain: true });
      await pub.publishAsync('crash/retained/c', '', { qos: 1, retain: true });
      await endAll([sub, pub]);
      await first.stop(signal);

      const second = await startPetrel(t, dir);
      assert.equal(opened(second).subscriptions, 2);
      const { client: sub2, sessionPresent } = await resume(t, second.url, 'crash-sub', 300);
      assert.equal(sessionPresent, true);
      const inbox = new Inbox(sub2);
      const pub2 = await client(t, second.url, 'crash-pub');
      // Not subscribed again: the stored subscription delivers.
      await pub2.publishAsync('crash/live/x', 'after restart', { qos: 1 });
      const m = await inbox.next('crash/live/x');
      assert.equal(m.payload, 'after restart');
      assert.equal(m.qos, 1);

      const reader = await client(t, second.url, 'crash-reader');
      const retained = new Inbox(reader);
      await reader.subscribeAsync('crash/retained/#', { qos: 1 });
      await retained.count(2);
      assert.deepEqual(retained.messages.map((x) => [x.topic, x.payload, x.retain]).sort(),
        [['crash/retained/a', 'kept a', true], ['crash/retained/b', 'kept b', true]]);
      // A marker published after the SUBSCRIBE arrives after every retained message, so none is missing.
      await pub2.publishAsync('crash/retained/marker', 'm', { qos: 1 });
      await retained.next('crash/retained/marker');
      assert.equal(retained.messages.filter((x) => x.retain).length, 2);
      await second.stop('SIGTERM');
    });
  }

  test('SIGKILL: a session whose expiry passed while the server was down is gone and its will published; one that did not expire is present [MQTT-3.1.2-23] [MQTT-3.1.3-9]', async (t) => {
    const dir = dataDir(t);
    const first = await startPetrel(t, dir);
    const willOf = (topic: string, delay: number): IClientOptions['will'] => ({
      topic, payload: Buffer.from(`will of ${topic}`), qos: 1, retain: true, properties: { willDelayInterval: delay },
    });
    // The will's delay is longer than the session: it is published when the session ends [MQTT-3.1.3-9].
    const short = await client(t, first.url, 'crash-short', { ...persistent(2), will: willOf('crash/will/short', 3600) });
    const long = await client(t, first.url, 'crash-long', { ...persistent(3600), will: willOf('crash/will/long', 3600) });
    await short.subscribeAsync('crash/short/#', { qos: 1 });
    await long.subscribeAsync('crash/long/#', { qos: 1 });
    // Both connections drop without DISCONNECT: their wills are pending, their expiry runs.
    short.stream.destroy();
    long.stream.destroy();
    const droppedAt = Date.now();
    await first.waitFor((r) => r.msg === 'client disconnected' && r.clientId === 'crash-short', 'crash-short to be gone');
    await first.waitFor((r) => r.msg === 'client disconnected' && r.clientId === 'crash-long', 'crash-long to be gone');
    // A SUBACK is sent after its commit, and commits are in order: the detached sessions are on disk.
    const probe = await client(t, first.url, 'crash-probe');
    await probe.subscribeAsync('crash/probe', { qos: 1 });
    await first.stop('SIGKILL');
    await wallClockPassed(droppedAt, 2500);

    const second = await startPetrel(t, dir);
    const watcher = await client(t, second.url, 'crash-watcher');
    const wills = new Inbox(watcher);
    await watcher.subscribeAsync('crash/will/#', { qos: 1 });
    const will = await wills.next('crash/will/short');
    assert.equal(will.payload, 'will of crash/will/short');
    assert.equal((await resume(t, second.url, 'crash-short', 2)).sessionPresent, false);
    assert.equal((await resume(t, second.url, 'crash-long', 3600)).sessionPresent, true);
    // The long session's will is not published: its client came back before the delay [MQTT-3.1.3-9].
    const pub = await client(t, second.url, 'crash-pub');
    await pub.publishAsync('crash/will/marker', 'm', { qos: 1 });
    await wills.next('crash/will/marker');
    assert.deepEqual(wills.messages.map((x) => x.topic), ['crash/will/short', 'crash/will/marker']);
    await second.stop('SIGTERM');
  });

  test('SIGKILL: the will of a client connected at the crash is published after the restart, after its Will Delay Interval [MQTT-3.1.3-9]', async (t) => {
    const dir = dataDir(t);
    const first = await startPetrel(t, dir);
    const w = await client(t, first.url, 'crash-will', {
      ...persistent(3600), will: { topic: 'crash/will/connected', payload: Buffer.from('bye'), qos: 1, retain: true, properties: { willDelayInterval: 1 } },
    });
    // Its SUBACK follows the commit of the session record (with the will) written at CONNECT.
    await w.subscribeAsync('crash/will-client/#', { qos: 1 });
    await first.stop('SIGKILL');
    await endAll([w]);

    const second = await startPetrel(t, dir);
    const watcher = await client(t, second.url, 'crash-watcher');
    const wills = new Inbox(watcher);
    // Retained: seen whether the will goes out before or after this SUBSCRIBE.
    await watcher.subscribeAsync('crash/will/#', { qos: 1 });
    const will = await wills.next('crash/will/connected');
    assert.equal(will.payload, 'bye');
    await second.stop('SIGTERM');
  });

  test('SIGKILL in the middle of a stream of SUBSCRIBEs and retained PUBLISHes: the store opens, and every SUBACKed subscription and PUBACKed retained message is there', async (t) => {
    const dir = dataDir(t);
    const first = await startPetrel(t, dir);
    const sub = await client(t, first.url, 'crash-stream-sub', persistent(3600));
    const pub = await client(t, first.url, 'crash-stream-pub');
    // Bounded: the server is killed after KILL_AFTER pairs; TOTAL is never reached. Under the
    // session queue bound, so that every restored retained message reaches one SUBSCRIBE.
    const TOTAL = 900;
    const WINDOW = 16;
    const KILL_AFTER = 300;
    const subacked: number[] = [];
    const pubacked: number[] = [];
    let killed: Promise<void> | undefined;
    sub.on('error', () => undefined);
    pub.on('error', () => undefined);
    // WINDOW workers, each sending SUBSCRIBE i and a retained PUBLISH i at once, until the server dies.
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < TOTAL && killed === undefined) {
        const i = next++;
        const subscribed = withTimeout(sub.subscribeAsync(`crash/stream/sub/${i}`, { qos: 1 }), WAIT_MS, `SUBACK ${i}`)
          .then((granted) => { if (granted[0]?.qos === 1) subacked.push(i); }, () => undefined);
        const published = withTimeout(pub.publishAsync(`crash/stream/ret/${i}`, `r${i}`, { qos: 1, retain: true }), WAIT_MS, `PUBACK ${i}`)
          .then(() => { pubacked.push(i); }, () => undefined);
        await Promise.all([subscribed, published]);
        if (killed === undefined && subacked.length >= KILL_AFTER) killed = first.stop('SIGKILL');
      }
    };
    await Promise.all(Array.from({ length: WINDOW }, worker));
    assert.ok(killed !== undefined, `the server was killed before the end of the stream (${subacked.length} SUBACKs, ${pubacked.length} PUBACKs)`);
    await killed;
    await endAll([sub, pub]);

    const second = await startPetrel(t, dir);
    const counts = opened(second);
    assert.ok((counts.subscriptions as number) >= subacked.length, `${String(counts.subscriptions)} subscriptions restored, ${subacked.length} SUBACKed`);
    assert.ok((counts.retained as number) >= pubacked.length, `${String(counts.retained)} retained restored, ${pubacked.length} PUBACKed`);

    // Every retained message that was acknowledged is there, with its payload.
    const reader = await client(t, second.url, 'crash-stream-reader');
    const retained = new Inbox(reader);
    await reader.subscribeAsync('crash/stream/ret/#', { qos: 1 });
    const pub2 = await client(t, second.url, 'crash-stream-pub');
    await pub2.publishAsync('crash/stream/ret-marker', 'm', { qos: 1 });
    await reader.subscribeAsync('crash/stream/ret-marker', { qos: 1 });
    await pub2.publishAsync('crash/stream/ret-marker', 'm', { qos: 1 });
    await retained.next('crash/stream/ret-marker');
    const got = new Map(retained.messages.filter((m) => m.retain).map((m) => [m.topic, m.payload]));
    for (const i of pubacked) assert.equal(got.get(`crash/stream/ret/${i}`), `r${i}`, `retained message ${i} (PUBACKed) is back`);

    // Every subscription that was acknowledged delivers without being made again.
    const { client: sub2, sessionPresent } = await resume(t, second.url, 'crash-stream-sub', 3600);
    assert.equal(sessionPresent, true);
    const inbox = new Inbox(sub2);
    for (const i of subacked) await pub2.publishAsync(`crash/stream/sub/${i}`, `s${i}`, { qos: 1 });
    await inbox.until((ms) => new Set(ms.map((m) => m.topic)).size >= subacked.length, `${subacked.length} deliveries`, 30_000);
    const topics = new Set(inbox.messages.map((m) => m.topic));
    for (const i of subacked) assert.ok(topics.has(`crash/stream/sub/${i}`), `subscription ${i} (SUBACKed) is back`);
    await second.stop('SIGTERM');
  });

  for (const qos of [1, 2] as const) {
    test(`SIGKILL in the middle of a QoS ${qos} stream: every acknowledged message reaches the online and the offline persistent subscriber ${qos === 1 ? 'at least once [MQTT-4.3.2-1]' : 'exactly once [MQTT-4.3.3-1]'}`, async (t) => {
      const dir = dataDir(t);
      const first = await startPetrel(t, dir);
      const TOPIC = 'crash/q/stream';
      // The QoS 2 receiver's state of MQTT.js (PUBREC sent, PUBREL awaited) is kept across its two
      // connections, as a client with a persistent session must [MQTT-4.3.3-9].
      const incomingStore = new Store({ clean: false });
      const received = new Map<string, number[]>([['online', []], ['offline', []]]);
      const record = (who: string) => (_topic: string, payload: Buffer): void => {
        const text = payload.toString();
        if (text !== 'end') received.get(who)?.push(Number(text));
      };
      const offline = await client(t, first.url, 'crash-q-offline', persistent(3600));
      await offline.subscribeAsync(TOPIC, { qos });
      await endAll([offline]);
      await first.waitFor((r) => r.msg === 'client disconnected' && r.clientId === 'crash-q-offline', 'the offline subscriber to be gone');
      const online = await client(t, first.url, 'crash-q-online', { ...persistent(3600), incomingStore });
      online.on('message', record('online'));
      online.on('error', () => undefined);
      await online.subscribeAsync(TOPIC, { qos });

      const pub = await client(t, first.url, 'crash-q-pub');
      pub.on('error', () => undefined);
      const TOTAL = 2000;
      const WINDOW = 20;
      const KILL_AFTER = 600;
      const acked: number[] = [];
      let killed: Promise<void> | undefined;
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < TOTAL && killed === undefined) {
          const i = next++;
          try {
            await withTimeout(pub.publishAsync(TOPIC, String(i), { qos }), WAIT_MS, `the acknowledgement of ${i}`);
          } catch {
            return;
          }
          acked.push(i);
          if (killed === undefined && acked.length >= KILL_AFTER) killed = first.stop('SIGKILL');
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, worker));
      assert.ok(killed !== undefined, 'the server was killed in the middle of the stream');
      await killed;
      await endAll([pub]);

      const second = await startPetrel(t, dir);
      const { client: online2, sessionPresent } = await (async () => {
        const c = mqtt.connect(second.url, clientOptions(5, { clientId: 'crash-q-online', ...persistent(3600), incomingStore }));
        t.after(() => endAll([c]));
        c.on('message', record('online'));
        const [ack] = await withTimeout(new Promise<[IConnackPacket]>((resolve, reject) => {
          c.once('connect', (p) => resolve([p]));
          c.once('error', reject);
        }), WAIT_MS, 'CONNACK');
        return { client: c, sessionPresent: ack.sessionPresent };
      })();
      assert.equal(sessionPresent, true);
      const offline2 = mqtt.connect(second.url, clientOptions(5, { clientId: 'crash-q-offline', ...persistent(3600) }));
      t.after(() => endAll([offline2]));
      offline2.on('message', record('offline'));
      const ends = [online2, offline2].map((c) => new Inbox(c));
      await withTimeout(new Promise((resolve) => offline2.once('connect', resolve)), WAIT_MS, 'CONNACK');
      // A last message after the restart: it is queued behind everything restored, so once it
      // has arrived, whatever was stored has been delivered.
      const pub2 = await client(t, second.url, 'crash-q-pub');
      await pub2.publishAsync(TOPIC, 'end', { qos });
      for (const inbox of ends) await inbox.until((ms) => ms.some((m) => m.payload === 'end'), 'the last message', 60_000);

      for (const [who, seqs] of received) {
        const counts = new Map<number, number>();
        for (const n of seqs) counts.set(n, (counts.get(n) ?? 0) + 1);
        const missing = acked.filter((i) => !counts.has(i));
        assert.deepEqual(missing, [], `${who}: acknowledged messages missing (${acked.length} acknowledged, ${counts.size} distinct received)`);
        if (qos === 2) {
          const twice = [...counts].filter(([, n]) => n > 1).map(([i]) => i);
          assert.deepEqual(twice, [], `${who}: QoS 2 messages delivered more than once`);
        }
      }
      await second.stop('SIGTERM');
    });
  }
});
