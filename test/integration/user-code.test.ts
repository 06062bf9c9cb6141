/**
 * User code (hooks, authentication mechanisms, event listeners) can never crash the broker, skip
 * its cleanup, leak its error text to a client or hold a connection forever. Each test runs in
 * this process: a crash of the broker is a crash of the test run.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import type { AuthMechanism } from '../../src/broker/auth-mechanism.js';
import { BrokerCore } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import type { UserCodeFailure } from '../../src/broker/user-code.js';
import type { Logger, LogFn } from '../../src/observability/logger.js';
import { PacketType, ReasonCode } from '../../src/protocol/index.js';
import { ManualClock } from '../../src/session/clock.js';
import { TestClient, waitClosed, within } from '../helpers/duplex-client.js';

const SECRET = 'postgres://admin:hunter2@10.0.0.5/auth';
const boom = (): never => {
  throw new Error(SECRET);
};

/** A logger that records every line, to show what was logged. */
function recordingLogger(): { logger: Logger; lines: { level: string; obj: unknown; msg: string | undefined }[] } {
  const lines: { level: string; obj: unknown; msg: string | undefined }[] = [];
  const fn = (level: string): LogFn => ((obj: object | string, msg?: string) => {
    lines.push(typeof obj === 'string' ? { level, obj: {}, msg: obj } : { level, obj, msg });
  }) as LogFn;
  const logger: Logger = {
    error: fn('error'), warn: fn('warn'), info: fn('info'), debug: fn('debug'), trace: fn('trace'), child: () => logger,
  };
  return { logger, lines };
}

/** Collects the broker's `error` events. */
function failures(broker: BrokerCore): { source: string; timedOut: boolean; message: string }[] {
  const out: { source: string; timedOut: boolean; message: string }[] = [];
  broker.on('error', (err: Error, f: UserCodeFailure) => out.push({ source: f.source, timedOut: f.timedOut, message: err.message }));
  return out;
}

const will = { topic: 'wills/x', payload: Buffer.from('gone'), qos: 1 as const, retain: false };

async function subscriber(broker: BrokerCore, filter = 'wills/#'): Promise<TestClient> {
  const { client } = await TestClient.connect(broker, { clientId: `sub-${Math.random()}`, version: 5 });
  assert.deepEqual(await client.subscribe(filter, 1), [1]);
  return client;
}

function brokerWith(options: BrokerOptions): BrokerCore {
  return new BrokerCore({ logger: recordingLogger().logger, ...options });
}

describe('a hook that throws or rejects never crashes the broker nor skips cleanup', () => {
  for (const kind of ['throws', 'rejects'] as const) {
    const hook = kind === 'throws' ? boom : (): Promise<boolean> => Promise.reject(new Error(SECRET));

    test(`authorizePublish ${kind} on a will published after a socket close: the broker lives, the will is refused, the error reported`, async () => {
      const broker = brokerWith({ authorizePublish: (ctx) => (ctx.topic.startsWith('wills/') ? hook() : true) });
      const errors = failures(broker);
      const sub = await subscriber(broker);
      const { client } = await TestClient.connect(broker, { clientId: 'dies', version: 4, will });
      const lost = new Promise((resolve) => broker.once('connectionLost', resolve));
      client.drop();
      await within(lost);
      await within(new Promise<void>((resolve) => {
        const check = (): void => (errors.length > 0 ? resolve() : void setImmediate(check));
        check();
      }));
      assert.equal(errors[0]?.source, 'authorizePublish');
      await sub.expectNothing();
      assert.deepEqual(broker.clients().map((c) => c.clientId).filter((id) => id === 'dies'), []);
      await broker.closeConnections();
    });

    test(`authorizePublish ${kind} on a will published at a keep alive timeout [MQTT-3.1.2-22]`, async () => {
      const clock = new ManualClock(0);
      const broker = brokerWith({ clock, authorizePublish: (ctx) => (ctx.topic.startsWith('wills/') ? hook() : true) });
      const errors = failures(broker);
      const sub = await subscriber(broker);
      const { client } = await TestClient.connect(broker, { clientId: 'silent', version: 5, keepalive: 2, will });
      clock.advance(3_100);
      await waitClosed(client);
      await sub.expectNothing();
      assert.equal(errors[0]?.source, 'authorizePublish');
      await broker.closeConnections();
    });

    test(`authorizePublish ${kind} on the will of a connection taken over [MQTT-3.1.4-2]: old socket closed, new client gets CONNACK, close() resolves`, async () => {
      const broker = brokerWith({ authorizePublish: (ctx) => (ctx.topic.startsWith('wills/') ? hook() : true) });
      const { client: first } = await TestClient.connect(broker, { clientId: 'twin', version: 4, will });
      const { client: second, connack } = await TestClient.connect(broker, { clientId: 'twin', version: 4 });
      assert.equal(connack.reasonCode, ReasonCode.Success);
      await waitClosed(first);
      await second.expectNothing();
      await within(broker.closeConnections());
    });

    test(`authorizePublish ${kind} on a delayed will published when the session expires`, async () => {
      const clock = new ManualClock(0);
      const broker = brokerWith({ clock, authorizePublish: (ctx) => (ctx.topic.startsWith('wills/') ? hook() : true) });
      const errors = failures(broker);
      const sub = await subscriber(broker);
      const expired = new Promise((resolve) => broker.once('sessionExpired', resolve));
      const { client } = await TestClient.connect(broker, {
        clientId: 'expiring', version: 5, clean: true, properties: { sessionExpiryInterval: 2 },
        will: { ...will, properties: { willDelayInterval: 60 } },
      });
      client.drop();
      await waitClosed(client);
      clock.advance(2_200);
      await within(expired);
      await sub.expectNothing();
      assert.equal(errors[0]?.source, 'authorizePublish');
      await broker.closeConnections();
    });

    test(`authorizePublish ${kind} on a PUBLISH: 5.0 PUBACK 0x80 without the error text, connection kept`, async () => {
      const broker = brokerWith({ authorizePublish: hook });
      const errors = failures(broker);
      const { client } = await TestClient.connect(broker, { clientId: 'p', version: 5 });
      client.publish('a/b', 'x', 1, 7);
      const ack = await client.expect(PacketType.Puback);
      assert.equal(ack.reasonCode, ReasonCode.UnspecifiedError);
      assert.doesNotMatch(JSON.stringify(ack.properties ?? {}), /hunter2|10\.0\.0\.5/);
      await client.expectNothing();
      assert.equal(errors[0]?.source, 'authorizePublish');
      await broker.closeConnections();
    });

    test(`authorizeSubscribe ${kind}: SUBACK 0x80 for that filter (3.1.1 and 5.0), the others granted`, async () => {
      const broker = brokerWith({ authorizeSubscribe: (ctx) => (ctx.topicFilter === 'bad' ? hook() : true) });
      for (const version of [4, 5] as const) {
        const { client } = await TestClient.connect(broker, { clientId: `s${version}`, version });
        client.send({ type: PacketType.Subscribe, packetId: 3, subscriptions: [{ topicFilter: 'bad', qos: 1 }, { topicFilter: 'good', qos: 1 }] });
        const suback = await client.expect(PacketType.Suback);
        assert.deepEqual(suback.reasonCodes, [ReasonCode.UnspecifiedError, 1]);
        assert.doesNotMatch(JSON.stringify(suback.properties ?? {}), /hunter2/);
        await client.expectNothing();
      }
      await broker.closeConnections();
    });

    test(`authenticate ${kind}: CONNACK 0x80 (3.1.1: 3 Server unavailable) and no error text on the wire`, async () => {
      const broker = brokerWith({ authenticate: kind === 'throws' ? boom : () => Promise.reject(new Error(SECRET)) });
      const errors = failures(broker);
      const v5 = await TestClient.connect(broker, { clientId: 'a5', version: 5 });
      assert.equal(v5.connack.reasonCode, ReasonCode.UnspecifiedError);
      assert.doesNotMatch(JSON.stringify(v5.connack.properties ?? {}), /hunter2|10\.0\.0\.5/);
      assert.doesNotMatch(Buffer.concat(v5.client.raw).toString('latin1'), /hunter2/);
      await waitClosed(v5.client);
      const v4 = await TestClient.connect(broker, { clientId: 'a4', version: 4 });
      assert.equal(Buffer.concat(v4.client.raw)[3], 3);
      await waitClosed(v4.client);
      assert.deepEqual(errors.map((e) => e.source), ['authenticate', 'authenticate']);
      await broker.closeConnections();
    });
  }

  test('a hook answering with the wrong type (undefined, a string) is a failure, not a crash', async () => {
    const broker = brokerWith({
      authorizePublish: (() => undefined) as unknown as () => boolean,
      authorizeSubscribe: (() => Promise.resolve('yes')) as unknown as () => boolean,
    });
    const errors = failures(broker);
    const { client } = await TestClient.connect(broker, { clientId: 'w', version: 5 });
    client.publish('t', 'x', 1, 1);
    assert.equal((await client.expect(PacketType.Puback)).reasonCode, ReasonCode.UnspecifiedError);
    assert.deepEqual(await client.subscribe('t', 1), [ReasonCode.UnspecifiedError]);
    assert.deepEqual(errors.map((e) => e.source), ['authorizePublish', 'authorizeSubscribe']);
    await broker.closeConnections();
  });

  test('an authenticate hook returning a code that CONNACK cannot carry never produces an invalid CONNACK', async () => {
    const codes = new Map<string, number>([['c10', 0x10], ['c05', 5], ['c999', 999], ['c87', 0x87]]);
    const broker = brokerWith({ authenticate: (ctx) => codes.get(ctx.clientId) ?? 0 });
    const expected: [string, 4 | 5, number][] = [
      ['c10', 5, ReasonCode.UnspecifiedError], // 0x10 is not a CONNACK code
      ['c05', 5, ReasonCode.NotAuthorized], // a 3.1.1 return code, mapped
      ['c999', 5, ReasonCode.UnspecifiedError],
      ['c87', 5, ReasonCode.NotAuthorized],
      ['c87', 4, ReasonCode.NotAuthorized],
    ];
    for (const [clientId, version, code] of expected) {
      const { client, connack } = await TestClient.connect(broker, { clientId, version });
      assert.equal(connack.reasonCode, code, clientId);
      await waitClosed(client);
    }
    await broker.closeConnections();
  });

  test('an enhanced authentication mechanism that throws gets CONNACK 0x80 without its text', async () => {
    const broken: AuthMechanism = { method: 'BROKEN', start: () => ({ next: () => boom() }) };
    const brokenStart: AuthMechanism = { method: 'BROKEN-START', start: () => boom() };
    const broker = brokerWith({ authMechanisms: [broken, brokenStart] });
    for (const method of ['BROKEN', 'BROKEN-START']) {
      const client = new TestClient(broker, 5);
      client.send({
        type: PacketType.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: method, clean: true, keepalive: 0,
        properties: { authenticationMethod: method },
      });
      const connack = await client.expect(PacketType.Connack);
      assert.equal(connack.reasonCode, ReasonCode.UnspecifiedError);
      assert.doesNotMatch(JSON.stringify(connack.properties ?? {}), /hunter2/);
      await waitClosed(client);
    }
    await broker.closeConnections();
  });
});

describe('event listeners that throw', () => {
  test('a throwing listener is reported (logged and an error event); the other listeners still run', async () => {
    const { logger, lines } = recordingLogger();
    const broker = new BrokerCore({ logger });
    const errors = failures(broker);
    const seen: string[] = [];
    broker.on('clientConnected', () => boom());
    broker.on('clientConnected', (c) => seen.push(c.clientId));
    broker.on('clientDisconnected', () => boom());
    broker.on('clientDisconnected', (c) => seen.push(`bye ${c.clientId}`));
    const { client } = await TestClient.connect(broker, { clientId: 'l1', version: 4 });
    await client.expectNothing();
    client.disconnect();
    await waitClosed(client);
    assert.deepEqual(seen, ['l1', 'bye l1']);
    assert.deepEqual(errors.map((e) => e.source), ['listener:clientConnected', 'listener:clientDisconnected']);
    assert.ok(lines.some((l) => l.level === 'error' && (l.obj as { source?: string }).source === 'listener:clientConnected'));
    await broker.closeConnections();
  });

  test('an async listener that rejects is reported, not an unhandled rejection', async () => {
    const broker = brokerWith({});
    const errors = failures(broker);
    broker.on('clientConnected', async () => {
      await Promise.resolve();
      boom();
    });
    const { client } = await TestClient.connect(broker, { clientId: 'l2', version: 4 });
    await client.expectNothing();
    await within(new Promise<void>((resolve) => {
      const check = (): void => (errors.length > 0 ? resolve() : void setImmediate(check));
      check();
    }));
    assert.equal(errors[0]?.source, 'listener:clientConnected');
    await broker.closeConnections();
  });

  test('a throwing error listener or connectionLost listener does not stop close()', async () => {
    const broker = brokerWith({ authorizePublish: () => boom() });
    broker.on('error', () => boom());
    broker.on('connectionLost', () => boom());
    broker.on('clientDisconnected', () => boom());
    const clients = await Promise.all([4, 5].map(async (v) => (await TestClient.connect(broker, { clientId: `c${v}`, version: v as 4 | 5, will })).client));
    clients[0]?.publish('t', 'x', 1, 1);
    await within(broker.closeConnections());
    for (const c of clients) await waitClosed(c);
  });
});

describe('time limits on hooks', () => {
  const never = <T>(): Promise<T> => new Promise<T>(() => undefined);

  test('an authenticate hook that never settles is answered as denied after hookTimeout (5.0: 0x87; 3.1.1: 5), and logged', async () => {
    const clock = new ManualClock(0);
    const { logger, lines } = recordingLogger();
    let asked = 0;
    const broker = new BrokerCore({ clock, logger, hookTimeout: 2, authenticate: () => (asked++, never<boolean>()) });
    const errors = failures(broker);
    const v5 = new TestClient(broker, 5);
    v5.send({ type: PacketType.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: 'slow5', clean: true, keepalive: 0 });
    const v4 = new TestClient(broker, 4);
    v4.send({ type: PacketType.Connect, protocolVersion: 4, protocolName: 'MQTT', clientId: 'slow4', clean: true, keepalive: 0 });
    await within(new Promise<void>((resolve) => {
      const check = (): void => (asked === 2 ? resolve() : void setImmediate(check));
      check();
    }));
    clock.advance(2_100);
    assert.equal((await v5.expect(PacketType.Connack)).reasonCode, ReasonCode.NotAuthorized);
    await waitClosed(v5);
    await waitClosed(v4);
    assert.equal(Buffer.concat(v4.raw).subarray(-1)[0], 5);
    assert.deepEqual(errors.map((e) => [e.source, e.timedOut]), [['authenticate', true], ['authenticate', true]]);
    assert.ok(lines.some((l) => l.level === 'warn' && (l.obj as { source?: string }).source === 'authenticate'));
    await broker.closeConnections();
  });

  test('authorizeSubscribe that never settles: SUBACK 0x87 after hookTimeout, later packets then run in order', async () => {
    const clock = new ManualClock(0);
    const broker = brokerWith({ clock, hookTimeout: 3, authorizeSubscribe: () => never<boolean>() });
    const { client } = await TestClient.connect(broker, { clientId: 'slow-sub', version: 5 });
    client.send({ type: PacketType.Subscribe, packetId: 9, subscriptions: [{ topicFilter: 'x/#', qos: 1 }] });
    client.publish('x/1', 'held', 1, 4); // held behind the SUBSCRIBE
    clock.advance(3_100);
    const suback = await client.expect(PacketType.Suback);
    assert.deepEqual(suback.reasonCodes, [ReasonCode.NotAuthorized]);
    assert.equal((await client.expect(PacketType.Puback)).packetId, 4);
    await broker.closeConnections();
  });

  test('a connection whose hook never settles is closed when its socket closes: events, will, and it leaves clients()', async () => {
    const broker = brokerWith({ hookTimeout: 0, authorizePublish: (ctx) => (ctx.topic === 'stuck' ? never<boolean>() : true) });
    const sub = await subscriber(broker);
    const { client } = await TestClient.connect(broker, { clientId: 'stuck', version: 4, will });
    client.publish('stuck', 'x', 1, 1);
    await client.expectNothing(); // PINGREQ goes ahead of the held PUBLISH
    const lost = new Promise((resolve) => broker.once('connectionLost', resolve));
    client.drop();
    await within(lost);
    assert.equal((await sub.expect(PacketType.Publish)).topic, 'wills/x');
    assert.deepEqual(broker.clients().map((c) => c.clientId).filter((id) => id === 'stuck'), []);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.2-22] a connection whose hook never settles is closed when its keep alive runs out', async () => {
    const clock = new ManualClock(0);
    const broker = brokerWith({ clock, hookTimeout: 0, authorizePublish: () => never<boolean>() });
    const lost = new Promise((resolve) => broker.once('connectionLost', resolve));
    const { client } = await TestClient.connect(broker, { clientId: 'ka-stuck', version: 5, keepalive: 2 });
    client.publish('t', 'x', 1, 1);
    await client.expectNothing();
    clock.advance(3_100);
    const disconnect = await client.expect(PacketType.Disconnect);
    assert.equal(disconnect.reasonCode, ReasonCode.KeepAliveTimeout);
    await within(lost);
    assert.deepEqual(broker.clients(), []);
    await broker.closeConnections();
  });

  test('a slow hook for one client does not hold back another client', async () => {
    const broker = brokerWith({ hookTimeout: 0, authorizePublish: (ctx) => (ctx.clientId === 'slow' ? never<boolean>() : true) });
    const sub = await subscriber(broker, 't');
    const { client: slow } = await TestClient.connect(broker, { clientId: 'slow', version: 4 });
    const { client: fast } = await TestClient.connect(broker, { clientId: 'fast', version: 4 });
    slow.publish('t', 'slow', 1, 1);
    fast.publish('t', 'fast', 1, 1);
    assert.equal((await fast.expect(PacketType.Puback)).packetId, 1);
    assert.equal((await sub.expect(PacketType.Publish)).payload.toString(), 'fast');
    await broker.closeConnections();
  });
});
