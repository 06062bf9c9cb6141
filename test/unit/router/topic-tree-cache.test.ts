/**
 * The match cache: bounded in bytes, free of topics nobody subscribes to, and invalidated per
 * entry on add/remove so unrelated entries stay warm; randomized against the reference matcher.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { matches } from '../../../src/protocol/topic.js';
import { TopicTree } from '../../../src/router/topic-tree.js';
import { longTopic, memoryInUse, MiB } from '../../helpers/heap.js';
import { mulberry32, pickOne, randomFilter, randomInt, randomTopic } from './random.js';

const ATTACK_TOPICS = 2_000;
const ATTACK_LENGTH = 60_000;

describe('TopicTree match cache memory', () => {
  it('2,000 distinct 60 KB topics matched by "#" keep the heap within the 8 MiB byte bound', (t) => {
    const tree = new TopicTree<string>();
    tree.add('#', 'k', 'all');
    const before = memoryInUse();
    for (let i = 0; i < ATTACK_TOPICS; i++) assert.equal(tree.match(longTopic('t', i, ATTACK_LENGTH)).length, 1);
    const grown = memoryInUse() - before;
    t.diagnostic(`heap grew by ${(grown / MiB).toFixed(1)} MiB`);
    assert.ok(tree.cacheBytesUsed() <= 8 * MiB, `charged ${tree.cacheBytesUsed()} bytes`);
    // The bound is 8 MiB of charged bytes; charges are upper bounds, so 12 MiB leaves room for noise.
    assert.ok(grown < 12 * MiB, `heap grew by ${(grown / MiB).toFixed(1)} MiB`);
  });

  it('2,000 distinct 60 KB topics nobody subscribes to leave nothing in the cache', (t) => {
    const tree = new TopicTree<string>();
    tree.add('other/topic', 'k', 'v');
    const before = memoryInUse();
    for (let i = 0; i < ATTACK_TOPICS; i++) assert.equal(tree.match(longTopic('t', i, ATTACK_LENGTH)).length, 0);
    const grown = memoryInUse() - before;
    t.diagnostic(`heap grew by ${(grown / MiB).toFixed(1)} MiB`);
    assert.equal(tree.cacheStats().entries, 0);
    assert.ok(grown < 4 * MiB, `heap grew by ${(grown / MiB).toFixed(1)} MiB`);
  });

  it('the byte bound evicts the oldest entries first', () => {
    const tree = new TopicTree<string>({ cacheBytes: 4096 });
    tree.add('#', 'k', 'all');
    for (let i = 0; i < 100; i++) tree.match(`t/${i}`);
    assert.ok(tree.cacheBytesUsed() <= 4096);
    const kept = tree.cacheStats().entries;
    assert.ok(kept > 1 && kept < 100, `${kept} entries`);
    const hits = tree.cacheStats().hits;
    tree.match('t/99');
    tree.match('t/0');
    assert.equal(tree.cacheStats().hits, hits + 1, 'newest kept, oldest evicted');
  });

  it('an entry larger than the byte bound is not cached', () => {
    const tree = new TopicTree<string>({ cacheBytes: 1000 });
    tree.add('#', 'k', 'all');
    tree.match('x'.repeat(1000));
    assert.equal(tree.cacheStats().entries, 0);
    assert.equal(tree.cacheBytesUsed(), 0);
  });
});

describe('TopicTree match cache invalidation', () => {
  it('an add or remove drops only the cached topics its filter matches', () => {
    const tree = new TopicTree<string>();
    tree.add('a/+', 'k1', 'a/+');
    tree.add('b/#', 'k1', 'b/#');
    for (const t of ['a/1', 'a/2', 'b/1', 'b/2/3', 'c']) tree.match(t);
    assert.equal(tree.cacheStats().entries, 5);
    tree.add('a/+', 'k2', 'a/+ again'); // a/1, a/2 change
    assert.equal(tree.cacheStats().entries, 3);
    tree.remove('b/#', 'k1'); // b/1, b/2/3 change
    assert.equal(tree.cacheStats().entries, 1);
    tree.add('c', 'k1', 'c'); // a literal filter: only its own topic
    assert.equal(tree.cacheStats().entries, 0);
    assert.deepEqual([...tree.match('a/1')].sort(), ['a/+', 'a/+ again']);
    assert.deepEqual(tree.match('b/1'), []);
    assert.deepEqual(tree.match('c'), ['c']);
  });

  it('reconnect churn on one filter keeps other cached topics warm', () => {
    const tree = new TopicTree<string>();
    for (let g = 0; g < 100; g++) tree.add(`dev/${g}/+`, `c${g}`, `c${g}`);
    for (let g = 0; g < 100; g++) tree.match(`dev/${g}/temp`);
    const { misses } = tree.cacheStats();
    for (let round = 0; round < 10; round++) {
      tree.remove('dev/7/+', 'c7');
      tree.add('dev/7/+', 'c7', 'c7');
      for (let g = 0; g < 100; g++) tree.match(`dev/${g}/temp`);
    }
    assert.equal(tree.cacheStats().misses - misses, 10, 'only dev/7/temp is recomputed, once per round');
  });

  it("a filter rooted at '#' clears the cache, and '$' topics are handled", () => {
    const tree = new TopicTree<string>();
    tree.add('$SYS/#', 'k', '$SYS/#');
    for (const t of ['a', '$SYS/x', 'b/c']) tree.match(t);
    tree.add('#', 'k', '#');
    assert.equal(tree.cacheStats().entries, 0);
    assert.deepEqual(tree.match('$SYS/x'), ['$SYS/#']);
    assert.deepEqual(tree.match('a'), ['#']);
    tree.add('+/#', 'k2', '+/#');
    assert.deepEqual([...tree.match('a')].sort(), ['#', '+/#']);
  });

  it('interleaved add/remove/match with the cache on agree with the reference matcher', () => {
    const rand = mulberry32(0xcace);
    const topics = Array.from({ length: 300 }, () => randomTopic(rand));
    const filters = [...new Set(Array.from({ length: 200 }, () => randomFilter(rand, topics)))];
    const model = new Map<string, Set<string>>(); // filter -> keys
    // A small cache, so eviction by count and by bytes both happen between invalidations.
    const tree = new TopicTree<string>({ cacheSize: 150, cacheBytes: 64 * 1024 });
    for (let i = 0; i < 15_000; i++) {
      const r = rand();
      if (r < 0.1) {
        const filter = pickOne(rand, filters);
        const key = `c${randomInt(rand, 5)}`;
        const keys = model.get(filter) ?? new Set<string>();
        assert.equal(tree.add(filter, key, `${filter}|${key}`), !keys.has(key));
        keys.add(key);
        model.set(filter, keys);
      } else if (r < 0.2) {
        const filter = pickOne(rand, filters);
        const key = `c${randomInt(rand, 5)}`;
        const keys = model.get(filter);
        assert.equal(tree.remove(filter, key), keys?.delete(key) === true);
        if (keys?.size === 0) model.delete(filter);
      } else {
        const topic = rand() < 0.9 ? pickOne(rand, topics) : randomTopic(rand);
        const expected: string[] = [];
        for (const [filter, keys] of model) if (matches(filter, topic)) for (const key of keys) expected.push(`${filter}|${key}`);
        assert.deepEqual([...tree.match(topic)].sort(), expected.sort(), `match(${JSON.stringify(topic)}) at step ${i}`);
      }
      assert.ok(tree.cacheBytesUsed() <= 64 * 1024);
    }
    const stats = tree.cacheStats();
    assert.ok(stats.hits > 1000 && stats.misses > 1000, JSON.stringify(stats));
  });
});
