/**
 * The packets of one read share one clock reading (BrokerState.now): a chunk of many PUBLISHes
 * reads the clock as often as a chunk of one, so what they start (a Message Expiry Interval
 * [MQTT-3.3.2-5], a delivery's send time) starts at the instant the chunk was read.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../../src/broker/broker.js';
import { resolveOptions } from '../../../src/broker/options.js';
import { BrokerState } from '../../../src/broker/state.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { encode, PacketType } from '../../../src/protocol/index.js';
import { type Clock, ManualTicker } from '../../../src/session/clock.js';
import { TestClient } from '../../helpers/duplex-client.js';

/** A clock that moves 1 ms every time it is read, and counts the readings. */
class CountingClock implements Clock {
  reads = 0;
  now(): number {
    return ++this.reads;
  }
}

function publishes(count: number, first: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    out.push(encode({
      type: PacketType.Publish, topic: 'rc/t', payload: Buffer.from(`m${i}`), qos: 1, retain: false, dup: false, packetId: first + i,
    }, 4));
  }
  return Buffer.concat(out);
}

describe('one clock reading per read', () => {
  test('a chunk of 50 QoS 1 PUBLISHes routed to a subscriber reads the clock as often as a chunk of one', async () => {
    const clock = new CountingClock();
    const broker = new BrokerCore({ clock, ticker: new ManualTicker() });
    const sub = (await TestClient.connect(broker, { clientId: 'rc-sub' })).client;
    await sub.subscribe('rc/#', 0);
    const pub = (await TestClient.connect(broker, { clientId: 'rc-pub' })).client;

    const readings = async (count: number, first: number): Promise<number> => {
      const before = clock.reads;
      pub.sendRaw(publishes(count, first));
      for (let i = 0; i < count; i++) assert.equal((await pub.expect(PacketType.Puback)).packetId, first + i);
      for (let i = 0; i < count; i++) assert.equal((await sub.expect(PacketType.Publish)).payload.toString(), `m${i}`);
      return clock.reads - before;
    };
    const one = await readings(1, 1);
    const fifty = await readings(50, 100);
    assert.ok(one >= 1, 'the read itself reads the clock');
    assert.equal(fifty, one);
    await broker.closeConnections();
  });

  test('outside a read the clock itself is read; a read inside a read gives the outer reading back', () => {
    const clock = new CountingClock();
    const state = new BrokerState(resolveOptions({ clock, ticker: new ManualTicker() }, { logger: silentLogger, clock }), {});
    const a = state.now();
    assert.equal(state.now(), a + 1);
    const outer = state.readAt(100);
    assert.equal(state.now(), 100);
    assert.equal(state.now(), 100);
    const inner = state.readAt(200);
    assert.equal(state.now(), 200);
    state.readDone(inner);
    assert.equal(state.now(), 100);
    state.readDone(outer);
    const after = state.now();
    assert.ok(after > a + 1 && after < 100, `the clock again, got ${after}`);
    state.stop();
  });
});
