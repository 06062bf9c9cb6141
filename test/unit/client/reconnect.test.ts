/**
 * Reconnect: backoff, resend of unfinished QoS 1/2 flows with DUP on a resumed session, the
 * offline queue, resubscribing on a new session, end() stopping it. A scripted server per
 * connection; time moves only through FakeTimers.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { describe, test } from 'node:test';
import {
  Backoff, ClientClosedError, type ClientOptions, MqttClient, OfflineQueueFullError,
} from '../../../src/client/index.js';
import { PacketType } from '../../../src/protocol/index.js';
import { FakeTimers, ScriptedServer } from '../../helpers/client-fakes.js';
import { within } from '../../helpers/duplex-client.js';

/** A transport factory that makes a new scripted server per connection attempt. */
class Servers extends EventEmitter {
  readonly all: ScriptedServer[] = [];
  readonly open = (): Promise<ScriptedServer['client']> => {
    const s = new ScriptedServer();
    this.all.push(s);
    this.emit('server', s);
    return Promise.resolve(s.client);
  };

  async nth(i: number): Promise<ScriptedServer> {
    while (this.all.length <= i) await within(once(this, 'server'), 3000, `server ${i}`);
    return this.all[i] as ScriptedServer;
  }
}

async function accept(s: ScriptedServer, sessionPresent: boolean): Promise<void> {
  await s.expect(PacketType.Connect);
  s.send({ type: PacketType.Connack, sessionPresent, reasonCode: 0 });
}

const RECONNECT = { initialDelay: 100, maxDelay: 1000, factor: 2, jitter: 0 };

async function start(options: ClientOptions = {}): Promise<{ servers: Servers; timers: FakeTimers; client: MqttClient }> {
  const servers = new Servers();
  const timers = new FakeTimers();
  const client = new MqttClient(servers.open, { keepalive: 0, clientId: 'r', clean: false, reconnect: RECONNECT, timers, ...options });
  const connected = client.connect();
  await accept(await servers.nth(0), false);
  await connected;
  return { servers, timers, client };
}

/** Drops connection `i` and lets the backoff elapse. */
async function drop(servers: Servers, timers: FakeTimers, client: MqttClient, i: number, delay = 100): Promise<void> {
  const offline = once(client, 'offline');
  (await servers.nth(i)).close();
  await within(offline, 3000, 'offline');
  timers.advance(delay);
}

describe('Backoff', () => {
  test('grows by factor from initialDelay up to maxDelay, and starts over after reset()', () => {
    const b = new Backoff({ initialDelay: 100, maxDelay: 1000, factor: 2, jitter: 0 });
    assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000, 1000]);
    b.reset();
    assert.equal(b.next(), 100);
  });

  test('jitter takes a random share of the delay off, never more', () => {
    const low = new Backoff({ initialDelay: 1000, jitter: 0.5 }, () => 0.999999);
    const high = new Backoff({ initialDelay: 1000, jitter: 0.5 }, () => 0);
    assert.equal(low.next(), 500);
    assert.equal(high.next(), 1000);
    assert.throws(() => new Backoff({ jitter: 2 }), RangeError);
  });
});

describe('MqttClient: reconnect', () => {
  test('a QoS 1 PUBLISH not acknowledged is resent with DUP and the same packet identifier on the resumed session; its promise resolves then [MQTT-4.4.0-1]', async () => {
    const { servers, timers, client } = await start();
    const events: string[] = [];
    client.on('offline', () => events.push('offline'));
    client.on('reconnect', () => events.push('reconnect'));
    client.on('online', () => events.push('online'));
    const published = client.publish('t/1', 'one', { qos: 1 });
    const first = await (await servers.nth(0)).expect(PacketType.Publish);
    assert.equal(first.dup, false);
    await drop(servers, timers, client, 0);
    const s1 = await servers.nth(1);
    await accept(s1, true);
    const again = await s1.expect(PacketType.Publish);
    assert.equal(again.dup, true);
    assert.equal(again.packetId, first.packetId);
    assert.equal(again.payload.toString(), 'one');
    s1.send({ type: PacketType.Puback, packetId: again.packetId as number });
    assert.equal((await within(published, 3000, 'puback')).packetId, first.packetId);
    assert.deepEqual(events, ['offline', 'reconnect', 'online']);
    await client.end();
  });

  test('a QoS 2 flow past PUBREC resumes with PUBREL, not the PUBLISH [MQTT-4.4.0-1]', async () => {
    const { servers, timers, client } = await start();
    const published = client.publish('t/2', 'two', { qos: 2 });
    const s0 = await servers.nth(0);
    const p = await s0.expect(PacketType.Publish);
    s0.send({ type: PacketType.Pubrec, packetId: p.packetId as number });
    await s0.expect(PacketType.Pubrel);
    await drop(servers, timers, client, 0);
    const s1 = await servers.nth(1);
    await accept(s1, true);
    const rel = await s1.expect(PacketType.Pubrel);
    assert.equal(rel.packetId, p.packetId);
    s1.send({ type: PacketType.Pubcomp, packetId: p.packetId as number });
    assert.equal((await within(published, 3000, 'pubcomp')).packetId, p.packetId);
    await client.end();
  });

  test('without a session: subscriptions are sent again, unfinished publishes start over, the offline queue follows in order', async () => {
    const { servers, timers, client } = await start();
    const s0 = await servers.nth(0);
    const subscribed = client.subscribe(['a/#', 'b/+'], { qos: 1 });
    const sub = await s0.expect(PacketType.Subscribe);
    s0.send({ type: PacketType.Suback, packetId: sub.packetId, reasonCodes: [1, 1] });
    await subscribed;
    const inflight = client.publish('t/q', 'inflight', { qos: 1 });
    await s0.expect(PacketType.Publish);
    await drop(servers, timers, client, 0);
    const queued0 = client.publish('t/q', 'offline-0', { qos: 0 });
    const queued1 = client.publish('t/q', 'offline-1', { qos: 1 });
    assert.equal(client.queued, 2);
    const s1 = await servers.nth(1);
    await accept(s1, false);
    const resub = await s1.expect(PacketType.Subscribe);
    assert.deepEqual(resub.subscriptions.map((x) => [x.topicFilter, x.qos]), [['a/#', 1], ['b/+', 1]]);
    const a = await s1.expect(PacketType.Publish);
    const b = await s1.expect(PacketType.Publish);
    const c = await s1.expect(PacketType.Publish);
    assert.deepEqual([a.payload.toString(), b.payload.toString(), c.payload.toString()], ['inflight', 'offline-0', 'offline-1']);
    assert.equal(a.dup, false, 'a new session: the message is new');
    await queued0;
    s1.send({ type: PacketType.Puback, packetId: a.packetId as number });
    s1.send({ type: PacketType.Puback, packetId: c.packetId as number });
    await within(Promise.all([inflight, queued1]), 3000, 'pubacks');
    await client.end();
  });

  test('the offline queue is bounded: a publish past maxMessages or maxBytes is refused with OfflineQueueFullError', async () => {
    const { servers, timers, client } = await start({ offlineQueue: { maxMessages: 2, maxBytes: 10 } });
    await drop(servers, timers, client, 0, 0);
    const kept = [client.publish('t', '12345'), client.publish('t', '12345')];
    await assert.rejects(client.publish('t', 'x'), OfflineQueueFullError);
    await client.end();
    for (const k of kept) await assert.rejects(k, ClientClosedError);
  });

  test('a failed attempt waits longer each time; end() while offline stops reconnecting and fails what waits', async () => {
    const { servers, timers, client } = await start();
    const pending = client.publish('t', 'x', { qos: 1 });
    await drop(servers, timers, client, 0);
    // Attempt 1 is refused by the server being unavailable (0x88): retried after 200 ms, not 100.
    const s1 = await servers.nth(1);
    await s1.expect(PacketType.Connect);
    s1.send({ type: PacketType.Connack, sessionPresent: false, reasonCode: 0x88 });
    await s1.closed;
    timers.advance(199);
    assert.equal(servers.all.length, 2);
    timers.advance(1);
    await servers.nth(2);
    await client.end();
    await assert.rejects(pending, ClientClosedError);
    timers.advance(10_000);
    assert.equal(servers.all.length, 3, 'no attempt after end()');
  });

  test('a refused CONNACK that cannot change (0x86) stops reconnecting and closes', async () => {
    const { servers, timers, client } = await start();
    await drop(servers, timers, client, 0);
    const closed = once(client, 'close');
    const s1 = await servers.nth(1);
    await s1.expect(PacketType.Connect);
    s1.send({ type: PacketType.Connack, sessionPresent: false, reasonCode: 0x86 });
    await within(closed, 3000, 'close');
    timers.advance(10_000);
    assert.equal(servers.all.length, 2);
  });

  test('reconnect: false (the default for a stream factory) closes on a lost connection and fails in-flight publishes', async () => {
    const { servers, client } = await start({ reconnect: false });
    const pending = client.publish('t', 'x', { qos: 1 });
    await (await servers.nth(0)).expect(PacketType.Publish);
    (await servers.nth(0)).close();
    await assert.rejects(pending, ClientClosedError);
  });
});
