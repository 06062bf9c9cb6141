import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { PacketType, ReasonCode } from '../../src/protocol/index.js';
import { ManualClock } from '../../src/session/clock.js';
import { TestClient, waitClosed } from '../helpers/duplex-client.js';

const v5 = { version: 5 } as const;

async function connect(broker: BrokerCore, clientId: string): Promise<TestClient> {
  return (await TestClient.connect(broker, { ...v5, clientId })).client;
}

describe('MQTT 5.0 SUBSCRIBE options', () => {
  test('[MQTT-3.8.3-3] No Local: a client does not get its own messages back', async () => {
    const broker = new BrokerCore();
    const c = await connect(broker, 'nl');
    c.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'nl', qos: 0, noLocal: true }] });
    await c.expect(PacketType.Suback);
    c.publish('nl', 'mine', 0);
    await c.expectNothing();
    await broker.publish({ topic: 'nl', payload: 'server' });
    assert.equal((await c.expect(PacketType.Publish)).payload.toString(), 'server');
    await broker.closeConnections();
  });

  test('[MQTT-3.3.1-12] [MQTT-3.3.1-13] Retain As Published keeps RETAIN on live delivery', async () => {
    const broker = new BrokerCore();
    const c = await connect(broker, 'rap');
    c.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'rap/1', qos: 0, retainAsPublished: true }, { topicFilter: 'rap/2', qos: 0 }] });
    await c.expect(PacketType.Suback);
    await broker.publish({ topic: 'rap/1', payload: 'a', retain: true });
    await broker.publish({ topic: 'rap/2', payload: 'b', retain: true });
    assert.equal((await c.expect(PacketType.Publish)).retain, true);
    assert.equal((await c.expect(PacketType.Publish)).retain, false);
    await broker.closeConnections();
  });

  test('[MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] Retain Handling 0 / 1 / 2', async () => {
    const broker = new BrokerCore();
    await broker.publish({ topic: 'rh', payload: 'kept', retain: true });
    const c = await connect(broker, 'rh');
    const sub = (retainHandling: 0 | 1 | 2, packetId: number): void =>
      c.send({ type: PacketType.Subscribe, packetId, subscriptions: [{ topicFilter: 'rh', qos: 0, retainHandling }] });
    sub(2, 1);
    await c.expect(PacketType.Suback);
    await c.expectNothing(); // 2: never
    c.send({ type: PacketType.Unsubscribe, packetId: 2, topicFilters: ['rh'] });
    await c.expect(PacketType.Unsuback);
    sub(1, 3);
    await c.expect(PacketType.Suback);
    assert.equal((await c.expect(PacketType.Publish)).retain, true); // 1: new subscription
    sub(1, 4);
    await c.expect(PacketType.Suback);
    await c.expectNothing(); // 1: existing subscription
    sub(0, 5);
    await c.expect(PacketType.Suback);
    assert.equal((await c.expect(PacketType.Publish)).retain, true); // 0: always
    await broker.closeConnections();
  });

  test('SUBACK reason codes: 0x87 not authorized, 0x9E shared unsupported, 0xA2 wildcards unsupported; UNSUBACK 0x11', async () => {
    const broker = new BrokerCore({
      authorizeSubscribe: (ctx) => !ctx.topicFilter.startsWith('private/'),
      sharedSubscriptionsAvailable: false, wildcardSubscriptionAvailable: false, maximumQoS: 1,
    });
    const c = await connect(broker, 'codes');
    c.send({
      type: PacketType.Subscribe, packetId: 1, subscriptions: [
        { topicFilter: 'private/x', qos: 0 }, { topicFilter: '$share/g/a', qos: 0 }, { topicFilter: 'a/+', qos: 0 }, { topicFilter: 'ok', qos: 2 },
      ],
    });
    const suback = await c.expect(PacketType.Suback);
    assert.deepEqual(suback.reasonCodes, [
      ReasonCode.NotAuthorized, ReasonCode.SharedSubscriptionsNotSupported, ReasonCode.WildcardSubscriptionsNotSupported, 1,
    ]);
    c.send({ type: PacketType.Unsubscribe, packetId: 2, topicFilters: ['ok', 'never'] });
    assert.deepEqual((await c.expect(PacketType.Unsuback)).reasonCodes, [ReasonCode.Success, ReasonCode.NoSubscriptionExisted]);
    await broker.closeConnections();
  });

  test('SUBACK 0x8F for a well-formed filter deeper than maxTopicLevels (3.1.1: 0x80); too deep a PUBLISH topic gets 0x90', async () => {
    const broker = new BrokerCore({ maxTopicLevels: 3 });
    const c = await connect(broker, 'deep5');
    c.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'a/b/c/d', qos: 0 }, { topicFilter: 'a/b/c', qos: 0 }] });
    const suback = await c.expect(PacketType.Suback);
    assert.deepEqual(suback.reasonCodes, [ReasonCode.TopicFilterInvalid, 0]);
    assert.equal(typeof suback.properties?.reasonString, 'string');
    c.publish('a/b/c/d', 'x', 1, 2);
    assert.equal((await c.expect(PacketType.Puback)).reasonCode, ReasonCode.TopicNameInvalid);
    const old = (await TestClient.connect(broker, { clientId: 'deep4' })).client;
    old.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'a/b/c/d', qos: 0 }] });
    assert.deepEqual((await old.expect(PacketType.Suback)).reasonCodes, [0x80]);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.2-29] Request Problem Information 0: no reason string on SUBACK and PUBACK; 1: reason strings present', async () => {
    const broker = new BrokerCore({ authorizeSubscribe: () => false, authorizePublish: () => false });
    for (const requestProblemInformation of [false, true]) {
      const c = (await TestClient.connect(broker, { version: 5, clientId: `rpi-${requestProblemInformation}`, properties: { requestProblemInformation } })).client;
      c.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'x', qos: 0 }] });
      const suback = await c.expect(PacketType.Suback);
      c.publish('x', 'y', 1, 2);
      const puback = await c.expect(PacketType.Puback);
      assert.deepEqual([suback.reasonCodes, puback.reasonCode], [[ReasonCode.NotAuthorized], ReasonCode.NotAuthorized]);
      const strings = [suback.properties?.reasonString, puback.properties?.reasonString];
      if (requestProblemInformation) assert.ok(strings.every((r) => typeof r === 'string' && r.length > 0));
      else assert.deepEqual(strings, [undefined, undefined]);
    }
    await broker.closeConnections();
  });

  test('a subscription identifier when unsupported gives DISCONNECT 0xA1', async () => {
    const broker = new BrokerCore({ subscriptionIdentifiersAvailable: false });
    const c = await connect(broker, 'noid');
    c.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'x', qos: 0 }], properties: { subscriptionIdentifiers: [4] } });
    assert.equal((await c.expect(PacketType.Disconnect)).reasonCode, ReasonCode.SubscriptionIdentifiersNotSupported);
    await broker.closeConnections();
  });

  test('[MQTT-3.8.4-3] a SUBSCRIBE to an existing filter replaces the subscription', async () => {
    const broker = new BrokerCore();
    const c = await connect(broker, 'rep');
    await c.subscribe('r', 0, 1);
    await c.subscribe('r', 1, 2);
    assert.deepEqual(broker.subscriptions('rep')?.map((s) => s.qos), [1]);
    await broker.publish({ topic: 'r', payload: 'x', qos: 1 });
    assert.equal((await c.expect(PacketType.Publish)).qos, 1);
    await c.expectNothing();
    await broker.closeConnections();
  });
});

describe('MQTT 5.0 shared subscriptions', () => {
  test('§4.8.2: each message goes to one member of the group, round robin by default', async () => {
    const broker = new BrokerCore();
    const a = await connect(broker, 'ma');
    const b = await connect(broker, 'mb');
    const plain = await connect(broker, 'plain');
    await a.subscribe('$share/g/jobs/+', 0);
    await b.subscribe('$share/g/jobs/+', 0);
    await plain.subscribe('jobs/+', 0);
    for (let i = 0; i < 4; i++) await broker.publish({ topic: 'jobs/x', payload: `${i}` });
    const got = async (c: TestClient, n: number): Promise<string[]> => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push((await c.expect(PacketType.Publish)).payload.toString());
      await c.expectNothing();
      return out;
    };
    const fromA = await got(a, 2);
    const fromB = await got(b, 2);
    assert.deepEqual([...fromA, ...fromB].sort(), ['0', '1', '2', '3']);
    assert.deepEqual(await got(plain, 4), ['0', '1', '2', '3']);
    await broker.closeConnections();
  });

  test('§4.8.2: retained messages are not sent to a shared subscription', async () => {
    const broker = new BrokerCore();
    await broker.publish({ topic: 'shr/r', payload: 'kept', retain: true });
    const a = await connect(broker, 'sr');
    await a.subscribe('$share/g/shr/#', 0);
    await a.expectNothing();
    await broker.closeConnections();
  });

  test('QoS 1 messages in flight to a member that leaves go to another member', async () => {
    const broker = new BrokerCore();
    const a = await connect(broker, 'la');
    await a.subscribe('$share/w/work', 1);
    await broker.publish({ topic: 'work', payload: 'task', qos: 1 });
    const first = await a.expect(PacketType.Publish);
    assert.equal(first.payload.toString(), 'task');
    const b = await connect(broker, 'lb');
    await b.subscribe('$share/w/work', 1);
    a.drop(); // leaves without acknowledging
    await waitClosed(a);
    const moved = await b.expect(PacketType.Publish);
    assert.equal(moved.payload.toString(), 'task');
    await broker.closeConnections();
  });

  test('the random and least-inflight strategies pick one member per message', async () => {
    for (const strategy of ['random', 'least-inflight'] as const) {
      const broker = new BrokerCore({ sharedSubscriptionStrategy: strategy });
      const a = await connect(broker, 'sa');
      const b = await connect(broker, 'sb');
      await a.subscribe('$share/s/t', 1);
      await b.subscribe('$share/s/t', 1);
      for (let i = 0; i < 6; i++) await broker.publish({ topic: 't', payload: `${i}`, qos: 1 });
      let total = 0;
      for (const c of [a, b]) {
        for (;;) {
          c.send({ type: PacketType.Pingreq });
          const p = await c.next();
          if (p.type === PacketType.Pingresp) break;
          total++;
        }
      }
      assert.equal(total, 6, strategy);
      await broker.closeConnections();
    }
  });
});

describe('MQTT 5.0 will', () => {
  const will = { topic: 'will/t', payload: Buffer.from('bye'), qos: 0 as const, retain: false };

  test('[MQTT-3.1.3-9] the will is not sent if the session resumes within the Will Delay Interval', async () => {
    const clock = new ManualClock(0);
    const broker = new BrokerCore({ clock });
    const watcher = await connect(broker, 'ww');
    await watcher.subscribe('will/#', 0);
    const opts = { ...v5, clientId: 'wd', clean: false, properties: { sessionExpiryInterval: 60 }, will: { ...will, properties: { willDelayInterval: 10 } } };
    const a = (await TestClient.connect(broker, opts)).client;
    a.drop();
    await waitClosed(a);
    clock.advance(5_000);
    await TestClient.connect(broker, opts);
    clock.advance(10_000);
    await new Promise((resolve) => setTimeout(resolve, 250));
    await watcher.expectNothing();
    await broker.closeConnections();
  });

  test('the will is sent after the Will Delay Interval', async () => {
    const clock = new ManualClock(0);
    const broker = new BrokerCore({ clock });
    const watcher = await connect(broker, 'ww');
    await watcher.subscribe('will/#', 0);
    const a = (await TestClient.connect(broker, {
      ...v5, clientId: 'wd2', properties: { sessionExpiryInterval: 60 }, will: { ...will, properties: { willDelayInterval: 5 } },
    })).client;
    a.drop();
    await waitClosed(a);
    await watcher.expectNothing();
    clock.advance(5_100);
    assert.equal((await watcher.expect(PacketType.Publish)).topic, 'will/t');
    await broker.closeConnections();
  });

  test('the will is sent at session end when that comes before the delay', async () => {
    const clock = new ManualClock(0);
    const broker = new BrokerCore({ clock });
    const watcher = await connect(broker, 'ww');
    await watcher.subscribe('will/#', 0);
    const a = (await TestClient.connect(broker, {
      ...v5, clientId: 'wd3', properties: { sessionExpiryInterval: 2 }, will: { ...will, properties: { willDelayInterval: 100 } },
    })).client;
    a.drop();
    await waitClosed(a);
    clock.advance(2_100);
    assert.equal((await watcher.expect(PacketType.Publish)).topic, 'will/t');
    await broker.closeConnections();
  });

  test('[MQTT-3.14.4-3] DISCONNECT with reason 0x04 sends the will', async () => {
    const broker = new BrokerCore();
    const watcher = await connect(broker, 'ww');
    await watcher.subscribe('will/#', 0);
    const a = (await TestClient.connect(broker, { ...v5, clientId: 'w4', will })).client;
    a.send({ type: PacketType.Disconnect, reasonCode: ReasonCode.DisconnectWithWillMessage });
    assert.equal((await watcher.expect(PacketType.Publish)).payload.toString(), 'bye');
    await broker.closeConnections();
  });
});
