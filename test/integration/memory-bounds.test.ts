/**
 * Memory the broker keeps for what clients send is bounded in bytes: the match cache, topic
 * alias tables (both directions), session queues and the retained store. Each bound has a
 * behaviour test and a heap test that runs the attack and checks the growth against a figure.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { PacketType, ReasonCode } from '../../src/protocol/index.js';
import { TestClient, waitClosed } from '../helpers/duplex-client.js';
import { longTopic, memoryInUse, MiB } from '../helpers/heap.js';

const v5 = { version: 5 } as const;

async function connect5(broker: BrokerCore, clientId: string, properties?: { topicAliasMaximum: number }): Promise<TestClient> {
  return (await TestClient.connect(broker, { ...v5, clientId, ...(properties ? { properties } : {}) })).client;
}

const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

describe('match cache bound through the broker', () => {
  test('2,000 PUBLISHes to distinct 60 KB topics nobody subscribes to do not grow the heap', async (t) => {
    const broker = new BrokerCore();
    const pub = (await TestClient.connect(broker, { clientId: 'long-topics' })).client;
    await pub.expectNothing();
    const before = memoryInUse();
    for (let i = 0; i < 2_000; i++) {
      pub.publish(longTopic('t', i, 60_000), 'x');
      if (i % 100 === 99) await pub.expectNothing(); // the broker has handled everything sent so far
    }
    await pub.expectNothing();
    const grown = memoryInUse() - before;
    t.diagnostic(`heap grew by ${mib(grown)}`);
    assert.ok(grown < 8 * MiB, `heap grew by ${mib(grown)}`);
    await broker.closeConnections();
  });
});

describe('topic alias bounds (5.0)', () => {
  test('the broker offers a Topic Alias Maximum of 10 by default [MQTT-3.2.2-17]', async () => {
    const broker = new BrokerCore();
    const { connack } = await TestClient.connect(broker, { ...v5, clientId: 'tam' });
    assert.equal(connack.properties?.topicAliasMaximum, 10);
    await broker.closeConnections();
  });

  test('an inbound alias table beyond maxTopicAliasBytes ends the connection with DISCONNECT 0x97', async () => {
    const broker = new BrokerCore({ maxTopicAliasBytes: 4000 });
    const pub = await connect5(broker, 'alias-bytes');
    pub.publish(`a/${'x'.repeat(1998)}`, '1', 0, undefined, false, { topicAlias: 1 }); // 2,000 bytes
    pub.publish(`b/${'x'.repeat(1998)}`, '2', 0, undefined, false, { topicAlias: 2 }); // 4,000: at the bound
    pub.publish(`c/${'x'.repeat(1998)}`, '3', 0, undefined, false, { topicAlias: 1 }); // replaces alias 1: still 4,000
    await pub.expectNothing();
    pub.publish('d/x', '4', 0, undefined, false, { topicAlias: 3 }); // 4,003
    assert.equal((await pub.expect(PacketType.Disconnect)).reasonCode, ReasonCode.QuotaExceeded);
    await waitClosed(pub);
    await broker.closeConnections();
  });

  test('heap: 2,000 alias mappings to distinct 8 KB topics stay within the alias byte bound', async (t) => {
    // No match cache (it has its own bound, tested above): only the alias table could keep topics.
    const broker = new BrokerCore({ topicAliasMaximum: 65535, matchCacheSize: 0 });
    const pub = await connect5(broker, 'alias-flood');
    const before = memoryInUse();
    for (let i = 1; i <= 2_000 && !pub.ended; i++) {
      pub.publish(longTopic('alias', i, 8_000), 'x', 0, undefined, false, { topicAlias: i });
      if (i % 100 === 0) await pub.expectNothing().catch(() => undefined);
    }
    if (!pub.ended) await pub.expectNothing().catch(() => undefined);
    const grown = memoryInUse() - before; // measured while the connection would still hold its table
    t.diagnostic(`heap grew by ${mib(grown)}`);
    assert.ok(grown < 4 * MiB, `heap grew by ${mib(grown)}`);
    await broker.closeConnections();
  });

  test('outbound aliases stop being assigned once their topics fill maxTopicAliasBytes', async () => {
    const broker = new BrokerCore({ maxTopicAliasBytes: 4000 });
    const sub = await connect5(broker, 'oa-bytes', { topicAliasMaximum: 100 });
    await sub.subscribe('o/#', 0);
    for (let i = 0; i < 10; i++) await broker.publish({ topic: `o/${i}/${'x'.repeat(996)}`, payload: 'p' }); // 1,000 bytes each
    const aliases: (number | undefined)[] = [];
    for (let i = 0; i < 10; i++) aliases.push((await sub.expect(PacketType.Publish)).properties?.topicAlias);
    assert.deepEqual(aliases, [1, 2, 3, 4, undefined, undefined, undefined, undefined, undefined, undefined]);
    await broker.closeConnections();
  });

  test('heap: 2,000 distinct 8 KB topics to a client allowing 65,535 aliases stay within the alias byte bound', async (t) => {
    const broker = new BrokerCore({ matchCacheSize: 0 });
    const sub = await connect5(broker, 'oa-flood', { topicAliasMaximum: 65535 });
    await sub.subscribe('f/#', 0);
    const before = memoryInUse();
    for (let i = 0; i < 2_000; i++) {
      await broker.publish({ topic: longTopic('f', i, 8_000), payload: 'p' });
      await sub.expect(PacketType.Publish); // read and let go, so only the broker could keep the topic
      sub.raw.length = 0;
    }
    const grown = memoryInUse() - before;
    t.diagnostic(`heap grew by ${mib(grown)}`);
    assert.ok(grown < 4 * MiB, `heap grew by ${mib(grown)}`);
    await broker.closeConnections();
  });
});

describe('session queue byte bound', () => {
  test('a queue beyond maxQueuedBytes drops QoS 0 first, then the newcomer, counted as queue-full', async () => {
    const broker = new BrokerCore({ maxQueuedBytes: 1500, queueQos0Offline: true });
    const dropped: [string, string][] = [];
    broker.on('messageDropped', (_id, topic, reason) => dropped.push([topic, reason]));
    const sub = (await TestClient.connect(broker, { clientId: 'qb', clean: false })).client;
    await sub.subscribe('qb/#', 1);
    sub.disconnect();
    await waitClosed(sub);
    const payload = Buffer.alloc(400); // about 470 bytes queued each
    await broker.publish({ topic: 'qb/zero', payload, qos: 0 });
    await broker.publish({ topic: 'qb/a', payload, qos: 1 });
    await broker.publish({ topic: 'qb/b', payload, qos: 1 }); // 3 x 470 < 1,500
    await broker.publish({ topic: 'qb/c', payload, qos: 1 }); // over: the QoS 0 message goes
    await broker.publish({ topic: 'qb/d', payload, qos: 1 }); // over, no QoS 0 left: qb/d goes
    await broker.publish({ topic: 'qb/big', payload: Buffer.alloc(2000), qos: 1 }); // alone beyond the bound
    assert.deepEqual(dropped, [['qb/zero', 'queue-full'], ['qb/d', 'queue-full'], ['qb/big', 'queue-full']]);
    const back = (await TestClient.connect(broker, { clientId: 'qb', clean: false })).client;
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await back.expect(PacketType.Publish);
      got.push(p.topic);
      back.send({ type: PacketType.Puback, packetId: p.packetId as number });
    }
    assert.deepEqual(got, ['qb/a', 'qb/b', 'qb/c']);
    await back.expectNothing();
    await broker.closeConnections();
  });

  test('heap: 1,000 distinct 100 KB messages for an offline session stay within the 16 MiB default', async (t) => {
    const broker = new BrokerCore();
    const sub = (await TestClient.connect(broker, { clientId: 'qheap', clean: false })).client;
    await sub.subscribe('qh/#', 1);
    sub.disconnect();
    await waitClosed(sub);
    const before = memoryInUse();
    for (let i = 0; i < 1_000; i++) await broker.publish({ topic: `qh/${i}`, payload: Buffer.alloc(100_000, i), qos: 1 });
    const grown = memoryInUse() - before;
    t.diagnostic(`heap grew by ${mib(grown)}`);
    assert.ok(grown < 20 * MiB, `heap grew by ${mib(grown)}`);
    await broker.closeConnections();
  });
});

describe('retained store byte bound', () => {
  test('a retained message beyond maxRetainedBytes is refused with 0x97 and not stored; replacing and clearing work', async () => {
    const broker = new BrokerCore({ maxRetainedBytes: 1000 });
    const pub = await connect5(broker, 'rb');
    const payload = Buffer.alloc(400); // about 470 bytes stored each
    pub.publish('r/a', payload, 1, 1, true);
    assert.equal((await pub.expect(PacketType.Puback)).reasonCode ?? 0, ReasonCode.NoMatchingSubscribers);
    pub.publish('r/b', payload, 1, 2, true);
    await pub.expect(PacketType.Puback);
    pub.publish('r/c', payload, 1, 3, true); // 3 x 470 > 1,000
    assert.equal((await pub.expect(PacketType.Puback)).reasonCode, ReasonCode.QuotaExceeded);
    pub.publish('r/a', Buffer.alloc(800), 1, 4, true); // a larger replacement beyond the bound
    assert.equal((await pub.expect(PacketType.Puback)).reasonCode, ReasonCode.QuotaExceeded);
    pub.publish('r/a', Buffer.alloc(0), 1, 5, true); // clearing always works [MQTT-3.3.1-10]
    assert.equal((await pub.expect(PacketType.Puback)).reasonCode ?? 0, ReasonCode.NoMatchingSubscribers);
    pub.publish('r/c', payload, 1, 6, true); // room again
    assert.equal((await pub.expect(PacketType.Puback)).reasonCode ?? 0, ReasonCode.NoMatchingSubscribers);
    const sub = await connect5(broker, 'rb-sub');
    await sub.subscribe('r/#', 0);
    const topics = [(await sub.expect(PacketType.Publish)).topic, (await sub.expect(PacketType.Publish)).topic].sort();
    assert.deepEqual(topics, ['r/b', 'r/c']);
    await sub.expectNothing();
    await broker.closeConnections();
  });

  test('heap: 400 retained 100 KB messages stay within maxRetainedBytes (8 MiB here)', async (t) => {
    const broker = new BrokerCore({ maxRetainedBytes: 8 * MiB });
    const before = memoryInUse();
    for (let i = 0; i < 400; i++) await broker.publish({ topic: `rh/${i}`, payload: Buffer.alloc(100_000, i), retain: true });
    const grown = memoryInUse() - before;
    t.diagnostic(`heap grew by ${mib(grown)}`);
    assert.ok(grown < 12 * MiB, `heap grew by ${mib(grown)}`);
    await broker.closeConnections();
  });
});
