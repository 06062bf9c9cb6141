/**
 * InflightTable (src/session/inflight.ts) must behave as a Map from packet identifier to value
 * that iterates in insertion order: checked against a Map under random operations, including
 * keys that share a home slot and wrap around the table, deletes in the middle of probe runs,
 * growth, and the 1..65535 key range.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InflightTable } from '../../../src/session/inflight.js';
import { mulberry32 as rng } from '../router/random.js';

function assertSame(table: InflightTable<string>, model: Map<number, string>, where: string): void {
  assert.equal(table.size, model.size, `${where}: size`);
  assert.deepEqual(table.keys(), [...model.keys()], `${where}: keys in insertion order`);
  assert.deepEqual(table.values(), [...model.values()], `${where}: values in insertion order`);
}

describe('InflightTable', () => {
  test('random sets and deletes match a Map, in insertion order (keys that collide, wrap and grow)', () => {
    for (const [seed, keySpace] of [[1, 64], [2, 200], [3, 65535], [4, 40]] as const) {
      const next = rng(seed);
      const table = new InflightTable<string>();
      const model = new Map<number, string>();
      // Keys from a small space collide in the 32-slot table; multiples of 32 share a home slot.
      const key = (): number => (next() < 0.3 ? 32 * (1 + Math.floor(next() * Math.min(8, Math.floor(keySpace / 32) || 1))) : 1 + Math.floor(next() * keySpace));
      for (let step = 0; step < 4000; step++) {
        const k = Math.min(key(), 65535);
        const r = next();
        if (r < 0.5) {
          const v = `v${step}`;
          table.set(k, v);
          model.set(k, v);
        } else {
          assert.equal(table.delete(k), model.delete(k), `seed ${seed} step ${step}: delete ${k}`);
        }
        assert.equal(table.get(k), model.get(k), `seed ${seed} step ${step}: get ${k}`);
        assert.equal(table.has(k), model.has(k), `seed ${seed} step ${step}: has ${k}`);
        if (step % 97 === 0) assertSame(table, model, `seed ${seed} step ${step}`);
      }
      assertSame(table, model, `seed ${seed} end`);
      // Every key the model holds is found, every other one of the space is not.
      for (let k = 1; k <= Math.min(keySpace, 2000); k++) assert.equal(table.get(k), model.get(k), `seed ${seed}: final get ${k}`);
    }
  });

  test('a window of sequential identifiers, acknowledged in order, reuses its slots without growing past twice the window', () => {
    const table = new InflightTable<number>();
    let next = 1;
    const window: number[] = [];
    for (let i = 0; i < 20; i++) {
      table.set(next, next);
      window.push(next++);
    }
    for (let i = 0; i < 70000; i++) {
      const oldest = window.shift() as number;
      assert.equal(table.delete(oldest), true);
      const id = next;
      next = next === 65535 ? 1 : next + 1;
      table.set(id, id);
      window.push(id);
    }
    assert.equal(table.size, 20);
    assert.ok(table.capacity <= 64, `capacity ${table.capacity}`);
    assert.deepEqual(table.keys(), window);
    assert.deepEqual(table.values(), window);
  });

  test('replacing a value keeps its place; deleting while going through values() is safe', () => {
    const table = new InflightTable<string>();
    for (const k of [5, 37, 69, 6]) table.set(k, `a${k}`);
    table.set(37, 'b37');
    assert.deepEqual(table.keys(), [5, 37, 69, 6]);
    assert.deepEqual(table.values(), ['a5', 'b37', 'a69', 'a6']);
    for (const v of table.values()) if (v !== 'a6') table.delete(Number(v.slice(1)));
    assert.deepEqual(table.keys(), [6]);
    assert.equal(table.get(69), undefined);
    assert.equal(table.get(6), 'a6');
  });

  test('only packet identifiers 1..65535 are keys', () => {
    const table = new InflightTable<string>();
    for (const bad of [0, 65536, -1, 1.5]) assert.throws(() => table.set(bad, 'x'), RangeError, String(bad));
    table.set(65535, 'max');
    table.set(1, 'min');
    assert.equal(table.get(65535), 'max');
    assert.equal(table.get(1), 'min');
    assert.equal(table.size, 2);
  });
});
