/**
 * Flow isolation: a subscriber that stops reading must not slow down or starve the others, and
 * what the broker holds for it stays bounded (drops are counted).
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { PacketType, ReasonCode } from '../../src/protocol/index.js';
import { connectClient, endAll, Inbox, RawClient, startBroker, type Version, versionName, waitFor } from '../helpers/mqttjs.js';

const TOTAL = 20_000;
const BATCH = 50;
const MAX_QUEUED = 100;

for (const v of [4, 5] as const satisfies readonly Version[]) {
  test(`${versionName(v)}: a subscriber that stops reading does not hold back another; its queue stays bounded and drops are counted`, async (t) => {
    const { broker, url, port } = await startBroker({ maxQueuedMessages: MAX_QUEUED });
    const clients: MqttClient[] = [];
    const raw = await RawClient.connect(port, v);
    t.after(async () => {
      raw.destroy();
      await endAll(clients);
      await broker.close();
    });
    const drops = new Map<string, number>();
    const reasons = new Set<string>();
    broker.on('messageDropped', (clientId, _topic, reason) => {
      reasons.add(reason);
      drops.set(clientId, (drops.get(clientId) ?? 0) + 1);
    });

    // The stalled subscriber: connects, subscribes at QoS 0, then stops reading its socket.
    raw.sendConnect({ clientId: `stalled-${v}` });
    assert.equal((await raw.take(PacketType.Connack)).reasonCode, ReasonCode.Success);
    raw.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'burst/#', qos: 0 }] });
    assert.deepEqual((await raw.take(PacketType.Suback)).reasonCodes, [0]);
    raw.socket.pause();

    const healthy = await connectClient(url, v, { clientId: `healthy-${v}` });
    clients.push(healthy);
    const inbox = new Inbox(healthy);
    await healthy.subscribeAsync('burst/#', { qos: 0 });

    // 20,000 × 1 KB, published by the broker in batches; the next batch goes out once the healthy
    // subscriber has everything so far, so only the stalled one can fall behind.
    const payload = Buffer.alloc(1024, 0x61);
    for (let sent = 0; sent < TOTAL;) {
      for (let i = 0; i < BATCH; i++, sent++) await broker.publish({ topic: 'burst/data', payload, qos: 0 });
      const expected = sent;
      await inbox.until((m) => m.length >= expected, `${expected} messages at the healthy subscriber`);
    }
    assert.equal(inbox.messages.length, TOTAL, 'the healthy subscriber received every message');
    assert.ok(inbox.messages.every((m) => m.payload.length === 1024));

    // The stalled subscriber's backlog was capped: the broker dropped (and counted) the excess.
    t.diagnostic(`dropped for the stalled subscriber: ${broker.stats.messagesDropped} of ${TOTAL}`);
    assert.ok(broker.stats.messagesDropped > 0, 'drops are counted');
    assert.equal(drops.get(`healthy-${v}`), undefined, 'nothing was dropped for the healthy subscriber');
    // Every drop is the stalled subscriber's, for a full queue (at most MAX_QUEUED wait; what the
    // socket buffers absorbed before it stopped accepting bytes was written, the rest dropped).
    assert.equal(drops.get(`stalled-${v}`), broker.stats.messagesDropped);
    // Full queue; once the stalled subscriber made no progress for slowSubscriberTimeout, 'slow-subscriber'.
    assert.deepEqual([...reasons].filter((r) => r !== 'queue-full' && r !== 'slow-subscriber'), []);

    // The stalled client is still connected (slow is not a protocol error), and the broker stays responsive.
    assert.equal(raw.socket.destroyed, false);
    assert.deepEqual(broker.clients().map((c) => c.clientId).sort(), [`healthy-${v}`, `stalled-${v}`]);
    const suback = waitFor(healthy, 'packetreceive', undefined, (p) => p.cmd === 'suback');
    await healthy.subscribeAsync('after/burst', { qos: 1 });
    await suback;
  });
}
