/**
 * Hostile clients against one broker: valid CONNECTs followed by random packets (valid, server-only,
 * bit-flipped, truncated, split at random), many connections reusing a few client ids so takeovers
 * happen mid-stream. The broker must neither crash nor stall: a well-behaved pair of clients keeps
 * exchanging messages between batches. Bounded in count; a fixed seed.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { duplexPair, type Duplex } from 'node:stream';
import { test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { encode, PacketType, type Packet } from '../../src/protocol/index.js';
import { randomPacket, randomTopicName } from '../helpers/codec-gen.js';
import { Rng, subSeed } from '../helpers/codec-prng.js';
import { TestClient, within } from '../helpers/duplex-client.js';

const SEED = 20261122;
const CONNECTIONS = 1500;
const BATCH = 100;

function randomPublish(rng: Rng): Packet {
  const qos = rng.int(0, 2) as 0 | 1 | 2;
  return {
    type: PacketType.Publish, topic: rng.chance(0.2) ? 'shared/t' : randomTopicName(rng), payload: rng.bytes(rng.int(0, 40)),
    qos, retain: rng.chance(0.2), dup: false, ...(qos > 0 ? { packetId: rng.int(1, 4) } : {}),
  };
}

function hostileBytes(rng: Rng, version: 3 | 4 | 5): Buffer {
  const connect: Packet = {
    type: PacketType.Connect, protocolVersion: version, protocolName: version === 3 ? 'MQIsdp' : 'MQTT',
    clientId: `h${rng.int(0, 20)}`, clean: rng.bool(), keepalive: rng.int(0, 5),
    ...(version === 5 && rng.chance(0.3) ? { properties: { sessionExpiryInterval: rng.int(0, 30), receiveMaximum: rng.int(1, 5) } } : {}),
  };
  const parts: Buffer[] = [encode(connect, version)];
  const count = rng.int(1, 8);
  for (let i = 0; i < count; i++) {
    let bytes = encode(rng.chance(0.5) ? randomPublish(rng) : randomPacket(rng, version), version);
    if (rng.chance(0.3)) {
      bytes = Buffer.from(bytes);
      for (let f = rng.int(1, 3); f > 0; f--) {
        const at = rng.int(0, bytes.length - 1);
        bytes[at] = (bytes[at] as number) ^ (1 << rng.int(0, 7));
      }
    }
    if (rng.chance(0.1)) bytes = bytes.subarray(0, rng.int(0, bytes.length));
    parts.push(bytes);
  }
  if (rng.chance(0.1)) parts.push(rng.bytes(rng.int(1, 64)));
  return Buffer.concat(parts);
}

function attack(broker: BrokerCore, rng: Rng): Duplex {
  const [client, server] = duplexPair();
  broker.handle(server, 'fuzz');
  client.on('data', () => undefined);
  client.on('error', () => undefined);
  client.once('end', () => client.end());
  const version = rng.pick([3, 4, 5] as const);
  const bytes = hostileBytes(rng, version);
  let pos = 0;
  while (pos < bytes.length) {
    const n = rng.chance(0.5) ? bytes.length - pos : rng.int(1, bytes.length - pos);
    client.write(bytes.subarray(pos, pos + n));
    pos += n;
  }
  if (rng.chance(0.5)) client.end();
  return client;
}

test('hostile byte streams neither crash the broker nor stall other clients', async () => {
  const broker = new BrokerCore({ maxInflight: 5, maxQueuedMessages: 20 });
  const sub = (await TestClient.connect(broker, { clientId: 'control-sub' })).client;
  const pub = (await TestClient.connect(broker, { clientId: 'control-pub' })).client;
  const token = `control/${SEED}`;
  await sub.subscribe(token, 1);
  const streams: Duplex[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    streams.push(attack(broker, new Rng(subSeed(SEED, i))));
    if ((i + 1) % BATCH !== 0) continue;
    // Between batches the well-behaved pair still gets through.
    pub.publish(token, `batch-${i}`, 1, (i % 1000) + 1);
    await within(pub.expect(PacketType.Puback), 5000, `PUBACK after batch ${i}`);
    const got = await within(sub.expect(PacketType.Publish), 5000, `delivery after batch ${i}`);
    assert.equal(got.payload.toString(), `batch-${i}`);
    sub.send({ type: PacketType.Puback, packetId: got.packetId as number });
  }
  for (const s of streams) s.destroy();
  // The attack did reach the handlers: messages from hostile clients were accepted and routed.
  assert.ok(broker.stats.messagesReceived > CONNECTIONS / 2, `only ${broker.stats.messagesReceived} messages received`);
  assert.ok(broker.stats.connectionsAccepted >= CONNECTIONS + 2);
  process.stdout.write(`# hostile connections: ${CONNECTIONS}, messages accepted: ${broker.stats.messagesReceived}, routed: ${broker.stats.messagesRouted}\n`);
  await broker.closeConnections();
});
