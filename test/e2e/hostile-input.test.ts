/**
 * Hostile input on every transport: the broker's memory stays bounded, hostile connections are
 * closed, and a well-behaved client keeps working meanwhile.
 *
 * The broker runs as a child process (`node build/src/bin/petrel.js`), so its resident set size
 * (/proc/<pid>/status) is its own: the bound below is on the peak (VmHWM) over the whole run,
 * against VmRSS before the first hostile byte. Over TCP and over WebSocket, one after the other:
 *  a) a PUBLISH fixed header announcing a 256 MB Remaining Length, then up to 256 MB of body
 *     (until the broker closes the connection; 5.0 may get DISCONNECT 0x95 first);
 *  b) 200 connections that send half a CONNECT, or a CONNECT and half a PUBLISH, and stall (the
 *     broker closes them: connect timeout, keep alive), and a connection trickling one large
 *     PUBLISH a byte per write (WebSocket: two connections, a million one-byte frames each), never
 *     complete until the end, when its PUBACK proves every trickled byte was read;
 *  c) WebSocket only, raw frames on a TCP socket after a valid upgrade: a binary frame header with
 *     a 64-bit length of 2^40, and a 10 MB frame (above maxPayload): closed with 1009;
 *  d) 10,000 unique filters from one MQTT.js client, 100 per SUBSCRIBE, all granted.
 * All the while an MQTT.js client publishes QoS 1 to itself and measures the round trip.
 *
 * How the bound was checked to fail: with `broker.maxPacketSize: 268435460` added to the config
 * written below (the broker then buffers the 256 MB packets), the peak grew by ~530 MB and the
 * test failed on RSS_BOUND_MB; with the decoder's joining of small chunks removed
 * (src/protocol/decoder.ts `#join`), the broker held ~190 bytes per trickled byte and the test
 * failed on the same bound after the WebSocket trickle.
 *
 * Timings (round trip, this process's event-loop delay) are reported as diagnostics, never
 * asserted; the only time bounds are generous liveness timeouts on waits.
 */
import { connect as tlsConnect } from 'node:tls';
import { type CertFiles, makeCerts } from '../helpers/certs.js';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { after, before, describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from 'mqtt';
import { WebSocket } from 'ws';
import { type Broker, createBroker } from '../../src/petrel.js';
import { Decoder, encode, type Packet, PacketType, ReasonCode } from '../../src/protocol/index.js';
import { ManualClock, ManualTicker } from '../../src/session/clock.js';
import { connectClient, endAll, withTimeout } from '../helpers/mqttjs.js';

/** Compiled CLI, next to this compiled test: build/test/e2e → build/src/bin. */
const BIN = fileURLToPath(new URL('../../src/bin/petrel.js', import.meta.url));
const HOST = '127.0.0.1';
/** Peak RSS growth allowed for the whole run. Buffering one 256 MB packet passes it. */
const RSS_BOUND_MB = 200;
/** Liveness bounds (generous: a loaded 2-core machine). */
const START_MS = 15_000;
const CLOSE_MS = 15_000;
const LIVE_MS = 60_000;
/** The broker's connect timeout in the config below (seconds): half CONNECTs are closed by it. */
const CONNECT_TIMEOUT_S = 2;
const HALF_CONNECTIONS = 200;
const FILTERS = 10_000;
const FILTERS_PER_SUBSCRIBE = 100;
/** Largest Remaining Length (a Variable Byte Integer of four bytes): 256 MB. */
const HUGE_REMAINING = 268_435_455;
const CHUNK = 64 * 1024;

interface Petrel {
  child: ChildProcess;
  pid: number;
  ports: Record<'tcp' | 'ws', number>;
  exited: Promise<void>;
}

/** Starts the CLI with `config` (JSON) and resolves once both listeners logged `listening`. */
async function startPetrel(t: TestContext, config: object): Promise<Petrel> {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-hostile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'petrel.json');
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath,
    [BIN, '--port', '0', '--ws-port', '0', '--http-port', 'off', '--host', HOST, '--config', file, '--data-dir', join(dir, 'data')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    // Stopped by its PID only.
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    await withTimeout(exited, 5000, 'the broker process to exit');
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => { stderr += s.slice(0, 4096); });
  const ports: Partial<Record<string, number>> = {};
  let pending = '';
  let found = false;
  // The log is read until both records are seen, then drained unread (a full pipe would block the broker).
  await withTimeout(new Promise<void>((resolve, reject) => {
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      if (found) return;
      pending += s;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const r = JSON.parse(line) as Record<string, unknown>;
        if (r.msg === 'listening' && typeof r.type === 'string' && typeof r.port === 'number') ports[r.type] = r.port;
      }
      if (ports.tcp !== undefined && ports.ws !== undefined) {
        found = true;
        resolve();
      }
    });
    void exited.then(() => reject(new Error(`petrel exited before listening: ${stderr}`)));
  }), START_MS, 'petrel to log its two listening records');
  assert.ok(child.pid !== undefined);
  return { child, pid: child.pid, ports: { tcp: ports.tcp as number, ws: ports.ws as number }, exited };
}

/** VmRSS and VmHWM (peak) of a process, in MB. */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] as number;
}

const round = (n: number): number => Math.round(n * 10) / 10;

// ---- packets ----------------------------------------------------------------------------------

function connectBytes(clientId: string, version: 4 | 5, keepalive = 0): Buffer {
  return encode({ type: PacketType.Connect, protocolVersion: version, protocolName: 'MQTT', clientId, clean: true, keepalive }, version);
}

function publishBytes(topic: string, payloadLength: number, packetId: number): Buffer {
  return encode({
    type: PacketType.Publish, topic, payload: Buffer.alloc(payloadLength, 0x61), qos: 1, retain: false, dup: false, packetId,
  }, 4);
}

/** A PUBLISH fixed header announcing HUGE_REMAINING bytes (0xFF 0xFF 0xFF 0x7F), then the start of a body. */
function hugePublishStart(): Buffer {
  return Buffer.concat([Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, 0x74]), Buffer.alloc(1024, 0x62)]);
}

/** The packets in `bytes` (a server's output), as a `version` client decodes them. */
function packetsIn(bytes: Buffer, version: 4 | 5): Packet[] {
  return new Decoder({ protocolVersion: version }).push(bytes);
}

/** What a 5.0 client may see before a too-large packet closes it: CONNACK, then at most DISCONNECT 0x95. */
function assertTooLargeAnswer(bytes: Buffer): void {
  for (const p of packetsIn(bytes, 5)) {
    if (p.type === PacketType.Connack) continue;
    assert.equal(p.type, PacketType.Disconnect, `only CONNACK and DISCONNECT before the close, got type ${p.type}`);
    assert.equal(p.reasonCode, ReasonCode.PacketTooLarge);
  }
}

// ---- raw sockets ------------------------------------------------------------------------------

/** A TCP socket that records what it receives and when it closed. */
class Raw {
  readonly received: Buffer[] = [];
  readonly closed: Promise<void>;
  #arrivals: (() => void) | undefined;

  constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.#arrivals?.();
    });
  }

  static async open(port: number): Promise<Raw> {
    const socket = netConnect({ port, host: HOST });
    socket.setNoDelay(true);
    await withTimeout(new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }), START_MS, 'a TCP connection');
    return new Raw(socket);
  }

  get bytes(): Buffer {
    return Buffer.concat(this.received);
  }

  get open(): boolean {
    return !this.socket.destroyed;
  }

  /** Resolves once `check` holds over the bytes received (re-checked on each arrival); bounded. */
  until(check: (bytes: Buffer) => boolean, what: string, ms = LIVE_MS): Promise<void> {
    return withTimeout(new Promise<void>((resolve, reject) => {
      const test = (): void => {
        if (check(this.bytes)) {
          this.#arrivals = undefined;
          resolve();
        }
      };
      this.#arrivals = test;
      void this.closed.then(() => {
        if (!check(this.bytes)) reject(new Error(`closed while waiting for ${what}`));
      });
      test();
    }), ms, what);
  }

  /** Writes and waits until the bytes are handed to the kernel; false once the socket failed. */
  write(bytes: Buffer): Promise<boolean> {
    if (this.socket.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(bytes, (err) => resolve(err === undefined || err === null)));
  }

  waitClosed(what: string, ms = CLOSE_MS): Promise<void> {
    return withTimeout(this.closed, ms, what);
  }
}

/** Writes `first`, then `chunk` repeatedly until `total` bytes are written or the socket fails; bounded in time. */
async function flood(write: (b: Buffer) => Promise<boolean>, first: Buffer, chunk: Buffer, total: number): Promise<number> {
  const deadline = Date.now() + LIVE_MS;
  let sent = 0;
  if (!(await write(first))) return sent;
  sent += first.length;
  while (sent < total && Date.now() < deadline) {
    if (!(await write(chunk))) break;
    sent += chunk.length;
  }
  return sent;
}

// ---- raw WebSocket (frames written by hand) ----------------------------------------------------

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A client frame header (FIN set, masked with a zero key, so the payload goes as is). */
function frameHeader(length: number, opcode = 2): Buffer {
  if (length < 126) return Buffer.from([0x80 | opcode, 0x80 | length, 0, 0, 0, 0]);
  if (length < 65536) {
    const h = Buffer.from([0x80 | opcode, 0x80 | 126, 0, 0, 0, 0, 0, 0]);
    h.writeUInt16BE(length, 2);
    return h;
  }
  const h = Buffer.alloc(14);
  h[0] = 0x80 | opcode;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(length), 2);
  return h;
}

function frame(payload: Buffer): Buffer {
  return Buffer.concat([frameHeader(payload.length), payload]);
}

interface ServerFrame {
  opcode: number;
  payload: Buffer;
}

/** The whole frames the server sent (unmasked, lengths below 2^32). */
function serverFrames(bytes: Buffer): ServerFrame[] {
  const out: ServerFrame[] = [];
  let pos = 0;
  while (pos + 2 <= bytes.length) {
    const opcode = (bytes[pos] as number) & 0x0f;
    let len = (bytes[pos + 1] as number) & 0x7f;
    let at = pos + 2;
    if (len === 126) {
      if (at + 2 > bytes.length) break;
      len = bytes.readUInt16BE(at);
      at += 2;
    } else if (len === 127) {
      if (at + 8 > bytes.length) break;
      len = Number(bytes.readBigUInt64BE(at));
      at += 8;
    }
    if (at + len > bytes.length) break;
    out.push({ opcode, payload: bytes.subarray(at, at + len) });
    pos = at + len;
  }
  return out;
}

/** The MQTT bytes in the server's binary frames. */
function mqttBytes(bytes: Buffer): Buffer {
  return Buffer.concat(serverFrames(bytes).filter((f) => f.opcode === 2).map((f) => f.payload));
}

/** The status code of the server's close frame, if it sent one. */
function closeCode(bytes: Buffer): number | undefined {
  const close = serverFrames(bytes).find((f) => f.opcode === 8);
  return close !== undefined && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : undefined;
}

/** A TCP socket upgraded to WebSocket by hand (path /mqtt, subprotocol mqtt); `received` holds what follows the 101. */
async function openRawWs(port: number): Promise<Raw> {
  const raw = await Raw.open(port);
  const key = randomBytes(16).toString('base64');
  raw.socket.write(`GET /mqtt HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
    + `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n`);
  await raw.until((b) => b.includes('\r\n\r\n'), 'the upgrade response', START_MS);
  const all = raw.bytes;
  const end = all.indexOf('\r\n\r\n') + 4;
  const head = all.subarray(0, end).toString('latin1');
  assert.match(head, /^HTTP\/1\.1 101 /);
  const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
  assert.ok(head.includes(`Sec-WebSocket-Accept: ${accept}`), head);
  assert.match(head, /Sec-WebSocket-Protocol: mqtt\r\n/i);
  raw.received.splice(0, raw.received.length, all.subarray(end));
  return raw;
}

// ---- the well-behaved client -------------------------------------------------------------------

interface GoodRun {
  sent: number;
  received: number;
  rtts: number[];
}

/** Publishes QoS 1 to itself, one at a time, until `stop()` says so (bounded in count); each message must come back. */
async function runGoodClient(client: MqttClient, stop: () => boolean): Promise<GoodRun> {
  const run: GoodRun = { sent: 0, received: 0, rtts: [] };
  const topic = 'good/echo';
  let arrived: (() => void) | undefined;
  client.on('message', (t) => {
    if (t !== topic) return;
    run.received++;
    arrived?.();
  });
  await client.subscribeAsync(topic, { qos: 1 });
  for (let i = 0; i < 100_000 && (!stop() || i < 20); i++) {
    const start = performance.now();
    const back = new Promise<void>((resolve) => { arrived = resolve; });
    await client.publishAsync(topic, `m${i}`, { qos: 1 });
    run.sent++;
    await withTimeout(back, LIVE_MS, `the good client's message ${i} to come back`);
    run.rtts.push(performance.now() - start);
  }
  return run;
}

// ---- the hostile phases ------------------------------------------------------------------------

/** a) TCP: 256 MB announced; the broker closes without reading (or holding) the body. */
async function hugeLengthTcp(port: number): Promise<number> {
  const raw = await Raw.open(port);
  const sent = await flood((b) => raw.write(b), Buffer.concat([connectBytes('huge-tcp', 5), hugePublishStart()]),
    Buffer.alloc(CHUNK, 0x63), HUGE_REMAINING);
  await raw.waitClosed('the 256 MB PUBLISH connection (TCP) to be closed');
  assertTooLargeAnswer(raw.bytes);
  return sent;
}

/** a) WebSocket: the same, the body in 64 KB frames. */
async function hugeLengthWs(port: number): Promise<number> {
  const raw = await openRawWs(port);
  const sent = await flood((b) => raw.write(b), Buffer.concat([frame(connectBytes('huge-ws', 5)), frame(hugePublishStart())]),
    frame(Buffer.alloc(CHUNK, 0x63)), HUGE_REMAINING);
  await raw.waitClosed('the 256 MB PUBLISH connection (WebSocket) to be closed');
  assertTooLargeAnswer(mqttBytes(raw.bytes));
  return sent;
}

/** b) Half packets: half a CONNECT, or CONNECT (keep alive 1 s) and half a PUBLISH; all stall until the broker closes them. */
async function halfPackets(port: number, ws: boolean, tag: string): Promise<Raw[]> {
  const wrap = (b: Buffer): Buffer => (ws ? frame(b) : b);
  const conns: Raw[] = [];
  for (let i = 0; i < HALF_CONNECTIONS; i++) {
    const raw = ws ? await openRawWs(port) : await Raw.open(port);
    conns.push(raw);
    if (i % 2 === 0) {
      const connect = connectBytes(`${tag}-c${i}`, 4);
      raw.socket.write(wrap(connect.subarray(0, connect.length >> 1)));
    } else {
      const publish = publishBytes(`${tag}/half`, 16 * 1024, 1);
      raw.socket.write(Buffer.concat([wrap(connectBytes(`${tag}-p${i}`, 4, 1)), wrap(publish.subarray(0, publish.length >> 1))]));
    }
  }
  return conns;
}

/**
 * b) The trickler: one PUBLISH of ~1 MB sent a byte per write (TCP) or per frame (WebSocket);
 * the last bytes complete it and its PUBACK proves the broker read all of them.
 */
async function trickle(port: number, ws: boolean, tag: string, pieces: number): Promise<void> {
  const raw = ws ? await openRawWs(port) : await Raw.open(port);
  const publish = publishBytes(`${tag}/trickle`, 1_000_000, 7);
  assert.ok(pieces < publish.length);
  const connect = connectBytes(tag, 4);
  const mqttIn = (): Buffer => (ws ? mqttBytes(raw.bytes) : raw.bytes);
  await raw.write(ws ? frame(connect) : connect);
  await raw.until(() => packetsIn(mqttIn(), 4).some((p) => p.type === PacketType.Connack), `${tag} CONNACK`);
  if (ws) {
    // One-byte frames, written 10,000 at a time (7 bytes each on the wire).
    const batch = 10_000;
    for (let done = 0; done < pieces && raw.open; done += batch) {
      const n = Math.min(batch, pieces - done);
      const bytes = Buffer.alloc(n * 7);
      for (let j = 0; j < n; j++) {
        frameHeader(1).copy(bytes, j * 7);
        bytes[j * 7 + 6] = publish[done + j] as number;
      }
      assert.ok(await raw.write(bytes), `${tag}: the trickle was cut off`);
    }
    assert.ok(await raw.write(frame(publish.subarray(pieces))));
  } else {
    for (let i = 0; i < pieces; i++) {
      // Every 100th write waits for its callback: the writes stay small and spread over turns.
      if (i % 100 === 99) assert.ok(await raw.write(publish.subarray(i, i + 1)), `${tag}: the trickle was cut off`);
      else raw.socket.write(publish.subarray(i, i + 1));
    }
    assert.ok(await raw.write(publish.subarray(pieces)));
  }
  await raw.until(() => packetsIn(mqttIn(), 4).some((p) => p.type === PacketType.Puback && p.packetId === 7), `${tag} PUBACK`);
  raw.socket.destroy();
}

/** c) A raw frame header claiming `length` bytes, then up to `body` bytes of it: closed with 1009 (message too big). */
async function hugeFrame(port: number, length: number, body: number, what: string): Promise<void> {
  const raw = await openRawWs(port);
  await flood((b) => raw.write(b), frameHeader(length), Buffer.alloc(CHUNK, 0x64), body);
  await raw.waitClosed(`the connection sending ${what} to be closed`);
  assert.equal(closeCode(raw.bytes), 1009, `${what}: close frame 1009`);
}

/** d) FILTERS unique filters from one MQTT.js client, FILTERS_PER_SUBSCRIBE per SUBSCRIBE; every one granted. */
async function manyFilters(url: string, tag: string, clients: MqttClient[]): Promise<void> {
  const client = await connectClient(url, 4, { clientId: `${tag}-subs` });
  clients.push(client);
  for (let s = 0; s < FILTERS / FILTERS_PER_SUBSCRIBE; s++) {
    const filters = Array.from({ length: FILTERS_PER_SUBSCRIBE }, (_, j) => `${tag}/f/${s}/${j}/+`);
    const granted = await withTimeout(client.subscribeAsync(filters, { qos: 1 }), LIVE_MS, `${tag} SUBACK ${s}`);
    assert.equal(granted.length, FILTERS_PER_SUBSCRIBE);
    assert.ok(granted.every((g) => g.qos === 1), `${tag}: every filter granted`);
  }
}

describe('hostile input over TCP and WebSocket: memory stays bounded, hostile connections are closed', () => {
  test('256 MB lengths, half packets, trickles, huge WebSocket frames, 10,000 filters; a good client keeps working', async (t) => {
    const petrel = await startPetrel(t, { broker: { connectTimeout: CONNECT_TIMEOUT_S } });
    const clients: MqttClient[] = [];
    t.after(() => endAll(clients));
    const good = await connectClient(`mqtt://${HOST}:${petrel.ports.tcp}`, 4, { clientId: 'good' });
    clients.push(good);
    const base = memoryOf(petrel.pid);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    let hostileDone = false;
    const goodRun = runGoodClient(good, () => hostileDone);
    // On a failure below the loop ends with the broker: that rejection is not this test's error.
    goodRun.catch(() => undefined);
    /** The bound holds after every phase: a failure names the phase that broke it. */
    const checkMemory = (phase: string): void => {
      const growth = memoryOf(petrel.pid).peak - base.rss;
      assert.ok(growth < RSS_BOUND_MB, `after ${phase}: broker RSS grew by ${round(growth)} MB (peak), bound ${RSS_BOUND_MB} MB`);
    };
    const sent: Record<string, number> = {};
    const halfOpen: Raw[] = [];
    try {
      for (const type of ['tcp', 'ws'] as const) {
        const port = petrel.ports[type];
        const ws = type === 'ws';
        sent[`huge-${type}`] = ws ? await hugeLengthWs(port) : await hugeLengthTcp(port);
        checkMemory(`the 256 MB PUBLISH (${type})`);
        halfOpen.push(...await halfPackets(port, ws, `half-${type}`));
        // WebSocket: two tricklers at once, a million one-byte frames each.
        if (ws) await Promise.all([trickle(port, ws, 'trickle-ws-1', 1_000_000), trickle(port, ws, 'trickle-ws-2', 1_000_000)]);
        else await trickle(port, ws, 'trickle-tcp', 20_000);
        checkMemory(`the half packets and the trickle (${type})`);
        if (ws) {
          await hugeFrame(port, 2 ** 40, 1024, 'a frame header of 2^40 bytes');
          await hugeFrame(port, 10 * 1024 * 1024, 10 * 1024 * 1024, 'a 10 MB frame');
          checkMemory('the huge frames (ws)');
        }
        await manyFilters(ws ? `ws://${HOST}:${port}/mqtt` : `mqtt://${HOST}:${port}`, `subs-${type}`, clients);
        checkMemory(`${FILTERS} filters (${type})`);
      }
      // Half CONNECTs meet the connect timeout, half PUBLISHes keep alive (1.5 s): the broker closes all of them.
      await withTimeout(Promise.all(halfOpen.map((c) => c.closed)), CLOSE_MS + CONNECT_TIMEOUT_S * 1000,
        `the ${halfOpen.length} stalled half-packet connections to be closed by the broker`);
    } finally {
      hostileDone = true;
      for (const c of halfOpen) c.socket.destroy();
    }
    const run = await withTimeout(goodRun, LIVE_MS, 'the good client to finish');
    loop.disable();
    const end = memoryOf(petrel.pid);
    const growth = end.peak - base.rss;
    const rtts = [...run.rtts].sort((a, b) => a - b);
    t.diagnostic(`broker RSS: ${round(base.rss)} MB before, peak ${round(end.peak)} MB (+${round(growth)} MB; bound ${RSS_BOUND_MB} MB), ${round(end.rss)} MB at the end`);
    t.diagnostic(`bytes written before the broker closed the 256 MB PUBLISH: TCP ${sent['huge-tcp']}, WebSocket ${sent['huge-ws']}`);
    // Soft bounds (reported, not asserted): round trip p99 below 500 ms, event-loop delay p99 below 100 ms.
    t.diagnostic(`good client: ${run.sent} QoS 1 round trips, p50 ${round(percentile(rtts, 50))} ms, p99 ${round(percentile(rtts, 99))} ms, `
      + `max ${round(percentile(rtts, 100))} ms (soft bound p99 < 500 ms)`);
    t.diagnostic(`test process event-loop delay: p99 ${round(loop.percentile(99) / 1e6)} ms, max ${round(loop.max / 1e6)} ms (soft bound p99 < 100 ms)`);
    assert.ok(run.sent >= 20);
    assert.equal(run.received, run.sent, 'every message of the good client came back');
    assert.ok(growth < RSS_BOUND_MB, `broker RSS grew by ${round(growth)} MB (peak), bound ${RSS_BOUND_MB} MB`);
  });
});

// ---- connect timeout, in process with a manual clock -------------------------------------------

/** Resolves with the broker-side stream of the next connection a listener hands to `broker`. */
function nextAccepted(broker: Broker): Promise<Duplex> {
  const handle = broker.handle.bind(broker);
  return withTimeout(new Promise<Duplex>((resolve) => {
    broker.handle = (stream, meta) => {
      broker.handle = handle;
      handle(stream, meta);
      resolve(stream);
    };
  }), START_MS, 'the listener to hand the connection to the broker');
}

describe('a connection that never sends CONNECT is closed at the connect timeout, on every listener type', () => {
  let certs: CertFiles;
  before(() => {
    certs = makeCerts();
  });
  after(() => certs.cleanup());
  for (const type of ['tcp', 'ws', 'tls', 'wss'] as const) {
    const stage = type === 'ws' ? ' (after the WebSocket upgrade)' : type === 'tls' ? ' (after the TLS handshake)' : type === 'wss' ? ' (after TLS and the upgrade)' : '';
    test(`${type}${stage}: still open at 4.9 s, closed at 5 s`, async (t) => {
      const clock = new ManualClock(0);
      const ticker = new ManualTicker();
      const broker = createBroker({ clock, ticker, connectTimeout: 5 });
      t.after(() => broker.close());
      const secure = type === 'tls' || type === 'wss';
      const listener = await broker.listen({ type, port: 0, host: HOST, ...(secure ? { cert: certs.cert, key: certs.key } : {}) });
      const accepted = nextAccepted(broker);
      let closed: Promise<void>;
      if (type === 'tcp') {
        const raw = await Raw.open(listener.port);
        closed = raw.closed;
        t.after(() => raw.socket.destroy());
      } else if (type === 'tls') {
        const socket = tlsConnect({ host: HOST, port: listener.port, ca: certs.ca, servername: 'localhost' });
        socket.on('error', () => undefined);
        closed = new Promise((resolve) => socket.once('close', () => resolve()));
        t.after(() => socket.destroy());
        await withTimeout(new Promise((resolve) => socket.once('secureConnect', resolve)), START_MS, 'the TLS handshake');
      } else {
        const ws = new WebSocket(`${type}://${HOST}:${listener.port}/mqtt`, 'mqtt', { ca: certs.ca });
        closed = new Promise((resolve) => ws.once('close', () => resolve()));
        ws.on('error', () => undefined);
        t.after(() => ws.terminate());
        await withTimeout(new Promise<void>((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('unexpected-response', () => reject(new Error('upgrade refused')));
        }), START_MS, 'the WebSocket upgrade');
        assert.equal(ws.protocol, 'mqtt');
      }
      const stream = await accepted;
      for (let ms = 100; ms <= 4900; ms += 100) {
        clock.advance(100);
        ticker.tick();
      }
      // The broker ends the stream (and destroys it shortly after if the peer does not close its side).
      assert.equal(stream.writableEnded || stream.destroyed, false, 'still open before the connect timeout');
      clock.advance(100);
      ticker.tick();
      assert.equal(stream.writableEnded || stream.destroyed, true, 'closed at the connect timeout (5 s)');
      await withTimeout(closed, CLOSE_MS, `the ${type} client to see the close`);
    });
  }
});
