/**
 * Long decoder fuzzing run: `npm run fuzz`, with FUZZ_ITERATIONS (default 1,000,000) and
 * FUZZ_SEED (default: random, printed so a failure can be replayed).
 */
import { FuzzFailure, runFuzz } from './engine.js';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${raw}`);
  return n;
}

const iterations = envInt('FUZZ_ITERATIONS', 1_000_000);
const seed = envInt('FUZZ_SEED', Math.floor(Math.random() * 2 ** 31));
console.log(`fuzzing the decoder: ${iterations} iterations, FUZZ_SEED=${seed}`);

try {
  const stats = runFuzz({
    seed,
    iterations,
    progressEvery: Math.max(1, Math.min(50_000, Math.floor(iterations / 20))),
    onProgress: (s, ms) => {
      const rate = Math.round(s.iterations / (ms / 1000));
      console.log(`  ${s.iterations} inputs (${rate}/s), ${s.packets} packets decoded, ${[...s.errors.values()].reduce((a, b) => a + b, 0)} errors`);
    },
  });
  const codes = [...stats.errors.entries()].sort((a, b) => a[0] - b[0]).map(([c, n]) => `0x${c.toString(16)}: ${n}`).join(', ');
  console.log(`done: ${stats.iterations} inputs, ${stats.inputBytes} bytes, ${stats.packets} packets; errors by reason code: ${codes}`);
} catch (err) {
  if (err instanceof FuzzFailure) {
    console.error(err.message);
    if (err.cause !== undefined) console.error('cause:', err.cause);
    console.error(`replay: FUZZ_SEED=${err.seed}, iteration ${err.iteration}`);
    process.exit(1);
  }
  throw err;
}
