/**
 * Memory per idle connection: Petrel against a bare Node.js TCP server that answers CONNECT with
 * a fixed CONNACK and keeps nothing else (the floor any Node.js broker starts from). Each server
 * runs in its own process with --expose-gc; memory is read after full collections, before and
 * after N clients connect. Run: npm run bench:idle (IDLE_CLIENTS, default 10,000).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics } from 'node:v8';
import { listenIdleServer } from './idle-server.js';
import { encode } from '../src/protocol/index.js';

interface Snapshot { heap: number; rss: number }
type Message = { port: number } | { snap: Snapshot };

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Memory after full collections. V8 hands the pages a collection freed back to the system from a
 * background thread, so RSS read right after gc() still counts some of them, by chance: the
 * reading waits for that between collections.
 */
async function snapshot(): Promise<Snapshot> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await pause(300);
  }
  const m = process.memoryUsage();
  if (process.env.IDLE_SPACES) {
    const sp = Object.fromEntries(getHeapSpaceStatistics().map((x) => [x.space_name, [Math.round(x.space_size / 1024), Math.round(x.space_used_size / 1024)]]));
    process.stderr.write(`${process.argv[3]} ${JSON.stringify({ ...m, sp })}\n`);
  }
  return { heap: m.heapUsed, rss: m.rss };
}

async function serve(kind: string): Promise<void> {
  const port = await listenIdleServer(kind);
  process.send?.({ port });
  process.on('message', (m) => {
    if (m === 'snap') void snapshot().then((snap) => process.send?.({ snap }));
    if (m === 'exit') process.exit(0);
  });
}

function ask(child: ChildProcess, question: string): Promise<Message> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as Message));
    child.send(question);
  });
}

async function measure(kind: string, clients: number): Promise<{ heap: number; rss: number }> {
  const child = fork(fileURLToPath(import.meta.url), ['serve', kind], { execArgv: ['--expose-gc'] });
  const { port } = (await new Promise<Message>((resolve) => child.once('message', (m) => resolve(m as Message)))) as { port: number };
  const before = ((await ask(child, 'snap')) as { snap: Snapshot }).snap;
  const sockets: Socket[] = [];
  let acked = 0;
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${acked} of ${clients} connected in 120 s`)), 120_000);
    for (let i = 0; i < clients; i++) {
      const s = connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % 16)}` });
      s.on('connect', () => s.write(encode({ type: 1, protocolVersion: 4, protocolName: 'MQTT', clientId: `idle-${i}`, clean: true, keepalive: 600 }, 4)));
      s.once('data', () => {
        acked++;
        if (acked % 2000 === 0) process.stdout.write(`  ${kind}: ${acked} connected\n`);
        if (acked === clients) {
          clearTimeout(timer);
          resolve();
        }
      });
      s.on('error', reject);
      sockets.push(s);
    }
  });
  const after = ((await ask(child, 'snap')) as { snap: Snapshot }).snap;
  child.send('exit');
  for (const s of sockets) s.destroy();
  process.stdout.write(`  ${kind}: ${clients} clients in ${Date.now() - started} ms\n`);
  return { heap: (after.heap - before.heap) / clients, rss: (after.rss - before.rss) / clients };
}

async function main(): Promise<void> {
  if (process.argv[2] === 'serve') return serve(process.argv[3] ?? 'bare');
  const clients = Number(process.env.IDLE_CLIENTS ?? 10_000);
  const rows: string[] = [];
  for (const kind of ['bare', 'petrel']) {
    const r = await measure(kind, clients);
    rows.push(`| ${kind === 'bare' ? 'bare Node.js TCP server (floor)' : 'Petrel'} | ${(r.heap / 1024).toFixed(2)} | ${(r.rss / 1024).toFixed(2)} |`);
  }
  process.stdout.write(`\n${clients} idle MQTT 3.1.1 clients, memory per connection after full GC:\n\n`);
  process.stdout.write('| server | JS heap KiB/conn | RSS KiB/conn |\n|---|---:|---:|\n');
  process.stdout.write(`${rows.join('\n')}\n`);
}

await main();
