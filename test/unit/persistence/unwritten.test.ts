/**
 * `unwritten` (broker/durability.ts): the ops of a held batch of deliveries, without the messages
 * whose every delivery in the batch was acknowledged in it too. Anything else that refers to such
 * a message (a queue entry, a retained topic, a PUBREL state, a delivery still open, a second
 * write of it) keeps all of its ops, and what stays keeps its order.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { unwritten } from '../../../src/broker/durability.js';
import type { StoreOp } from '../../../src/persistence/types.js';

const message = (id: string): StoreOp => ({
  op: 'message',
  message: { id, topic: `t/${id}`, payload: Buffer.from(id), qos: 1, retain: false, properties: undefined, expiresAt: undefined, senderId: 'p' },
});
const inflight = (clientId: string, packetId: number, messageId: string, state: 'publish' | 'pubrel' = 'publish'): StoreOp => ({
  op: 'inflight', entry: { clientId, seq: packetId, messageId, qos: 1, retain: false, subscriptionIds: undefined, packetId, state },
});
const complete = (clientId: string, packetId: number): StoreOp => ({ op: 'complete', clientId, packetId });
const enqueue = (clientId: string, seq: number, messageId: string): StoreOp => ({
  op: 'enqueue', entry: { clientId, seq, messageId, qos: 1, retain: false, subscriptionIds: undefined },
});

describe('unwritten: messages delivered and acknowledged within a held batch', () => {
  test('a message whose every delivery was acknowledged leaves with its deliveries; nothing is written', () => {
    const ops = [message('m'), inflight('a', 1, 'm'), inflight('b', 7, 'm'), complete('b', 7), complete('a', 1)];
    assert.deepEqual(unwritten(ops), []);
  });

  test('one delivery still open keeps every op of its message', () => {
    const ops = [message('m'), inflight('a', 1, 'm'), inflight('b', 7, 'm'), complete('a', 1)];
    assert.deepEqual(unwritten(ops), ops);
  });

  test('a queue entry or a retained topic keeps the message', () => {
    const queued = [message('m'), inflight('a', 1, 'm'), complete('a', 1), enqueue('off', 3, 'm')];
    assert.deepEqual(unwritten(queued), queued);
    const retained: StoreOp[] = [message('m'), inflight('a', 1, 'm'), complete('a', 1), { op: 'retain', topic: 't/m', messageId: 'm' }];
    assert.deepEqual(unwritten(retained), retained);
  });

  test('[MQTT-4.3.3-5] a PUBREL state keeps the message: its row may exist before the batch', () => {
    const ops = [message('m'), inflight('a', 1, 'm'), inflight('a', 1, 'm', 'pubrel'), complete('a', 1)];
    assert.deepEqual(unwritten(ops), ops);
  });

  test('deliveries of messages written before the batch stay, and so does a message written twice', () => {
    const earlier = [inflight('a', 1, 'old'), complete('a', 1), complete('c', 9)];
    assert.deepEqual(unwritten(earlier), earlier);
    const twice = [message('m'), inflight('a', 1, 'm'), complete('a', 1), message('m'), inflight('a', 2, 'm'), complete('a', 2)];
    assert.deepEqual(unwritten(twice), twice);
  });

  test('only the delivered messages go; the other ops keep their order, a packet id used again included', () => {
    const ops = [
      message('m1'), inflight('a', 1, 'm1'), message('m2'), inflight('a', 2, 'm2'), complete('a', 1),
      complete('z', 4), message('m3'), inflight('a', 1, 'm3'), complete('a', 1),
    ];
    // m1 and m3 were acknowledged (packet id 1 twice, each after the other's end); m2 is open.
    assert.deepEqual(unwritten(ops), [message('m2'), inflight('a', 2, 'm2'), complete('z', 4)]);
  });
});
