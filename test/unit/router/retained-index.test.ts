import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { matches } from '../../../src/protocol/topic.js';
import { RetainedIndex } from '../../../src/router/retained-index.js';
import { mulberry32, randomFilter, randomTopic } from './random.js';

function indexOf(topics: readonly string[]): RetainedIndex<string> {
  const index = new RetainedIndex<string>();
  for (const topic of topics) index.set(topic, topic);
  return index;
}

function assertMatch(index: RetainedIndex<string>, filter: string, expected: string[]): void {
  assert.deepEqual(index.match(filter).sort(), [...expected].sort(), `match(${JSON.stringify(filter)})`);
}

describe('RetainedIndex', () => {
  it('set, replace, get, delete, size and entries', () => {
    const index = new RetainedIndex<number>();
    index.set('a/b', 1);
    index.set('a', 2);
    index.set('a/b', 3);
    assert.equal(index.size, 2);
    assert.equal(index.get('a/b'), 3);
    assert.deepEqual([...index.entries()].sort(), [['a', 2], ['a/b', 3]]);
    assert.equal(index.delete('a/b'), true);
    assert.equal(index.delete('a/b'), false);
    assert.equal(index.delete('nope'), false);
    assert.equal(index.get('a/b'), undefined);
    assert.equal(index.size, 1);
    assert.deepEqual(index.match('#'), [2]);
  });

  it('matches exact, + and # filters [MQTT-4.7.1-2] [MQTT-4.7.1-3]', () => {
    const index = indexOf(['a', 'a/b', 'a/b/c', 'a/', 'a//c', 'x/b', '/b']);
    assertMatch(index, 'a/b', ['a/b']);
    assertMatch(index, 'a/+', ['a/b', 'a/']);
    assertMatch(index, '+/b', ['a/b', 'x/b', '/b']);
    assertMatch(index, 'a/+/c', ['a/b/c', 'a//c']);
    assertMatch(index, 'a/#', ['a', 'a/b', 'a/b/c', 'a/', 'a//c']);
    assertMatch(index, 'a/b/#', ['a/b', 'a/b/c']);
    assertMatch(index, '+/#', ['a', 'a/b', 'a/b/c', 'a/', 'a//c', 'x/b', '/b']);
    assertMatch(index, 'q/#', []);
  });

  it("wildcard first levels do not match topics starting with '$' [MQTT-4.7.2-1]", () => {
    const index = indexOf(['$SYS/uptime', '$SYS', 'sys/uptime', '$other/x']);
    assertMatch(index, '#', ['sys/uptime']);
    assertMatch(index, '+/uptime', ['sys/uptime']);
    assertMatch(index, '+', []);
    assertMatch(index, '$SYS/#', ['$SYS/uptime', '$SYS']);
    assertMatch(index, '$SYS/+', ['$SYS/uptime']);
    assertMatch(index, '$other/x', ['$other/x']);
  });

  it('deleting prunes branches but keeps neighbours', () => {
    const index = indexOf(['a/b/c', 'a/b', 'a/d']);
    index.delete('a/b/c');
    assertMatch(index, 'a/#', ['a/b', 'a/d']);
    index.delete('a/b');
    index.delete('a/d');
    assert.equal((index as unknown as { root: { children: unknown } }).root.children, undefined);
    assertMatch(index, '#', []);
  });

  it('agrees with the reference matcher on random topics and filters', () => {
    const rand = mulberry32(0xa11ce);
    const pool = Array.from({ length: 6000 }, () => randomTopic(rand));
    const index = new RetainedIndex<string>();
    const model = new Set<string>();
    for (const topic of pool) {
      index.set(topic, topic);
      model.add(topic);
    }
    for (const topic of pool.filter(() => rand() < 0.2)) {
      assert.equal(index.delete(topic), model.delete(topic));
    }
    assert.equal(index.size, model.size);
    for (let i = 0; i < 2000; i++) {
      const filter = randomFilter(rand, pool);
      const expected = [...model].filter((topic) => matches(filter, topic));
      assertMatch(index, filter, expected);
    }
  });
});
