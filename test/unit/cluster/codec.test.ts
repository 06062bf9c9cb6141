/**
 * The cluster bus entry: a message with its shared-group picks, its id and target nodes, and the
 * sessions a passed-on copy is for, round trip; an entry of the older five-field header decodes
 * as a plain entry for every subscriber.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import { createMessage } from '../../../src/broker/message.js';
import { decodeBusMessage, encodeBusMessage, reencodeBusMessage } from '../../../src/cluster/codec.js';

const message = (now: number) => createMessage({
  topic: 'jobs/print', payload: Buffer.from([0, 1, 2, 0x3a, 255]), qos: 1, retain: true,
  properties: { messageExpiryInterval: 60, userProperties: [['k', 'v']] }, senderId: 'pub-1', now,
});

describe('cluster bus codec', () => {
  it('a plain entry: topic, payload bytes, QoS, retain, properties, sender, id and target nodes', () => {
    const m = decodeBusMessage(encodeBusMessage(message(0), 0, 'a.x.1', ['b', 'c']));
    assert.equal(m.topic, 'jobs/print');
    assert.deepEqual([...m.payload], [0, 1, 2, 0x3a, 255]);
    assert.equal(m.qos, 1);
    assert.equal(m.retain, true);
    assert.equal(m.senderId, 'pub-1');
    assert.deepEqual(m.properties?.userProperties, [['k', 'v']]);
    assert.equal(m.plain, true);
    assert.deepEqual(m.shared, []);
    assert.equal(m.id, 'a.x.1');
    assert.deepEqual(m.to, ['b', 'c']);
    assert.deepEqual(m.only, []);
    assert.equal(m.hops, 0);
  });

  it('[MQTT-3.3.2-6] the Message Expiry Interval on the bus is what remains of it', () => {
    const m = decodeBusMessage(encodeBusMessage(message(0), 20_500, 'a.x.2', ['b']));
    assert.equal(m.properties?.messageExpiryInterval, 40);
  });

  it('shared-group picks only (not plain), and a copy passed on for moved sessions keeps id and targets', () => {
    const picks = [{ group: 'g', filter: 'jobs/+', clientId: 'm 1' }, { group: 'h', filter: '#', clientId: 'm2' }];
    const m = decodeBusMessage(encodeBusMessage(message(0), 0, 'a.x.3', [], false, picks));
    assert.equal(m.plain, false);
    assert.deepEqual(m.shared, picks);
    const again = decodeBusMessage(reencodeBusMessage({ ...m, to: ['b'] }, [], 2, ['moved-1']));
    assert.equal(again.plain, false);
    assert.deepEqual(again.only, ['moved-1']);
    assert.equal(again.hops, 2);
    assert.equal(again.id, 'a.x.3');
    assert.deepEqual(again.to, ['b']);
    assert.deepEqual([...again.payload], [0, 1, 2, 0x3a, 255]);
  });

  it('an entry with the five-field header of an older node is plain, for every subscriber', () => {
    const header = Buffer.from(JSON.stringify(['t', 0, 0, null, null]));
    const m = decodeBusMessage(Buffer.concat([Buffer.from(`${header.length}:`), header, Buffer.from('x')]));
    assert.equal(m.plain, true);
    assert.deepEqual(m.shared, []);
    assert.equal(m.id, '');
    assert.deepEqual(m.to, []);
    assert.deepEqual(m.only, []);
    assert.equal(m.payload.toString(), 'x');
  });
});
