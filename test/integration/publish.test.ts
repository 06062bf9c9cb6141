import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { PacketType, type PublishPacket } from '../../src/protocol/index.js';
import { TestClient, waitClosed } from '../helpers/duplex-client.js';

async function pair(broker: BrokerCore, version: 3 | 4 | 5 = 4): Promise<{ pub: TestClient; sub: TestClient }> {
  const sub = (await TestClient.connect(broker, { clientId: `sub${version}`, version })).client;
  const pub = (await TestClient.connect(broker, { clientId: `pub${version}`, version })).client;
  return { pub, sub };
}

for (const version of [3, 4] as const) {
  describe(`PUBLISH flows, protocol level ${version}`, () => {
    test('[MQTT-4.3.1-1] QoS 0 is delivered once, without acknowledgement', async () => {
      const broker = new BrokerCore();
      const { pub, sub } = await pair(broker, version);
      assert.deepEqual(await sub.subscribe('t/0', 0), [0]);
      pub.publish('t/0', 'hello', 0);
      const p = await sub.expect(PacketType.Publish);
      assert.equal(p.topic, 't/0');
      assert.equal(p.payload.toString(), 'hello');
      assert.equal(p.qos, 0);
      await pub.expectNothing();
      await broker.closeConnections();
    });

    test('[MQTT-4.3.2-2] QoS 1: PUBACK to the publisher, PUBLISH with a packet id to the subscriber', async () => {
      const broker = new BrokerCore();
      const { pub, sub } = await pair(broker, version);
      await sub.subscribe('t/1', 1);
      pub.publish('t/1', 'one', 1, 7);
      const ack = await pub.expect(PacketType.Puback);
      assert.equal(ack.packetId, 7);
      const p = await sub.expect(PacketType.Publish);
      assert.equal(p.qos, 1);
      assert.ok((p.packetId ?? 0) > 0);
      sub.send({ type: PacketType.Puback, packetId: p.packetId as number });
      await sub.expectNothing();
      await broker.closeConnections();
    });

    test('[MQTT-4.3.3-2] QoS 2 exactly once: a PUBLISH repeated before PUBREL is not delivered twice', async () => {
      const broker = new BrokerCore();
      const { pub, sub } = await pair(broker, version);
      await sub.subscribe('t/2', 2);
      pub.publish('t/2', 'two', 2, 9);
      assert.equal((await pub.expect(PacketType.Pubrec)).packetId, 9);
      // The publisher did not see PUBREC in time and resends with DUP.
      pub.send({ type: PacketType.Publish, topic: 't/2', payload: Buffer.from('two'), qos: 2, retain: false, dup: true, packetId: 9 });
      assert.equal((await pub.expect(PacketType.Pubrec)).packetId, 9);
      pub.send({ type: PacketType.Pubrel, packetId: 9 });
      assert.equal((await pub.expect(PacketType.Pubcomp)).packetId, 9);
      const p = await sub.expect(PacketType.Publish);
      assert.equal(p.qos, 2);
      const id = p.packetId as number;
      sub.send({ type: PacketType.Pubrec, packetId: id });
      assert.equal((await sub.expect(PacketType.Pubrel)).packetId, id);
      sub.send({ type: PacketType.Pubcomp, packetId: id });
      await sub.expectNothing();
      // After PUBREL the identifier is free again: the same id is a new message [MQTT-4.3.3-9].
      pub.publish('t/2', 'again', 2, 9);
      await pub.expect(PacketType.Pubrec);
      assert.equal((await sub.expect(PacketType.Publish)).payload.toString(), 'again');
      await broker.closeConnections();
    });

    test('[MQTT-3.8.4-6] QoS is downgraded to the subscription QoS', async () => {
      const broker = new BrokerCore();
      const { pub, sub } = await pair(broker, version);
      await sub.subscribe('down', 1);
      pub.publish('down', 'x', 2, 3);
      await pub.expect(PacketType.Pubrec);
      const p = await sub.expect(PacketType.Publish);
      assert.equal(p.qos, 1);
      await broker.closeConnections();
    });

    test('[MQTT-3.3.4-2] overlapping subscriptions deliver one copy at the highest QoS', async () => {
      const broker = new BrokerCore();
      const { pub, sub } = await pair(broker, version);
      await sub.subscribe('a/+', 0, 1);
      await sub.subscribe('a/#', 1, 2);
      await sub.subscribe('a/b', 0, 3);
      pub.publish('a/b', 'once', 1, 4);
      const p = await sub.expect(PacketType.Publish);
      assert.equal(p.qos, 1);
      sub.send({ type: PacketType.Puback, packetId: p.packetId as number });
      await sub.expectNothing();
      await broker.closeConnections();
    });

    test('[MQTT-3.3.1-5] [MQTT-3.3.1-8] [MQTT-3.3.1-9] retained: sent on subscribe with RETAIN 1, live with RETAIN 0', async () => {
      const broker = new BrokerCore();
      const { pub, sub } = await pair(broker, version);
      pub.publish('r/1', 'kept', 1, 1, true);
      await pub.expect(PacketType.Puback);
      await sub.subscribe('r/+', 1);
      const stored = await sub.expect(PacketType.Publish);
      assert.equal(stored.retain, true);
      assert.equal(stored.payload.toString(), 'kept');
      sub.send({ type: PacketType.Puback, packetId: stored.packetId as number });
      pub.publish('r/1', 'live', 0, undefined, true);
      const live = await sub.expect(PacketType.Publish);
      assert.equal(live.retain, false);
      assert.equal(live.payload.toString(), 'live');
      await broker.closeConnections();
    });

    test('[MQTT-3.3.1-10] [MQTT-3.3.1-11] an empty retained payload clears the retained message', async () => {
      const broker = new BrokerCore();
      const { pub, sub } = await pair(broker, version);
      pub.publish('r/2', 'kept', 0, undefined, true);
      pub.publish('r/2', '', 0, undefined, true);
      await pub.expectNothing();
      await sub.subscribe('r/2', 0);
      await sub.expectNothing();
      await broker.closeConnections();
    });

    test('[MQTT-4.7.2-1] # and + at the first level do not match topics starting with $', async () => {
      const broker = new BrokerCore();
      const { sub } = await pair(broker, version);
      await sub.subscribe('#', 0, 1);
      await sub.subscribe('+/x', 0, 2);
      await broker.publish({ topic: '$SYS/x', payload: 'sys' });
      await sub.expectNothing();
      await sub.subscribe('$SYS/#', 0, 3);
      await broker.publish({ topic: '$SYS/x', payload: 'sys' });
      assert.equal((await sub.expect(PacketType.Publish)).topic, '$SYS/x');
      await broker.closeConnections();
    });

    test('$SYS/ is reserved: client messages there are not delivered', async () => {
      const broker = new BrokerCore();
      const { pub, sub } = await pair(broker, version);
      await sub.subscribe('$SYS/#', 0);
      pub.publish('$SYS/fake', 'x', 1, 5);
      await pub.expect(PacketType.Puback);
      await sub.expectNothing();
      await broker.closeConnections();
    });

    test('[MQTT-3.10.4-4] unsubscribe stops delivery and is acknowledged', async () => {
      const broker = new BrokerCore();
      const { pub, sub } = await pair(broker, version);
      await sub.subscribe('u/1', 0);
      sub.send({ type: PacketType.Unsubscribe, packetId: 2, topicFilters: ['u/1', 'never'] });
      assert.equal((await sub.expect(PacketType.Unsuback)).packetId, 2);
      pub.publish('u/1', 'x', 0);
      await pub.expectNothing();
      await sub.expectNothing();
      await broker.closeConnections();
    });

    test('[MQTT-3.1.2-8] the will is published on abnormal loss, with its QoS and retain flag', async () => {
      const broker = new BrokerCore();
      const watcher = (await TestClient.connect(broker, { clientId: 'w', version })).client;
      await watcher.subscribe('will/#', 1);
      const dying = (await TestClient.connect(broker, {
        clientId: 'dying', version, will: { topic: 'will/dying', payload: Buffer.from('gone'), qos: 1, retain: true },
      })).client;
      dying.drop();
      const p = await watcher.expect(PacketType.Publish);
      assert.equal(p.topic, 'will/dying');
      assert.equal(p.qos, 1);
      assert.equal(p.retain, false);
      // Retained: a new subscriber gets it with RETAIN 1.
      const late = (await TestClient.connect(broker, { clientId: 'late', version })).client;
      await late.subscribe('will/dying', 1);
      const kept = await late.expect(PacketType.Publish);
      assert.equal(kept.retain, true);
      assert.equal(kept.payload.toString(), 'gone');
      await broker.closeConnections();
    });

    test('[MQTT-3.14.4-3] the will is discarded on DISCONNECT', async () => {
      const broker = new BrokerCore();
      const watcher = (await TestClient.connect(broker, { clientId: 'w2', version })).client;
      await watcher.subscribe('will/#', 0);
      const leaving = (await TestClient.connect(broker, {
        clientId: 'leaving', version, will: { topic: 'will/leaving', payload: Buffer.from('x'), qos: 0, retain: false },
      })).client;
      const disconnected = new Promise((resolve) => broker.once('clientDisconnected', resolve));
      leaving.disconnect();
      await disconnected;
      await watcher.expectNothing();
      await broker.closeConnections();
    });
  });
}

describe('sessions', () => {
  test('[MQTT-3.1.2-5] clean session 0 resumes subscriptions and gets QoS 1/2 messages queued while offline', async () => {
    const broker = new BrokerCore();
    const first = (await TestClient.connect(broker, { clientId: 'persist', clean: false })).client;
    await first.subscribe('q/#', 2);
    first.disconnect();
    await waitClosed(first);
    const pub = (await TestClient.connect(broker, { clientId: 'pq' })).client;
    pub.publish('q/1', 'm1', 1, 1);
    pub.publish('q/2', 'm2', 2, 2);
    pub.publish('q/0', 'm0', 0);
    await pub.expect(PacketType.Puback);
    await pub.expect(PacketType.Pubrec);
    const again = await TestClient.connect(broker, { clientId: 'persist', clean: false });
    assert.equal(again.connack.sessionPresent, true);
    const a = await again.client.expect(PacketType.Publish);
    const b = await again.client.expect(PacketType.Publish);
    assert.deepEqual([a.payload.toString(), a.qos, b.payload.toString(), b.qos], ['m1', 1, 'm2', 2]);
    // QoS 0 is not queued for offline sessions by default.
    await again.client.expectNothing();
    await broker.closeConnections();
  });

  test('[MQTT-4.4.0-1] unacknowledged messages are resent with DUP on reconnect, PUBREL resent for released ones', async () => {
    const broker = new BrokerCore();
    const first = (await TestClient.connect(broker, { clientId: 'dup', clean: false })).client;
    await first.subscribe('d/#', 2);
    const pub = (await TestClient.connect(broker, { clientId: 'pd' })).client;
    pub.publish('d/1', 'one', 1, 1);
    pub.publish('d/2', 'two', 2, 2);
    const m1 = await first.expect(PacketType.Publish);
    const m2 = await first.expect(PacketType.Publish);
    first.send({ type: PacketType.Pubrec, packetId: m2.packetId as number });
    await first.expect(PacketType.Pubrel);
    first.drop();
    await waitClosed(first);
    const again = (await TestClient.connect(broker, { clientId: 'dup', clean: false })).client;
    const r1 = await again.expect(PacketType.Publish);
    assert.equal(r1.dup, true);
    assert.equal(r1.packetId, m1.packetId);
    assert.equal(r1.payload.toString(), 'one');
    const r2 = await again.expect(PacketType.Pubrel);
    assert.equal(r2.packetId, m2.packetId);
    again.send({ type: PacketType.Puback, packetId: r1.packetId as number });
    again.send({ type: PacketType.Pubcomp, packetId: r2.packetId });
    await again.expectNothing();
    await broker.closeConnections();
  });

  test('clean session 1 discards the previous session', async () => {
    const broker = new BrokerCore();
    const first = (await TestClient.connect(broker, { clientId: 'c1', clean: false })).client;
    await first.subscribe('c/#', 1);
    first.disconnect();
    await waitClosed(first);
    const again = (await TestClient.connect(broker, { clientId: 'c1', clean: true })).client;
    assert.deepEqual(broker.subscriptions('c1'), []);
    const pub = (await TestClient.connect(broker, { clientId: 'pc' })).client;
    pub.publish('c/1', 'x', 1, 1);
    await pub.expect(PacketType.Puback);
    await again.expectNothing();
    await broker.closeConnections();
  });
});

export type { PublishPacket };
