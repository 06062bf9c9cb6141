/**
 * The bench payload and the loss accounting built on it. Layout of the first 16 bytes of every
 * PUBLISH payload (the rest is filler):
 *   [0, 8)   send time: float64 LE, milliseconds since the epoch with sub-millisecond precision
 *            (performance.timeOrigin + performance.now()), so another process on the same host
 *            can measure latency too;
 *   [8, 12)  stream: uint32 LE, (run tag << 20) | publisher number;
 *   [12, 16) sequence number: uint32 LE, per publisher from 0.
 */
import type { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';

export const HEADER_BYTES = 16;
/** Publishers per run the stream field can tell apart. */
export const MAX_PUBLISHERS = 1 << 20;
/** Most sequence numbers tracked per publisher (a publisher stops there): 8 MB of bits at most. */
export const MAX_SEQ = 1 << 26;

const origin = performance.timeOrigin;

/** Now, in epoch milliseconds with the resolution of performance.now(). */
export function nowMs(): number {
  return origin + performance.now();
}

export function streamId(runTag: number, publisher: number): number {
  return (((runTag & 0xfff) << 20) | (publisher & (MAX_PUBLISHERS - 1))) >>> 0;
}

/** Writes the send time, stream and sequence number at `at` (where the payload starts). */
export function stampPayload(buf: Buffer, at: number, sentMs: number, stream: number, seq: number): void {
  buf.writeDoubleLE(sentMs, at);
  buf.writeUInt32LE(stream, at + 8);
  buf.writeUInt32LE(seq, at + 12);
}

/** The three header fields of a received payload, or undefined when it is too short to carry them. */
export interface Stamp {
  sentMs: number;
  stream: number;
  seq: number;
}

export function readStamp(payload: Buffer, into: Stamp): boolean {
  if (payload.length < HEADER_BYTES) return false;
  into.sentMs = payload.readDoubleLE(0);
  into.stream = payload.readUInt32LE(8);
  into.seq = payload.readUInt32LE(12);
  return true;
}

/** A growable set of sequence numbers (one bit each, at most MAX_SEQ). */
export class SeqSet {
  #words = new Uint32Array(64);
  size = 0;

  /** Adds `seq`; false when it was already there (a duplicate) or out of range. */
  add(seq: number): boolean {
    if (seq >= MAX_SEQ) return false;
    const w = seq >>> 5;
    if (w >= this.#words.length) {
      let n = this.#words.length * 2;
      while (n <= w) n *= 2;
      const grown = new Uint32Array(n);
      grown.set(this.#words);
      this.#words = grown;
    }
    const bit = 1 << (seq & 31);
    const word = this.#words[w] as number;
    if ((word & bit) !== 0) return false;
    this.#words[w] = word | bit;
    this.size++;
    return true;
  }

  has(seq: number): boolean {
    const w = seq >>> 5;
    return w < this.#words.length && ((this.#words[w] as number) & (1 << (seq & 31))) !== 0;
  }

  /** Members of this set that `other` lacks. */
  missingFrom(other: SeqSet): number {
    const a = this.#words;
    const b = other.#words;
    let missing = 0;
    for (let i = 0; i < a.length; i++) {
      const m = ((a[i] as number) & ~(i < b.length ? (b[i] as number) : 0)) >>> 0;
      if (m !== 0) missing += popcount(m);
    }
    return missing;
  }
}

function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/**
 * What each subscriber received from each publisher of this run, against what each publisher
 * had acknowledged (QoS 1/2) or sent (QoS 0). `expect(publisher, subscriber)` declares which
 * deliveries are owed.
 */
export class LossTracker {
  /** Per publisher: acknowledged (or, at QoS 0, written) sequence numbers. */
  readonly #acked: SeqSet[] = [];
  /** Per subscriber, per publisher: received sequence numbers. */
  readonly #received: (SeqSet | undefined)[][] = [];
  /** Per publisher: the subscribers owed each of its messages. */
  readonly #owed: number[][] = [];
  duplicates = 0;
  /** Distinct deliveries of this run's owed messages (acknowledged or not yet). */
  unique = 0;
  /** Deliveries of this run from a publisher number the run does not have. */
  unknown = 0;

  constructor(readonly runTag: number) {}

  expect(publisher: number, subscriber: number): void {
    (this.#owed[publisher] ??= []).push(subscriber);
  }

  acked(publisher: number, seq: number): void {
    (this.#acked[publisher] ??= new SeqSet()).add(seq);
  }

  /** A delivery of `stream`/`seq` to `subscriber`; false when it is not one of this run's. */
  received(subscriber: number, stream: number, seq: number): boolean {
    if (stream >>> 20 !== (this.runTag & 0xfff)) return false;
    const publisher = stream & (MAX_PUBLISHERS - 1);
    if (this.#owed[publisher] === undefined) {
      this.unknown++;
      return true;
    }
    const row = (this.#received[subscriber] ??= []);
    const set = (row[publisher] ??= new SeqSet());
    if (set.add(seq)) this.unique++;
    else this.duplicates++;
    return true;
  }

  /** Deliveries owed for acknowledged messages. */
  get expected(): number {
    let n = 0;
    for (let p = 0; p < this.#owed.length; p++) n += (this.#acked[p]?.size ?? 0) * (this.#owed[p]?.length ?? 0);
    return n;
  }

  /** Owed deliveries (acknowledged, never received). */
  get lost(): number {
    let n = 0;
    const empty = new SeqSet();
    for (let p = 0; p < this.#owed.length; p++) {
      const acked = this.#acked[p];
      if (acked === undefined) continue;
      for (const s of this.#owed[p] ?? []) n += acked.missingFrom(this.#received[s]?.[p] ?? empty);
    }
    return n;
  }
}
