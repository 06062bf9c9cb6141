/**
 * MQTT.js 5.0 against Petrel over TCP: CONNECT / CONNACK properties, session expiry, server
 * redirection and server-initiated DISCONNECT.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import mqtt, { type IDisconnectPacket, type IPublishPacket } from 'mqtt';
import { ManualClock } from '../../src/session/clock.js';
import { ReasonCode } from '../../src/protocol/index.js';
import { Inbox, setup, v5Options, waitFor } from '../helpers/mqttjs-v5.js';

describe('MQTT 5.0 (MQTT.js): session expiry', () => {
  test('[MQTT-3.1.2-23] [MQTT-3.2.2-3] Session Expiry Interval > 0 keeps the session: Session Present 1 and queued QoS 1 delivered', async (t) => {
    const env = await setup(t);
    const opts = { clientId: 'exp-keep', clean: false, properties: { sessionExpiryInterval: 60 } };
    const first = await env.connect(opts);
    await first.subscribeAsync('keep/#', { qos: 1 });
    const gone = waitFor(env.broker, 'clientDisconnected');
    await first.endAsync();
    await gone;
    await env.broker.publish({ topic: 'keep/a', payload: 'one', qos: 1 });
    await env.broker.publish({ topic: 'keep/b', payload: 'two', qos: 1 });

    const { client, connack } = env.open(opts);
    const inbox = new Inbox(client);
    assert.equal((await connack).sessionPresent, true);
    assert.equal((await connack).reasonCode, 0);
    await inbox.until((m) => m.length === 2, 'the two queued messages');
    assert.deepEqual(inbox.items.map((m) => [m.topic, m.payload.toString(), m.packet.qos]), [['keep/a', 'one', 1], ['keep/b', 'two', 1]]);
  });

  test('[MQTT-3.1.2-23] Session Expiry Interval 0 (absent) ends the session with the connection: Session Present 0', async (t) => {
    const env = await setup(t);
    const first = await env.connect({ clientId: 'exp-zero', clean: false });
    await first.subscribeAsync('zero/#', { qos: 1 });
    const gone = waitFor(env.broker, 'clientDisconnected');
    await first.endAsync();
    await gone;
    assert.equal(env.broker.subscriptions('exp-zero'), undefined);
    const { connack } = env.open({ clientId: 'exp-zero', clean: false });
    assert.equal((await connack).sessionPresent, false);
  });

  test('[MQTT-3.1.2-4] [MQTT-3.2.2-2] Clean Start 1 discards a stored session: Session Present 0', async (t) => {
    const env = await setup(t);
    const first = await env.connect({ clientId: 'exp-clean', clean: false, properties: { sessionExpiryInterval: 60 } });
    await first.subscribeAsync('clean/#', { qos: 1 });
    const gone = waitFor(env.broker, 'clientDisconnected');
    await first.endAsync();
    await gone;
    const { connack } = env.open({ clientId: 'exp-clean', clean: true, properties: { sessionExpiryInterval: 60 } });
    assert.equal((await connack).sessionPresent, false);
    assert.deepEqual(env.broker.subscriptions('exp-clean'), []);
  });

  test('a session whose expiry interval has passed is gone on reconnect', async (t) => {
    const clock = new ManualClock(0);
    const env = await setup(t, { clock });
    const opts = { clientId: 'exp-10', clean: false, properties: { sessionExpiryInterval: 10 } };
    const first = await env.connect(opts);
    await first.subscribeAsync('ten/#', { qos: 1 });
    const gone = waitFor(env.broker, 'clientDisconnected');
    await first.endAsync();
    await gone;
    const expired = waitFor(env.broker, 'sessionExpired');
    clock.advance(10_100);
    assert.deepEqual(await expired, ['exp-10']);
    const { connack } = env.open(opts);
    assert.equal((await connack).sessionPresent, false);
  });

  test('a Session Expiry Interval above the broker\'s maximum is lowered, and CONNACK says so', async (t) => {
    const env = await setup(t, { maxSessionExpiryInterval: 30 });
    const { connack } = env.open({ clientId: 'exp-cap', clean: false, properties: { sessionExpiryInterval: 300 } });
    assert.equal((await connack).properties?.sessionExpiryInterval, 30);
    const { connack: within } = env.open({ clientId: 'exp-within', clean: false, properties: { sessionExpiryInterval: 20 } });
    assert.equal((await within).properties?.sessionExpiryInterval, undefined, 'the client\'s own value stands');
  });

  test('[MQTT-3.14.2-2] DISCONNECT may lower the Session Expiry Interval to 0, ending the session', async (t) => {
    const env = await setup(t);
    const c = await env.connect({ clientId: 'exp-lower', clean: false, properties: { sessionExpiryInterval: 60 } });
    await c.subscribeAsync('lower/#', { qos: 1 });
    const gone = waitFor(env.broker, 'clientDisconnected');
    await c.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
    await gone;
    assert.equal(env.broker.subscriptions('exp-lower'), undefined);
    const { connack } = env.open({ clientId: 'exp-lower', clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal((await connack).sessionPresent, false);
  });
});

describe('MQTT 5.0 (MQTT.js): CONNACK properties', () => {
  test('[MQTT-3.1.3-6] [MQTT-3.2.2-16] a zero-length Client Identifier gets an Assigned Client Identifier that works as the id', async (t) => {
    const env = await setup(t);
    const connected = waitFor(env.broker, 'clientConnected');
    const { client, connack } = env.open({ clientId: '' });
    const assigned = (await connack).properties?.assignedClientIdentifier;
    assert.equal(typeof assigned, 'string');
    assert.notEqual(assigned, '');
    const [info] = await connected;
    assert.equal(info.clientId, assigned);
    // The broker knows the client by that id.
    await client.subscribeAsync('assigned/t', { qos: 0 });
    assert.deepEqual(env.broker.subscriptions(assigned ?? '')?.map((s) => s.topicFilter), ['assigned/t']);
    // A client with its own id gets none.
    const { connack: named } = env.open({ clientId: 'named' });
    assert.equal((await named).properties?.assignedClientIdentifier, undefined);
  });

  test('[MQTT-3.2.2-21] Server Keep Alive lowers the keep alive, and MQTT.js uses it', async (t) => {
    const env = await setup(t, { maxKeepalive: 10 });
    const { client, connack } = env.open({ clientId: 'ka', keepalive: 60 });
    assert.equal((await connack).properties?.serverKeepAlive, 10);
    assert.equal(client.keepalive, 10);
    assert.equal(env.broker.clients()[0]?.keepalive, 10);
    // Within the limit: no Server Keep Alive, the client's value stands [MQTT-3.2.2-22].
    const { client: low, connack: lowAck } = env.open({ clientId: 'ka-low', keepalive: 5 });
    assert.equal((await lowAck).properties?.serverKeepAlive, undefined);
    assert.equal(low.keepalive, 5);
  });

  test('capabilities in CONNACK: Maximum QoS, Retain, Wildcard, Subscription Identifier and Shared Subscription Available, Receive Maximum, Topic Alias Maximum', async (t) => {
    const env = await setup(t, {
      maximumQoS: 1, retainAvailable: false, wildcardSubscriptionAvailable: false, subscriptionIdentifiersAvailable: false,
      sharedSubscriptionsAvailable: false, receiveMaximum: 10, topicAliasMaximum: 7, maxPacketSize: 4096,
    });
    const { client, connack } = env.open({ clientId: 'caps' });
    const p = (await connack).properties;
    assert.deepEqual(
      {
        maximumQoS: p?.maximumQoS, retainAvailable: p?.retainAvailable, wildcardSubscriptionAvailable: p?.wildcardSubscriptionAvailable,
        subscriptionIdentifiersAvailable: p?.subscriptionIdentifiersAvailable, sharedSubscriptionAvailable: p?.sharedSubscriptionAvailable,
        receiveMaximum: p?.receiveMaximum, topicAliasMaximum: p?.topicAliasMaximum, maximumPacketSize: p?.maximumPacketSize,
      },
      {
        maximumQoS: 1, retainAvailable: false, wildcardSubscriptionAvailable: false, subscriptionIdentifiersAvailable: false,
        sharedSubscriptionAvailable: false, receiveMaximum: 10, topicAliasMaximum: 7, maximumPacketSize: 4096,
      },
    );
    assert.equal(client.serverProperties?.maximumQoS, 1);
  });

  test('defaults in CONNACK: no capability is announced as missing', async (t) => {
    const env = await setup(t);
    const { connack } = env.open({ clientId: 'defaults' });
    const p = (await connack).properties ?? {};
    // Absent means available (and Maximum QoS absent means 2).
    for (const key of ['maximumQoS', 'retainAvailable', 'wildcardSubscriptionAvailable', 'subscriptionIdentifiersAvailable', 'sharedSubscriptionAvailable'] as const) {
      assert.ok(p[key] === undefined || p[key] === true || (key === 'maximumQoS' && p[key] === 2), `${key}: ${String(p[key])}`);
    }
  });

  test('[MQTT-3.1.2-28] Response Information only when requested', async (t) => {
    const env = await setup(t, { responseInformation: 'reply/petrel/' });
    const { connack: asked } = env.open({ clientId: 'ri-yes', properties: { requestResponseInformation: true } });
    assert.equal((await asked).properties?.responseInformation, 'reply/petrel/');
    const { connack: notAsked } = env.open({ clientId: 'ri-no', properties: { requestResponseInformation: false } });
    assert.equal((await notAsked).properties?.responseInformation, undefined);
    const { connack: silent } = env.open({ clientId: 'ri-absent' });
    assert.equal((await silent).properties?.responseInformation, undefined);
  });

  test('[MQTT-3.1.2-29] Request Problem Information 0: no Reason String on PUBACK or DISCONNECT; 1: both carry one', async (t) => {
    const env = await setup(t, { retainAvailable: false, authorizePublish: (ctx) => !ctx.topic.startsWith('deny/') });
    for (const requestProblemInformation of [false, true]) {
      const clientId = `rpi-${requestProblemInformation}`;
      const c = await env.connect({ clientId, properties: { requestProblemInformation } });
      const acks: { cmd: string; reasonCode?: number; properties?: { reasonString?: string } }[] = [];
      c.on('packetreceive', (p) => acks.push(p as (typeof acks)[number]));
      await assert.rejects(c.publishAsync('deny/x', 'x', { qos: 1 }), (err: Error & { code?: number }) => err.code === ReasonCode.NotAuthorized);
      const puback = acks.find((p) => p.cmd === 'puback');
      assert.equal(puback?.reasonCode, ReasonCode.NotAuthorized);
      if (requestProblemInformation) assert.equal(typeof puback?.properties?.reasonString, 'string');
      else assert.equal(puback?.properties?.reasonString, undefined, 'no Reason String on PUBACK when the client asked for none');
      // RETAIN while Retain Available is 0 is a protocol violation: DISCONNECT 0x9A [MQTT-3.2.2-14].
      const disconnect = waitFor(c, 'disconnect');
      c.publish('t', 'x', { qos: 0, retain: true });
      const [packet] = await disconnect;
      assert.equal(packet.reasonCode, ReasonCode.RetainNotSupported);
      if (requestProblemInformation) assert.equal(typeof packet.properties?.reasonString, 'string');
      else assert.equal(packet.properties?.reasonString, undefined);
    }
  });

  for (const [moved, code] of [[false, ReasonCode.UseAnotherServer], [true, ReasonCode.ServerMoved]] as const) {
    test(`Server Reference (§4.11): CONNACK 0x${code.toString(16)} refuses the connection and names the other server`, async (t) => {
      const env = await setup(t, { serverReference: 'other.example:1883', serverMoved: moved });
      const client = env.track(mqtt.connect(env.url, v5Options({ clientId: `redirect-${moved}` })));
      const [err] = (await waitFor(client, 'error')) as [Error & { code?: number }];
      assert.equal(err.code, code);
      assert.equal(client.connected, false);
      assert.equal(client.serverProperties?.serverReference, 'other.example:1883');
      await assert.rejects(mqtt.connectAsync(env.url, v5Options({ clientId: 'redirect-async' })), (e: Error & { code?: number }) => e.code === code);
    });
  }
});

describe('MQTT 5.0 (MQTT.js): DISCONNECT from the server', () => {
  test('[MQTT-3.1.4-3] 0x8E Session taken over reaches the first client, which closes', async (t) => {
    const env = await setup(t);
    const first = await env.connect({ clientId: 'twin' });
    const disconnect = waitFor(first, 'disconnect');
    const closed = waitFor(first, 'close');
    await env.connect({ clientId: 'twin' });
    const [packet] = await disconnect;
    assert.equal(packet.reasonCode, ReasonCode.SessionTakenOver);
    await closed;
  });

  test('[MQTT-3.1.2-22] 0x8D Keep alive timeout after 1.5 × the keep alive without a packet', async (t) => {
    const clock = new ManualClock(0);
    const env = await setup(t, { clock });
    const c = await env.connect({ clientId: 'sleepy', keepalive: 60 });
    const disconnect = waitFor(c, 'disconnect');
    clock.advance(60_000);
    // Still within 1.5 × 60 s: a round trip proves the connection is alive (and restarts the count).
    await c.subscribeAsync('still/here', { qos: 0 });
    assert.equal(c.connected, true);
    clock.advance(91_000);
    const [packet] = await disconnect;
    assert.equal(packet.reasonCode, ReasonCode.KeepAliveTimeout);
  });

  test('0x98 Administrative action via broker.disconnect(), and 0x9C with a Server Reference', async (t) => {
    const env = await setup(t);
    const kicked = await env.connect({ clientId: 'kicked' });
    const d1 = waitFor(kicked, 'disconnect');
    assert.equal(env.broker.disconnect('kicked'), true);
    const [p1] = await d1;
    assert.equal(p1.reasonCode, ReasonCode.AdministrativeAction);
    const moved = await env.connect({ clientId: 'moved' });
    const d2 = waitFor(moved, 'disconnect');
    env.broker.disconnect('moved', ReasonCode.UseAnotherServer, 'other.example:1883');
    const [p2] = await d2;
    assert.deepEqual([p2.reasonCode, p2.properties?.serverReference], [ReasonCode.UseAnotherServer, 'other.example:1883']);
    assert.equal(env.broker.disconnect('nobody'), false);
  });

  test('0x8B Server shutting down at broker.close(), to every client', async (t) => {
    const env = await setup(t);
    const a = await env.connect({ clientId: 'down-a' });
    const b = await env.connect({ clientId: 'down-b' });
    const seen = Promise.all([a, b].map((c) => waitFor(c, 'disconnect')));
    const closedA = waitFor(a, 'close');
    await env.broker.close();
    const packets = (await seen).map(([p]: [IDisconnectPacket]) => p.reasonCode);
    assert.deepEqual(packets, [ReasonCode.ServerShuttingDown, ReasonCode.ServerShuttingDown]);
    await closedA;
  });

  test('the will is published when the server disconnects a client (0x98)', async (t) => {
    const env = await setup(t);
    const watcher = await env.connect({ clientId: 'watch' });
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync('will/#', { qos: 1 });
    await env.connect({ clientId: 'willing', will: { topic: 'will/admin', payload: Buffer.from('gone'), qos: 1, retain: false } });
    env.broker.disconnect('willing');
    const m = await inbox.next('will/admin');
    assert.equal(m.payload.toString(), 'gone');
    assert.equal((m.packet as IPublishPacket).qos, 1);
  });
});
