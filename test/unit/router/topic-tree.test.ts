import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { matches } from '../../../src/protocol/topic.js';
import { TopicTree } from '../../../src/router/topic-tree.js';
import { mulberry32, pickOne, randomFilter, randomInt, randomTopic } from './random.js';

/** A tree holding each filter once, keyed 'k', valued by the filter itself. */
function treeOf(filters: readonly string[], cacheSize?: number): TopicTree<string> {
  const tree = new TopicTree<string>(cacheSize === undefined ? {} : { cacheSize });
  for (const filter of filters) tree.add(filter, 'k', filter);
  return tree;
}

function sorted(values: readonly string[]): string[] {
  return [...values].sort();
}

function assertMatch(tree: TopicTree<string>, topic: string, expected: string[]): void {
  assert.deepEqual(sorted(tree.match(topic)), sorted(expected), `match(${JSON.stringify(topic)})`);
}

describe('TopicTree wildcards', () => {
  it('exact filters match only the identical topic [MQTT-4.7.3-4]', () => {
    const tree = treeOf(['a/b', 'a/b/c', 'A/b', 'a']);
    assertMatch(tree, 'a/b', ['a/b']);
    assertMatch(tree, 'a', ['a']);
    assertMatch(tree, 'a/b/c/d', []);
    assertMatch(tree, 'a/B', []);
  });

  it("'+' matches exactly one level, including an empty one [MQTT-4.7.1-3]", () => {
    const tree = treeOf(['+', 'a/+', '+/b', 'a/+/c', '/+', '+/+']);
    assertMatch(tree, 'a', ['+']);
    assertMatch(tree, 'a/b', ['a/+', '+/b', '+/+']);
    assertMatch(tree, 'a/', ['a/+', '+/+']);
    assertMatch(tree, '/x', ['/+', '+/+']);
    assertMatch(tree, 'a//c', ['a/+/c']);
    assertMatch(tree, 'a/x/c', ['a/+/c']);
    assertMatch(tree, 'a/b/c/d', []);
  });

  it("'#' matches the parent level and any number of child levels [MQTT-4.7.1-2]", () => {
    const tree = treeOf(['a/#', 'a/b/#', '+/#', 'x/+/#']);
    assertMatch(tree, 'a', ['a/#', '+/#']);
    assertMatch(tree, 'a/b', ['a/#', 'a/b/#', '+/#']);
    assertMatch(tree, 'a/b/c/d', ['a/#', 'a/b/#', '+/#']);
    assertMatch(tree, 'x', ['+/#']);
    assertMatch(tree, 'x/y', ['+/#', 'x/+/#']);
    assertMatch(tree, 'x/y/z', ['+/#', 'x/+/#']);
  });

  it("'#' alone matches every topic not starting with '$'", () => {
    const tree = treeOf(['#']);
    for (const topic of ['a', 'a/b/c', '/', '/a', 'a/', 'sport/tennis/player1']) assertMatch(tree, topic, ['#']);
    assertMatch(tree, '$SYS', []);
    assertMatch(tree, '$SYS/broker/clients', []);
  });

  it("wildcard first levels do not match topics starting with '$' [MQTT-4.7.2-1]", () => {
    const tree = treeOf(['#', '+/monitor/Clients', '+', '+/#', '$SYS/#', '$SYS/monitor/+', '$SYS']);
    assertMatch(tree, '$SYS/monitor/Clients', ['$SYS/#', '$SYS/monitor/+']);
    assertMatch(tree, '$SYS', ['$SYS/#', '$SYS']);
    assertMatch(tree, '$other', []);
    assertMatch(tree, 'SYS/monitor/Clients', ['#', '+/monitor/Clients', '+/#']);
  });

  it('a topic matched by several filters yields one value per (filter,key) pair', () => {
    const tree = new TopicTree<string>();
    tree.add('a/b', 'c1', 'exact-1');
    tree.add('a/b', 'c2', 'exact-2');
    tree.add('a/+', 'c1', 'plus-1');
    tree.add('#', 'c1', 'hash-1');
    assert.deepEqual(sorted(tree.match('a/b')), ['exact-1', 'exact-2', 'hash-1', 'plus-1']);
  });

  it('agrees with the reference matcher on the spec examples', () => {
    const filters = ['sport/tennis/player1/#', 'sport/#', 'sport/tennis/#', 'sport/+', 'sport/+/player1', '+/+', '/+', '+', '#'];
    const topics = ['sport', 'sport/', 'sport/tennis', 'sport/tennis/player1', 'sport/tennis/player1/ranking', '/finance', 'finance'];
    const tree = treeOf(filters);
    for (const topic of topics) assertMatch(tree, topic, filters.filter((f) => matches(f, topic)));
  });
});

describe('TopicTree add/remove/get', () => {
  it('add returns true for new pairs and replaces existing ones', () => {
    const tree = new TopicTree<number>();
    assert.equal(tree.add('a/+', 'c1', 1), true);
    assert.equal(tree.add('a/+', 'c2', 2), true);
    assert.equal(tree.add('a/+', 'c1', 3), false);
    assert.equal(tree.size, 2);
    assert.equal(tree.get('a/+', 'c1'), 3);
    assert.deepEqual([...tree.match('a/x')].sort(), [2, 3]);
  });

  it('remove reports whether the pair existed and leaves other pairs alone', () => {
    const tree = new TopicTree<string>();
    tree.add('a/#', 'c1', 'x');
    tree.add('a/#', 'c2', 'y');
    assert.equal(tree.remove('a/#', 'c3'), false);
    assert.equal(tree.remove('a/b', 'c1'), false);
    assert.equal(tree.remove('a/#', 'c1'), true);
    assert.equal(tree.remove('a/#', 'c1'), false);
    assert.equal(tree.get('a/#', 'c1'), undefined);
    assert.equal(tree.get('a/#', 'c2'), 'y');
    assert.equal(tree.size, 1);
    assert.deepEqual(tree.match('a/b'), ['y']);
  });

  it('keeps many keys on one filter consistent through adds, replaces and removes', () => {
    const tree = new TopicTree<string>();
    const rand = mulberry32(7);
    const model = new Map<string, string>();
    for (let i = 0; i < 2000; i++) {
      const key = `c${randomInt(rand, 100)}`;
      if (rand() < 0.35) {
        assert.equal(tree.remove('a/+', key), model.delete(key));
      } else {
        const value = `${key}#${i}`;
        assert.equal(tree.add('a/+', key, value), !model.has(key));
        model.set(key, value);
      }
      assert.equal(tree.size, model.size);
    }
    for (let k = 0; k < 100; k++) assert.equal(tree.get('a/+', `c${k}`), model.get(`c${k}`));
    assert.deepEqual(sorted(tree.match('a/x')), sorted([...model.values()]));
  });

  it('distinguishes literal, + and # levels', () => {
    const tree = new TopicTree<string>();
    tree.add('a/+', 'k', 'plus');
    tree.add('a/#', 'k', 'hash');
    tree.add('a/b', 'k', 'exact');
    assert.equal(tree.get('a/+', 'k'), 'plus');
    assert.equal(tree.get('a/#', 'k'), 'hash');
    assert.equal(tree.get('a/b', 'k'), 'exact');
    assert.equal(tree.get('a', 'k'), undefined);
    tree.remove('a/+', 'k');
    assert.deepEqual(sorted(tree.match('a/b')), ['exact', 'hash']);
  });

  it('prunes emptied nodes so the tree returns to its empty shape', () => {
    const tree = new TopicTree<string>();
    const filters = ['a/b/c', 'a/+/c', 'a/#', '#', '+/+/+/d', 'a/b/c/d/e'];
    for (const f of filters) tree.add(f, 'k', f);
    for (const f of filters) assert.equal(tree.remove(f, 'k'), true);
    assert.equal(tree.size, 0);
    const root = (tree as unknown as { root: Record<string, unknown> }).root;
    assert.equal(root.children, undefined);
    assert.equal(root.plus, undefined);
    assert.equal(root.hash, undefined);
    assert.equal(root.keys, undefined);
    assert.deepEqual(tree.match('a/b/c'), []);
  });

  it('pruning a branch keeps a sibling and an ancestor with entries', () => {
    const tree = new TopicTree<string>();
    tree.add('a', 'k', 'a');
    tree.add('a/b/c', 'k', 'abc');
    tree.add('a/b/d', 'k', 'abd');
    tree.remove('a/b/c', 'k');
    assertMatch(tree, 'a/b/d', ['abd']);
    assertMatch(tree, 'a', ['a']);
    tree.remove('a/b/d', 'k');
    assertMatch(tree, 'a', ['a']);
    tree.add('a/b/c', 'k', 'abc');
    assertMatch(tree, 'a/b/c', ['abc']);
  });
});

describe('TopicTree match cache', () => {
  it('counts hits and misses and serves repeated topics from the cache', () => {
    const tree = treeOf(['a/+', '#']);
    const first = tree.match('a/b');
    const second = tree.match('a/b');
    assert.equal(first, second);
    assert.deepEqual(tree.cacheStats(), { hits: 1, misses: 1, entries: 1 });
  });

  it('a match after add sees the new subscription', () => {
    const tree = treeOf(['a/+']);
    assertMatch(tree, 'a/b', ['a/+']);
    tree.add('a/#', 'k', 'a/#');
    assertMatch(tree, 'a/b', ['a/+', 'a/#']);
    tree.add('a/#', 'k', 'replaced');
    assertMatch(tree, 'a/b', ['a/+', 'replaced']);
  });

  it('a match after remove no longer sees the subscription', () => {
    const tree = treeOf(['a/+', 'a/b']);
    assertMatch(tree, 'a/b', ['a/+', 'a/b']);
    tree.remove('a/+', 'k');
    assertMatch(tree, 'a/b', ['a/b']);
    tree.remove('a/b', 'k');
    assertMatch(tree, 'a/b', []);
    assert.equal(tree.cacheStats().entries, 1);
  });

  it('holds at most cacheSize entries, evicting the oldest', () => {
    const tree = treeOf(['#'], 3);
    for (const topic of ['t1', 't2', 't3', 't4']) tree.match(topic);
    assert.equal(tree.cacheStats().entries, 3);
    tree.match('t4');
    tree.match('t1');
    assert.deepEqual(tree.cacheStats(), { hits: 1, misses: 5, entries: 3 });
  });

  it('cacheSize 0 disables the cache', () => {
    const tree = treeOf(['#'], 0);
    tree.match('a');
    tree.match('a');
    assert.deepEqual(tree.cacheStats(), { hits: 0, misses: 2, entries: 0 });
    assertMatch(tree, 'a', ['#']);
  });
});

describe('TopicTree randomized against matches()', () => {
  it('100,000 subscriptions agree with the reference matcher', () => {
    const rand = mulberry32(0x5eed);
    const topics = Array.from({ length: 4000 }, () => randomTopic(rand));
    const filters = [...new Set(Array.from({ length: 3000 }, () => randomFilter(rand, topics)))];
    const model = new Map<string, Set<string>>(); // filter -> keys
    const tree = new TopicTree<string>({ cacheSize: 500 });
    for (let i = 0; i < 100_000; i++) {
      const filter = pickOne(rand, filters);
      const key = `c${randomInt(rand, 2000)}`;
      const keys = model.get(filter) ?? new Set<string>();
      assert.equal(tree.add(filter, key, `${filter}|${key}`), !keys.has(key));
      keys.add(key);
      model.set(filter, keys);
    }
    // Remove a tenth of the filters entirely, so pruning is exercised before matching.
    for (const filter of filters.filter(() => rand() < 0.1)) {
      for (const key of model.get(filter) ?? []) assert.equal(tree.remove(filter, key), true);
      model.delete(filter);
    }
    let pairs = 0;
    for (const keys of model.values()) pairs += keys.size;
    assert.equal(tree.size, pairs);

    for (let i = 0; i < 3000; i++) {
      // Mostly known topics, some fresh ones; repeats exercise the cache.
      const topic = rand() < 0.8 ? pickOne(rand, topics) : randomTopic(rand);
      const expected: string[] = [];
      for (const [filter, keys] of model) {
        if (matches(filter, topic)) for (const key of keys) expected.push(`${filter}|${key}`);
      }
      assertMatch(tree, topic, expected);
    }
    assert.ok(tree.cacheStats().hits > 0);
  });
});
