/**
 * decodeWhole: the stateless path a connection takes while its input ends on packet boundaries
 * (it needs a Decoder only for a packet that spans chunks).
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { decodeWhole, encode, type Packet, PacketType } from '../../../src/protocol/index.js';

const collect = (): { packets: Packet[]; sink: (this: Packet[], p: Packet) => void } => {
  const packets: Packet[] = [];
  return { packets, sink(this: Packet[], p: Packet) { this.push(p); } };
};

describe('decodeWhole', () => {
  test('decodes every whole packet and returns where the incomplete tail starts', () => {
    const ping = encode({ type: PacketType.Pingreq }, 4);
    const pub = encode({ type: PacketType.Publish, topic: 't', payload: Buffer.from('hello'), qos: 0, retain: false, dup: false }, 4);
    const buf = Buffer.concat([ping, pub, pub.subarray(0, 3)]);
    const { packets, sink } = collect();
    assert.equal(decodeWhole(buf, 4, 1024, sink, packets), ping.length + pub.length);
    assert.deepEqual(packets.map((p) => p.type), [PacketType.Pingreq, PacketType.Publish]);
    assert.equal(decodeWhole(Buffer.concat([ping, ping]), 4, 1024, sink, packets), 2 * ping.length);
  });

  test('a CONNECT sets the protocol level for the packets after it in the same buffer, and in `level`', () => {
    const connect = encode({ type: PacketType.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: 'c', clean: true, keepalive: 0 }, 5);
    const pub = encode({ type: PacketType.Publish, topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false, properties: { contentType: 'a' } }, 5);
    const { packets, sink } = collect();
    const level = { protocolVersion: 0 };
    assert.equal(decodeWhole(Buffer.concat([connect, pub]), 0, 1024, sink, packets, level), connect.length + pub.length);
    assert.equal(level.protocolVersion, 5);
    const p = packets[1];
    assert.ok(p?.type === PacketType.Publish);
    assert.equal(p.properties?.contentType, 'a', 'decoded as 5.0');
  });

  test('the size limit applies from the fixed header, before the body is there', () => {
    const pub = encode({ type: PacketType.Publish, topic: 't', payload: Buffer.alloc(100), qos: 0, retain: false, dup: false }, 4);
    const { packets, sink } = collect();
    assert.throws(() => decodeWhole(pub.subarray(0, 4), 4, 50, sink, packets), (e: Error) => /too large|larger/i.test(e.message) || e.name.includes('TooLarge'));
  });
});
