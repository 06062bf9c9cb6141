/**
 * The client against Petrel's own broker over an in-process duplex pair, and against a scripted
 * server where the test must control exactly what the server sends (duplicates, aliases, silence).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { duplexPair, type Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../../src/broker/broker.js';
import type { BrokerOptions } from '../../../src/broker/options.js';
import {
  ClientClosedError, type ClientOptions, ConnackError, ConnectTimeoutError, connect, KeepaliveTimeoutError, type MqttClient,
  PublishError, type ReceivedMessage, SubscribeError, TopicAliasInvalidError,
} from '../../../src/client/index.js';
import { Decoder, PacketType, type PublishPacket, ReasonCode } from '../../../src/protocol/index.js';
import { FakeTimers, ScriptedServer } from '../../helpers/client-fakes.js';
import { within } from '../../helpers/duplex-client.js';

function pipeTo(broker: BrokerCore): Duplex {
  const [client, server] = duplexPair();
  broker.handle(server, 'test');
  return client;
}

function open(broker: BrokerCore, options: ClientOptions = {}): Promise<MqttClient> {
  return connect(pipeTo(broker), { keepalive: 0, ...options });
}

/** The error 'close' reports (`once` would reject on the 'error' event, which comes first for a protocol error). */
function closeOf(client: MqttClient): Promise<Error | undefined> {
  return within(new Promise((resolve) => client.once('close', resolve)), 3000, 'close');
}

async function next(it: AsyncIterator<ReceivedMessage>, what = 'message'): Promise<ReceivedMessage> {
  const r = await within(it.next(), 3000, what);
  assert.equal(r.done, false);
  return r.value as ReceivedMessage;
}

/** A scripted server that accepted the client's CONNECT with `connack` properties. */
async function scripted(options: ClientOptions, connackProps?: PublishPacket['properties']): Promise<{ server: ScriptedServer; client: MqttClient }> {
  const server = new ScriptedServer();
  const pending = connect(server.client, options);
  await server.expect(PacketType.Connect);
  server.send({ type: PacketType.Connack, sessionPresent: false, reasonCode: 0, ...(connackProps ? { properties: connackProps } : {}) });
  return { server, client: await pending };
}

describe('MqttClient: connect', () => {
  test('5.0 with an empty client id takes the assigned one [MQTT-3.2.2-16]', async () => {
    const broker = new BrokerCore();
    const client = await open(broker);
    assert.equal(client.connack.reasonCode, 0);
    assert.equal(client.sessionPresent, false);
    assert.ok(client.clientId.length > 0);
    assert.equal(client.clientId, client.connack.properties?.assignedClientIdentifier);
    await client.end();
    await broker.closeConnections();
  });

  for (const protocolVersion of [3, 4] as const) {
    test(`protocol level ${protocolVersion}: the client id is sent and a persistent session comes back present`, async () => {
      const broker = new BrokerCore();
      const first = await open(broker, { protocolVersion, clientId: `c${protocolVersion}`, clean: false });
      assert.equal(first.clientId, `c${protocolVersion}`);
      assert.equal(first.sessionPresent, false);
      await first.end();
      const second = await open(broker, { protocolVersion, clientId: `c${protocolVersion}`, clean: false });
      assert.equal(second.sessionPresent, true);
      await second.end();
      const generated = await open(broker, { protocolVersion });
      assert.match(generated.clientId, /^petrel-[0-9a-f]{12}$/);
      await generated.end();
      await broker.closeConnections();
    });
  }

  for (const protocolVersion of [4, 5] as const) {
    test(`protocol level ${protocolVersion}: a refused CONNACK rejects with ConnackError 0x86 [MQTT-3.2.2-7]`, async () => {
      const broker = new BrokerCore({ authenticate: () => false });
      const err = await open(broker, { protocolVersion, clientId: 'x', username: 'u', password: 'p' }).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof ConnackError);
      assert.equal(err.reasonCode, ReasonCode.BadUserNameOrPassword);
      await broker.closeConnections();
    });
  }

  test('no CONNACK within connectTimeout rejects with ConnectTimeoutError and closes the stream', async () => {
    const timers = new FakeTimers();
    const server = new ScriptedServer();
    const pending = connect(server.client, { timers, connectTimeout: 1000 });
    await server.expect(PacketType.Connect);
    timers.advance(999);
    timers.advance(1);
    await assert.rejects(pending, ConnectTimeoutError);
    assert.equal(server.client.destroyed, true);
  });

  test('a packet other than CONNACK first is a protocol error [MQTT-3.2.0-1]', async () => {
    const server = new ScriptedServer();
    const pending = connect(server.client, { keepalive: 0 });
    await server.expect(PacketType.Connect);
    server.send({ type: PacketType.Pingresp });
    await assert.rejects(pending, (e: unknown) => e instanceof Error && (e as { reasonCode?: number }).reasonCode === ReasonCode.ProtocolError);
  });

  test('Topic Alias Maximum is advertised only when set [MQTT-3.1.2-27]', async () => {
    const a = new ScriptedServer();
    void connect(a.client, { keepalive: 0, properties: { sessionExpiryInterval: 10 } }).catch(() => undefined);
    const plain = await a.expect(PacketType.Connect);
    assert.deepEqual(plain.properties, { sessionExpiryInterval: 10 });
    a.close();
    const b = new ScriptedServer();
    void connect(b.client, { keepalive: 0, properties: { topicAliasMaximum: 4 } }).catch(() => undefined);
    assert.equal((await b.expect(PacketType.Connect)).properties?.topicAliasMaximum, 4);
    b.close();
  });
});

for (const protocolVersion of [4, 5] as const) {
  describe(`MqttClient: publish and subscribe, protocol level ${protocolVersion}`, () => {
    test('QoS 0, 1 and 2 round trip through a subscription [MQTT-4.3.1-1] [MQTT-4.3.2-1] [MQTT-4.3.3-1]', async () => {
      const broker = new BrokerCore();
      const sub = await open(broker, { protocolVersion, clientId: 'sub' });
      const pub = await open(broker, { protocolVersion, clientId: 'pub' });
      assert.deepEqual((await sub.subscribe('t/#', { qos: 2 })).reasonCodes, [2]);
      const inbox = sub.messages();
      const events: string[] = [];
      sub.on('message', (m) => events.push(m.topic));
      assert.equal((await pub.publish('t/0', 'zero')).packetId, undefined);
      const one = await pub.publish('t/1', Buffer.from('one'), { qos: 1 });
      assert.ok((one.packetId ?? 0) > 0);
      const two = await pub.publish('t/2', new Uint8Array([0x74, 0x77, 0x6f]), { qos: 2, retain: true });
      assert.ok((two.packetId ?? 0) > 0);
      const got = [await next(inbox), await next(inbox), await next(inbox)];
      assert.deepEqual(got.map((m) => [m.topic, m.payload.toString(), m.qos]), [['t/0', 'zero', 0], ['t/1', 'one', 1], ['t/2', 'two', 2]]);
      assert.deepEqual(events, ['t/0', 't/1', 't/2']);
      // The retained QoS 2 message comes back to a new subscriber with RETAIN set [MQTT-3.3.1-6].
      const late = await open(broker, { protocolVersion, clientId: 'late' });
      const lateInbox = late.messages();
      await late.subscribe('t/2', { qos: 1 });
      const retained = await next(lateInbox);
      assert.deepEqual([retained.topic, retained.retain, retained.qos], ['t/2', true, 1]);
      await Promise.all([sub.end(), pub.end(), late.end()]);
      await broker.closeConnections();
    });

    test('SUBACK codes: granted QoS per filter, a refused filter fails (5.0 0x87, 3.1.1 0x80) [MQTT-3.9.3-1]', async () => {
      const broker = new BrokerCore({ authorizeSubscribe: (ctx) => !ctx.topicFilter.startsWith('secret') });
      const client = await open(broker, { protocolVersion });
      const r = await client.subscribe([{ topicFilter: 'a/#', qos: 1 }, { topicFilter: 'secret/#', qos: 1 }, { topicFilter: 'b', qos: 0 }]);
      assert.deepEqual(r.reasonCodes, [1, protocolVersion === 5 ? 0x87 : 0x80, 0]);
      assert.deepEqual((await client.subscribe(['c', 'd'], { qos: 2 })).reasonCodes, [2, 2]);
      await assert.rejects(client.subscribe('a/#/b'), (e: unknown) => e instanceof SubscribeError && e.reasonCode === ReasonCode.TopicFilterInvalid);
      await client.end();
      await broker.closeConnections();
    });

    test('unsubscribe: UNSUBACK codes, and the filter no longer delivers', async () => {
      const broker = new BrokerCore();
      const client = await open(broker, { protocolVersion });
      const inbox = client.messages();
      await client.subscribe(['u/1', 'u/2'], { qos: 1 });
      assert.deepEqual((await client.unsubscribe('u/1')).reasonCodes, [0]);
      // 5.0: 0x11 No Subscription Existed; 3.1.1 UNSUBACK carries no codes.
      assert.deepEqual((await client.unsubscribe(['u/1'])).reasonCodes, [protocolVersion === 5 ? 0x11 : 0]);
      await client.publish('u/1', 'gone', { qos: 1 });
      await client.publish('u/2', 'kept', { qos: 1 });
      assert.equal((await next(inbox)).topic, 'u/2');
      await client.end();
      await broker.closeConnections();
    });
  });
}

describe('MqttClient: reason codes and errors (5.0)', () => {
  test('a refused PUBLISH rejects with PublishError carrying PUBACK / PUBREC 0x87 [MQTT-3.4.2-1]', async () => {
    const broker = new BrokerCore({ authorizePublish: (ctx) => ctx.topic !== 'deny' });
    const client = await open(broker);
    await assert.rejects(client.publish('deny', 'x', { qos: 1 }), (e: unknown) => e instanceof PublishError && e.reasonCode === 0x87);
    await assert.rejects(client.publish('deny', 'x', { qos: 2 }), (e: unknown) => e instanceof PublishError && e.reasonCode === 0x87);
    // No subscriber: 0x10 is a success code, so the promise resolves with it.
    assert.equal((await client.publish('allow', 'x', { qos: 1 })).reasonCode, ReasonCode.NoMatchingSubscribers);
    await assert.rejects(client.publish('a/+', 'x'), (e: unknown) => e instanceof PublishError && e.reasonCode === ReasonCode.TopicNameInvalid);
    await client.end();
    await broker.closeConnections();
  });

  test('a server DISCONNECT surfaces as an event; pending work fails with ClientClosedError carrying its code', async () => {
    const { server, client } = await scripted({ keepalive: 0 });
    const disconnect = once(client, 'disconnect');
    const closed = once(client, 'close');
    const pending = client.publish('t', 'x', { qos: 1 });
    await server.expect(PacketType.Publish);
    server.send({ type: PacketType.Disconnect, reasonCode: ReasonCode.AdministrativeAction });
    const [packet] = await within(disconnect);
    assert.equal(packet.reasonCode, 0x98);
    await assert.rejects(pending, (e: unknown) => e instanceof ClientClosedError && e.reasonCode === 0x98);
    const [error] = await within(closed);
    assert.equal((error as { reasonCode?: number }).reasonCode, 0x98);
    await assert.rejects(client.publish('t', 'x'), ClientClosedError);
  });

  test('the broker disconnecting a client (0x98) reaches the event', async () => {
    const broker = new BrokerCore();
    const client = await open(broker, { clientId: 'kick' });
    const disconnect = once(client, 'disconnect');
    assert.equal(broker.disconnect('kick'), true);
    assert.equal((await within(disconnect))[0].reasonCode, ReasonCode.AdministrativeAction);
    await broker.closeConnections();
  });
});

describe('MqttClient: inbound QoS 2 is delivered exactly once', () => {
  test('a duplicate PUBLISH before PUBREL is acknowledged, not delivered [MQTT-4.3.3-9] [MQTT-4.3.3-10]', async () => {
    const { server, client } = await scripted({ keepalive: 0 });
    const inbox = client.messages();
    const publish: PublishPacket = { type: PacketType.Publish, topic: 'q2', payload: Buffer.from('a'), qos: 2, retain: false, dup: false, packetId: 9 };
    server.send(publish);
    assert.equal((await server.expect(PacketType.Pubrec)).packetId, 9);
    server.send({ ...publish, dup: true });
    assert.equal((await server.expect(PacketType.Pubrec)).packetId, 9);
    server.send({ type: PacketType.Pubrel, packetId: 9 });
    const comp = await server.expect(PacketType.Pubcomp);
    assert.deepEqual([comp.packetId, comp.reasonCode ?? 0], [9, 0]);
    // Released: the identifier now starts a new message.
    server.send({ ...publish, payload: Buffer.from('b') });
    await server.expect(PacketType.Pubrec);
    assert.deepEqual([(await next(inbox)).payload.toString(), (await next(inbox)).payload.toString()], ['a', 'b']);
    // A PUBREL for an identifier not held: PUBCOMP 0x92.
    server.send({ type: PacketType.Pubrel, packetId: 77 });
    assert.equal((await server.expect(PacketType.Pubcomp)).reasonCode, ReasonCode.PacketIdentifierNotFound);
    await client.end();
  });
});

describe('MqttClient: Receive Maximum', () => {
  test('no more QoS 1/2 PUBLISH in flight than the server allows; the rest wait in order [MQTT-3.3.4-7]', async () => {
    const { server, client } = await scripted({ keepalive: 0 }, { receiveMaximum: 2 });
    const results = Array.from({ length: 5 }, (_, i) => client.publish(`rm/${i}`, String(i), { qos: i % 2 === 0 ? 1 : 2 }));
    const a = await server.expect(PacketType.Publish);
    const b = await server.expect(PacketType.Publish);
    assert.deepEqual([a.topic, b.topic], ['rm/0', 'rm/1']);
    // Round trip proving nothing else was written: the client answers a PUBREL at once.
    server.send({ type: PacketType.Pubrel, packetId: 500 });
    await server.expect(PacketType.Pubcomp);
    server.send({ type: PacketType.Puback, packetId: a.packetId as number });
    assert.equal((await server.expect(PacketType.Publish)).topic, 'rm/2');
    server.send({ type: PacketType.Pubrec, packetId: b.packetId as number });
    await server.expect(PacketType.Pubrel);
    server.send({ type: PacketType.Pubrel, packetId: 501 });
    await server.expect(PacketType.Pubcomp);
    server.send({ type: PacketType.Pubcomp, packetId: b.packetId as number });
    assert.equal((await server.expect(PacketType.Publish)).topic, 'rm/3');
    assert.equal((await (results[1] as Promise<{ packetId?: number }>)).packetId, b.packetId);
    assert.equal((await (results[0] as Promise<{ packetId?: number }>)).packetId, a.packetId);
    await client.end();
    // rm/3 was written, rm/4 still waited: both fail with the connection.
    for (const r of results.slice(3)) await assert.rejects(r, ClientClosedError);
    await assert.rejects(results[2] as Promise<unknown>, ClientClosedError);
  });

  test('against the broker (receiveMaximum 2): ten QoS 1 publishes all complete', async () => {
    const broker = new BrokerCore({ receiveMaximum: 2 });
    const client = await open(broker);
    assert.equal(client.connack.properties?.receiveMaximum, 2);
    const results = await within(Promise.all(Array.from({ length: 10 }, (_, i) => client.publish(`r/${i}`, 'x', { qos: 1 }))));
    assert.equal(results.length, 10);
    assert.equal(broker.stats.messagesReceived, 10);
    await client.end();
    await broker.closeConnections();
  });
});

describe('MqttClient: inbound topic aliases (5.0)', () => {
  test('the broker\'s aliases are resolved to topics [MQTT-3.3.2-10]', async () => {
    const broker = new BrokerCore({ outboundTopicAliases: true } satisfies BrokerOptions);
    const stream = pipeTo(broker);
    const tap = new Decoder({ protocolVersion: 5 });
    const wire: PublishPacket[] = [];
    stream.on('data', (chunk: Buffer) => {
      for (const p of tap.push(chunk)) if (p.type === PacketType.Publish) wire.push(p);
    });
    const client = await connect(stream, { keepalive: 0, properties: { topicAliasMaximum: 4 } });
    const inbox = client.messages('al/#');
    await client.subscribe('al/#');
    const pub = await open(broker);
    for (let i = 0; i < 3; i++) await pub.publish('al/x', `m${i}`);
    const got = [await next(inbox), await next(inbox), await next(inbox)];
    assert.deepEqual(got.map((m) => [m.topic, m.payload.toString(), m.properties?.topicAlias]), [['al/x', 'm0', undefined], ['al/x', 'm1', undefined], ['al/x', 'm2', undefined]]);
    // The wire carried the alias: the topic once, then empty.
    assert.deepEqual(wire.map((p) => [p.topic, p.properties?.topicAlias]), [['al/x', 1], ['', 1], ['', 1]]);
    await Promise.all([client.end(), pub.end()]);
    await broker.closeConnections();
  });

  test('an alias above the advertised maximum closes with DISCONNECT 0x94 [MQTT-3.3.2-11]', async () => {
    const { server, client } = await scripted({ keepalive: 0, properties: { topicAliasMaximum: 2 } });
    const closed = closeOf(client);
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    server.send({ type: PacketType.Publish, topic: 'x', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: { topicAlias: 3 } });
    assert.equal((await server.expect(PacketType.Disconnect)).reasonCode, ReasonCode.TopicAliasInvalid);
    const error = await closed;
    assert.ok(error instanceof TopicAliasInvalidError);
    assert.deepEqual(errors, [error]);
  });

  test('an empty topic with an unknown alias closes with 0x94', async () => {
    const { server, client } = await scripted({ keepalive: 0, properties: { topicAliasMaximum: 2 } });
    const closed = closeOf(client);
    server.send({ type: PacketType.Publish, topic: '', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: { topicAlias: 1 } });
    assert.equal((await server.expect(PacketType.Disconnect)).reasonCode, ReasonCode.TopicAliasInvalid);
    assert.equal((await closed as { reasonCode?: number }).reasonCode, ReasonCode.TopicAliasInvalid);
  });
});

describe('MqttClient: messages()', () => {
  test('an iterator with a filter sees only matching messages; it ends when the client ends', async () => {
    const broker = new BrokerCore();
    const client = await open(broker);
    const only = client.messages('a/+');
    const all = client.messages();
    await client.subscribe('#');
    await client.publish('b/x', '1');
    await client.publish('a/x', '2');
    await client.publish('a/x/y', '3');
    assert.equal((await next(only)).payload.toString(), '2');
    assert.deepEqual([(await next(all)).topic, (await next(all)).topic, (await next(all)).topic], ['b/x', 'a/x', 'a/x/y']);
    const waiting = only.next();
    await client.end();
    assert.equal((await within(waiting)).done, true);
    assert.equal((await client.messages().next()).done, true);
    await broker.closeConnections();
  });

  test('the buffer is bounded: the oldest is dropped and counted', async () => {
    const broker = new BrokerCore();
    const client = await open(broker);
    const small = client.messages(undefined, { bufferSize: 2 });
    const all = client.messages();
    await client.subscribe('n/#');
    for (let i = 0; i < 3; i++) await client.publish(`n/${i}`, String(i));
    for (let i = 0; i < 3; i++) await next(all);
    assert.equal(small.dropped, 1);
    assert.deepEqual([(await next(small)).topic, (await next(small)).topic], ['n/1', 'n/2']);
    await small.return();
    await client.end();
    await broker.closeConnections();
  });
});

describe('MqttClient: keep alive (fake timers)', () => {
  test('PINGREQ after keepalive seconds without sending; none while the client sends [MQTT-3.1.2-23]', async () => {
    const timers = new FakeTimers();
    const { server, client } = await scripted({ keepalive: 10, timers });
    timers.advance(6000);
    await client.publish('k', 'busy');
    timers.advance(6000);
    // 12 s after connect but 6 s after the PUBLISH: no PINGREQ yet. A QoS 1 round trip proves it.
    const q1 = client.publish('k', 'q1', { qos: 1 });
    await server.expect(PacketType.Publish);
    const p = await server.expect(PacketType.Publish);
    server.send({ type: PacketType.Puback, packetId: p.packetId as number });
    await q1;
    timers.advance(10_000);
    await server.expect(PacketType.Pingreq);
    server.send({ type: PacketType.Pingresp });
    // The PINGRESP arrived (a round trip after it proves it was read) so the connection stays up.
    const q2 = client.publish('k', 'q2', { qos: 1 });
    const p2 = await server.expect(PacketType.Publish);
    server.send({ type: PacketType.Puback, packetId: p2.packetId as number });
    await q2;
    timers.advance(10_000);
    await server.expect(PacketType.Pingreq);
    assert.equal(client.connected, true);
    await client.end();
  });

  test('no PINGRESP within keepalive closes the connection with KeepaliveTimeoutError 0x8D [MQTT-3.1.2-24]', async () => {
    const timers = new FakeTimers();
    const { server, client } = await scripted({ keepalive: 5, timers });
    const closed = once(client, 'close');
    const pending = client.subscribe('never');
    await server.expect(PacketType.Subscribe);
    timers.advance(5000);
    await server.expect(PacketType.Pingreq);
    timers.advance(4999);
    assert.equal(client.connected, true);
    timers.advance(1);
    const [error] = await within(closed);
    assert.ok(error instanceof KeepaliveTimeoutError);
    assert.equal(error.reasonCode, ReasonCode.KeepAliveTimeout);
    await assert.rejects(pending, (e: unknown) => e instanceof ClientClosedError && e.reasonCode === ReasonCode.KeepAliveTimeout);
  });

  test('the Server Keep Alive replaces the client\'s [MQTT-3.2.2-21]', async () => {
    const timers = new FakeTimers();
    const { server, client } = await scripted({ keepalive: 60, timers }, { serverKeepAlive: 2 });
    timers.advance(2000);
    await server.expect(PacketType.Pingreq);
    await client.end();
  });

  test('against the broker: PINGREQ is answered and the connection stays up', async () => {
    const timers = new FakeTimers();
    const broker = new BrokerCore();
    const stream = pipeTo(broker);
    const tap = new Decoder({ protocolVersion: 5 });
    let pongs = 0;
    let pong: (() => void) | undefined;
    stream.on('data', (chunk: Buffer) => {
      for (const p of tap.push(chunk)) if (p.type === PacketType.Pingresp) { pongs++; pong?.(); }
    });
    const client = await connect(stream, { keepalive: 30, timers });
    const got = new Promise<void>((resolve) => (pong = resolve));
    timers.advance(30_000);
    await within(got, 3000, 'PINGRESP');
    timers.advance(30_000);
    assert.equal(client.connected, true);
    assert.equal(pongs, 1);
    await client.end();
    await broker.closeConnections();
  });
});

describe('MqttClient: end', () => {
  test('end() sends DISCONNECT: no will [MQTT-3.14.4-3]; with 0x04 the will is published; later calls fail', async () => {
    const broker = new BrokerCore();
    const watcher = await open(broker);
    const inbox = watcher.messages();
    await watcher.subscribe('will/#', { qos: 1 });
    const will = { topic: 'will/a', payload: 'gone', qos: 1 as const };
    const a = await open(broker, { clientId: 'wa', will });
    const closed = once(a, 'close');
    await a.end();
    assert.deepEqual(await within(closed), [undefined]);
    await assert.rejects(a.publish('x', 'y'), (e: unknown) => e instanceof ClientClosedError && e.reasonCode === 0);
    const b = await open(broker, { clientId: 'wb', will: { ...will, topic: 'will/b' } });
    await b.end({ reasonCode: ReasonCode.DisconnectWithWillMessage });
    // Only b's will arrives: a's would have come first.
    assert.equal((await next(inbox)).topic, 'will/b');
    await watcher.end();
    await broker.closeConnections();
  });
});
