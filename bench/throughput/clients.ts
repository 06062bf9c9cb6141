/**
 * A bench MQTT client over a raw socket: CONNECT/SUBSCRIBE handshakes, delivery counting with
 * duplicate detection, and the QoS 1/2 replies (PUBACK, PUBREC, PUBREL, PUBCOMP).
 */
import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { QoS } from '../../src/protocol/index.js';
import { type Histogram } from './common.js';
import {
  connectBytes, type ClientOptions, decodeFrame, FrameScanner, type FrameSink, isConnack, isSuback, openSocket, subscribeBytes,
} from './wire.js';

/** Counters shared by all subscribers of one generator. */
export interface DeliveryStats {
  delivered: number;
  duplicates: number;
  topicErrors: number;
  /** performance.now() of the last delivery. */
  lastDeliveryAt: number;
  /** Latency of the messages sent from `steadyFrom` on (after the warm-up). */
  hist: Histogram;
  /** Latency of every message, warm-up included. */
  histAll: Histogram;
  /** performance.now() from which a message's latency counts as steady state (Flow.run sets it). */
  steadyFrom: number;
}

interface Waiter {
  type: number;
  resolve: (frame: Buffer) => void;
  reject: (err: Error) => void;
}

const HANDSHAKE_TIMEOUT_MS = 30_000;
const PUBACK = 0x40;
const PUBREC = 0x50;
const PUBREL = 0x62;
const PUBCOMP = 0x70;

export interface BenchClientOptions extends ClientOptions {
  version: 4 | 5;
  /** 5.0: Topic Alias Maximum sent in CONNECT (0: left out). */
  topicAliasMaximum: number;
  /** Connect with a persistent session (Clean Session 0). */
  persistent?: boolean;
  /** The only topic this client will receive (checked on every delivery); undefined: not checked. */
  expectedTopic?: string;
}

export class BenchClient implements FrameSink {
  readonly socket: Duplex;
  readonly version: 4 | 5;
  /**
   * Publishers: a QoS 1/2 acknowledgement. `first`: PUBACK or PUBREC (the broker's answer to
   * the PUBLISH), `accepted` false for a failure reason code; `done` once the exchange is over
   * (PUBACK, PUBCOMP, refused PUBREC).
   */
  onPublisherAck: (packetId: number, first: boolean, accepted: boolean, done: boolean) => void = () => {};
  /** Called after every read that delivered at least one PUBLISH. */
  onDelivered: () => void = () => {};
  /** Receive Maximum from the broker's CONNACK (5.0; 65535 when absent or 3.1.1). */
  receiveMaximum = 65535;
  error: Error | undefined;
  #waiter: Waiter | undefined;
  /** Replies owed for this read: pairs of (first byte, packet id). */
  #replies: number[] = [];
  #delivered = false;
  /** Per stream id: a bitset of the sequence numbers received. */
  readonly #seen = new Map<number, Uint8Array>();
  readonly #connected: Promise<void>;
  readonly #aliasMaximum: number;
  readonly #persistent: boolean;
  readonly #scanner: FrameScanner;

  constructor(opts: BenchClientOptions, private readonly stats: DeliveryStats | undefined) {
    this.version = opts.version;
    this.#aliasMaximum = opts.topicAliasMaximum;
    this.#persistent = opts.persistent ?? false;
    const expected = opts.expectedTopic === undefined ? undefined : Buffer.from(opts.expectedTopic);
    const scanner = new FrameScanner(this, opts.version, expected, opts.version === 5 ? opts.topicAliasMaximum : 0);
    this.#scanner = scanner;
    const conn = openSocket(opts, scanner, () => this.#afterRead());
    this.socket = conn.stream;
    this.#connected = conn.open;
    // Rejections are reported through #fail and the handshake.
    this.#connected.catch(() => {});
    this.socket.on('error', (err) => this.#fail(err));
    this.socket.on('close', () => this.#fail(new Error('connection closed by the broker')));
  }

  onPublish(qos: number, packetId: number, sentAtMs: number, stream: number, seq: number, topicOk: boolean): void {
    const s = this.stats;
    if (s !== undefined) {
      const now = performance.now();
      s.delivered++;
      s.lastDeliveryAt = now;
      const latency = now - sentAtMs;
      s.histAll.recordMs(latency);
      if (sentAtMs >= s.steadyFrom) s.hist.recordMs(latency);
      if (!topicOk) s.topicErrors++;
      if (!this.#mark(stream, seq)) s.duplicates++;
    }
    if (qos === 1) this.#replies.push(PUBACK, packetId);
    else if (qos === 2) this.#replies.push(PUBREC, packetId);
    this.#delivered = true;
  }

  onAck(type: number, packetId: number, reason: number): void {
    const accepted = reason < 0x80;
    if (type === 5) {
      if (accepted) this.#replies.push(PUBREL, packetId);
      this.onPublisherAck(packetId, true, accepted, !accepted);
    } else {
      this.onPublisherAck(packetId, type === 4, accepted, true);
    }
  }

  onPubrel(packetId: number): void {
    this.#replies.push(PUBCOMP, packetId);
  }

  onControl(type: number, frame: Buffer): void {
    const w = this.#waiter;
    if (w === undefined || w.type !== type) return;
    this.#waiter = undefined;
    w.resolve(frame);
  }

  /** Connects and sends CONNECT; resolves on a successful CONNACK. */
  async handshake(clientId: string): Promise<void> {
    await this.#connected;
    const frame = await this.#request(connectBytes(clientId, this.version, this.#aliasMaximum, this.#persistent), 2);
    const p = decodeFrame(frame, this.version);
    if (!isConnack(p)) throw new Error(`bad CONNACK for ${clientId}`);
    if (p.reasonCode !== 0) throw new Error(`CONNACK refused (0x${p.reasonCode.toString(16)}) for ${clientId}`);
    this.receiveMaximum = p.properties?.receiveMaximum ?? 65535;
  }

  async subscribe(filter: string, qos: QoS): Promise<void> {
    const frame = await this.#request(subscribeBytes(filter, qos, this.version), 9);
    const p = decodeFrame(frame, this.version);
    if (!isSuback(p)) throw new Error(`bad SUBACK for ${filter}`);
    const code = p.reasonCodes[0] ?? 0x80;
    if (code >= 0x80) throw new Error(`SUBSCRIBE to ${filter} refused (0x${code.toString(16)})`);
    if (code !== qos) throw new Error(`SUBSCRIBE to ${filter} granted QoS ${code}, asked ${qos}`);
  }

  /** 5.0: deliveries that carried only a topic alias. */
  get aliasOnly(): number {
    return this.#scanner.aliasOnly;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Records (stream, seq); false when it had been received before. */
  #mark(stream: number, seq: number): boolean {
    let bits = this.#seen.get(stream);
    const byte = seq >>> 3;
    if (bits === undefined || byte >= bits.length) {
      const grown = new Uint8Array(Math.max(256, (byte + 1) * 2, bits === undefined ? 0 : bits.length * 2));
      if (bits !== undefined) grown.set(bits);
      bits = grown;
      this.#seen.set(stream, bits);
    }
    const m = 1 << (seq & 7);
    const v = bits[byte] as number;
    if ((v & m) !== 0) return false;
    bits[byte] = v | m;
    return true;
  }

  #request(bytes: Buffer, replyType: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.error !== undefined) { reject(this.error); return; }
      const timer = setTimeout(() => this.#fail(new Error(`no reply of type ${replyType} in time`)), HANDSHAKE_TIMEOUT_MS);
      const done = (fn: () => void): void => { clearTimeout(timer); fn(); };
      this.#waiter = {
        type: replyType,
        resolve: (b) => done(() => resolve(b)),
        reject: (e) => done(() => reject(e)),
      };
      this.socket.write(bytes);
    });
  }

  #fail(err: Error): void {
    this.error ??= err;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(err);
  }

  /** One write of all the replies owed for this read. */
  #afterRead(): void {
    const r = this.#replies;
    const n = r.length >> 1;
    if (n > 0) {
      const out = Buffer.allocUnsafe(4 * n);
      for (let i = 0; i < n; i++) {
        out[4 * i] = r[2 * i] as number;
        out[4 * i + 1] = 0x02;
        out.writeUInt16BE(r[2 * i + 1] as number, 4 * i + 2);
      }
      r.length = 0;
      if (!this.socket.destroyed) this.socket.write(out);
    }
    if (this.#delivered) {
      this.#delivered = false;
      this.onDelivered();
    }
  }
}

/** Runs `fn` over `items` with at most `concurrency` at a time; rejects on the first failure. */
export async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  const workers: Promise<void>[] = [];
  for (let w = 0; w < Math.min(concurrency, items.length); w++) workers.push(worker());
  await Promise.all(workers);
}
