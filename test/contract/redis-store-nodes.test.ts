/**
 * The Redis store shared by the nodes of a cluster (`node` option), over a real redis-server:
 * each node opens only the sessions it owns and its own retained topics; `loadSession` takes a
 * session over with a fencing token, and from then on the previous owner's writes to that session
 * are skipped (and reported), while its writes to other sessions still apply.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { RedisStore } from '../../src/persistence/index.js';
import { RedisServer } from '../helpers/redis-server.js';
import { msg, queued, session } from './store.contract.js';

let server: RedisServer;
before(async () => {
  server = await RedisServer.start();
});
after(async () => {
  await server.close();
});

test('loadSession moves a session to another node; the old owner\'s later writes to it are fenced off', async () => {
  const prefix = `n${randomBytes(6).toString('hex')}:`;
  const lost: string[][] = [];
  const a = new RedisStore({ redis: server.url, prefix, node: 'a', onLost: (ids) => lost.push(ids) });
  const b = new RedisStore({ redis: server.url, prefix, node: 'b' });
  try {
    await a.open();
    await b.open();
    assert.equal((await a.loadSession('x', 1)).previousOwner, undefined);
    await a.loadSession('y', 1);
    await a.write([{ op: 'session', session: session('x') }, { op: 'session', session: session('y') }, { op: 'message', message: msg('m1') }, { op: 'enqueue', entry: queued('x', 1, 'm1') }]);
    await a.write([{ op: 'message', message: msg('r1', { retain: true }) }, { op: 'retain', topic: 'r/1', messageId: 'r1' }]);
    const moved = await b.loadSession('x', 2);
    assert.equal(moved.previousOwner, 'a|1');
    assert.deepEqual(moved.state.sessions.map((s) => s.clientId), ['x']);
    assert.deepEqual(moved.state.queue.map((e) => e.messageId), ['m1']);
    assert.ok(moved.state.messages.has('m1'));
    assert.deepEqual(moved.state.retained, [], 'retained topics are per node');
    // Node a still believes it owns x: its write to x is skipped, its write to y applies.
    await a.write([{ op: 'message', message: msg('m2') }, { op: 'enqueue', entry: queued('x', 2, 'm2') }, { op: 'enqueue', entry: queued('y', 1, 'm2') }]);
    assert.deepEqual(lost, [['x']]);
    const a2 = new RedisStore({ redis: server.url, prefix, node: 'a' });
    const b2 = new RedisStore({ redis: server.url, prefix, node: 'b' });
    try {
      const sa = await a2.open();
      const sb = await b2.open();
      assert.deepEqual(sa.sessions.map((s) => s.clientId), ['y']);
      assert.deepEqual(sa.retained.map((r) => r.topic), ['r/1']);
      assert.deepEqual(sb.sessions.map((s) => s.clientId), ['x']);
      assert.deepEqual(sb.queue.map((e) => e.seq), [1], 'the fenced enqueue did not reach x');
      assert.deepEqual(sa.queue.map((e) => `${e.clientId}:${e.messageId}`), ['y:m2']);
    } finally {
      await a2.close();
      await b2.close();
    }
  } finally {
    await a.close();
    await b.close();
  }
});
