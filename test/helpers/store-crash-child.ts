/**
 * Child process of the SQLite crash test: writes the crash workload with several writes in
 * flight (so batches share transactions) and prints each batch index once its write resolved.
 * Usage: node store-crash-child.js <dataDir> <commit|interval> <maxBatches> [preallocate bytes]
 */
import { SqliteStore } from '../../src/persistence/index.js';
import { batch } from './store-crash-workload.js';

const [dataDir, durability, max, preallocate] = process.argv.slice(2);
if (dataDir === undefined || (durability !== 'commit' && durability !== 'interval')) {
  throw new Error('usage: store-crash-child.js <dataDir> <commit|interval> <maxBatches>');
}
const maxBatches = Number(max ?? 100_000);
const store = new SqliteStore({ dataDir, durability, intervalMs: 50, preallocate: Number(preallocate ?? 0) });
await store.open();
let next = 0;
async function writer(): Promise<void> {
  while (next < maxBatches) {
    const i = next++;
    await store.write(batch(i));
    process.stdout.write(`${i}\n`);
  }
}
await Promise.all(Array.from({ length: 8 }, writer));
await store.close();
