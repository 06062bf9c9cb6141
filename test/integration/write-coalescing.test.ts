/**
 * Busy-turn write coalescing (BrokerState's flush, Connection.coalesce): when one event-loop turn
 * writes to many connections, a connection with only deliveries pending may wait a few turns so
 * that its next deliveries share the write. Nothing may be lost, reordered or held without bound,
 * and acknowledgements a client waits for never wait.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { type Packet, PacketType } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/duplex-client.js';

/** More receivers than a busy turn's threshold (512 connections written in one turn). */
const RECEIVERS = 600;
const MESSAGES = 6;

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('write coalescing in busy turns', () => {
  test('every receiver gets every message once, in order, in fewer writes than messages [MQTT-4.6.0-6]', async () => {
    const broker = new BrokerCore({});
    const receivers: TestClient[] = [];
    try {
      for (let i = 0; i < RECEIVERS; i++) {
        const { client } = await TestClient.connect(broker, { clientId: `r${i}` });
        await client.subscribe('busy/t', 1);
        receivers.push(client);
      }
      const { client: pub } = await TestClient.connect(broker, { clientId: 'pub' });
      for (const r of receivers) r.raw.length = 0;
      // One QoS 1 message per turn; each PUBACK comes at once although the deliveries wait.
      for (let m = 1; m <= MESSAGES; m++) {
        pub.publish('busy/t', `m${m}`, 1, m);
        const ack = await pub.expect(PacketType.Puback);
        assert.equal(ack.packetId, m);
        await turn();
      }
      // Bounded: a write waits at most a few busy turns, so everything is out within a few more.
      let received = 0;
      for (let t = 0; t < 50 && received < RECEIVERS * MESSAGES; t++) {
        await turn();
        received = 0;
        for (const r of receivers) received += countPublishes(r);
      }
      assert.equal(received, RECEIVERS * MESSAGES);
      let writes = 0;
      for (const r of receivers) {
        const got: string[] = [];
        for (let i = 0; i < MESSAGES; i++) {
          const p = (await r.next()) as Extract<Packet, { type: typeof PacketType.Publish }>;
          assert.equal(p.type, PacketType.Publish);
          got.push(p.payload.toString());
          r.send({ type: PacketType.Puback, packetId: p.packetId as number });
        }
        assert.deepEqual(got, Array.from({ length: MESSAGES }, (_, i) => `m${i + 1}`));
        writes += r.raw.length;
      }
      // Six messages one turn apart reached each receiver in fewer writes than six.
      assert.ok(writes < RECEIVERS * MESSAGES, `${writes} writes for ${RECEIVERS * MESSAGES} deliveries`);
      await receivers[0]?.expectNothing();
    } finally {
      await broker.closeConnections();
    }
  });

  test('a quiet turn writes at once: a message to a few receivers arrives in the turn it was routed', async () => {
    const broker = new BrokerCore({});
    try {
      const receivers: TestClient[] = [];
      for (let i = 0; i < 3; i++) {
        const { client } = await TestClient.connect(broker, { clientId: `q${i}` });
        await client.subscribe('quiet/t', 0);
        receivers.push(client);
      }
      const { client: pub } = await TestClient.connect(broker, { clientId: 'pub' });
      pub.publish('quiet/t', 'now', 0);
      for (let t = 0; t < 5 && receivers.some((r) => countPublishes(r) === 0); t++) await turn();
      for (const r of receivers) assert.equal(countPublishes(r), 1);
    } finally {
      await broker.closeConnections();
    }
  });
});

/** PUBLISH packets in what the client received so far (every chunk starts on a packet boundary here). */
function countPublishes(c: TestClient): number {
  let n = 0;
  for (const chunk of c.raw) {
    let pos = 0;
    while (pos < chunk.length) {
      const type = (chunk[pos] as number) >> 4;
      let len = 0;
      let mul = 1;
      let i = pos + 1;
      for (;;) {
        const b = chunk[i++] as number;
        len += (b & 0x7f) * mul;
        if ((b & 0x80) === 0) break;
        mul *= 128;
      }
      if (type === PacketType.Publish) n++;
      pos = i + len;
    }
  }
  return n;
}
