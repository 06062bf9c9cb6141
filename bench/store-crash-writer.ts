/**
 * bench:store part 6: writes the fan-out workload of part 5 (10 messages per turn, each with its
 * deliveries to 4 of 512 persistent sessions; completes 100 turns later) into a SQLite store with
 * a preallocated log of `size` bytes (and compactions far apart) until `logBytes` are logged, then
 * kills itself with SIGKILL: what a crash leaves. Args: dataDir, size, logBytes.
 */
import { Buffer } from 'node:buffer';
import { SqliteStore, type StoreOp } from '../src/persistence/index.js';

const [dataDir, size, target] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4])];
const store = new SqliteStore({ dataDir, preallocate: size, compactMs: 1e9, cutMs: 1e9, compactOps: 1e9 });
await store.open();
const sessions = 512;
const clients = Array.from({ length: sessions }, (_, i) => `fanout-sub-${i}`);
const topics = Array.from({ length: 128 }, (_, i) => `sensors/${i}/temp`);
await store.write(clients.map((clientId): StoreOp => ({ op: 'session', session: { clientId, expiryInterval: 3600, expiresAt: undefined, will: undefined, willAt: undefined } })));
const payload = Buffer.alloc(128, 0x61);
const packetIds = new Uint16Array(sessions);
const seqs = new Float64Array(sessions);
const lag: StoreOp[][] = [];
let n = 0;
// Bounded: the log fills long before this many turns.
for (let turn = 0; turn < 10_000_000 && store.stats.logBytes < target; turn++) {
  const ops: StoreOp[] = [];
  const completes: StoreOp[] = [];
  for (let m = 0; m < 10; m++) {
    const id = `fanout.${(n++).toString(36)}`;
    ops.push({ op: 'message', message: { id, topic: topics[n % 128]!, payload, qos: 1, retain: false, properties: undefined, expiresAt: undefined, senderId: 'fanout-pub' } });
    for (let k = 0; k < 4; k++) {
      const s = ((n % 128) * 4 + k) % sessions;
      const packetId = packetIds[s] = (packetIds[s]! % 65535) + 1;
      const seq = seqs[s] = seqs[s]! + 1;
      ops.push({ op: 'inflight', entry: { clientId: clients[s]!, seq, messageId: id, qos: 1, retain: false, subscriptionIds: undefined, packetId, state: 'publish' } });
      completes.push({ op: 'complete', clientId: clients[s]!, packetId });
    }
  }
  const written = store.write(ops);
  lag.push(completes);
  if (lag.length > 100) void store.write(lag.shift()!, { lazy: true });
  await written;
}
process.stdout.write(`${store.stats.logBytes} bytes of log, ${n} messages\n`);
process.kill(process.pid, 'SIGKILL');
