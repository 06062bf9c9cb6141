/**
 * Wire-level conformance: bytes in, exact bytes out, for protocol levels 4 and 5.
 * Each test resets the captured bytes after CONNACK and compares what the broker wrote next.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { PacketType } from '../../src/protocol/index.js';
import { TestClient, waitClosed } from '../helpers/duplex-client.js';

const hex = (s: string): number[] => s.trim().split(/\s+/).map((b) => parseInt(b, 16));

/** Bytes the broker wrote since the last call. */
function take(c: TestClient): number[] {
  const out = [...Buffer.concat(c.raw)];
  c.raw.length = 0;
  return out;
}

async function connected(broker: BrokerCore, clientId: string, version: 4 | 5, quiet = false): Promise<{ c: TestClient; connack: number[] }> {
  const properties = version === 5 && quiet ? { requestProblemInformation: false } : undefined;
  const { client } = await TestClient.connect(broker, { clientId, version, ...(properties ? { properties } : {}) });
  return { c: client, connack: take(client) };
}

/** Waits for one packet of `type`, then returns every byte received so far. */
async function bytesOf(c: TestClient, type: number): Promise<number[]> {
  await c.expect(type as typeof PacketType.Pingresp);
  return take(c);
}

describe('wire conformance, exact bytes', () => {
  test('[MQTT-3.2.2-1] CONNACK: 3.1.1 is 20 02 00 00; 5.0 adds Topic Alias Maximum and Maximum Packet Size', async () => {
    const broker = new BrokerCore();
    assert.deepEqual((await connected(broker, 'a4', 4)).connack, hex('20 02 00 00'));
    // 20 0b | flags 00 | reason 00 | props 08: 22 000a (Topic Alias Maximum 10), 27 00100000 (Maximum Packet Size 1 MiB)
    assert.deepEqual((await connected(broker, 'a5', 5)).connack, hex('20 0b 00 00 08 22 00 0a 27 00 10 00 00'));
    await broker.closeConnections();
  });

  test('[MQTT-3.8.4-1] SUBACK carries the granted QoS (5.0 with an empty property length)', async () => {
    const broker = new BrokerCore();
    const { c: c4 } = await connected(broker, 's4', 4);
    c4.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'a/b', qos: 1 }] });
    assert.deepEqual(await bytesOf(c4, PacketType.Suback), hex('90 03 00 01 01'));
    const { c: c5 } = await connected(broker, 's5', 5);
    c5.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'a/b', qos: 1 }] });
    assert.deepEqual(await bytesOf(c5, PacketType.Suback), hex('90 04 00 01 00 01'));
    await broker.closeConnections();
  });

  test('[MQTT-3.3.4-1] PUBACK: 40 02 id; 5.0 adds 0x10 when nobody subscribed', async () => {
    const broker = new BrokerCore();
    const { c: c4 } = await connected(broker, 'p4', 4);
    c4.publish('x', 'y', 1, 7);
    assert.deepEqual(await bytesOf(c4, PacketType.Puback), hex('40 02 00 07'));
    const { c: c5 } = await connected(broker, 'p5', 5);
    c5.publish('x', 'y', 1, 7);
    assert.deepEqual(await bytesOf(c5, PacketType.Puback), hex('40 03 00 07 10'));
    await broker.closeConnections();
  });

  test('[MQTT-3.3.1-9] a forwarded PUBLISH: RETAIN cleared, 5.0 with an empty property length', async () => {
    const broker = new BrokerCore();
    const { c: s4 } = await connected(broker, 'f4', 4);
    const { c: s5 } = await connected(broker, 'f5', 5);
    await s4.subscribe('a/b', 0);
    await s5.subscribe('a/b', 0);
    take(s4);
    take(s5);
    const { c: pub } = await connected(broker, 'fp', 4);
    pub.publish('a/b', 'hi', 0, undefined, true);
    assert.deepEqual(await bytesOf(s4, PacketType.Publish), hex('30 07 00 03 61 2f 62 68 69'));
    assert.deepEqual(await bytesOf(s5, PacketType.Publish), hex('30 08 00 03 61 2f 62 00 68 69'));
    await broker.closeConnections();
  });

  test('[MQTT-3.3.1-8] a retained message sent on subscribe has RETAIN set and the packet id stamped', async () => {
    const broker = new BrokerCore();
    await broker.publish({ topic: 't', payload: 'r', qos: 1, retain: true });
    const { c } = await connected(broker, 'rt', 4);
    c.send({ type: PacketType.Subscribe, packetId: 5, subscriptions: [{ topicFilter: 't', qos: 1 }] });
    await c.expect(PacketType.Suback);
    await c.expect(PacketType.Publish);
    // SUBACK 90 03 0005 01, then PUBLISH 33 (QoS 1, RETAIN) 06 | topic 0001 74 | id 0001 | 72
    assert.deepEqual(take(c), hex('90 03 00 05 01 33 06 00 01 74 00 01 72'));
    await broker.closeConnections();
  });

  test('[MQTT-3.12.4-1] PINGRESP is d0 00', async () => {
    const broker = new BrokerCore();
    for (const v of [4, 5] as const) {
      const { c } = await connected(broker, `ping${v}`, v);
      c.send({ type: PacketType.Pingreq });
      assert.deepEqual(await bytesOf(c, PacketType.Pingresp), hex('d0 00'));
    }
    await broker.closeConnections();
  });

  test('[MQTT-3.10.4-4] UNSUBACK: b0 02 id; 5.0 with one reason code per filter (0x11: no subscription existed)', async () => {
    const broker = new BrokerCore();
    const { c: c4 } = await connected(broker, 'u4', 4);
    c4.send({ type: PacketType.Unsubscribe, packetId: 2, topicFilters: ['x'] });
    assert.deepEqual(await bytesOf(c4, PacketType.Unsuback), hex('b0 02 00 02'));
    const { c: c5 } = await connected(broker, 'u5', 5);
    c5.send({ type: PacketType.Unsubscribe, packetId: 2, topicFilters: ['x'] });
    assert.deepEqual(await bytesOf(c5, PacketType.Unsuback), hex('b0 04 00 02 00 11'));
    await broker.closeConnections();
  });

  test('[MQTT-3.1.0-2] a second CONNECT: 3.1.1 closes without a reply; 5.0 sends DISCONNECT 0x82', async () => {
    const broker = new BrokerCore();
    const { c: c4 } = await connected(broker, 'twice4', 4);
    c4.send({ type: PacketType.Connect, protocolVersion: 4, protocolName: 'MQTT', clientId: 'twice4', clean: true, keepalive: 0 });
    await waitClosed(c4);
    assert.deepEqual(take(c4), []);
    const { c: c5 } = await connected(broker, 'twice5', 5, true);
    c5.send({ type: PacketType.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: 'twice5', clean: true, keepalive: 0 });
    await waitClosed(c5);
    assert.deepEqual(take(c5), hex('e0 01 82'));
    await broker.closeConnections();
  });

  // 0x90 is for a well-formed name the server refuses; a wildcard makes the packet malformed.
  test('[MQTT-3.3.2-2] a wildcard in a PUBLISH topic name: 5.0 DISCONNECT 0x81 (Malformed Packet)', async () => {
    const broker = new BrokerCore();
    const { c } = await connected(broker, 'wild', 5, true);
    // PUBLISH QoS 0, topic "a/+", empty property length, no payload
    c.sendRaw(hex('30 06 00 03 61 2f 2b 00'));
    await waitClosed(c);
    assert.deepEqual(take(c), hex('e0 01 81'));
    await broker.closeConnections();
  });

  test('[MQTT-2.2.2-2] reserved fixed-header flags: 5.0 DISCONNECT 0x81 (Malformed Packet)', async () => {
    const broker = new BrokerCore();
    const { c } = await connected(broker, 'flags', 5, true);
    c.sendRaw(hex('c1 00')); // PINGREQ with flags 0001
    await waitClosed(c);
    assert.deepEqual(take(c), hex('e0 01 81'));
    await broker.closeConnections();
  });
});
