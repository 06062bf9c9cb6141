/** In-suite decoder fuzzing with a fixed seed; `npm run fuzz` runs the same engine for longer. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runFuzz } from './engine.js';

const SEED = 20_240_601;
const ITERATIONS = 100_000;

it(`decoder survives ${ITERATIONS} random and mutated inputs (seed ${SEED})`, () => {
  // The time budget only guards against a pathologically slow machine; the count is what is tested.
  const stats = runFuzz({ seed: SEED, iterations: ITERATIONS, timeBudgetMs: 60_000 });
  assert.equal(stats.iterations, ITERATIONS);
  assert.ok(stats.packets > 10_000, 'many inputs still decode to packets');
  assert.ok(stats.errors.size >= 4, 'inputs reach several kinds of error');
});
