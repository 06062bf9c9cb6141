/**
 * 5.0 features of the client: outbound topic aliases, Receive Maximum towards the client,
 * request / response, SCRAM-SHA-256 enhanced authentication (against Petrel's broker in-process,
 * and a scripted server where the test must control the bytes).
 */
import assert from 'node:assert/strict';
import { duplexPair, type Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import { createScramSha256, scramCredential } from '../../../src/auth/index.js';
import { BrokerCore } from '../../../src/broker/broker.js';
import type { BrokerOptions } from '../../../src/broker/options.js';
import {
  AuthenticationError, type ClientOptions, ConnackError, connect, MqttClient, type MqttClient as Client, ReceiveMaximumExceededError,
  RequestTimeoutError, TimeoutError,
} from '../../../src/client/index.js';
import { PacketType } from '../../../src/protocol/index.js';
import { FakeTimers, ScriptedServer } from '../../helpers/client-fakes.js';
import { within } from '../../helpers/duplex-client.js';

function pipeTo(broker: BrokerCore): Duplex {
  const [client, server] = duplexPair();
  broker.handle(server, 'test');
  return client;
}

function open(broker: BrokerCore, options: ClientOptions = {}): Promise<Client> {
  return connect(pipeTo(broker), { keepalive: 0, ...options });
}

function brokerWith(t: { after(fn: () => Promise<void>): void }, options: Partial<BrokerOptions> = {}): BrokerCore {
  const broker = new BrokerCore(options);
  t.after(() => broker.closeConnections());
  return broker;
}

async function scripted(options: ClientOptions, properties: Record<string, unknown>): Promise<{ server: ScriptedServer; client: Client }> {
  const server = new ScriptedServer();
  const pending = connect(server.client, { keepalive: 0, ...options });
  await server.expect(PacketType.Connect);
  server.send({ type: PacketType.Connack, sessionPresent: false, reasonCode: 0, properties });
  return { server, client: await pending };
}

describe('MqttClient: outbound topic aliases', () => {
  test('repeated topics go as aliases within the server\'s Topic Alias Maximum, the least recently used alias is reused [MQTT-3.3.2-9] [MQTT-3.3.2-12]', async () => {
    const { server, client } = await scripted({ topicAliases: true }, { topicAliasMaximum: 2 });
    for (const topic of ['a', 'a', 'b', 'a', 'c', 'c', 'b']) await client.publish(topic, 'x');
    const sent = [];
    for (let i = 0; i < 7; i++) {
      const p = await server.expect(PacketType.Publish);
      sent.push(`${p.topic}:${p.properties?.topicAlias ?? '-'}`);
    }
    // 'c' takes b's alias (b used least recently); b comes back on a's.
    assert.deepEqual(sent, ['a:1', ':1', 'b:2', ':1', 'c:2', ':2', 'b:1']);
    await client.end();
  });

  test('no aliases when the server allows none (Topic Alias Maximum absent) or the option is off', async () => {
    const { server, client } = await scripted({ topicAliases: true }, {});
    await client.publish('a', 'x');
    await client.publish('a', 'x');
    for (let i = 0; i < 2; i++) assert.equal((await server.expect(PacketType.Publish)).properties?.topicAlias, undefined);
    await client.end();
  });

  test('against the broker: aliased QoS 0, 1 and 2 publishes arrive under their topics', async (t) => {
    const broker = brokerWith(t, { topicAliasMaximum: 2 });
    const sub = await open(broker);
    const got = sub.messages();
    await sub.subscribe('al/#', { qos: 2 });
    const pub = await open(broker, { topicAliases: true });
    const topics = ['al/1', 'al/2', 'al/1', 'al/3', 'al/1', 'al/2'];
    for (const [i, topic] of topics.entries()) await pub.publish(topic, String(i), { qos: (i % 3) as 0 | 1 | 2 });
    const seen = [];
    for (let i = 0; i < topics.length; i++) {
      const r = await within(got.next(), 3000, 'message');
      seen.push(r.value?.topic);
    }
    assert.deepEqual(seen, topics);
    await pub.end();
    await sub.end();
  });
});

describe('MqttClient: Receive Maximum towards the client', () => {
  test('one QoS 2 PUBLISH more than the advertised Receive Maximum closes with DISCONNECT 0x93 [MQTT-3.3.4-9]', async () => {
    const { server, client } = await scripted({ properties: { receiveMaximum: 2 } }, {});
    client.on('error', () => undefined);
    for (const id of [1, 2]) {
      server.send({ type: PacketType.Publish, topic: 'r', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: id });
      await server.expect(PacketType.Pubrec);
    }
    // Released: one place is free again.
    server.send({ type: PacketType.Pubrel, packetId: 1 });
    await server.expect(PacketType.Pubcomp);
    server.send({ type: PacketType.Publish, topic: 'r', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: 3 });
    await server.expect(PacketType.Pubrec);
    const closed = new Promise<Error | undefined>((resolve) => client.once('close', resolve));
    server.send({ type: PacketType.Publish, topic: 'r', payload: Buffer.from('x'), qos: 2, retain: false, dup: false, packetId: 4 });
    const d = await server.expect(PacketType.Disconnect);
    assert.equal(d.reasonCode, 0x93);
    assert.ok((await within(closed, 3000, 'close')) instanceof ReceiveMaximumExceededError);
  });
});

describe('MqttClient: request / response', () => {
  test('request() carries Response Topic and Correlation Data and resolves with the matching response [MQTT-4.10.0]', async (t) => {
    const broker = brokerWith(t);
    const responder = await open(broker);
    await responder.subscribe('svc/echo', { qos: 1 });
    responder.on('message', (m) => {
      const props = m.properties;
      if (props?.responseTopic === undefined) return;
      void responder.publish(props.responseTopic, `echo ${m.payload.toString()}`, { qos: 1, properties: { correlationData: props.correlationData as Buffer } });
    });
    const client = await open(broker);
    const [a, b] = await Promise.all([client.request('svc/echo', 'one', { timeout: 3000 }), client.request('svc/echo', 'two', { timeout: 3000 })]);
    assert.equal(a.payload.toString(), 'echo one');
    assert.equal(b.payload.toString(), 'echo two');
    const c = await client.request('svc/echo', 'three', { timeout: 3000 });
    assert.equal(c.payload.toString(), 'echo three');
    await client.end();
    await responder.end();
  });

  test('no response within timeout rejects with TimeoutError; the response topic is subscribed once', async () => {
    const timers = new FakeTimers();
    const { server, client } = await scripted({ timers }, {});
    const first = client.request('svc/none', 'x', { timeout: 500, qos: 0 });
    const sub = await server.expect(PacketType.Subscribe);
    server.send({ type: PacketType.Suback, packetId: sub.packetId, reasonCodes: [0] });
    const req = await server.expect(PacketType.Publish);
    assert.equal(req.properties?.responseTopic, sub.subscriptions[0]?.topicFilter);
    assert.ok(req.properties?.correlationData !== undefined);
    timers.advance(500);
    await assert.rejects(first, RequestTimeoutError);
    assert.equal(TimeoutError, RequestTimeoutError);
    const second = client.request('svc/none', 'y', { timeout: 500, qos: 0 });
    assert.equal((await server.expect(PacketType.Publish)).payload.toString(), 'y', 'no second SUBSCRIBE');
    timers.advance(500);
    await assert.rejects(second, TimeoutError);
    await client.end();
  });
});

describe('MqttClient: SCRAM-SHA-256', () => {
  const users = new Map([['alice', scramCredential('wonderland', { iterations: 4096 })]]);

  test('[MQTT-4.12.0-1] CONNECT with SCRAM, AUTH 0x18 challenge and response, CONNACK with a verified server signature', async (t) => {
    const broker = brokerWith(t, { authMechanisms: [createScramSha256({ lookup: (u) => users.get(u) })] });
    const client = await open(broker, { authenticationMethod: 'SCRAM-SHA-256', username: 'alice', password: 'wonderland' });
    assert.equal(client.connack.properties?.authenticationMethod, 'SCRAM-SHA-256');
    const got = client.messages('scram/#');
    await client.subscribe('scram/#', { qos: 1 });
    await client.publish('scram/t', 'hi', { qos: 1 });
    assert.equal((await within(got.next(), 3000, 'message')).value?.payload.toString(), 'hi');
    await client.end();
  });

  test('a wrong password is refused with CONNACK 0x87', async (t) => {
    const broker = brokerWith(t, { authMechanisms: [createScramSha256({ lookup: (u) => users.get(u) })] });
    await assert.rejects(open(broker, { authenticationMethod: 'SCRAM-SHA-256', username: 'alice', password: 'queen' }),
      (e) => e instanceof ConnackError && e.reasonCode === 0x87);
  });

  test('a server that cannot prove the credential (wrong signature in CONNACK) is refused with AuthenticationError', async () => {
    const server = new ScriptedServer();
    const client = new MqttClient(server.client, { keepalive: 0, authenticationMethod: 'SCRAM-SHA-256', username: 'alice', password: 'wonderland' });
    const pending = client.connect();
    const c = await server.expect(PacketType.Connect);
    const first = (c.properties?.authenticationData as Buffer).toString();
    const nonce = /r=([^,]+)/.exec(first)?.[1] as string;
    server.send({ type: PacketType.Auth, reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from(`r=${nonce}srv,s=${Buffer.from('salt').toString('base64')},i=4096`) } });
    const answer = await server.expect(PacketType.Auth);
    assert.equal(answer.reasonCode, 0x18);
    server.send({ type: PacketType.Connack, sessionPresent: false, reasonCode: 0, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from(`v=${Buffer.alloc(32).toString('base64')}`) } });
    await assert.rejects(pending, AuthenticationError);
  });
});
