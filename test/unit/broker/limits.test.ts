/**
 * The bounds of the limits' tables: source addresses per listener (maxConnectionRatePerSource)
 * and client ids (flapping) are capped; the oldest entries go first, stale ones with them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Connection } from '../../../src/broker/connection.js';
import { Limits, MAX_FLAP_IDS, MAX_SOURCES } from '../../../src/broker/limits.js';
import { resolveOptions } from '../../../src/broker/options.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { ReasonCode } from '../../../src/protocol/index.js';
import { ManualClock, ManualTicker } from '../../../src/session/clock.js';
import { TimerWheel } from '../../../src/session/timer-wheel.js';
import type { ListenerInfo } from '../../../src/transport/types.js';

function limits(o: Parameters<typeof resolveOptions>[0] = {}): { l: Limits; clock: ManualClock } {
  const clock = new ManualClock(0);
  const options = resolveOptions({ ticker: new ManualTicker(), ...o }, { logger: silentLogger, clock });
  return { l: new Limits(options, clock, new TimerWheel<unknown>(0, 100)), clock };
}

const listener: ListenerInfo = { name: 'l', type: 'tcp', host: '127.0.0.1', port: 1883, limits: { maxConnections: 0, maxConnectionRate: 0, maxConnectionRatePerSource: 1 } };
const from = (remoteAddress: string): Connection => ({ meta: { remoteAddress, remotePort: 1, listener } }) as unknown as Connection;

describe('Limits tables are bounded', () => {
  test(`per-source rate windows: at most ${MAX_SOURCES} addresses per listener, the oldest evicted`, () => {
    const { l, clock } = limits();
    for (let i = 0; i < MAX_SOURCES + 500; i++) assert.equal(l.connectRate(from(`10.0.${i >> 8}.${i & 255}`)), ReasonCode.Success);
    assert.equal(l.sourcesTracked('l'), MAX_SOURCES);
    // The newest addresses are still counted; the oldest were evicted.
    assert.equal(l.connectRate(from(`10.0.${(MAX_SOURCES + 499) >> 8}.${(MAX_SOURCES + 499) & 255}`)), ReasonCode.ConnectionRateExceeded);
    assert.equal(l.connectRate(from('10.0.0.0')), ReasonCode.Success);
    // A second later every window is over: one new address sweeps the stale ones out.
    clock.advance(1000);
    l.connectRate(from('192.0.2.1'));
    assert.ok(l.sourcesTracked('l') <= 2, `${l.sourcesTracked('l')} addresses tracked after their windows ended`);
  });

  test(`flapping: at most ${MAX_FLAP_IDS} client ids tracked`, () => {
    const { l, clock } = limits({ flapThreshold: 5, flapWindow: 10 });
    for (let i = 0; i < MAX_FLAP_IDS + 500; i++) assert.equal(l.mayConnect(`id-${i}`, undefined), true);
    assert.equal(l.flapsTracked, MAX_FLAP_IDS);
    clock.advance(10_000);
    l.mayConnect('late', undefined);
    assert.equal(l.flapsTracked, 1);
  });
});
