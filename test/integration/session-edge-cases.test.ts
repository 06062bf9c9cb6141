/**
 * Edge cases around reconnects, shared groups, wills and hooks: each test pins a behaviour that
 * an earlier version got wrong.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { Connection } from '../../src/broker/connection.js';
import { resolveOptions } from '../../src/broker/options.js';
import { BrokerState } from '../../src/broker/state.js';
import { silentLogger } from '../../src/observability/logger.js';
import { encode, PacketType, ReasonCode } from '../../src/protocol/index.js';
import { ManualClock, ManualTicker, systemClock } from '../../src/session/clock.js';
import { TestClient, waitClosed, within } from '../helpers/duplex-client.js';

const persistent = { version: 5, clean: false, properties: { sessionExpiryInterval: 3600 } } as const;

describe('resume after reconnect', () => {
  test('[MQTT-3.3.4-9] the resend on reconnect respects the new Receive Maximum; the rest follows as slots free', async () => {
    const broker = new BrokerCore();
    let { client } = await TestClient.connect(broker, { ...persistent, clientId: 'rm', properties: { sessionExpiryInterval: 3600, receiveMaximum: 10 } });
    await client.subscribe('t', 1);
    for (let i = 0; i < 3; i++) await broker.publish({ topic: 't', payload: `m${i}`, qos: 1 });
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push((await client.expect(PacketType.Publish)).packetId as number);
    client.drop();
    await waitClosed(client);
    ({ client } = await TestClient.connect(broker, { ...persistent, clientId: 'rm', properties: { sessionExpiryInterval: 3600, receiveMaximum: 1 } }));
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await client.expect(PacketType.Publish);
      assert.deepEqual([p.dup, p.packetId], [true, ids[i]]);
      got.push(p.payload.toString());
      await client.expectNothing(); // never a second unacknowledged PUBLISH
      client.send({ type: PacketType.Puback, packetId: p.packetId as number });
    }
    assert.deepEqual(got, ['m0', 'm1', 'm2']);
    await broker.closeConnections();
  });

  test('deferred resends survive another reconnect with a larger Receive Maximum', async () => {
    const broker = new BrokerCore();
    const connect = (receiveMaximum: number): Promise<{ client: TestClient }> =>
      TestClient.connect(broker, { ...persistent, clientId: 'rm2', properties: { sessionExpiryInterval: 3600, receiveMaximum } });
    let { client } = await connect(10);
    await client.subscribe('t', 1);
    for (let i = 0; i < 3; i++) await broker.publish({ topic: 't', payload: `m${i}`, qos: 1 });
    for (let i = 0; i < 3; i++) await client.expect(PacketType.Publish);
    client.drop();
    await waitClosed(client);
    ({ client } = await connect(1)); // m0 resent, m1 and m2 deferred
    assert.equal((await client.expect(PacketType.Publish)).payload.toString(), 'm0');
    client.drop();
    await waitClosed(client);
    ({ client } = await connect(2)); // m0 and m1 resent at once, m2 waits for a slot
    const a = await client.expect(PacketType.Publish);
    const b = await client.expect(PacketType.Publish);
    assert.deepEqual([a.payload.toString(), b.payload.toString()], ['m0', 'm1']);
    await client.expectNothing();
    client.send({ type: PacketType.Puback, packetId: a.packetId as number });
    assert.equal((await client.expect(PacketType.Publish)).payload.toString(), 'm2');
    client.send({ type: PacketType.Puback, packetId: b.packetId as number });
    await broker.publish({ topic: 't', payload: 'fresh', qos: 1 });
    assert.equal((await client.expect(PacketType.Publish)).payload.toString(), 'fresh');
    await broker.closeConnections();
  });

  test('[MQTT-3.1.2-25] an unacknowledged message too large for the reconnected client is discarded and frees its slot', async () => {
    const broker = new BrokerCore();
    const base = { ...persistent, clientId: 'big' };
    let { client } = await TestClient.connect(broker, { ...base, properties: { sessionExpiryInterval: 3600, receiveMaximum: 1 } });
    await client.subscribe('t', 1);
    await broker.publish({ topic: 't', payload: Buffer.alloc(500), qos: 1 });
    await client.expect(PacketType.Publish);
    client.drop();
    await waitClosed(client);
    ({ client } = await TestClient.connect(broker, { ...base, properties: { sessionExpiryInterval: 3600, receiveMaximum: 1, maximumPacketSize: 100 } }));
    await broker.publish({ topic: 't', payload: 'small', qos: 1 });
    assert.equal((await client.expect(PacketType.Publish)).payload.toString(), 'small');
    await broker.closeConnections();
  });

  test('a session whose expiry passed is not resumed, and a will whose delay passed is published, even before the timer runs', async () => {
    const clock = new ManualClock(0);
    const broker = new BrokerCore({ clock });
    const watcher = (await TestClient.connect(broker, { clientId: 'watch', version: 5 })).client;
    await watcher.subscribe('status/#', 1);
    const opts = {
      clientId: 'dev', version: 5 as const, clean: false, properties: { sessionExpiryInterval: 5 },
      will: { topic: 'status/dev', payload: Buffer.from('offline'), qos: 1 as const, retain: false, properties: { willDelayInterval: 1 } },
    };
    const first = (await TestClient.connect(broker, opts)).client;
    first.drop();
    await waitClosed(first);
    clock.advance(60_000);
    const again = await TestClient.connect(broker, opts);
    assert.equal(again.connack.sessionPresent, false);
    assert.equal((await watcher.expect(PacketType.Publish)).payload.toString(), 'offline');
    await broker.closeConnections();
  });
});

describe('shared groups', () => {
  test('[MQTT-4.4.0-1] a sole member with a persistent session gets its unacknowledged message again on reconnect', async () => {
    const broker = new BrokerCore();
    const drops: string[] = [];
    broker.on('messageDropped', (_id, _topic, reason) => drops.push(reason));
    let { client } = await TestClient.connect(broker, { ...persistent, clientId: 'w1' });
    await client.subscribe('$share/g/jobs', 1);
    await broker.publish({ topic: 'jobs', payload: 'job-1', qos: 1 });
    await client.expect(PacketType.Publish);
    client.drop();
    await waitClosed(client);
    ({ client } = await TestClient.connect(broker, { ...persistent, clientId: 'w1' }));
    const again = await client.expect(PacketType.Publish);
    assert.deepEqual([again.payload.toString(), again.dup], ['job-1', true]);
    assert.deepEqual(drops, []);
    await broker.closeConnections();
  });

  test('[MQTT-3.3.1-12] Retain As Published applies to shared subscriptions', async () => {
    const broker = new BrokerCore();
    const { client } = await TestClient.connect(broker, { clientId: 's', version: 5 });
    client.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: '$share/g/t', qos: 1, retainAsPublished: true }] });
    await client.expect(PacketType.Suback);
    await broker.publish({ topic: 't', payload: 'x', retain: true });
    assert.equal((await client.expect(PacketType.Publish)).retain, true);
    await broker.closeConnections();
  });
});

describe('hooks and limits', () => {
  test('a will goes through authorizePublish like a PUBLISH', async () => {
    const asked: string[] = [];
    const broker = new BrokerCore({ authorizePublish: (ctx) => { asked.push(ctx.topic); return !ctx.topic.startsWith('admin/'); } });
    const sub = (await TestClient.connect(broker, { clientId: 'sub' })).client;
    await sub.subscribe('#', 1);
    const evil = (await TestClient.connect(broker, {
      clientId: 'evil', will: { topic: 'admin/cmd', payload: Buffer.from('shutdown'), qos: 1, retain: true },
    })).client;
    const lost = new Promise((resolve) => broker.once('connectionLost', resolve));
    evil.drop();
    await within(lost);
    await sub.expectNothing();
    assert.deepEqual(asked, ['admin/cmd']);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.2-22] a client pinging in time is answered and not timed out while an async hook holds its PUBLISH', async () => {
    const clock = new ManualClock(0);
    let release: (ok: boolean) => void = () => undefined;
    const broker = new BrokerCore({
      clock, hookTimeout: 0, authorizePublish: () => new Promise<boolean>((resolve) => { release = resolve; }),
    });
    const { client } = await TestClient.connect(broker, { clientId: 'ka', version: 5, keepalive: 2 });
    client.publish('t', 'x', 1, 1); // the hook stays pending
    for (let t = 0; t < 6; t++) {
      clock.advance(1000);
      client.send({ type: PacketType.Pingreq });
      // PINGREQ goes ahead of the held PUBLISH: answered now, and it keeps the connection alive.
      await client.expect(PacketType.Pingresp);
    }
    assert.equal(client.ended, false);
    release(true);
    await client.expect(PacketType.Puback);
    await broker.closeConnections();
  });

  test('Receive Maximum is a 5.0 limit: a 3.1.1 client is never disconnected for it', async () => {
    const broker = new BrokerCore({ receiveMaximum: 2 });
    const { client } = await TestClient.connect(broker, { clientId: 'v4', version: 4 });
    for (let i = 1; i <= 3; i++) client.publish('t', 'x', 2, i);
    for (let i = 1; i <= 3; i++) assert.equal((await client.expect(PacketType.Pubrec)).packetId, i);
    await broker.closeConnections();
  });

  test('MQTT 3.1: a client identifier longer than 23 characters gets return code 2', async () => {
    const broker = new BrokerCore();
    const { connack } = await TestClient.connect(broker, { clientId: 'x'.repeat(30), version: 3 });
    assert.equal(connack.reasonCode, ReasonCode.ClientIdentifierNotValid);
    await broker.closeConnections();
  });
});

describe('internal bounds', () => {
  function openState(options: ConstructorParameters<typeof BrokerCore>[0] = {}): { state: BrokerState; core: BrokerCore } {
    const state = new BrokerState(resolveOptions(options, { logger: silentLogger, clock: options.clock ?? systemClock }), options);
    const core = { handle: (stream: Parameters<BrokerCore['handle']>[0]) => state.connecting.add(new Connection(state, stream, { remoteAddress: 'test', remotePort: undefined, listener: undefined })) };
    return { state, core: core as unknown as BrokerCore };
  }

  test('a retained message does not keep the network chunk it arrived in alive', async () => {
    const { state, core } = openState();
    const c = (await TestClient.connect(core, { clientId: 'p', version: 5 })).client;
    const pad = encode({ type: PacketType.Publish, topic: 'pad', payload: Buffer.alloc(200_000), qos: 0, retain: false, dup: false }, 5);
    const kept = encode({
      type: PacketType.Publish, topic: 'r', payload: Buffer.from('hello'), qos: 1, retain: true, dup: false, packetId: 1,
      properties: { correlationData: Buffer.from('abcd') },
    }, 5);
    c.sendRaw(Buffer.concat([pad, kept]));
    await c.expect(PacketType.Puback);
    const m = state.retained.get('r');
    assert.ok(m !== undefined);
    assert.ok(m.payload.buffer.byteLength < 10_000);
    assert.ok((m.properties?.correlationData?.buffer.byteLength ?? 0) < 10_000);
    for (const conn of state.openConnections()) conn.close(undefined);
    state.stop();
  });

  /** As openState, with the connect deadline that BrokerCore.handle puts on the wheel for each new connection. */
  function openTimedState(options: NonNullable<ConstructorParameters<typeof BrokerCore>[0]>): { state: BrokerState; core: BrokerCore } {
    const state = new BrokerState(resolveOptions(options, { logger: silentLogger, clock: options.clock ?? systemClock }), options);
    const handle = (stream: Parameters<BrokerCore['handle']>[0]): void => {
      const conn = new Connection(state, stream, { remoteAddress: 'test', remotePort: undefined, listener: undefined });
      state.connecting.add(conn);
      state.wheel.schedule(conn, conn.lastSeen + state.options.connectTimeout * 1000);
    };
    return { state, core: { handle } as unknown as BrokerCore };
  }

  test('an idle connected client has one timer wheel entry, and keep alive still closes it [MQTT-3.1.2-24]', async () => {
    const clock = new ManualClock(0);
    const ticker = new ManualTicker();
    // connectTimeout 30 s, keep alive 60 s: the connect deadline (30 s) comes before the keep alive one (90 s).
    const { state, core } = openTimedState({ clock, ticker, connectTimeout: 30, retryInterval: 0 });
    const { client } = await TestClient.connect(core, { clientId: 'idle', keepalive: 60 });
    assert.equal(state.wheel.size, 1, 'the connect deadline entry also serves keep alive');
    // The connect deadline passes: the connected client stays, its entry moves to the keep alive deadline.
    clock.advance(30_100);
    ticker.tick();
    await client.expectNothing();
    assert.equal(state.wheel.size, 1);
    // 1.5 x keep alive without a packet since CONNECT (the PINGREQ of expectNothing came at 30.1 s).
    clock.advance(90_100);
    ticker.tick();
    await waitClosed(client);
    state.stop();
  });

  test('a keep alive deadline before the connect deadline gets its own entry [MQTT-3.1.2-24]', async () => {
    const clock = new ManualClock(0);
    const ticker = new ManualTicker();
    const { state, core } = openTimedState({ clock, ticker, connectTimeout: 30, retryInterval: 0 });
    const { client } = await TestClient.connect(core, { clientId: 'short', keepalive: 2 });
    assert.equal(state.wheel.size, 2);
    clock.advance(3_100);
    ticker.tick();
    await waitClosed(client);
    state.stop();
  });

  test('takeover reconnects keep one 3.1.1 resend timer per session', async () => {
    const clock = new ManualClock(0);
    const { state, core } = openState({ retryInterval: 1, clock, connectTimeout: 0 });
    for (let i = 0; i < 20; i++) {
      await TestClient.connect(core, { clientId: 'mobile', clean: false });
      clock.advance(130);
    }
    assert.ok(state.wheel.size <= 2, `the wheel holds ${state.wheel.size} entries for one client`);
    for (const conn of state.openConnections()) conn.close(undefined);
    state.stop();
  });
});
