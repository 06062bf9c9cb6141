/**
 * Publishes made while the client is between connections. Invariants: bounded by count and by
 * payload bytes (a publish past either bound is refused at once, never an older one dropped);
 * drained in the order the publishes were made.
 */
import type { Buffer } from 'node:buffer';
import { Deque } from '../session/deque.js';

export interface OfflineQueueOptions {
  /** Default 1,000; 0 refuses every publish made while offline. */
  maxMessages?: number;
  /** Payload bytes. Default 16 MiB. */
  maxBytes?: number;
}

export interface QueuedPublish<T> {
  size: number;
  item: T;
}

export class OfflineQueue<T> {
  readonly #maxMessages: number;
  readonly #maxBytes: number;
  readonly #items = new Deque<QueuedPublish<T>>();
  #bytes = 0;

  constructor(options: OfflineQueueOptions = {}) {
    this.#maxMessages = options.maxMessages ?? 1000;
    this.#maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
  }

  get length(): number {
    return this.#items.length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** False when `payload` does not fit. */
  push(payload: Buffer, item: T): boolean {
    const size = payload.length;
    if (this.#items.length >= this.#maxMessages || this.#bytes + size > this.#maxBytes) return false;
    this.#items.push({ size, item });
    this.#bytes += size;
    return true;
  }

  shift(): T | undefined {
    const entry = this.#items.shift();
    if (entry === undefined) return undefined;
    this.#bytes -= entry.size;
    return entry.item;
  }
}
