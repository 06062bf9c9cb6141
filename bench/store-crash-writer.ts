/**
 * bench:store part 6: writes the fan-out workload of part 5 (fanout-workload.ts; completes 100
 * turns later) into a SQLite store with a preallocated log of `size` bytes (and compactions far
 * apart) until `logBytes` are logged, then kills itself with SIGKILL: what a crash leaves.
 * Args: dataDir, size, logBytes.
 */
import { SqliteStore, type StoreOp } from '../src/persistence/index.js';
import { FanoutWorkload } from './fanout-workload.js';

const [dataDir, size, target] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4])];
const store = new SqliteStore({ dataDir, preallocate: size, compactMs: 1e9, cutMs: 1e9, compactOps: 1e9 });
await store.open();
const workload = new FanoutWorkload();
await store.write(workload.sessionOps());
const lag: StoreOp[][] = [];
// Bounded: the log fills long before this many turns.
for (let turn = 0; turn < 10_000_000 && store.stats.logBytes < target; turn++) {
  const { ops, completes } = workload.turn();
  const written = store.write(ops);
  lag.push(completes);
  if (lag.length > 100) void store.write(lag.shift()!, { lazy: true });
  await written;
}
process.stdout.write(`${store.stats.logBytes} bytes of log, ${workload.messages} messages\n`);
process.kill(process.pid, 'SIGKILL');
