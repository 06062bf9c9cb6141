/**
 * 5.0 deliveries with per-receiver properties (Topic Alias, remaining expiry, Subscription
 * Identifiers). Receivers that need the same bytes share one cached encoding of the message and
 * the others get their own: each receiver must still see exactly its own alias, identifiers and
 * packet identifier, whichever way its PUBLISH was written and whatever else shares its write.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { type Packet, PacketType, type PublishPacket } from '../../src/protocol/index.js';
import { ManualClock } from '../../src/session/clock.js';
import { TestClient } from '../helpers/duplex-client.js';

async function v5(broker: BrokerCore, clientId: string, topicAliasMaximum = 10): Promise<TestClient> {
  return (await TestClient.connect(broker, { version: 5, clientId, properties: { topicAliasMaximum } })).client;
}

const seen = (p: PublishPacket): unknown[] => [p.topic, p.properties?.topicAlias, p.payload.toString()];

describe('MQTT 5.0 per-receiver PUBLISH encoding', () => {
  test('[MQTT-3.3.2-11] [MQTT-3.3.2-12] receivers with different alias histories each get their own alias for a topic', async () => {
    const broker = new BrokerCore();
    const a = await v5(broker, 'hist-a');
    const a2 = await v5(broker, 'hist-a2');
    const none = await v5(broker, 'hist-none', 0);
    const old = (await TestClient.connect(broker, { version: 4, clientId: 'hist-311' })).client;
    for (const c of [a, a2, none, old]) await c.subscribe('al/#', 1);
    await broker.publish({ topic: 'al/x', payload: '1', qos: 1 });
    const b = await v5(broker, 'hist-b');
    await b.subscribe('al/#', 1);
    await broker.publish({ topic: 'al/y', payload: '2', qos: 1 });
    await broker.publish({ topic: 'al/x', payload: '3', qos: 1 });

    const got = async (c: TestClient, n: number): Promise<PublishPacket[]> => {
      const out: PublishPacket[] = [];
      for (let i = 0; i < n; i++) {
        const p = await c.expect(PacketType.Publish);
        c.send({ type: PacketType.Puback, packetId: p.packetId as number });
        out.push(p);
      }
      return out;
    };
    for (const c of [a, a2]) {
      const ps = await got(c, 3);
      assert.deepEqual(ps.map(seen), [['al/x', 1, '1'], ['al/y', 2, '2'], ['', 1, '3']]);
      assert.deepEqual(ps.map((p) => p.packetId), [1, 2, 3]);
    }
    assert.deepEqual((await got(b, 2)).map(seen), [['al/y', 1, '2'], ['al/x', 2, '3']]);
    assert.deepEqual((await got(none, 3)).map(seen), [['al/x', undefined, '1'], ['al/y', undefined, '2'], ['al/x', undefined, '3']]);
    assert.deepEqual((await got(old, 3)).map((p) => p.topic), ['al/x', 'al/y', 'al/x']);
    await broker.closeConnections();
  });

  test('[MQTT-3.3.4-3] more distinct receivers than cached encodings: each gets its own identifier, also next to other packets in one write', async () => {
    const broker = new BrokerCore();
    const publisher = await v5(broker, 'rv-pub');
    publisher.publish('rv/t', 'kept', 1, 1, true);
    await publisher.expect(PacketType.Puback);
    // Each subscriber gets SUBACK and the retained PUBLISH in one write; the retained message
    // keeps its encodings from one subscriber to the next, so later ones find the cache full.
    for (let id = 1; id <= 7; id++) {
      const c = await v5(broker, `rv-${id}`);
      const raw = c.raw.length;
      c.send({ type: PacketType.Subscribe, packetId: 5, properties: { subscriptionIdentifiers: [id * 1000] }, subscriptions: [{ topicFilter: 'rv/#', qos: 1, noLocal: false, retainAsPublished: true, retainHandling: 0 }] });
      await c.expect(PacketType.Suback);
      const p = await c.expect(PacketType.Publish);
      assert.equal(c.raw.length, raw + 1, 'SUBACK and PUBLISH came in one write');
      assert.deepEqual([p.topic, p.properties?.topicAlias, p.properties?.subscriptionIdentifiers, p.retain, p.qos, p.packetId, p.payload.toString()],
        ['rv/t', 1, [id * 1000], true, 1, 1, 'kept']);
      c.send({ type: PacketType.Puback, packetId: 1 });
    }
    await broker.closeConnections();
  });

  test('[MQTT-3.3.2-6] receivers delivered at different times get the remaining expiry of their own moment', async () => {
    const clock = new ManualClock(0);
    const broker = new BrokerCore({ clock });
    const now = await v5(broker, 'exp-now');
    const later = (await TestClient.connect(broker, { version: 5, clientId: 'exp-later', clean: false, properties: { sessionExpiryInterval: 60, topicAliasMaximum: 10 } })).client;
    await now.subscribe('exp/#', 1);
    await later.subscribe('exp/#', 1);
    later.drop();
    await later.closed;
    await broker.publish({ topic: 'exp/t', payload: 'e', qos: 1, properties: { messageExpiryInterval: 30 } });
    const first = await now.expect(PacketType.Publish);
    assert.deepEqual([first.topic, first.properties?.topicAlias, first.properties?.messageExpiryInterval], ['exp/t', 1, 30]);
    clock.advance(10_500);
    const back = (await TestClient.connect(broker, { version: 5, clientId: 'exp-later', clean: false, properties: { sessionExpiryInterval: 60, topicAliasMaximum: 10 } })).client;
    const queued = await back.expect(PacketType.Publish);
    assert.deepEqual([queued.topic, queued.properties?.topicAlias, queued.properties?.messageExpiryInterval], ['exp/t', 1, 20]);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.2-25] a PUBLISH too large for the client is not sent and uses up no alias', async () => {
    const broker = new BrokerCore();
    const c = (await TestClient.connect(broker, { version: 5, clientId: 'mps-alias', properties: { maximumPacketSize: 64, topicAliasMaximum: 2 } })).client;
    await c.subscribe('mp/#', 0);
    await broker.publish({ topic: 'mp/t', payload: 'x'.repeat(80) });
    await broker.publish({ topic: 'mp/t', payload: 'small' });
    await broker.publish({ topic: 'mp/t', payload: 'again' });
    const ps: Packet[] = [await c.expect(PacketType.Publish), await c.expect(PacketType.Publish)];
    assert.deepEqual(ps.map((p) => seen(p as PublishPacket)), [['mp/t', 1, 'small'], ['', 1, 'again']]);
    await c.expectNothing();
    await broker.closeConnections();
  });
});
