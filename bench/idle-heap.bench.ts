/**
 * Where the JS heap of an idle connection goes: the same servers as idle-connections.bench.ts
 * (Petrel and a bare Node.js TCP server), N idle 3.1.1 clients each, then a heap snapshot of each
 * server; the table sums the snapshot's self sizes per constructor and shows Petrel's bytes per
 * connection beyond the bare server's. Run: npm run bench:idle-heap (IDLE_CLIENTS, default 5,000).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { listenIdleServer } from './idle-server.js';
import { encode } from '../src/protocol/index.js';

type Message = { port: number } | { file: string };

async function serve(kind: string): Promise<void> {
  const port = await listenIdleServer(kind);
  process.send?.({ port });
  process.on('message', (m) => {
    if (m === 'snap') process.send?.({ file: writeHeapSnapshot(join(tmpdir(), `petrel-idle-${kind}-${process.pid}.heapsnapshot`)) });
    if (m === 'exit') process.exit(0);
  });
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Self size and count per "type:name" (objects by constructor, arrays, strings, code, native). */
function summarize(file: string): Map<string, { size: number; count: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  rmSync(file);
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = snap.snapshot.meta.node_types[0];
  const edgeWidth = snap.snapshot.meta.edge_fields.length;
  const edgeTypes = snap.snapshot.meta.edge_types[0];
  const edgeCountAt = fields.indexOf('edge_count');
  const nodeName = (i: number): string => {
    const type = types[snap.nodes[i + typeAt] as number] as string;
    const name = type === 'object' || type === 'native' || type === 'closure' || type === 'hidden' ? snap.strings[snap.nodes[i + nameAt] as number] as string : '';
    return `${type}:${name.length > 40 ? `${name.slice(0, 37)}...` : name}`;
  };
  // The first strong retainer of each node, shown for arrays, strings and plain objects.
  const retainer = new Map<number, string>();
  if (process.env.IDLE_RETAINERS) {
    let e = 0;
    for (let i = 0; i < snap.nodes.length; i += width) {
      const count = snap.nodes[i + edgeCountAt] as number;
      for (let k = 0; k < count; k++, e += edgeWidth) {
        const et = edgeTypes[snap.edges[e] as number] as string;
        if (et === 'weak' || et === 'shortcut') continue;
        const to = snap.edges[e + 2] as number;
        if (retainer.has(to)) continue;
        const en = et === 'element' || et === 'hidden' ? `[${et}]` : String(snap.strings[snap.edges[e + 1] as number]);
        retainer.set(to, `${nodeName(i)}.${en}`);
      }
    }
  }
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    let key = nodeName(i);
    if (process.env.IDLE_RETAINERS && (key === 'object:Object' || key === 'object:Array' || /^(array|string|concatenated string|sliced string):/.test(key))) key = `${key} <- ${retainer.get(i) ?? '?'}`;
    const e = out.get(key) ?? { size: 0, count: 0 };
    e.size += snap.nodes[i + sizeAt] as number;
    e.count++;
    out.set(key, e);
  }
  return out;
}

function ask(child: ChildProcess, question: string): Promise<Message> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as Message));
    child.send(question);
  });
}

async function measure(kind: string, clients: number): Promise<Map<string, { size: number; count: number }>> {
  const child = fork(fileURLToPath(import.meta.url), ['serve', kind]);
  const { port } = (await new Promise<Message>((resolve) => child.once('message', (m) => resolve(m as Message)))) as { port: number };
  const sockets: Socket[] = [];
  let acked = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${acked} of ${clients} connected in 120 s`)), 120_000);
    for (let i = 0; i < clients; i++) {
      const s = connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % 16)}` });
      s.on('connect', () => s.write(encode({ type: 1, protocolVersion: 4, protocolName: 'MQTT', clientId: `idle-${i}`, clean: true, keepalive: 600 }, 4)));
      s.once('data', () => {
        if (++acked === clients) {
          clearTimeout(timer);
          resolve();
        }
      });
      s.on('error', reject);
      sockets.push(s);
    }
  });
  const { file } = (await ask(child, 'snap')) as { file: string };
  child.send('exit');
  for (const s of sockets) s.destroy();
  return summarize(file);
}

async function main(): Promise<void> {
  if (process.argv[2] === 'serve') return serve(process.argv[3] ?? 'bare');
  const clients = Number(process.env.IDLE_CLIENTS ?? 5_000);
  const bare = await measure('bare', clients);
  const petrel = await measure('petrel', clients);
  const rows: { key: string; bytes: number; count: number }[] = [];
  for (const [key, p] of petrel) {
    const b = bare.get(key) ?? { size: 0, count: 0 };
    rows.push({ key, bytes: (p.size - b.size) / clients, count: (p.count - b.count) / clients });
  }
  rows.sort((a, b) => b.bytes - a.bytes);
  let total = 0;
  for (const r of rows) total += r.bytes;
  process.stdout.write(`\n${clients} idle MQTT 3.1.1 clients: Petrel's heap beyond the bare server's, per connection\n\n`);
  process.stdout.write('| type:constructor | bytes/conn | objects/conn |\n|---|---:|---:|\n');
  for (const r of rows) if (Math.abs(r.bytes) >= 2) process.stdout.write(`| ${r.key} | ${r.bytes.toFixed(1)} | ${r.count.toFixed(2)} |\n`);
  process.stdout.write(`| total | ${total.toFixed(1)} | |\n`);
}

await main();
