/**
 * The 3.1 / 3.1.1 resend timer: each unacknowledged QoS 1/2 message is resent with DUP
 * retryInterval after it was sent, to the timer wheel's 100 ms tick, not up to twice that.
 * Time is a ManualClock and the wheel is driven by a ManualTicker: every assertion is on clock values.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { PacketType } from '../../src/protocol/index.js';
import { ManualClock, ManualTicker } from '../../src/session/clock.js';
import { TestClient } from '../helpers/duplex-client.js';

const TICK = 100;
const RETRY_S = 5;

/** Advances the clock one tick at a time up to `until` (a multiple of TICK), ticking the wheel at each step. */
function runUntil(clock: ManualClock, ticker: ManualTicker, until: number): void {
  for (let i = 0; i < 10_000 && clock.now() < until; i++) {
    clock.advance(Math.min(TICK, until - clock.now()));
    ticker.tick();
  }
}

/** Ticks until the client has a packet waiting (the resend) and returns the clock at that tick; bounded. */
async function tickUntilResent(clock: ManualClock, ticker: ManualTicker, sub: TestClient, limit: number): Promise<number> {
  for (let i = 0; i < 1000 && clock.now() < limit; i++) {
    // The ticks keep their 100 ms grid (as a real interval does), whenever the message went out.
    clock.advance(TICK - (clock.now() % TICK));
    ticker.tick();
    // Writes are flushed after this turn: a PINGREQ answered first proves nothing was sent at this tick.
    sub.send({ type: PacketType.Pingreq });
    const p = await sub.next();
    if (p.type === PacketType.Publish) {
      assert.equal((await sub.next()).type, PacketType.Pingresp, 'one message resent at this tick, not more');
      assert.equal(p.dup, true);
      return clock.now();
    }
    assert.equal(p.type, PacketType.Pingresp);
  }
  return assert.fail(`no resend by clock ${limit}`);
}

describe('3.1.1 resend timing [MQTT-4.4.0-1]', () => {
  test('a message sent just after a timer check is resent retryInterval after it was sent, each time', async () => {
    const clock = new ManualClock(0);
    const ticker = new ManualTicker();
    const broker = new BrokerCore({ clock, ticker, retryInterval: RETRY_S, connectTimeout: 0 });
    const sub = (await TestClient.connect(broker, { clientId: 'retry-timing' })).client;
    await sub.subscribe('r', 1);
    // The session's timer runs at 5000 with nothing in flight; the message goes out just after.
    runUntil(clock, ticker, 5000);
    clock.advance(50);
    const sentAt = clock.now();
    await broker.publish({ topic: 'r', payload: 'late', qos: 1 });
    const first = await sub.expect(PacketType.Publish);
    assert.equal(first.dup, false);
    const resentAt = await tickUntilResent(clock, ticker, sub, sentAt + 3 * RETRY_S * 1000);
    assert.ok(resentAt >= sentAt + RETRY_S * 1000, `resent at ${resentAt}, before the interval`);
    assert.ok(resentAt <= sentAt + RETRY_S * 1000 + TICK, `resent at ${resentAt}, ${resentAt - sentAt} ms after sending`);
    // And again one interval after the resend.
    const again = await tickUntilResent(clock, ticker, sub, resentAt + 3 * RETRY_S * 1000);
    assert.ok(again >= resentAt + RETRY_S * 1000 && again <= resentAt + RETRY_S * 1000 + TICK, `second resend ${again - resentAt} ms after the first`);
    sub.send({ type: PacketType.Puback, packetId: first.packetId as number });
    await sub.expectNothing(); // the PINGREQ behind the PUBACK is answered: the PUBACK was handled
    // Acknowledged: two more intervals of ticks resend nothing.
    runUntil(clock, ticker, again + 2 * RETRY_S * 1000);
    await sub.expectNothing();
    await broker.closeConnections();
  });

  test('messages sent at different times are each resent on their own schedule', async () => {
    const clock = new ManualClock(0);
    const ticker = new ManualTicker();
    const broker = new BrokerCore({ clock, ticker, retryInterval: RETRY_S, connectTimeout: 0 });
    const sub = (await TestClient.connect(broker, { clientId: 'two' })).client;
    await sub.subscribe('r', 1);
    runUntil(clock, ticker, 1000);
    await broker.publish({ topic: 'r', payload: 'a', qos: 1 });
    const a = await sub.expect(PacketType.Publish);
    runUntil(clock, ticker, 3000);
    await broker.publish({ topic: 'r', payload: 'b', qos: 1 });
    const b = await sub.expect(PacketType.Publish);
    const aAgain = await tickUntilResent(clock, ticker, sub, 20_000);
    assert.ok(aAgain >= 6000 && aAgain <= 6100, `a resent at ${aAgain}`);
    sub.send({ type: PacketType.Puback, packetId: a.packetId as number });
    const bAgain = await tickUntilResent(clock, ticker, sub, 20_000);
    assert.ok(bAgain >= 8000 && bAgain <= 8100, `b resent at ${bAgain}`);
    sub.send({ type: PacketType.Puback, packetId: b.packetId as number });
    await broker.closeConnections();
  });
});
