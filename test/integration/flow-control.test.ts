import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { PacketType } from '../../src/protocol/index.js';
import { ManualClock } from '../../src/session/clock.js';
import { TestClient } from '../helpers/duplex-client.js';

describe('flow control', () => {
  test('the inflight window bounds unacknowledged QoS 1 messages; acknowledgements release the queue in order', async () => {
    const broker = new BrokerCore({ maxInflight: 2 });
    const sub = (await TestClient.connect(broker, { clientId: 'win' })).client;
    await sub.subscribe('w', 1);
    for (let i = 0; i < 5; i++) await broker.publish({ topic: 'w', payload: `m${i}`, qos: 1 });
    const a = await sub.expect(PacketType.Publish);
    const b = await sub.expect(PacketType.Publish);
    await sub.expectNothing(); // window of 2 is full
    sub.send({ type: PacketType.Puback, packetId: a.packetId as number });
    const c = await sub.expect(PacketType.Publish);
    await sub.expectNothing();
    sub.send({ type: PacketType.Puback, packetId: b.packetId as number });
    sub.send({ type: PacketType.Puback, packetId: c.packetId as number });
    const d = await sub.expect(PacketType.Publish);
    const e = await sub.expect(PacketType.Publish);
    assert.deepEqual([a, b, c, d, e].map((p) => p.payload.toString()), ['m0', 'm1', 'm2', 'm3', 'm4']);
    await broker.closeConnections();
  });

  test('a full session queue drops QoS 0 first and counts every drop', async () => {
    const broker = new BrokerCore({ maxInflight: 1, maxQueuedMessages: 3 });
    const dropped: string[] = [];
    broker.on('messageDropped', (_id, topic) => dropped.push(topic));
    const sub = (await TestClient.connect(broker, { clientId: 'q' })).client;
    await sub.subscribe('q/#', 1);
    await broker.publish({ topic: 'q/held', payload: 'x', qos: 1 }); // in flight
    await broker.publish({ topic: 'q/a', payload: 'x', qos: 1 }); // queued
    await broker.publish({ topic: 'q/zero', payload: 'x', qos: 0 }); // queued behind QoS 1
    await broker.publish({ topic: 'q/b', payload: 'x', qos: 1 }); // queued: queue full
    await broker.publish({ topic: 'q/c', payload: 'x', qos: 1 }); // full: the QoS 0 message goes
    await broker.publish({ topic: 'q/d', payload: 'x', qos: 1 }); // full, no QoS 0 left: q/d goes
    assert.deepEqual(dropped, ['q/zero', 'q/d']);
    assert.equal(broker.stats.messagesDropped, 2);
    const held = await sub.expect(PacketType.Publish);
    sub.send({ type: PacketType.Puback, packetId: held.packetId as number });
    const order: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = await sub.expect(PacketType.Publish);
      order.push(p.topic);
      sub.send({ type: PacketType.Puback, packetId: p.packetId as number });
    }
    assert.deepEqual(order, ['q/a', 'q/b', 'q/c']);
    await broker.closeConnections();
  });

  test('a subscriber that stops reading does not stall others, and its queue stays bounded', async () => {
    const broker = new BrokerCore({ maxQueuedMessages: 50 });
    const slow = (await TestClient.connect(broker, { clientId: 'slow' })).client;
    const fast = (await TestClient.connect(broker, { clientId: 'fast' })).client;
    await slow.subscribe('burst', 0);
    await fast.subscribe('burst', 0);
    slow.stream.pause();
    const payload = Buffer.alloc(1024, 1);
    const total = 2000;
    let received = 0;
    for (let i = 0; i < total; i++) {
      await broker.publish({ topic: 'burst', payload });
      // Read what the fast subscriber got so far, so its socket never fills.
      while (received <= i) {
        const p = await fast.expect(PacketType.Publish);
        assert.equal(p.payload.length, 1024);
        received++;
      }
    }
    assert.equal(received, total);
    assert.ok(broker.stats.messagesDropped > 0, 'the slow subscriber lost messages instead of growing memory');
    assert.ok(broker.stats.messagesDropped <= total);
    await broker.closeConnections();
  });

  test('a client that floods QoS 1 without reading its PUBACKs is read no faster than it reads', async () => {
    const broker = new BrokerCore();
    const c = (await TestClient.connect(broker, { clientId: 'flood' })).client;
    c.stream.pause(); // never reads its acknowledgements
    const total = 20_000;
    const payload = Buffer.alloc(16);
    for (let i = 0; i < total; i++) {
      c.send({ type: PacketType.Publish, topic: 'flood', payload, qos: 1, retain: false, dup: false, packetId: (i % 65535) + 1 });
    }
    // Wait until the broker stops taking messages in (bounded: 50 polls of 20 ms).
    let last = -1;
    for (let i = 0; i < 50 && broker.stats.messagesReceived !== last; i++) {
      last = broker.stats.messagesReceived;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(broker.stats.messagesReceived < total, `the broker read ${broker.stats.messagesReceived} of ${total} while its replies were not read`);
    // Once the client reads, everything is acknowledged: nothing was lost, only delayed.
    c.stream.resume();
    for (let i = 0; i < total; i++) await c.expect(PacketType.Puback, 5000);
    assert.equal(broker.stats.messagesReceived, total);
    await broker.closeConnections();
  });

  test('3.1.1 resend: unacknowledged messages are resent with DUP on the retry interval (one timer wheel)', async () => {
    const clock = new ManualClock(0);
    const broker = new BrokerCore({ clock, retryInterval: 5 });
    const sub = (await TestClient.connect(broker, { clientId: 'retry' })).client;
    await sub.subscribe('r', 1);
    await broker.publish({ topic: 'r', payload: 'again', qos: 1 });
    const first = await sub.expect(PacketType.Publish);
    assert.equal(first.dup, false);
    clock.advance(5_100);
    const second = await sub.expect(PacketType.Publish);
    assert.equal(second.dup, true);
    assert.equal(second.packetId, first.packetId);
    sub.send({ type: PacketType.Puback, packetId: first.packetId as number });
    clock.advance(5_100);
    // Proving an absence: give the broker's 100 ms tick several chances to (wrongly) resend.
    await new Promise((resolve) => setTimeout(resolve, 350));
    await sub.expectNothing();
    await broker.closeConnections();
  });
});
