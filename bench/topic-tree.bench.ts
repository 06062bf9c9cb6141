/**
 * TopicTree match cost as unrelated subscriptions grow: `npm run bench:router`.
 *
 * Every size uses the same mix per device g (10 subscriptions, from 10 distinct clients):
 *   6 exact   fleet/{g}/sensor/{0..5}
 *   2 '+'     fleet/{g}/+/{0..1}
 *   1 '#'     fleet/{g}/#
 *   1 '+' first   +/{g}/sensor/+
 * i.e. 60% exact, 30% with '+', 10% '#'. Query topics are fleet/{g}/sensor/{0..7}, so each match
 * returns about three values whatever the size.
 *   hot:    g among the first 100 devices (present at every size); every other subscription is
 *           unrelated to the queries, so a flat column shows the walk ignores them.
 *   spread: g uniform over all devices, so each match touches cold memory; the growth here is
 *           CPU cache misses over a larger heap, not extra work.
 *   cached: the spread topics (4,096, fitting in the default 10,000-entry cache) with the cache on.
 * Each cell is the best of three timed runs, to damp noise from other processes.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { TopicTree } from '../src/router/topic-tree.js';

// Exposes gc() so heap figures are measured after a full collection.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SIZES = [1_000, 10_000, 100_000, 1_000_000];
const QUERY_TOPICS = 4_096;
const HOT_DEVICES = 100;
const MIN_MATCHES = 200_000;
const MIN_NS = 150_000_000n;
const RUNS = 3;

/** Seeded PRNG (mulberry32) so every run queries the same topics. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function build(size: number, cacheSize: number): TopicTree<string> {
  const tree = new TopicTree<string>({ cacheSize });
  const devices = size / 10;
  for (let g = 0; g < devices; g++) {
    const filters = [
      ...[0, 1, 2, 3, 4, 5].map((k) => `fleet/${g}/sensor/${k}`),
      `fleet/${g}/+/0`,
      `fleet/${g}/+/1`,
      `fleet/${g}/#`,
      `+/${g}/sensor/+`,
    ];
    filters.forEach((filter, i) => tree.add(filter, `client-${g}-${i}`, `client-${g}-${i}`));
  }
  return tree;
}

function queries(devices: number): string[] {
  const rand = prng(devices);
  return Array.from({ length: QUERY_TOPICS }, () => `fleet/${Math.floor(rand() * devices)}/sensor/${Math.floor(rand() * 8)}`);
}

interface Measured {
  nsPerMatch: number;
  resultsPerMatch: number;
}

/** Best of RUNS timed runs; each passes over `topics` until a minimum count and time are reached. */
function measure(tree: TopicTree<string>, topics: readonly string[]): Measured {
  let results = 0;
  for (const topic of topics) results += tree.match(topic).length; // warm-up (and fills the cache)
  let best: Measured = { nsPerMatch: Infinity, resultsPerMatch: 0 };
  for (let run = 0; run < RUNS; run++) {
    results = 0;
    let count = 0;
    const start = process.hrtime.bigint();
    let elapsed = 0n;
    while (count < MIN_MATCHES || elapsed < MIN_NS) {
      for (const topic of topics) results += tree.match(topic).length;
      count += topics.length;
      elapsed = process.hrtime.bigint() - start;
    }
    const nsPerMatch = Number(elapsed) / count;
    if (nsPerMatch < best.nsPerMatch) best = { nsPerMatch, resultsPerMatch: results / count };
  }
  return best;
}

function heapMb(): number {
  gc();
  return process.memoryUsage().heapUsed / 1_048_576;
}

function row(size: number): string {
  const before = heapMb();
  const t0 = process.hrtime.bigint();
  const uncachedTree = build(size, 0);
  const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const heap = heapMb() - before;
  const hot = measure(uncachedTree, queries(HOT_DEVICES));
  const spreadTopics = queries(size / 10);
  const spread = measure(uncachedTree, spreadTopics);
  const cached = measure(build(size, 10_000), spreadTopics);
  const cells = [
    size.toLocaleString('en-US'),
    buildMs.toFixed(0),
    heap.toFixed(0),
    hot.nsPerMatch.toFixed(0),
    spread.nsPerMatch.toFixed(0),
    cached.nsPerMatch.toFixed(0),
    spread.resultsPerMatch.toFixed(2),
  ];
  return `| ${cells.join(' | ')} |`;
}

function main(): void {
  console.log(`node ${process.version}, ${QUERY_TOPICS} query topics, best of ${RUNS} runs of >= ${MIN_MATCHES} matches`);
  console.log('| subscriptions | build ms | heap MB | ns/match hot, no cache | ns/match spread, no cache | ns/match cached | values/match |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  row(SIZES[0] ?? 1_000); // throwaway: lets the JIT settle so the first printed row is not penalised
  for (const size of SIZES) console.log(row(size));
}

main();
