/**
 * Fakes for client tests: timers that move only when told to, and a scripted server that reads
 * the client's packets and answers only what the test sends.
 */
import { duplexPair, type Duplex } from 'node:stream';
import type { ClientTimers } from '../../src/client/index.js';
import { Decoder, encode, type Packet } from '../../src/protocol/index.js';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

export class FakeTimers implements ClientTimers {
  #now = 0;
  #seq = 0;
  readonly #timers = new Set<Timer>();

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer: Timer = { at: this.#now + ms, seq: this.#seq++, fn };
    this.#timers.add(timer);
    return () => this.#timers.delete(timer);
  }

  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, running every timer that falls due, in order (bounded). */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (let i = 0; i < 10_000; i++) {
      let next: Timer | undefined;
      for (const t of this.#timers) if (t.at <= end && (next === undefined || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (next === undefined) break;
      this.#timers.delete(next);
      this.#now = next.at;
      next.fn();
    }
    this.#now = end;
  }
}

/** The server side of a duplex pair, driven by the test. */
export class ScriptedServer {
  /** The end the client is given. */
  readonly client: Duplex;
  readonly #stream: Duplex;
  readonly #decoder = new Decoder();
  readonly #packets: Packet[] = [];
  /** Every packet received, in order. */
  readonly received: Packet[] = [];
  #waiter: (() => void) | undefined;
  #ended = false;
  readonly closed: Promise<void>;

  constructor() {
    const [client, server] = duplexPair();
    this.client = client;
    this.#stream = server;
    server.on('data', (chunk: Buffer) => {
      for (const p of this.#decoder.push(chunk)) {
        this.#packets.push(p);
        this.received.push(p);
      }
      this.#wake();
    });
    // Like a broker: the client's end closes the connection.
    server.once('end', () => server.end());
    this.closed = new Promise((resolve) => {
      const done = (): void => {
        this.#ended = true;
        this.#wake();
        resolve();
      };
      server.once('end', done);
      server.once('close', done);
      // The client destroys its end; a destroyed duplexPair side does not end the other.
      client.once('close', done);
    });
  }

  get version(): number {
    return this.#decoder.protocolVersion;
  }

  send(packet: Packet): void {
    this.#stream.write(encode(packet, this.version));
  }

  /** Ends the server side, as a broker closing the connection does. */
  close(): void {
    this.#stream.end();
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** The next packet from the client, which must be of `type`; fails after `ms` of real time. */
  async expect<T extends Packet['type']>(type: T, ms = 3000): Promise<Extract<Packet, { type: T }>> {
    const deadline = Date.now() + ms;
    for (;;) {
      const p = this.#packets.shift();
      if (p !== undefined) {
        if (p.type !== type) throw new Error(`expected packet type ${type}, got ${JSON.stringify(p)}`);
        return p as Extract<Packet, { type: T }>;
      }
      if (this.#ended) throw new Error('stream ended before a packet arrived');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no packet within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Packets received and not yet taken by `expect`. */
  get unread(): readonly Packet[] {
    return this.#packets;
  }
}
