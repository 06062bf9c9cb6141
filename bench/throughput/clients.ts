/** A bench MQTT client over a raw socket: CONNECT/SUBSCRIBE handshakes, delivery counting, PUBACK replies. */
import { Buffer } from 'node:buffer';
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { type Histogram } from './common.js';
import { connectBytes, type ClientOptions, FrameScanner, type FrameSink, openSocket, subscribeBytes } from './wire.js';

/** Counters shared by all subscribers of one generator. */
export interface DeliveryStats {
  delivered: number;
  /** performance.now() of the last delivery. */
  lastDeliveryAt: number;
  hist: Histogram;
}

interface Waiter {
  type: number;
  resolve: (body: Buffer) => void;
  reject: (err: Error) => void;
}

const HANDSHAKE_TIMEOUT_MS = 30_000;

export class BenchClient implements FrameSink {
  readonly socket: net.Socket;
  /** Called for each PUBACK the broker sends (publishers). */
  onAck: (packetId: number) => void = () => {};
  /** Called after every read that delivered at least one PUBLISH. */
  onDelivered: () => void = () => {};
  error: Error | undefined;
  #waiter: Waiter | undefined;
  #acks: number[] = [];
  #delivered = false;
  readonly #connected: Promise<void>;

  constructor(opts: ClientOptions, private readonly stats: DeliveryStats | undefined) {
    const scanner = new FrameScanner(this);
    this.socket = openSocket(opts, scanner, () => this.#afterRead());
    this.#connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('error', (err) => this.#fail(err));
    this.socket.on('close', () => this.#fail(new Error('connection closed by the broker')));
  }

  onPublish(qos: number, packetId: number, sentAtMs: number): void {
    const s = this.stats;
    if (s !== undefined) {
      const now = performance.now();
      s.delivered++;
      s.lastDeliveryAt = now;
      s.hist.recordMs(now - sentAtMs);
    }
    if (qos > 0) this.#acks.push(packetId);
    this.#delivered = true;
  }

  onPuback(packetId: number): void {
    this.onAck(packetId);
  }

  onControl(type: number, body: Buffer): void {
    const w = this.#waiter;
    if (w === undefined || w.type !== type) return;
    this.#waiter = undefined;
    w.resolve(body);
  }

  /** Connects and sends CONNECT; resolves on a successful CONNACK. */
  async handshake(clientId: string): Promise<void> {
    await this.#connected;
    const body = await this.#request(connectBytes(clientId), 2);
    if (body[1] !== 0) throw new Error(`CONNACK refused (${body[1]}) for ${clientId}`);
  }

  async subscribe(filter: string, qos: 0 | 1): Promise<void> {
    const body = await this.#request(subscribeBytes(filter, qos), 9);
    if (body[2] === 0x80) throw new Error(`SUBSCRIBE to ${filter} refused`);
  }

  close(): void {
    this.socket.destroy();
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

  /** One write of all the PUBACKs owed for this read. */
  #afterRead(): void {
    const n = this.#acks.length;
    if (n > 0) {
      const out = Buffer.allocUnsafe(4 * n);
      for (let i = 0; i < n; i++) {
        out[4 * i] = 0x40;
        out[4 * i + 1] = 0x02;
        out.writeUInt16BE(this.#acks[i] as number, 4 * i + 2);
      }
      this.#acks.length = 0;
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
