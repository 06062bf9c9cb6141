/**
 * Keep alive with slow readers: a client that sends PINGREQ (or anything) within its keep alive
 * is never disconnected for keep alive, however far behind its reading is, while a client that
 * floods without reading still cannot grow the broker's buffers.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { PacketType, ReasonCode } from '../../src/protocol/index.js';
import { ManualClock } from '../../src/session/clock.js';
import { TestClient, waitClosed, within } from '../helpers/duplex-client.js';

const KiB = Buffer.alloc(1024, 0x61);

describe('keep alive with slow readers', () => {
  for (const version of [4, 5] as const) {
    const id = version === 5 ? '[MQTT-3.1.2-22]' : '[MQTT-3.1.2-24]';
    test(`${id} v${version}: a subscriber that pings in time but does not read is kept while a publisher floods it`, async () => {
      const clock = new ManualClock(0);
      const broker = new BrokerCore({ clock });
      const { client: sub } = await TestClient.connect(broker, { clientId: 'slow', version, keepalive: 2 });
      assert.deepEqual(await sub.subscribe('flood', 0), [0]);
      const { client: pub } = await TestClient.connect(broker, { clientId: 'pub', version, keepalive: 0 });
      sub.stream.pause(); // the subscriber stops reading
      // Far more than the stream buffers hold: the broker's writes to the subscriber back up.
      for (let i = 0; i < 400; i++) pub.publish('flood', KiB, 0);
      await pub.expectNothing();
      // A control client with the same keep alive that stays silent: its closing shows that the
      // broker's keep alive check ran after each clock step.
      for (let step = 0; step < 3; step++) {
        const { client: control } = await TestClient.connect(broker, { clientId: `control-${step}`, version: 4, keepalive: 2 });
        for (let t = 0; t < 3; t++) {
          clock.advance(1000);
          sub.send({ type: PacketType.Pingreq });
          await pub.expectNothing(); // the broker has read and handled what came before
        }
        await waitClosed(control);
        assert.equal(sub.ended, false, `subscriber closed at step ${step}`);
      }
      // The subscriber catches up: every ping was answered, in between the flood.
      sub.stream.resume();
      let pongs = 0;
      for (let i = 0; i < 2000 && pongs < 9; i++) if ((await sub.next()).type === PacketType.Pingresp) pongs++;
      assert.equal(pongs, 9);
      assert.equal(sub.ended, false);
      await broker.closeConnections();
    });
  }

  test('a client that publishes QoS 1 without reading its PUBACKs is stopped being read; nothing is lost once it reads', async () => {
    const broker = new BrokerCore();
    let published = 0;
    broker.on('published', () => published++);
    const { client } = await TestClient.connect(broker, { clientId: 'flooder', version: 4 });
    client.stream.pause(); // never reads its acknowledgements
    const total = 60_000;
    const payload = KiB.subarray(0, 64);
    let sent = 0;
    let stalled = false;
    while (sent < total) {
      client.publish('t', payload, 1, (sent % 65535) + 1);
      sent++;
      if (client.stream.writableNeedDrain) {
        // Wait for the broker to take more; if it does not within a second, it stopped reading.
        const drained = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 1000);
          client.stream.once('drain', () => {
            clearTimeout(timer);
            resolve(true);
          });
        });
        if (!drained) {
          stalled = true;
          break;
        }
      }
    }
    assert.equal(stalled, true, 'the broker kept reading a client that never reads');
    // Bounded: one 64 KB batch of PUBACKs (16,384) fills the client's buffer, then 256 KB of held packets.
    assert.ok(published < 30_000, `${published} messages were taken from a client that does not read`);
    // Once it reads, everything it sent is handled and acknowledged.
    client.stream.resume();
    for (let i = sent; i < total; i++) client.publish('t', payload, 1, (i % 65535) + 1);
    let acks = 0;
    for (let i = 0; i < total + 10 && acks < total; i++) if ((await client.next(10_000)).type === PacketType.Puback) acks++;
    assert.equal(acks, total);
    assert.equal(published, total);
    await broker.closeConnections();
  });

  test('a silent client is still timed out while a flood to it is pending [MQTT-3.1.2-24]', async () => {
    const clock = new ManualClock(0);
    const broker = new BrokerCore({ clock });
    const { client: sub } = await TestClient.connect(broker, { clientId: 'gone', version: 5, keepalive: 2 });
    assert.deepEqual(await sub.subscribe('flood', 0), [0]);
    const { client: pub } = await TestClient.connect(broker, { clientId: 'pub2', version: 4 });
    sub.stream.pause();
    for (let i = 0; i < 400; i++) pub.publish('flood', KiB, 0);
    await pub.expectNothing();
    clock.advance(3_100);
    sub.stream.resume();
    let last = await sub.next();
    for (let i = 0; i < 1000 && last.type !== PacketType.Disconnect; i++) last = await sub.next();
    assert.equal(last.type, PacketType.Disconnect);
    assert.equal(last.type === PacketType.Disconnect ? last.reasonCode : -1, ReasonCode.KeepAliveTimeout);
    await within(sub.closed);
    await broker.closeConnections();
  });
});
