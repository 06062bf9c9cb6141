/**
 * Large PUBLISHes are not copied per receiver: every receiver's write carries its own fixed
 * header and packet identifier, and the rest (properties and payload) as a view of bytes shared
 * by all receivers. Deliveries still decode exactly, in order, with their own packet identifiers,
 * for 3.1.1 and for 5.0 receivers with topic aliases and a Message Expiry Interval.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { type Packet, PacketType } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/duplex-client.js';

const MiB = 1024 * 1024;
type Publish = Extract<Packet, { type: typeof PacketType.Publish }>;

test('a 1 MiB QoS 1 message to 120 receivers is held once, not once per receiver; every delivery decodes exactly', async () => {
  const broker = new BrokerCore({ maxPacketSize: 4 * MiB });
  try {
    const receivers: { client: TestClient; qos: 0 | 1 }[] = [];
    for (let i = 0; i < 120; i++) {
      const v5 = i % 3 === 1;
      const qos = i % 3 === 2 ? 0 : 1;
      const { client } = await TestClient.connect(broker, {
        clientId: `big${i}`, version: v5 ? 5 : 4, ...(v5 ? { properties: { topicAliasMaximum: 10 } } : {}),
      });
      await client.subscribe('big/t', qos);
      client.raw.length = 0;
      receivers.push({ client, qos });
    }
    const { client: pub } = await TestClient.connect(broker, { clientId: 'big-pub', version: 5 });
    const big = Buffer.alloc(MiB);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
    // Small, large, small in one chunk: the large one sits between copied runs in every write.
    const props = { messageExpiryInterval: 600 };
    pub.stream.write(Buffer.concat([
      encodePublish(pub, 'big/t', Buffer.from('before'), 1, props),
      encodePublish(pub, 'big/t', big, 2, props),
      encodePublish(pub, 'big/t', Buffer.from('after'), 3, props),
    ]));
    for (let i = 1; i <= 3; i++) assert.equal((await pub.expect(PacketType.Puback)).packetId, i);
    for (const { client, qos } of receivers) {
      const got: Publish[] = [];
      for (let i = 0; i < 3; i++) got.push(await client.expect(PacketType.Publish));
      assert.deepEqual(got.map((p) => p.payload.length), [6, MiB, 5]);
      assert.equal(got[0]?.payload.toString(), 'before');
      assert.ok((got[1] as Publish).payload.equals(big), 'the large payload arrives intact');
      assert.equal(got[2]?.payload.toString(), 'after');
      if (qos === 1) {
        assert.equal(new Set(got.map((p) => p.packetId)).size, 3, 'each delivery has its own packet identifier');
        for (const p of got) client.send({ type: PacketType.Puback, packetId: p.packetId as number });
      }
      if (client.version === 5) {
        const expiry = (got[1] as Publish).properties?.messageExpiryInterval;
        assert.ok(expiry !== undefined && expiry > 0 && expiry <= 600, '5.0: the remaining expiry');
      }
    }
    // The large bytes the receivers were handed: a few shared encodings, not one copy each.
    const backing = new Set<ArrayBufferLike>();
    let largeChunks = 0;
    for (const { client } of receivers) {
      for (const chunk of client.raw) {
        if (chunk.length >= MiB / 2) {
          largeChunks++;
          backing.add(chunk.buffer);
        }
      }
    }
    assert.equal(largeChunks, receivers.length);
    assert.ok(backing.size <= 4, `${backing.size} distinct buffers behind ${largeChunks} large writes`);
    await receivers[0]?.client.expectNothing();
  } finally {
    await broker.closeConnections();
  }
});

function encodePublish(c: TestClient, topic: string, payload: Buffer, packetId: number, properties: Record<string, number>): Buffer {
  const chunks: Buffer[] = [];
  const original = c.stream.write.bind(c.stream);
  // TestClient.publish writes at once; capture its bytes to send the three in one chunk.
  (c.stream as unknown as { write: (b: Buffer) => boolean }).write = (b: Buffer) => {
    chunks.push(b);
    return true;
  };
  try {
    c.publish(topic, payload, 1, packetId, false, properties);
  } finally {
    (c.stream as unknown as { write: typeof original }).write = original;
  }
  return Buffer.concat(chunks);
}
