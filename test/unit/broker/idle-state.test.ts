/**
 * The compact per-connection state of idle clients: the booleans of Connection and Session live
 * in one bit field each, the 5.0 alias tables in one object created on first use, and every
 * session that never queued shares one empty queue. Each accessor must behave as its own field.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import type { BrokerCore } from '../../../src/broker/broker.js';
import { Connection } from '../../../src/broker/connection.js';
import { createMessage } from '../../../src/broker/message.js';
import { resolveOptions } from '../../../src/broker/options.js';
import { Session } from '../../../src/broker/session.js';
import { BrokerState } from '../../../src/broker/state.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { ManualClock, ManualTicker } from '../../../src/session/clock.js';
import { TestClient } from '../../helpers/duplex-client.js';

function newState(): BrokerState {
  const options = { clock: new ManualClock(0), ticker: new ManualTicker() };
  return new BrokerState(resolveOptions(options, { logger: silentLogger, clock: options.clock }), {});
}

type Flag = 'congested' | 'graceful' | 'problemInfo' | 'flushScheduled' | 'cleanStart';
const FLAGS: Flag[] = ['congested', 'graceful', 'problemInfo', 'flushScheduled', 'cleanStart'];

describe('Connection bit field', () => {
  test('defaults: only problemInfo is set (Request Problem Information defaults to 1)', () => {
    const state = newState();
    const c = new Connection(state, new PassThrough(), { remoteAddress: 'test', remotePort: undefined, listener: undefined });
    assert.deepEqual(FLAGS.map((f) => c[f]), [false, false, true, false, false]);
    assert.equal(c.busy, false);
    assert.equal(c.readPaused, false);
    state.stop();
  });

  test('each boolean is set and cleared without touching the others', () => {
    const state = newState();
    const c = new Connection(state, new PassThrough(), { remoteAddress: 'test', remotePort: undefined, listener: undefined });
    for (const flag of FLAGS) {
      for (const start of [false, true]) {
        for (const f of FLAGS) c[f] = start;
        c[flag] = !start;
        assert.deepEqual(FLAGS.map((f) => c[f]), FLAGS.map((f) => (f === flag ? !start : start)), `${flag} from ${String(start)}`);
        c[flag] = start;
        assert.deepEqual(FLAGS.map((f) => c[f]), FLAGS.map(() => start), `${flag} back to ${String(start)}`);
      }
    }
    state.stop();
  });

  test('alias tables: none until used, then each field keeps its own value', () => {
    const state = newState();
    const c = new Connection(state, new PassThrough(), { remoteAddress: 'test', remotePort: undefined, listener: undefined });
    assert.equal(c.aliasesIn, undefined);
    assert.equal(c.aliasesOut, undefined);
    assert.equal(c.aliasBytesIn, 0);
    assert.equal(c.aliasBytesOut, 0);
    const out = new Map([['t', 1]]);
    c.aliasesOut = out;
    c.aliasBytesOut = 7;
    assert.equal(c.aliasesIn, undefined);
    assert.equal(c.aliasBytesIn, 0);
    assert.equal(c.aliasesOut, out);
    assert.equal(c.aliasBytesOut, 7);
    const inbound = new Map([[1, 'u']]);
    c.aliasesIn = inbound;
    c.aliasBytesIn = 3;
    assert.deepEqual([c.aliasesIn, c.aliasBytesIn, c.aliasesOut, c.aliasBytesOut], [inbound, 3, out, 7]);
    state.stop();
  });
});

describe('Session bit field and shared empty queue', () => {
  type SFlag = 'retryScheduled' | 'stalled' | 'watching';
  const SFLAGS: SFlag[] = ['retryScheduled', 'stalled', 'watching'];

  test('each boolean is set and cleared without touching the others', () => {
    const state = newState();
    const s = new Session('s', state.sessionLimits, state);
    assert.deepEqual(SFLAGS.map((f) => s[f]), [false, false, false]);
    for (const flag of SFLAGS) {
      for (const start of [false, true]) {
        for (const f of SFLAGS) s[f] = start;
        s[flag] = !start;
        assert.deepEqual(SFLAGS.map((f) => s[f]), SFLAGS.map((f) => (f === flag ? !start : start)), `${flag} from ${String(start)}`);
      }
    }
    state.stop();
  });

  test('a session that queues gets its own queue: other sessions stay empty, reset empties it', () => {
    const state = newState();
    const a = new Session('a', state.sessionLimits, state);
    const b = new Session('b', state.sessionLimits, state);
    const msg = createMessage({ topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, properties: undefined, now: 0 });
    // Offline: QoS 1 deliveries are queued.
    a.deliver(msg, 1, false, undefined, 0);
    a.deliver(msg, 1, false, undefined, 0);
    assert.equal(a.queue.length, 2);
    assert.equal(b.queue.length, 0);
    assert.notEqual(a.queue, b.queue);
    a.reset();
    assert.equal(a.queue.length, 0);
    assert.equal(a.queuedBytes, 0);
    b.deliver(msg, 1, false, undefined, 0);
    assert.equal(b.queue.length, 1);
    assert.equal(a.queue.length, 0);
    state.stop();
  });
});

describe('what an idle connection keeps', () => {
  test('a stream with an end listener of its own (a net.Socket has one) keeps a single listener; both still run, in order', () => {
    const state = newState();
    const stream = new PassThrough();
    const calls: string[] = [];
    stream.on('end', function own(this: PassThrough) {
      calls.push(this === stream ? 'own' : 'own with another this');
    });
    const c = new Connection(state, stream, { remoteAddress: 'test', remotePort: undefined, listener: undefined });
    assert.equal(stream.rawListeners('end').length, 1, 'two listeners would make Node keep an array per stream');
    stream.emit('end');
    assert.deepEqual(calls, ['own']);
    assert.equal(c.phase, 'closed', 'the connection saw the end');
    state.stop();
  });

  /** A broker state with a handle() like BrokerCore's, so that the test can look inside. */
  function open(): { state: BrokerState; core: BrokerCore } {
    const state = newState();
    const handle = (stream: Parameters<BrokerCore['handle']>[0]): void => {
      state.connecting.add(new Connection(state, stream, { remoteAddress: 'test', remotePort: undefined, listener: undefined }));
    };
    return { state, core: { handle } as unknown as BrokerCore };
  }

  test('an accepted connection leaves the table of connections in CONNECT; openConnections() still lists every open one', async () => {
    const { state, core } = open();
    await TestClient.connect(core, { clientId: 'a' });
    core.handle(new PassThrough());
    assert.equal(state.connecting.size, 1, 'only the stream that has not sent CONNECT');
    assert.equal(state.connections.size, 1);
    assert.deepEqual(state.openConnections().map((c) => c.phase).sort(), ['connected', 'new']);
    for (const c of state.openConnections()) c.close(undefined);
    assert.equal(state.connecting.size, 0);
    assert.equal(state.connections.size, 0);
    state.stop();
  });

  test('ClientInfo: built on first use from the accepted CONNECT, then always the same object', async () => {
    const { state, core } = open();
    await TestClient.connect(core, { clientId: 'info', username: 'u', keepalive: 42, clean: false, version: 5 });
    const conn = state.connections.get('info') as Connection;
    assert.equal(conn.username, 'u');
    assert.equal(conn.cleanStart, false);
    const info = conn.info;
    assert.deepEqual(info, { clientId: 'info', protocolVersion: 5, username: 'u', remoteAddress: 'test', keepalive: 42, cleanStart: false, connection: conn.meta });
    assert.deepEqual(Object.keys(info ?? {}), ['clientId', 'protocolVersion', 'username', 'remoteAddress', 'keepalive', 'cleanStart', 'connection']);
    assert.equal(conn.info, info, 'the same object every time');
    let lost: unknown;
    state.events.on('connectionLost', (c) => {
      lost = c;
    });
    conn.close(undefined);
    assert.equal(lost, info, 'events hand out the same object');
    state.stop();
  });
});
