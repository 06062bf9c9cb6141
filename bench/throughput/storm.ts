/**
 * Connection-storm worker (a child of run.js; several run side by side to stay under the
 * per-process fd limit). Usage: node storm.js <port> <worker> <clients>
 * On 'go' it opens <clients> connections (CONNECT, wait for CONNACK) as fast as it can, reports,
 * keeps them idle until 'close', then exits.
 */
import { BenchClient, pool } from './clients.js';
import { absNow, cpuSince, sendToParent, waitParent } from './common.js';

const CONCURRENCY = 500;
/** Source addresses 127.0.0.2 .. 127.0.0.33, so no (source, destination) pair runs out of ports. */
const SOURCE_ADDRESSES = 32;

async function main(): Promise<void> {
  const [portArg, workerArg, countArg] = process.argv.slice(2);
  const port = Number(portArg);
  const worker = Number(workerArg);
  const count = Number(countArg);
  await sendToParent({ kind: 'ready' });
  await waitParent('go', 120_000);
  const cpu0 = process.cpuUsage();
  const clients: BenchClient[] = [];
  let failed = 0;
  let firstError = '';
  const startedAt = absNow();
  const ids = Array.from({ length: count }, (_, i) => i);
  await pool(ids, CONCURRENCY, async (i) => {
    const localAddress = `127.0.0.${2 + ((worker * count + i) % SOURCE_ADDRESSES)}`;
    const c = new BenchClient({ port, host: '127.0.0.1', localAddress, version: 4, topicAliasMaximum: 0 }, undefined);
    clients.push(c);
    try {
      await c.handshake(`storm-${worker}-${i}`);
    } catch (err) {
      failed++;
      if (firstError === '') firstError = err instanceof Error ? err.message : String(err);
      c.close();
    }
  });
  const finishedAt = absNow();
  if (failed > 0) process.stderr.write(`storm worker ${worker}: ${failed} connections failed (first: ${firstError})\n`);
  const connected = clients.filter((c) => c.error === undefined).length;
  await sendToParent({ kind: 'storm', storm: { connected, failed, startedAt, finishedAt, cpuSec: cpuSince(cpu0) } });
  await waitParent('close', 300_000);
  for (const c of clients) c.close();
  process.exit(0);
}

main().catch(async (err: unknown) => {
  await sendToParent({ kind: 'error', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
