import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PacketIds } from '../../../src/client/packet-ids.js';

test('packet identifiers are never 0, wrap after 65535 and skip those in use [MQTT-2.2.1-3]', () => {
  const ids = new PacketIds();
  assert.equal(ids.take(), 1);
  assert.equal(ids.take(), 2);
  ids.release(1);
  // A freed identifier is reused only after the others.
  assert.equal(ids.take(), 3);
  for (let i = 4; i <= 65535; i++) ids.take();
  assert.equal(ids.inUse, 65534);
  assert.equal(ids.take(), 1);
  assert.throws(() => ids.take(), (e: unknown) => (e as { reasonCode?: number }).reasonCode === 0x82);
  ids.release(40000);
  assert.equal(ids.take(), 40000);
});
