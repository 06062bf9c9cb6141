/**
 * The bench payload and loss accounting: a publisher stamps packet identifier, send time,
 * stream and sequence number into its pre-encoded PUBLISH (checked by decoding what it writes);
 * the tracker counts owed, lost (acknowledged, never received) and duplicate deliveries.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { BenchClient, type ClientSetup, type Stats } from '../../../src/bench/client.js';
import { Histogram } from '../../../src/bench/histogram.js';
import { HEADER_BYTES, LossTracker, readStamp, SeqSet, type Stamp, stampPayload, streamId } from '../../../src/bench/payload.js';
import { Decoder, PacketType, type Packet, type PublishPacket } from '../../../src/protocol/index.js';

function stats(): Stats {
  return { sent: 0, acked: 0, received: 0, connected: 0, failed: 0, errors: new Map(), latency: new Histogram(), connectTime: new Histogram() };
}

function setup(s: Stats, loss: LossTracker, version: 4 | 5): ClientSetup {
  return {
    target: { scheme: 'mqtt', host: '127.0.0.1', port: 1, path: '/mqtt' }, localAddress: undefined, version, clientId: 'p0',
    keepalive: 0, username: undefined, password: undefined, stats: s, loss, dirty: () => undefined, wake: () => undefined,
  };
}

/** A publisher whose writes go to a PassThrough, as if connected. */
function publisher(qos: 0 | 1 | 2, version: 4 | 5, window: number, loss: LossTracker, s: Stats): { client: BenchClient; written: () => Packet[] } {
  const client = new BenchClient(setup(s, loss, version), {
    topic: 'bench/t', qos, size: 40, publisher: 3, stream: streamId(loss.runTag, 3), window, limit: 1000,
  }, undefined);
  const out = new PassThrough();
  client.stream = out;
  client.ready = true;
  const decoder = new Decoder({ protocolVersion: version });
  return {
    client,
    written: () => {
      const packets: Packet[] = [];
      for (let chunk = out.read() as Buffer | null; chunk !== null; chunk = out.read() as Buffer | null) packets.push(...decoder.push(chunk));
      return packets;
    },
  };
}

describe('bench payload', () => {
  test('stamp and read back: send time, stream, sequence number', () => {
    const buf = Buffer.alloc(40);
    stampPayload(buf, 8, 1_700_000_000_123.456, streamId(0xabc, 77), 123456);
    const st: Stamp = { sentMs: 0, stream: 0, seq: 0 };
    assert.equal(readStamp(buf.subarray(8), st), true);
    assert.equal(st.sentMs, 1_700_000_000_123.456);
    assert.equal(st.stream >>> 20, 0xabc);
    assert.equal(st.stream & 0xfffff, 77);
    assert.equal(st.seq, 123456);
    assert.equal(readStamp(buf.subarray(0, HEADER_BYTES - 1), st), false);
  });

  for (const version of [4, 5] as const) {
    test(`a QoS 1 publisher (protocol ${version}) stamps its own packet identifiers and sequence numbers in one write, bounded by its window`, () => {
      const loss = new LossTracker(5);
      const s = stats();
      const { client, written } = publisher(1, version, 10, loss, s);
      assert.equal(client.pump(4, 1000.5), 4);
      assert.equal(client.pump(100, 2000.25), 6); // the window of 10 is full
      assert.equal(client.room(), 0);
      const packets = written() as PublishPacket[];
      assert.equal(packets.length, 10);
      const st: Stamp = { sentMs: 0, stream: 0, seq: 0 };
      packets.forEach((p, i) => {
        assert.equal(p.type, PacketType.Publish);
        assert.equal(p.topic, 'bench/t');
        assert.equal(p.qos, 1);
        assert.equal(p.dup, false);
        assert.equal(p.packetId, i + 1);
        assert.equal(p.payload.length, 40);
        assert.ok(readStamp(p.payload, st));
        assert.equal(st.seq, i);
        assert.equal(st.stream, streamId(5, 3));
        assert.equal(st.sentMs, i < 4 ? 1000.5 : 2000.25);
      });
      assert.equal(s.sent, 10);
      assert.equal(s.acked, 0);
      // PUBACK of id 2 (sequence 1) opens one slot and counts as acknowledged; an unknown id is an error.
      client.handle({ type: PacketType.Puback, packetId: 2 });
      client.handle({ type: PacketType.Puback, packetId: 2 });
      assert.equal(s.acked, 1);
      assert.equal(s.errors.get('puback:unknown-id'), 1);
      assert.equal(client.room(), 1);
      // A refusal (5.0 reason code) is counted by code and not acknowledged.
      client.handle({ type: PacketType.Puback, packetId: 3, reasonCode: 0x87 });
      assert.equal(s.errors.get('puback:0x87'), 1);
      assert.equal(s.acked, 1);
      loss.expect(3, 0);
      assert.equal(loss.expected, 1);
      assert.equal(loss.lost, 1); // sequence 1 was acknowledged and nobody received it
    });
  }

  test('a QoS 0 publisher counts what it writes as owed; packet identifiers are not written', () => {
    const loss = new LossTracker(9);
    const s = stats();
    const { client, written } = publisher(0, 4, 1, loss, s);
    assert.equal(client.pump(300, 1), 300);
    const packets = written() as PublishPacket[];
    assert.equal(packets.length, 300);
    assert.equal(packets[0]?.packetId, undefined);
    loss.expect(3, 0);
    assert.equal(loss.expected, 300);
  });

  test('SeqSet: duplicates are refused, the set grows past its first words', () => {
    const set = new SeqSet();
    assert.equal(set.add(0), true);
    assert.equal(set.add(0), false);
    assert.equal(set.add(100_000), true);
    assert.equal(set.has(100_000), true);
    assert.equal(set.has(99_999), false);
    assert.equal(set.size, 2);
    const other = new SeqSet();
    other.add(100_000);
    assert.equal(set.missingFrom(other), 1);
    assert.equal(other.missingFrom(set), 0);
  });

  test('LossTracker: lost = acknowledged but never received, per owed subscriber; duplicates and other runs apart', () => {
    const loss = new LossTracker(0x123);
    loss.expect(0, 0); // publisher 0 → subscribers 0 and 1 (fan-out)
    loss.expect(0, 1);
    loss.expect(1, 1); // publisher 1 → subscriber 1
    for (let seq = 0; seq < 100; seq++) loss.acked(0, seq);
    for (let seq = 0; seq < 50; seq++) loss.acked(1, seq);
    assert.equal(loss.expected, 100 * 2 + 50);
    const mine0 = streamId(0x123, 0);
    const mine1 = streamId(0x123, 1);
    for (let seq = 0; seq < 100; seq++) if (seq !== 17) loss.received(0, mine0, seq); // subscriber 0 misses 17
    for (let seq = 0; seq < 100; seq++) loss.received(1, mine0, seq);
    loss.received(1, mine0, 5); // a duplicate
    loss.received(1, mine0, 5);
    for (let seq = 0; seq < 60; seq++) if (seq < 40 || seq >= 50) loss.received(1, mine1, seq); // 40..49 missing; 50..59 never acked
    assert.equal(loss.received(1, streamId(0x124, 0), 17), false); // another run's message
    assert.equal(loss.received(0, streamId(0x123, 9), 1), true); // a publisher of this run that owes nothing
    assert.equal(loss.unknown, 1);
    assert.equal(loss.duplicates, 2);
    assert.equal(loss.lost, 1 + 10);
    assert.equal(loss.unique, 99 + 100 + 50);
  });
});
