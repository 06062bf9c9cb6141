/**
 * RotatingMap and RotatingSet (session/rotating.ts): they behave as a Map and a Set, in insertion
 * order, while copying their entries into a new Map or Set after as many deletes as they hold.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RotatingMap, RotatingSet } from '../../../src/session/rotating.js';

/** A small seeded generator (xorshift32), so that a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

describe('RotatingMap', () => {
  test('matches a Map, entries in insertion order, through churn, rotations and clears', () => {
    const random = rng(7);
    const model = new Map<number, string>();
    const map = new RotatingMap<number, string>();
    for (let step = 0; step < 40_000; step++) {
      const r = random();
      const key = Math.floor(random() * 64);
      if (r < 0.5) {
        model.set(key, `v${step}`);
        map.set(key, `v${step}`);
      } else if (step !== 25_000) {
        assert.equal(map.delete(key), model.delete(key));
      } else {
        model.clear();
        map.clear();
      }
      assert.equal(map.size, model.size);
      assert.equal(map.get(key), model.get(key));
      assert.equal(map.has(key), model.has(key));
      if (step % 97 === 0) assert.deepEqual([...map], [...model]);
    }
    assert.deepEqual([...map.keys()], [...model.keys()]);
    assert.deepEqual([...map.values()], [...model.values()]);
    assert.deepEqual([...map.entries()], [...model.entries()]);
    // About 10,000 successful deletes of at most 64 entries, one clear: a copy every 1,024 deletes.
    assert.ok(map.rotations >= 5, `rotations: ${map.rotations}`);
  });

  test('copies only after as many deletes as it holds entries, so a large map is not copied on every 1,024th delete', () => {
    const map = new RotatingMap<number, number>();
    for (let i = 0; i < 5000; i++) map.set(i, i);
    for (let i = 0; i < 2000; i++) map.delete(i);
    assert.equal(map.rotations, 0);
    for (let i = 2000; i < 2600; i++) map.delete(i);
    // 2,600 deletes against 2,400 entries left: copied at the next insert.
    assert.equal(map.rotations, 0);
    map.set(9999, 9999);
    map.delete(9999);
    assert.equal(map.rotations, 1);
    assert.deepEqual([...map.keys()].slice(0, 2), [2600, 2601]);
    assert.equal(map.size, 2400);
  });

  test('a loop that deletes entries while it iterates sees what a Map would show', () => {
    const map = new RotatingMap<number, number>();
    const model = new Map<number, number>();
    for (let i = 0; i < 3000; i++) {
      map.set(i, i);
      model.set(i, i);
    }
    const walk = (m: { keys(): IterableIterator<number>; delete(k: number): boolean }): number[] => {
      const seen: number[] = [];
      // Deletes the visited entry and the one after it: past 1,024 deletes, as many as are left.
      for (const k of m.keys()) {
        seen.push(k);
        m.delete(k);
        m.delete(k + 1);
      }
      return seen;
    };
    assert.deepEqual(walk(map), walk(model));
    assert.equal(map.size, 0);
    map.set(1, 1);
    assert.equal(map.rotations, 1);
    assert.deepEqual([...map], [[1, 1]]);
  });

  test('a delete of an absent key is not counted', () => {
    const map = new RotatingMap<number, number>();
    for (let i = 0; i < 3000; i++) assert.equal(map.delete(i), false);
    assert.equal(map.rotations, 0);
  });
});

describe('RotatingSet', () => {
  test('matches a Set, values in insertion order, through churn, rotations and clears', () => {
    const random = rng(11);
    const model = new Set<string>();
    const set = new RotatingSet<string>();
    for (let step = 0; step < 40_000; step++) {
      const r = random();
      const value = `id.${Math.floor(random() * 48)}`;
      if (r < 0.5) {
        model.add(value);
        set.add(value);
      } else if (step !== 25_000) {
        assert.equal(set.delete(value), model.delete(value));
      } else {
        model.clear();
        set.clear();
      }
      assert.equal(set.size, model.size);
      assert.equal(set.has(value), model.has(value));
      if (step % 89 === 0) assert.deepEqual([...set], [...model]);
    }
    assert.deepEqual([...set.values()], [...model.values()]);
    assert.ok(set.rotations >= 5, `rotations: ${set.rotations}`);
  });
});
