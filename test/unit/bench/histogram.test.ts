/**
 * The bench histogram against the exact answer: percentiles of seeded random data equal those
 * of the sorted values within the bucket resolution (1/128), and memory does not grow with the
 * number of values.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Histogram, HISTOGRAM_MAX } from '../../../src/bench/histogram.js';

/** mulberry32: a small seeded generator, so every run checks the same data. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The value at percentile p of sorted integers: the smallest with at least p % at or below it. */
function reference(sorted: number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

const PERCENTILES = [0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100];

const DISTRIBUTIONS: Record<string, (r: () => number) => number> = {
  'uniform below 300': (r) => Math.floor(r() * 300),
  'uniform below 10^6': (r) => Math.floor(r() * 1e6),
  'log-uniform 1..2^30': (r) => Math.floor(2 ** (r() * 30)),
  'exponential, mean 5000': (r) => Math.floor(-Math.log(1 - r()) * 5000),
};

describe('Histogram', () => {
  for (const [name, draw] of Object.entries(DISTRIBUTIONS)) {
    test(`percentiles of ${name} are within 1/128 of the sorted values`, () => {
      const random = seeded(name.length * 7919);
      const h = new Histogram();
      const values: number[] = [];
      for (let i = 0; i < 50_000; i++) {
        const v = draw(random);
        values.push(v);
        h.record(v);
      }
      values.sort((a, b) => a - b);
      assert.equal(h.count, values.length);
      assert.equal(h.max, values.at(-1));
      assert.equal(h.min, values[0]);
      for (const p of PERCENTILES) {
        const exact = reference(values, p);
        const got = h.percentile(p);
        assert.ok(got >= exact, `p${p}: ${got} below ${exact}`);
        assert.ok(got - exact <= exact / 128, `p${p}: ${got} too far above ${exact}`);
      }
    });
  }

  test('values below 256 are counted exactly', () => {
    const h = new Histogram();
    for (let v = 0; v < 256; v++) h.record(v);
    for (let v = 1; v <= 256; v++) assert.equal(h.percentile((v / 256) * 100), v - 1);
  });

  test('memory is fixed: the same counts array whatever is recorded; huge and negative values are clamped', () => {
    assert.ok(Histogram.bytes < 64 * 1024, `${Histogram.bytes} bytes`);
    const h = new Histogram();
    const random = seeded(1);
    for (let i = 0; i < 200_000; i++) h.record(random() * 2 ** 40);
    h.record(-5);
    h.record(Number.POSITIVE_INFINITY);
    assert.equal(h.count, 200_002);
    assert.equal(h.max, HISTOGRAM_MAX);
    assert.equal(h.min, 0);
    assert.equal(h.percentile(100), HISTOGRAM_MAX);
  });

  test('merge gives the histogram of both inputs', () => {
    const random = seeded(42);
    const a = new Histogram();
    const b = new Histogram();
    const both = new Histogram();
    for (let i = 0; i < 10_000; i++) {
      const v = Math.floor(random() * 100_000);
      (i % 3 === 0 ? a : b).record(v);
      both.record(v);
    }
    a.merge(b);
    assert.equal(a.count, both.count);
    for (const p of PERCENTILES) assert.equal(a.percentile(p), both.percentile(p));
    assert.equal(a.mean, both.mean);
  });

  test('an empty histogram reports 0', () => {
    assert.equal(new Histogram().percentile(99), 0);
    assert.equal(new Histogram().mean, 0);
  });
});
