/**
 * What the Redis store adds to the store contract: group commit (one script call per turn),
 * failing batches reject every write of their turn, keys under the prefix with one hash tag, a
 * Redis killed with SIGKILL (appendonly, appendfsync always) keeps every resolved write, an
 * outage fails writes instead of hanging, and the URL forms (single, Sentinel, Cluster).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisStore, StoreError } from '../../../src/persistence/index.js';
import { parseRedisUrl } from '../../../src/persistence/redis/index.js';
import { inflight, msg, queued, session } from '../../contract/store.contract.js';
import { RedisServer } from '../../helpers/redis-server.js';

let server: RedisServer;
let n = 0;
const prefix = (): string => `u${++n}:`;

before(async () => {
  server = await RedisServer.start();
});
after(async () => {
  await server.close();
});

describe('RedisStore', () => {
  test('group commit: writes made in one turn share one script call, applied in call order', async () => {
    const store = new RedisStore({ redis: server.url, prefix: prefix() });
    await store.open();
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) writes.push(store.write([{ op: 'message', message: msg(`m${i}`) }, { op: 'enqueue', entry: queued('a', i, `m${i}`) }]));
    // Depends on call order: the entry is queued by an earlier write and moved by this one.
    writes.push(store.write([{ op: 'dequeue', clientId: 'a', seq: 0 }, { op: 'inflight', entry: inflight('a', 0, 1, 'm0') }]));
    await Promise.all(writes);
    assert.deepEqual(store.stats, { transactions: 1, writes: 51 });
    await store.write([{ op: 'dequeue', clientId: 'a', seq: 1 }]);
    await store.write([{ op: 'dequeue', clientId: 'a', seq: 2 }]);
    assert.deepEqual(store.stats, { transactions: 3, writes: 53 });
    const state = await store.open();
    assert.equal(state.queue.length, 47);
    assert.deepEqual(state.inflight, [inflight('a', 0, 1, 'm0')]);
    await store.close();
  });

  test('a failing batch rejects every write of its turn with a StoreError and stores none of them', async () => {
    const store = new RedisStore({ redis: server.url, prefix: prefix() });
    await store.open();
    const good = store.write([{ op: 'message', message: msg('ok') }, { op: 'enqueue', entry: queued('a', 1, 'ok') }]);
    const bad = store.write([{ op: 'enqueue', entry: queued('a', 2, 'missing') }]);
    await assert.rejects(good, (err: unknown) => err instanceof StoreError && err.code === 'unknown-message');
    await assert.rejects(bad, (err: unknown) => err instanceof StoreError && err.code === 'unknown-message');
    assert.deepEqual((await store.open()).queue, []);
    await store.close();
  });

  test('every key is under the prefix and carries the one hash tag {store}', async () => {
    const p = prefix();
    const store = new RedisStore({ redis: server.url, prefix: p });
    await store.open();
    await store.write([
      { op: 'session', session: session('a') }, { op: 'message', message: msg('m') }, { op: 'enqueue', entry: queued('a', 1, 'm') },
      { op: 'inflight', entry: inflight('b', 2, 3, 'm') }, { op: 'retain', topic: 't', messageId: 'm' }, { op: 'pubrec', clientId: 'c', packetId: 1 },
      { op: 'subscribe', clientId: 'a', subscription: { topicFilter: '#', qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionIdentifier: undefined } },
    ]);
    await store.close();
    const r = new Redis(server.url);
    try {
      const keys = await r.keys('*');
      const mine = keys.filter((k) => k.startsWith(p));
      assert.ok(mine.length >= 8, `keys: ${mine.join(' ')}`);
      for (const k of mine) assert.ok(k.startsWith(`${p}{store}:`), k);
      const slots = new Set(await Promise.all(mine.map((k) => r.call('CLUSTER', 'KEYSLOT', k).catch(() => 'no cluster'))));
      assert.ok(slots.size <= 1);
    } finally {
      r.disconnect();
    }
  });

  test('a resolved write survives redis-server killed with SIGKILL (appendonly, appendfsync always)', async () => {
    const own = await RedisServer.start({ appendOnly: true });
    try {
      const p = prefix();
      const store = new RedisStore({ redis: own.url, prefix: p });
      await store.open();
      for (let i = 0; i < 20; i++) await store.write([{ op: 'message', message: msg(`m${i}`) }, { op: 'enqueue', entry: queued('a', i, `m${i}`) }]);
      await store.close();
      await own.kill();
      await own.resume();
      const again = new RedisStore({ redis: own.url, prefix: p });
      const state = await again.open();
      assert.deepEqual(state.queue.map((e) => e.seq), Array.from({ length: 20 }, (_, i) => i));
      assert.equal(state.messages.size, 20);
      await again.close();
    } finally {
      await own.close();
    }
  });

  test('while Redis is down a write rejects (bounded retries) instead of hanging; after it is back writes succeed', async () => {
    const own = await RedisServer.start({ appendOnly: false });
    try {
      const store = new RedisStore({ redis: own.url, prefix: prefix() });
      await store.open();
      await own.stop();
      await assert.rejects(store.write([{ op: 'session', session: session('a') }]), (err: unknown) => err instanceof StoreError && err.code === 'failed');
      await own.resume();
      await store.write([{ op: 'session', session: session('b') }]);
      assert.deepEqual((await store.open()).sessions.map((s) => s.clientId), ['b']);
      await store.close();
    } finally {
      await own.close();
    }
  });

  test('URLs: single (with auth and db), TLS, Sentinel, Cluster; bad ones are refused', () => {
    assert.deepEqual(parseRedisUrl('redis://u:p%40ss@127.0.0.1:6380/2'), {
      kind: 'single', hosts: [{ host: '127.0.0.1', port: 6380 }], username: 'u', password: 'p@ss', tls: false, db: 2, name: '',
    });
    assert.equal(parseRedisUrl('rediss://h').tls, true);
    assert.deepEqual(parseRedisUrl('redis-sentinel://a:26380,b/mymaster').hosts, [{ host: 'a', port: 26380 }, { host: 'b', port: 26379 }]);
    assert.equal(parseRedisUrl('redis-sentinel://a/mymaster').name, 'mymaster');
    assert.equal(parseRedisUrl('redis-cluster://a:7000,b:7001').kind, 'cluster');
    for (const bad of ['http://x', 'redis://a,b', 'redis-sentinel://a', 'redis://h:0', 'redis://h/x']) assert.throws(() => parseRedisUrl(bad), RangeError, bad);
  });
});
