/**
 * The SQLite store's window (src/persistence/sqlite/window.ts) alone, under the op pattern of a
 * saturated QoS 1 fan-out to persistent sessions: each message is one 'message' op and four
 * 'inflight' ops to four of 512 sessions, and each delivery's 'complete' comes LAG messages
 * later (the 20–30 ms a receiver takes at saturation). Records of 256 messages, a compaction
 * (`ops()`, `clear()`) every 100,000 messages. Prints ns per delivery for five rounds, after a
 * warm-up round, and the cost of making the ops alone (the same loop without the window).
 *
 *   npm run bench:window        (BENCH_WINDOW_MESSAGES: messages per round, default 400,000)
 */
import type { StoreOp } from '../src/persistence/index.js';
import { OpWindow, type TableRows } from '../src/persistence/sqlite/window.js';

const SESSIONS = 512;
const TOPICS = 128;
const RECEIVERS = SESSIONS / TOPICS;
const LAG = 1500;
const RECORD = 256;
const COMPACT = 100_000;
const ROUNDS = 5;
const MESSAGES = Math.max(10_000, Math.min(5_000_000, Number(process.env.BENCH_WINDOW_MESSAGES ?? 400_000)));

const clients = Array.from({ length: SESSIONS }, (_, i) => `sub-${i}`);
const topics = Array.from({ length: TOPICS }, (_, i) => `bench/${i}`);
const payload = Buffer.alloc(128, 1);

function round(window: OpWindow | undefined, messages: number, start: number): number {
  const packetIds = new Uint16Array(SESSIONS);
  // Open deliveries (session, packet id) in send order, as a ring.
  const ring = new Int32Array(1 << 16);
  let head = 0;
  let tail = 0;
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let m = 0; m < messages; m++) {
    const topic = m % TOPICS;
    const id = `bench.${(start + m).toString(36)}`;
    const ops: StoreOp[] = [{
      op: 'message',
      message: { id, topic: topics[topic]!, payload, qos: 1, retain: false, properties: undefined, expiresAt: undefined, senderId: 'publisher' },
    }];
    for (let k = 0; k < RECEIVERS; k++) {
      const s = topic + TOPICS * k;
      const packetId = packetIds[s] = (packetIds[s]! % 65535) + 1;
      ops.push({
        op: 'inflight',
        entry: { clientId: clients[s]!, seq: start + m, messageId: id, qos: 1, retain: false, subscriptionIds: undefined, packetId, state: 'publish' },
      });
      ring[tail++ & 0xffff] = s;
      ring[tail++ & 0xffff] = packetId;
    }
    const ends: StoreOp[] = [];
    if (tail - head > LAG * RECEIVERS * 2) {
      for (let k = 0; k < RECEIVERS; k++) {
        const s = ring[head++ & 0xffff]!;
        const packetId = ring[head++ & 0xffff]!;
        ends.push({ op: 'complete', clientId: clients[s]!, packetId });
      }
    }
    if (window === undefined) {
      sink += ops.length + ends.length;
      continue;
    }
    if (m % RECORD === 0) {
      window.endBatch();
      window.record(m, m);
    }
    window.add(ops);
    if (ends.length > 0) window.add(ends);
    if (m % COMPACT === COMPACT - 1) {
      window.endBatch();
      sink += window.ops().length;
      window.clear();
    }
  }
  const ns = Number(process.hrtime.bigint() - t0) / (messages * RECEIVERS);
  if (sink < 0) console.log(sink);
  return ns;
}

// The tables hold no inflight rows: every delivery starts and ends in the window.
const table: TableRows = { inflight: () => false, queue: () => false };
const window = new OpWindow(table, () => {});
let start = 0;
round(window, MESSAGES / 2, start);
start += MESSAGES;
const times: string[] = [];
for (let r = 0; r < ROUNDS; r++) {
  times.push(round(window, MESSAGES, start).toFixed(0));
  start += MESSAGES;
}
const bare = round(undefined, MESSAGES, start);
console.log(`window, fan-out pattern: ns per delivery ${times.join(' ')} (making the ops alone: ${bare.toFixed(0)})`);
