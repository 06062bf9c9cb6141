/**
 * Heap figures for memory-bound tests, taken after full collections. `gc` comes from
 * --expose-gc (scripts/run-tests.mjs passes it) or, when a file runs without it, from V8's flag.
 */
import { Buffer } from 'node:buffer';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = () => void;

function findGc(): Gc {
  const exposed = (globalThis as { gc?: Gc }).gc;
  if (typeof exposed === 'function') return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as Gc;
}

const gc = findGc();

/** JavaScript heap plus Buffer memory in use after full collections, in bytes. */
export function memoryInUse(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

export const MiB = 1024 * 1024;

/** A flat string of `length` characters, distinct for each `n` (as a decoded topic would be). */
export function longTopic(prefix: string, n: number, length: number): string {
  const head = `${prefix}/${n}/`;
  const buf = Buffer.alloc(length, 'x');
  buf.write(head, 0, 'latin1');
  return buf.toString('latin1');
}
