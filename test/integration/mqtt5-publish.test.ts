import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { PacketType, ReasonCode } from '../../src/protocol/index.js';
import { ManualClock } from '../../src/session/clock.js';
import { TestClient, waitClosed } from '../helpers/duplex-client.js';

const v5 = { version: 5 } as const;

async function clients(broker: BrokerCore, ...ids: string[]): Promise<TestClient[]> {
  const out: TestClient[] = [];
  for (const clientId of ids) out.push((await TestClient.connect(broker, { ...v5, clientId })).client);
  return out;
}

describe('MQTT 5.0 PUBLISH', () => {
  test('[MQTT-3.3.2-4] a payload marked UTF-8 that is not UTF-8 is refused with 0x99', async () => {
    const broker = new BrokerCore();
    const [pub] = await clients(broker, 'pfi');
    pub?.publish('t', Buffer.from([0xff, 0xfe]), 1, 1, false, { payloadFormatIndicator: true });
    const ack = await pub?.expect(PacketType.Puback);
    assert.equal(ack?.reasonCode, ReasonCode.PayloadFormatInvalid);
    pub?.publish('t', 'fine', 1, 2, false, { payloadFormatIndicator: true });
    assert.equal((await pub?.expect(PacketType.Puback))?.reasonCode, ReasonCode.NoMatchingSubscribers);
    await broker.closeConnections();
  });

  test('[MQTT-3.3.2-18] [MQTT-3.3.2-20] properties are forwarded unchanged: user properties in order, response topic, correlation data, content type', async () => {
    const broker = new BrokerCore();
    const [pub, sub] = await clients(broker, 'fp', 'fs');
    await sub?.subscribe('props', 0);
    const properties = {
      payloadFormatIndicator: true, contentType: 'text/plain', responseTopic: 'reply/here', correlationData: Buffer.from([1, 2, 3]),
      userProperties: [['b', '2'], ['a', '1'], ['b', '3']] as [string, string][],
    };
    pub?.publish('props', 'hi', 0, undefined, false, properties);
    const p = await sub?.expect(PacketType.Publish);
    assert.deepEqual(p?.properties, properties);
    await broker.closeConnections();
  });

  test('[MQTT-3.3.2-5] [MQTT-3.3.2-6] message expiry: expired queued messages are not delivered; the remaining interval is forwarded', async () => {
    const clock = new ManualClock(0);
    const broker = new BrokerCore({ clock });
    const off = (await TestClient.connect(broker, { ...v5, clientId: 'off', clean: false, properties: { sessionExpiryInterval: 100 } })).client;
    await off.subscribe('exp/#', 1);
    off.disconnect();
    await waitClosed(off);
    await broker.publish({ topic: 'exp/short', payload: 's', qos: 1, properties: { messageExpiryInterval: 2 } });
    await broker.publish({ topic: 'exp/long', payload: 'l', qos: 1, properties: { messageExpiryInterval: 10 } });
    clock.advance(3_000);
    const back = (await TestClient.connect(broker, { ...v5, clientId: 'off', clean: false, properties: { sessionExpiryInterval: 100 } })).client;
    const p = await back.expect(PacketType.Publish);
    assert.equal(p.topic, 'exp/long');
    assert.equal(p.properties?.messageExpiryInterval, 7);
    back.send({ type: PacketType.Puback, packetId: p.packetId as number });
    await back.expectNothing();
    await broker.closeConnections();
  });

  test('[MQTT-3.3.2-5] an expired retained message is not sent to new subscribers', async () => {
    const clock = new ManualClock(0);
    const broker = new BrokerCore({ clock });
    await broker.publish({ topic: 'ret/exp', payload: 'x', retain: true, properties: { messageExpiryInterval: 1 } });
    await broker.publish({ topic: 'ret/keep', payload: 'y', retain: true });
    clock.advance(1_500);
    const [sub] = await clients(broker, 'rs');
    await sub?.subscribe('ret/+', 0);
    assert.equal((await sub?.expect(PacketType.Publish))?.topic, 'ret/keep');
    await sub?.expectNothing();
    await broker.closeConnections();
  });

  test('[MQTT-3.3.2-7] [MQTT-3.3.2-12] inbound topic alias: set, then used with an empty topic', async () => {
    const broker = new BrokerCore();
    const [pub, sub] = await clients(broker, 'ap', 'as');
    await sub?.subscribe('alias/#', 0);
    pub?.publish('alias/one', '1', 0, undefined, false, { topicAlias: 3 });
    pub?.publish('', '2', 0, undefined, false, { topicAlias: 3 });
    assert.equal((await sub?.expect(PacketType.Publish))?.topic, 'alias/one');
    const second = await sub?.expect(PacketType.Publish);
    assert.deepEqual([second?.topic, second?.payload.toString()], ['alias/one', '2']);
    await broker.closeConnections();
  });

  test('[MQTT-3.3.2-8] [MQTT-3.3.2-9] an invalid topic alias gives DISCONNECT 0x94; an unknown one 0x82', async () => {
    const broker = new BrokerCore({ topicAliasMaximum: 5 });
    const [a, b] = await clients(broker, 'bad1', 'bad2');
    a?.publish('t', 'x', 0, undefined, false, { topicAlias: 6 });
    assert.equal((await a?.expect(PacketType.Disconnect))?.reasonCode, ReasonCode.TopicAliasInvalid);
    b?.publish('', 'x', 0, undefined, false, { topicAlias: 2 });
    assert.equal((await b?.expect(PacketType.Disconnect))?.reasonCode, ReasonCode.ProtocolError);
    await broker.closeConnections();
  });

  test('outbound topic aliases are assigned to clients that allow them [MQTT-3.3.2-10]', async () => {
    const broker = new BrokerCore();
    const sub = (await TestClient.connect(broker, { ...v5, clientId: 'oa', properties: { topicAliasMaximum: 2 } })).client;
    await sub.subscribe('out/#', 0);
    await broker.publish({ topic: 'out/a', payload: '1' });
    await broker.publish({ topic: 'out/a', payload: '2' });
    const first = await sub.expect(PacketType.Publish);
    const second = await sub.expect(PacketType.Publish);
    assert.deepEqual([first.topic, first.properties?.topicAlias], ['out/a', 1]);
    assert.deepEqual([second.topic, second.properties?.topicAlias], ['', 1]);
    await broker.closeConnections();
  });

  test('[MQTT-3.3.4-3] [MQTT-3.3.4-4] subscription identifiers: one copy carrying every matching identifier', async () => {
    const broker = new BrokerCore();
    const [sub] = await clients(broker, 'ids');
    await sub?.subscribe('id/+', 0, 1, { subscriptionIdentifiers: [11] });
    await sub?.subscribe('id/#', 1, 2, { subscriptionIdentifiers: [22] });
    await broker.publish({ topic: 'id/x', payload: 'v', qos: 1 });
    const p = await sub?.expect(PacketType.Publish);
    assert.deepEqual([...(p?.properties?.subscriptionIdentifiers ?? [])].sort((a, b) => a - b), [11, 22]);
    assert.equal(p?.qos, 1);
    sub?.send({ type: PacketType.Puback, packetId: p?.packetId as number });
    await sub?.expectNothing();
    await broker.closeConnections();
  });

  test('acknowledgement reason codes: 0x10 no matching subscribers, 0x92 unknown identifier, 0x87 not authorized, 0x97 quota exceeded', async () => {
    const broker = new BrokerCore({ authorizePublish: (ctx) => !ctx.topic.startsWith('secret/'), maxRetainedMessages: 1 });
    const [c] = await clients(broker, 'codes');
    c?.publish('nobody', 'x', 1, 1);
    assert.equal((await c?.expect(PacketType.Puback))?.reasonCode, ReasonCode.NoMatchingSubscribers);
    c?.send({ type: PacketType.Pubrel, packetId: 77 });
    assert.equal((await c?.expect(PacketType.Pubcomp))?.reasonCode, ReasonCode.PacketIdentifierNotFound);
    c?.send({ type: PacketType.Pubrec, packetId: 78 });
    assert.equal((await c?.expect(PacketType.Pubrel))?.reasonCode, ReasonCode.PacketIdentifierNotFound);
    c?.publish('secret/x', 'x', 1, 2);
    assert.equal((await c?.expect(PacketType.Puback))?.reasonCode, ReasonCode.NotAuthorized);
    c?.publish('keep/1', 'x', 1, 3, true);
    await c?.expect(PacketType.Puback);
    c?.publish('keep/2', 'x', 1, 4, true);
    assert.equal((await c?.expect(PacketType.Puback))?.reasonCode, ReasonCode.QuotaExceeded);
    await broker.closeConnections();
  });

  test('a QoS 0 retained message beyond the retained quota gives DISCONNECT 0x97 (Quota exceeded)', async () => {
    const broker = new BrokerCore({ maxRetainedMessages: 1 });
    await broker.publish({ topic: 'kept/1', payload: 'x', retain: true });
    const [c] = await clients(broker, 'quota0');
    c?.publish('kept/2', 'x', 0, undefined, true);
    assert.equal((await c?.expect(PacketType.Disconnect))?.reasonCode, ReasonCode.QuotaExceeded);
    await broker.closeConnections();
  });

  test('[MQTT-4.4.0-1] 5.0 sessions are never resent on a timer, only on reconnect', async () => {
    const clock = new ManualClock(0);
    const broker = new BrokerCore({ clock, retryInterval: 1 });
    const sub = (await TestClient.connect(broker, { ...v5, clientId: 'nr', clean: false, properties: { sessionExpiryInterval: 60 } })).client;
    await sub.subscribe('nr', 1);
    await broker.publish({ topic: 'nr', payload: 'x', qos: 1 });
    const first = await sub.expect(PacketType.Publish);
    clock.advance(5_000);
    await new Promise((resolve) => setTimeout(resolve, 350));
    await sub.expectNothing();
    sub.drop();
    await waitClosed(sub);
    const again = (await TestClient.connect(broker, { ...v5, clientId: 'nr', clean: false, properties: { sessionExpiryInterval: 60 } })).client;
    const resent = await again.expect(PacketType.Publish);
    assert.deepEqual([resent.dup, resent.packetId], [true, first.packetId]);
    await broker.closeConnections();
  });
});
