/**
 * Store benchmark: the cost of durable state.
 * 1. QoS 1-style flows (store the message and queue it; dequeue it and put it inflight; complete
 *    it: three writes per message) for BENCH_MESSAGES (default 100,000) messages through each
 *    store, BENCH_WINDOW (default 256) flows at a time, so writes of one turn share a transaction.
 *    SQLite 'commit' is also run one flow at a time (BENCH_SERIAL messages, default 2,000): one
 *    fsync per write.
 * 2. SQLite file size per queued 128-byte message: 100,000 queued, then the size of the db + WAL
 *    after the checkpoint of close.
 * 3. The time to open() a store holding BENCH_SESSIONS (default 100,000) sessions and
 *    BENCH_QUEUED (default 1,000,000) queued messages.
 * 4. The broker on each store, in process: QoS 1 point-to-point to persistent sessions
 *    (BENCH_PAIRS, default 4, publishers each sending BENCH_BROKER_MESSAGES, default 50,000, to
 *    their own topic with BENCH_BROKER_WINDOW, default 20, PUBLISHes in flight; one subscriber
 *    each, Clean Session 0, acknowledging every delivery), as the throughput benchmark's
 *    p2p-durable without sockets or a load generator: process CPU (user + system, the log's
 *    syncs in the thread pool included) per delivered message, and deliveries per second
 *    (BENCH_BROKER_STORES: which rows, by name, e.g. "memory store,sqlite interval").
 * 5. Fan-out through each store alone, shaped as the broker writes it (fanout-workload.ts): per
 *    turn, 10 messages (128 B payload) each put with its deliveries to 4 of 512 online persistent
 *    sessions (one write, as a turn of PUBLISHes writes them; at most 8 turns wait for their commit, as
 *    publishers wait for their acknowledgements), and the completes of the deliveries of 8 turns
 *    before (a lazy write), one event-loop turn each, for BENCH_FANOUT_TURNS turns (default
 *    6,000): process CPU per delivery, and the bytes of operation log per delivery.
 * 6. open() after a crash that left a full log: a child process (store-crash-writer.ts) writes the
 *    part 5 fan-out workload with completes 100 turns late into a store with the server's 16 MiB
 *    preallocated log until the log is nearly full, and kills itself with SIGKILL; then the time
 *    to open() what it left, twice (a copy each time).
 * Run: npm run bench:store (BENCH_PARTS=flows,size,open,broker,fanout,crash: which parts, all by default).
 * Files go to a temporary directory, removed at the end.
 */
import { Buffer } from 'node:buffer';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { BrokerCore } from '../src/broker/broker.js';
import { MemoryStore, SqliteStore, type Store, type StoredMessage, type StoreOp } from '../src/persistence/index.js';
import { encode, PacketType } from '../src/protocol/index.js';
import { FanoutWorkload } from './fanout-workload.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 100_000);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 256);
const SERIAL = Number(process.env.BENCH_SERIAL ?? 2_000);
const SIZE_MESSAGES = Number(process.env.BENCH_SIZE_MESSAGES ?? 100_000);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 100_000);
const QUEUED = Number(process.env.BENCH_QUEUED ?? 1_000_000);

const root = mkdtempSync(join(os.tmpdir(), 'petrel-store-bench-'));
const payload = Buffer.alloc(128, 0x61);
const CLIENTS = 100;

function message(id: string): StoredMessage {
  return { id, topic: 'sensors/building-1/floor-2/temp', payload, qos: 1, retain: false, properties: undefined, expiresAt: undefined, senderId: 'publisher-1' };
}

async function qos1Flows(store: Store, count: number, window: number): Promise<number> {
  let next = 0;
  async function worker(): Promise<void> {
    while (next < count) {
      const i = next++;
      const id = `m${i}`;
      const clientId = `client-${i % CLIENTS}`;
      const entry = { clientId, seq: i, messageId: id, qos: 1 as const, retain: false, subscriptionIds: undefined };
      await store.write([{ op: 'message', message: message(id) }, { op: 'enqueue', entry }]);
      await store.write([{ op: 'dequeue', clientId, seq: i }, { op: 'inflight', entry: { ...entry, packetId: (i % 65535) + 1, state: 'publish' } }]);
      await store.write([{ op: 'complete', clientId, packetId: (i % 65535) + 1 }]);
    }
  }
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: window }, worker));
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

async function flows(): Promise<void> {
  console.log(`\n1. QoS 1 flows (3 writes per message, 128 B payload)`);
  const runs: { name: string; make: () => Store; count: number; window: number }[] = [
    { name: 'memory', make: () => new MemoryStore(), count: MESSAGES, window: WINDOW },
    { name: 'sqlite commit', make: () => new SqliteStore({ dataDir: join(root, 'flow-commit') }), count: MESSAGES, window: WINDOW },
    { name: 'sqlite interval', make: () => new SqliteStore({ dataDir: join(root, 'flow-interval'), durability: 'interval' }), count: MESSAGES, window: WINDOW },
    { name: 'sqlite commit', make: () => new SqliteStore({ dataDir: join(root, 'flow-serial') }), count: SERIAL, window: 1 },
  ];
  console.log('store            window   messages   seconds     msgs/s   writes/s   transactions   writes/transaction');
  for (const run of runs) {
    const store = run.make();
    await store.open();
    const seconds = await qos1Flows(store, run.count, run.window);
    const stats = store instanceof SqliteStore ? store.stats : undefined;
    console.log(
      `${run.name.padEnd(16)} ${String(run.window).padStart(6)} ${fmt(run.count).padStart(10)} ${seconds.toFixed(2).padStart(9)} ${fmt(run.count / seconds).padStart(10)} ${fmt((3 * run.count) / seconds).padStart(10)}`
      + (stats === undefined ? '' : ` ${fmt(stats.transactions).padStart(14)} ${(stats.writes / stats.transactions).toFixed(1).padStart(20)}`),
    );
    await store.close();
  }
}

function diskUse(files: string[]): { bytes: number; blocks: number } {
  let bytes = 0;
  let blocks = 0;
  for (const f of files) {
    if (!existsSync(f)) continue;
    const st = statSync(f);
    bytes += st.size;
    blocks += st.blocks * 512;
  }
  return { bytes, blocks };
}

async function fileSize(): Promise<void> {
  console.log(`\n2. SQLite file size, ${fmt(SIZE_MESSAGES)} queued 128-byte messages (100 clients)`);
  const dataDir = join(root, 'size');
  const store = new SqliteStore({ dataDir });
  await store.open();
  for (let base = 0; base < SIZE_MESSAGES; base += 1000) {
    const ops: StoreOp[] = [];
    for (let i = base; i < Math.min(SIZE_MESSAGES, base + 1000); i++) {
      ops.push({ op: 'message', message: message(`m${i}`) }, { op: 'enqueue', entry: { clientId: `client-${i % CLIENTS}`, seq: i, messageId: `m${i}`, qos: 1, retain: false, subscriptionIds: undefined } });
    }
    await store.write(ops);
  }
  await store.close();
  const files = [store.path, `${store.path}-wal`, `${store.path}-shm`];
  const { bytes, blocks } = diskUse(files);
  const du = execFileSync('du', ['-k', '-c', ...files.filter((f) => existsSync(f))]).toString().trim().split('\n').pop();
  console.log(`db + wal: ${fmt(bytes)} bytes (${fmt(blocks)} on disk; du: ${du}); per message ${(bytes / SIZE_MESSAGES).toFixed(1)} bytes`);
}

async function openTime(): Promise<void> {
  console.log(`\n3. open() of ${fmt(SESSIONS)} sessions and ${fmt(QUEUED)} queued messages`);
  const dataDir = join(root, 'open');
  const writer = new SqliteStore({ dataDir, durability: 'interval' });
  await writer.open();
  const genStart = process.hrtime.bigint();
  const perSession = Math.ceil(QUEUED / SESSIONS);
  let queued = 0;
  for (let s = 0; s < SESSIONS; s += 1000) {
    const ops: StoreOp[] = [];
    for (let c = s; c < Math.min(SESSIONS, s + 1000); c++) {
      const clientId = `client-${c}`;
      ops.push({ op: 'session', session: { clientId, expiryInterval: 3600, expiresAt: Date.now() + 3_600_000, will: undefined, willAt: undefined } });
      ops.push({ op: 'subscribe', clientId, subscription: { topicFilter: `devices/${c}/#`, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionIdentifier: undefined } });
      for (let k = 0; k < perSession && queued < QUEUED; k++, queued++) {
        const id = `m${queued}`;
        ops.push({ op: 'message', message: message(id) }, { op: 'enqueue', entry: { clientId, seq: k, messageId: id, qos: 1, retain: false, subscriptionIds: undefined } });
      }
    }
    await writer.write(ops);
  }
  await writer.close();
  const genSeconds = Number(process.hrtime.bigint() - genStart) / 1e9;
  const { bytes } = diskUse([writer.path]);
  console.log(`generated in ${genSeconds.toFixed(1)} s, ${fmt(bytes / 1e6)} MB`);
  for (let run = 1; run <= 2; run++) {
    const heapBefore = process.memoryUsage().heapUsed;
    const store = new SqliteStore({ dataDir });
    const start = process.hrtime.bigint();
    const state = await store.open();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
    console.log(
      `open #${run}: ${seconds.toFixed(2)} s; ${fmt(state.sessions.length)} sessions, ${fmt(state.subscriptions.length)} subscriptions, `
      + `${fmt(state.queue.length)} queued, ${fmt(state.messages.size)} messages; heap +${fmt(heapMb)} MB`,
    );
    await store.close();
  }
}

const PAIRS = Number(process.env.BENCH_PAIRS ?? 4);
const BROKER_MESSAGES = Number(process.env.BENCH_BROKER_MESSAGES ?? 50_000);
const BROKER_WINDOW = Number(process.env.BENCH_BROKER_WINDOW ?? 20);
const PARTS = (process.env.BENCH_PARTS ?? 'flows,size,open,broker,fanout,crash').split(',');
const FANOUT_TURNS = Number(process.env.BENCH_FANOUT_TURNS ?? 6_000);
const FANOUT_LAG = Number(process.env.BENCH_FANOUT_LAG ?? 8);

/**
 * One MQTT 3.1.1 client over an in-process stream: `send` hands bytes to the broker; every packet
 * the broker writes is parsed and given to `onPacket` (type, flags, body).
 */
class BenchClient extends Duplex {
  onPacket: (type: number, flags: number, body: Buffer) => void = () => undefined;
  #rest: Buffer | undefined;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    let buf = this.#rest === undefined ? chunk : Buffer.concat([this.#rest, chunk]);
    this.#rest = undefined;
    let pos = 0;
    for (;;) {
      if (pos + 2 > buf.length) break;
      let len = 0;
      let mul = 1;
      let p = pos + 1;
      let whole = false;
      while (p < buf.length) {
        const b = buf[p++]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if (b < 0x80) {
          whole = true;
          break;
        }
      }
      if (!whole || p + len > buf.length) break;
      const first = buf[pos]!;
      this.onPacket(first >> 4, first & 0x0f, buf.subarray(p, p + len));
      pos = p + len;
    }
    if (pos < buf.length) this.#rest = Buffer.from(buf.subarray(pos));
    buf = Buffer.alloc(0);
    cb();
  }
  send(bytes: Buffer): void {
    this.push(bytes);
  }
}

function connectTo(broker: BrokerCore, clientId: string, clean: boolean): Promise<BenchClient> {
  const c = new BenchClient();
  return new Promise((resolve) => {
    c.onPacket = (type) => {
      if (type === PacketType.Connack) resolve(c);
    };
    broker.handle(c);
    c.send(encode({ type: PacketType.Connect, protocolName: 'MQTT', protocolVersion: 4, clean, keepalive: 0, clientId }, 4));
  });
}

/** The broker's QoS 1 p2p to persistent sessions on `store`: CPU µs per delivery and deliveries per second. */
async function brokerRun(store: Store | undefined): Promise<{ cpuUs: number; rate: number }> {
  const broker = new BrokerCore(store === undefined ? {} : { store });
  await broker.restore();
  const subs: BenchClient[] = [];
  const pubs: BenchClient[] = [];
  for (let i = 0; i < PAIRS; i++) {
    const sub = await connectTo(broker, `bench-sub-${i}`, false);
    await new Promise<void>((resolve) => {
      sub.onPacket = (type) => {
        if (type === PacketType.Suback) resolve();
      };
      sub.send(encode({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: `p2p/${i}`, qos: 1 }] }, 4));
    });
    subs.push(sub);
    pubs.push(await connectTo(broker, `bench-pub-${i}`, true));
  }
  const payload = Buffer.alloc(64, 0x61);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(subs.map((sub, i) => new Promise<void>((resolve) => {
    const pub = pubs[i]!;
    const topic = `p2p/${i}`;
    const packet = (n: number): Buffer => encode({
      type: PacketType.Publish, topic, payload, qos: 1, retain: false, dup: false, packetId: (n % 65535) + 1,
    }, 4);
    let sent = 0;
    let received = 0;
    const sendMore = (count: number): void => {
      const out: Buffer[] = [];
      for (let k = 0; k < count && sent < BROKER_MESSAGES; k++) out.push(packet(sent++));
      if (out.length > 0) pub.send(Buffer.concat(out));
    };
    pub.onPacket = (type) => {
      if (type === PacketType.Puback) sendMore(1);
    };
    const acks: Buffer[] = [];
    sub.onPacket = (type, _flags, body) => {
      if (type !== PacketType.Publish) return;
      const topicLength = body.readUInt16BE(0);
      acks.push(Buffer.from([0x40, 2, body[2 + topicLength]!, body[3 + topicLength]!]));
      if (++received === BROKER_MESSAGES) resolve();
      // The acknowledgements of one chunk go back as one write, at the end of the turn.
      if (acks.length === 1) {
        setImmediate(() => {
          sub.send(Buffer.concat(acks));
          acks.length = 0;
        });
      }
    };
    sendMore(BROKER_WINDOW);
  })));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  await broker.closeConnections();
  const delivered = PAIRS * BROKER_MESSAGES;
  return { cpuUs: (cpu.user + cpu.system) / delivered, rate: delivered / seconds };
}

async function brokerFlows(): Promise<void> {
  console.log(`\n4. The broker in process: QoS 1 p2p ${PAIRS}→${PAIRS} to persistent sessions, window ${BROKER_WINDOW}, ${fmt(BROKER_MESSAGES)} messages per publisher`);
  const runs: { name: string; make: () => Store | undefined }[] = [
    { name: 'no store', make: () => undefined },
    { name: 'memory store', make: () => new MemoryStore() },
    { name: 'sqlite commit', make: () => new SqliteStore({ dataDir: mkdtempSync(join(root, 'b-')) }) },
    { name: 'sqlite commit, preallocated log', make: () => new SqliteStore({ dataDir: mkdtempSync(join(root, 'b-')), preallocate: 16 * 1024 * 1024 }) },
    { name: 'sqlite interval', make: () => new SqliteStore({ dataDir: mkdtempSync(join(root, 'b-')), durability: 'interval' }) },
  ];
  // BENCH_BROKER_STORES: the rows to run, by name (comma-separated), all by default.
  const only = process.env.BENCH_BROKER_STORES?.split(',');
  for (let round = 1; round <= 2; round++) {
    for (const { name, make } of runs) {
      if (only !== undefined && !only.includes(name)) continue;
      const { cpuUs, rate } = await brokerRun(make());
      console.log(`round ${round}  ${name.padEnd(32)} ${cpuUs.toFixed(2).padStart(7)} µs CPU/msg  ${fmt(rate).padStart(9)} msg/s  (load ${os.loadavg()[0]?.toFixed(1)})`);
    }
  }
}

/** Part 5: CPU per fan-out delivery and log bytes per delivery through `store` alone. */
async function fanoutRun(store: Store): Promise<{ cpuUs: number; logBytes: number | undefined }> {
  const workload = new FanoutWorkload();
  await store.open();
  await store.write(workload.sessionOps());
  const pending: StoreOp[][] = [];
  const inflight: Promise<void>[] = [];
  const window = 8;
  const cpu0 = process.cpuUsage();
  for (let turn = 0; turn < FANOUT_TURNS; turn++) {
    const { ops, completes } = workload.turn();
    inflight.push(store.write(ops));
    pending.push(completes);
    if (pending.length > FANOUT_LAG) void store.write(pending.shift()!, { lazy: true });
    // One event-loop turn per turn of writes, as in the broker; at most `window` turns wait for their commit.
    if (inflight.length > window) await inflight.shift();
    else await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await Promise.all(inflight);
  await store.write(pending.flat());
  const cpu = process.cpuUsage(cpu0);
  const logBytes = store instanceof SqliteStore ? store.stats.logBytes : undefined;
  await store.close();
  const deliveries = workload.deliveries;
  return { cpuUs: (cpu.user + cpu.system) / deliveries, logBytes: logBytes === undefined ? undefined : logBytes / deliveries };
}

async function fanout(): Promise<void> {
  console.log(`\n5. Fan-out through the store alone: ${fmt(FANOUT_TURNS)} turns of 10 messages × 4 deliveries, completes ${FANOUT_LAG} turns later`);
  const runs: { name: string; make: () => Store }[] = [
    { name: 'memory', make: () => new MemoryStore() },
    { name: 'sqlite interval', make: () => new SqliteStore({ dataDir: mkdtempSync(join(root, 'f-')), durability: 'interval', preallocate: 16 * 1024 * 1024 }) },
    { name: 'sqlite commit', make: () => new SqliteStore({ dataDir: mkdtempSync(join(root, 'f-')), preallocate: 16 * 1024 * 1024 }) },
  ];
  for (let round = 1; round <= 2; round++) {
    for (const { name, make } of runs) {
      const { cpuUs, logBytes } = await fanoutRun(make());
      console.log(`round ${round}  ${name.padEnd(16)} ${cpuUs.toFixed(2).padStart(6)} µs CPU/delivery${logBytes === undefined ? '' : `  ${logBytes.toFixed(1).padStart(6)} log bytes/delivery`}  (load ${os.loadavg()[0]?.toFixed(1)})`);
    }
  }
}

async function crashOpen(): Promise<void> {
  const log = 16 * 1024 * 1024;
  console.log(`\n6. open() after a crash with a nearly full ${log / 1024 / 1024} MiB log (fan-out workload)`);
  const dataDir = join(root, 'crash');
  const writer = fileURLToPath(new URL('./store-crash-writer.js', import.meta.url));
  const child = spawnSync(process.execPath, [writer, dataDir, String(log), String(Math.floor(log * 0.95))], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 });
  if (child.signal !== 'SIGKILL') throw new Error(`the writer ended with ${child.signal ?? child.status}, not SIGKILL`);
  console.log(`writer: ${child.stdout.toString().trim()}`);
  for (let run = 1; run <= 2; run++) {
    const copy = join(root, `crash-${run}`);
    cpSync(dataDir, copy, { recursive: true });
    const store = new SqliteStore({ dataDir: copy, preallocate: log });
    const start = process.hrtime.bigint();
    const state = await store.open({ lazyQueues: true });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    console.log(`open #${run}: ${seconds.toFixed(2)} s; ${fmt(state.sessions.length)} sessions, ${fmt(state.inflight.length)} deliveries in flight, ${fmt(state.messages.size)} messages`);
    await store.close();
  }
}

console.log(`Petrel store benchmark; node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}; files in ${root}`);
try {
  if (PARTS.includes('flows')) await flows();
  if (PARTS.includes('size')) await fileSize();
  if (PARTS.includes('open')) await openTime();
  if (PARTS.includes('broker')) await brokerFlows();
  if (PARTS.includes('fanout')) await fanout();
  if (PARTS.includes('crash')) await crashOpen();
} finally {
  rmSync(root, { recursive: true, force: true });
}
