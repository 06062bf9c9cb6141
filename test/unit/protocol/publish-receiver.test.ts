/**
 * The per-receiver 5.0 PUBLISH writer (`publishTemplate` + `writePublishHeader`) against the
 * generic `encode()`: for random topics, payloads, forwarded properties and per-receiver parts
 * (QoS, DUP, RETAIN, packet identifier, topic or alias only, remaining expiry, 0..3
 * subscription identifiers) both must give the same bytes, with the length computed up front
 * exact, and the result must decode with Petrel's decoder and with mqtt-packet.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import {
  Decoder, encode, type Packet, PacketType, preparePublish, type Properties, publishHeaderLength, publishIdOffset,
  publishPropertiesLength, publishTemplate, type PublishPacket, type QoS, stampPublish, writePublishHeader,
} from '../../../src/protocol/index.js';
import { normalize, randomProperties, randomTopicName } from '../../helpers/codec-gen.js';
import { toHex } from '../../helpers/codec-hex.js';
import { fromMqttPacket, MqttPacketReader } from '../../helpers/codec-mqtt-packet.js';
import { Rng } from '../../helpers/codec-prng.js';

const SEED = 0x0a11a5;
const CASES = 5_000;

function randomPayload(rng: Rng): Buffer {
  const r = rng.next();
  if (r < 0.1) return Buffer.alloc(0);
  if (r < 0.97) return rng.bytes(rng.int(1, 300));
  return rng.bytes(rng.int(16_000, 20_000)); // a three-byte remaining length
}

interface Case {
  topic: string;
  payload: Buffer;
  /** The message's properties as published (may hold an expiry: the receiver's own replaces it). */
  messageProps: Properties | undefined;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  packetId: number;
  withTopic: boolean;
  alias: number;
  expiry: number;
  subIds: number[] | undefined;
}

function randomCase(rng: Rng): Case {
  const qos = rng.int(0, 2) as QoS;
  const alias = rng.chance(0.6) ? (rng.chance(0.2) ? rng.pick([1, 255, 256, 65535]) : rng.int(1, 10)) : 0;
  let messageProps = randomProperties(rng, PacketType.Publish, 0.4, true);
  if (messageProps !== undefined) {
    // The broker never keeps these on a message; the template must leave them out anyway.
    if (rng.chance(0.2)) messageProps = { ...messageProps, topicAlias: 7, subscriptionIdentifiers: [9] };
  }
  const nIds = rng.int(0, 3);
  return {
    topic: randomTopicName(rng),
    payload: randomPayload(rng),
    messageProps,
    qos,
    retain: rng.bool(),
    dup: qos > 0 && rng.bool(),
    packetId: qos > 0 ? (rng.chance(0.1) ? rng.pick([1, 255, 256, 65535]) : rng.int(1, 65535)) : 0,
    withTopic: alias === 0 || rng.bool(),
    alias,
    expiry: rng.chance(0.5) ? -1 : rng.pick([0, 1, 127, 0xffffffff, rng.u32()]),
    subIds: nIds === 0 ? undefined : Array.from({ length: nIds }, () => (rng.bool() ? rng.int(1, 127) : rng.int(1, 268_435_455))),
  };
}

/** The packet `c` describes, as the generic encoder takes it. */
function expectedPacket(c: Case): PublishPacket {
  const props: Properties = { ...c.messageProps, messageExpiryInterval: undefined, topicAlias: undefined, subscriptionIdentifiers: undefined };
  if (c.expiry >= 0) props.messageExpiryInterval = c.expiry;
  if (c.subIds !== undefined) props.subscriptionIdentifiers = c.subIds;
  if (c.alias > 0) props.topicAlias = c.alias;
  for (const k of Object.keys(props) as (keyof Properties)[]) if (props[k] === undefined) delete props[k];
  const p: PublishPacket = { type: PacketType.Publish, topic: c.withTopic ? c.topic : '', payload: c.payload, qos: c.qos, retain: c.retain, dup: c.dup };
  if (c.qos > 0) p.packetId = c.packetId;
  if (Object.keys(props).length > 0) p.properties = props;
  return p;
}

/** Writes `c` with the fast path at a random offset of a larger buffer; returns exactly the packet's bytes. */
function fastEncode(c: Case, rng: Rng): Buffer {
  const t = publishTemplate(c.topic, c.messageProps);
  const propsLen = publishPropertiesLength(t, c.expiry, c.subIds, c.alias);
  const headerLen = publishHeaderLength(t, c.withTopic, c.qos, propsLen, c.payload.length);
  const at = rng.int(0, 16);
  const out = Buffer.alloc(at + headerLen + c.payload.length + 8, 0xee);
  const pos = writePublishHeader(out, at, t, c.withTopic, c.qos, c.retain, c.dup, c.packetId, c.payload.length, propsLen, c.expiry, c.subIds, c.alias);
  assert.equal(pos - at, headerLen, 'header length computed before writing is exact');
  c.payload.copy(out, pos);
  assert.equal(out[pos + c.payload.length], 0xee, 'nothing written past the packet');
  return out.subarray(at, pos + c.payload.length);
}

describe('per-receiver 5.0 PUBLISH writer', () => {
  it(`${CASES} random receivers: same bytes as encode(), decodable by Petrel and by mqtt-packet [MQTT-3.3.2-6] [MQTT-3.3.2-12] [MQTT-3.3.4-3]`, () => {
    const rng = new Rng(SEED);
    const reader = new MqttPacketReader(5);
    const seen = { alias: 0, emptyTopic: 0, expiry: 0, userProps: 0, correlation: 0, dup: 0 };
    const ids = [0, 0, 0, 0];
    const qos = [0, 0, 0];
    for (let i = 0; i < CASES; i++) {
      const c = randomCase(rng);
      const expected = expectedPacket(c);
      const want = encode(expected, 5);
      const got = fastEncode(c, rng);
      try {
        assert.equal(toHex(got), toHex(want));
        const decoded: Packet[] = new Decoder({ protocolVersion: 5 }).push(got);
        assert.equal(decoded.length, 1);
        assert.deepEqual(normalize(decoded[0] as Packet, 5), normalize(expected, 5));
        assert.deepEqual(normalize(fromMqttPacket(reader.parseOne(got), 5), 5), normalize(expected, 5));
      } catch (err) {
        throw new Error(`case #${i}: ${JSON.stringify({ ...c, payload: c.payload.length })}`, { cause: err });
      }
      if (c.alias > 0) seen.alias++;
      if (!c.withTopic) seen.emptyTopic++;
      if (c.expiry >= 0) seen.expiry++;
      ids[c.subIds?.length ?? 0] = (ids[c.subIds?.length ?? 0] as number) + 1;
      qos[c.qos] = (qos[c.qos] as number) + 1;
      if (c.messageProps?.userProperties !== undefined) seen.userProps++;
      if (c.messageProps?.correlationData !== undefined) seen.correlation++;
      if (c.dup) seen.dup++;
    }
    // Every combination the writer distinguishes came up many times.
    for (const n of [...Object.values(seen), ...ids, ...qos]) {
      assert.ok(n > 200, JSON.stringify({ seen, ids, qos }));
    }
  });

  it('a receiver encoding written with packet identifier 0 is stamped per receiver like any prepared PUBLISH', () => {
    const rng = new Rng(SEED + 1);
    for (let i = 0; i < 500; i++) {
      const c = { ...randomCase(rng), qos: rng.int(1, 2) as QoS };
      const t = publishTemplate(c.topic, c.messageProps);
      const propsLen = publishPropertiesLength(t, c.expiry, c.subIds, c.alias);
      const size = publishHeaderLength(t, c.withTopic, c.qos, propsLen, c.payload.length) + c.payload.length;
      const bytes = Buffer.allocUnsafe(size);
      c.payload.copy(bytes, writePublishHeader(bytes, 0, t, c.withTopic, c.qos, c.retain, false, 0, c.payload.length, propsLen, c.expiry, c.subIds, c.alias));
      const prepared = { bytes, qos: c.qos, idOffset: publishIdOffset(bytes) };
      const out = Buffer.alloc(size);
      stampPublish(prepared, out, 0, c.packetId, c.dup);
      assert.equal(toHex(out), toHex(encode({ ...expectedPacket(c), packetId: c.packetId, dup: c.dup }, 5)), `case #${i}`);
    }
  });

  it('publishIdOffset finds the packet identifier of any encoded PUBLISH (-1 for QoS 0)', () => {
    const rng = new Rng(SEED + 2);
    for (let i = 0; i < 500; i++) {
      const qos = rng.int(0, 2) as QoS;
      const version = rng.pick([4, 5] as const);
      const p: PublishPacket = { type: PacketType.Publish, topic: randomTopicName(rng), payload: randomPayload(rng), qos, retain: false, dup: false };
      if (version === 5) {
        const props = randomProperties(rng, PacketType.Publish, 0.4);
        if (props !== undefined) p.properties = props;
      }
      const prepared = preparePublish(p, version);
      if (qos === 0) {
        assert.equal(prepared.idOffset, -1);
        continue;
      }
      const id = rng.int(1, 65535);
      assert.equal(prepared.bytes.readUInt16BE(prepared.idOffset), 0);
      const stamped = Buffer.alloc(prepared.bytes.length);
      stampPublish(prepared, stamped, 0, id, false);
      assert.equal(toHex(stamped), toHex(encode({ ...p, packetId: id }, version)), `case #${i}`);
    }
  });
});
