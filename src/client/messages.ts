/**
 * `client.messages(filter)`: an async iterator over received messages that match a filter.
 * Invariants: it holds at most `limit` unread messages, dropping the oldest past that and
 * counting each drop in `dropped`; it ends (done) when the client closes or `return()` is called,
 * after the messages already buffered were read.
 */
import type { Properties, QoS } from '../protocol/index.js';
import { matches } from '../protocol/index.js';
import { Deque } from '../session/deque.js';
import type { Buffer } from 'node:buffer';

export interface ReceivedMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** 5.0 PUBLISH properties as received (the Topic Alias removed once resolved). */
  properties: Properties | undefined;
}

type Waiter = (result: IteratorResult<ReceivedMessage>) => void;

export class MessageStream implements AsyncIterableIterator<ReceivedMessage> {
  readonly filter: string | undefined;
  /** Messages dropped because the buffer was full. */
  dropped = 0;
  readonly #limit: number;
  readonly #buffer = new Deque<ReceivedMessage>();
  readonly #waiters = new Deque<Waiter>();
  readonly #detach: (stream: MessageStream) => void;
  #done = false;

  constructor(filter: string | undefined, limit: number, detach: (stream: MessageStream) => void) {
    this.filter = filter;
    this.#limit = limit;
    this.#detach = detach;
  }

  /** Called by the client for every received message. */
  offer(message: ReceivedMessage): void {
    if (this.#done) return;
    if (this.filter !== undefined && !matches(this.filter, message.topic)) return;
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter({ value: message, done: false });
      return;
    }
    if (this.#buffer.length >= this.#limit) {
      this.#buffer.shift();
      this.dropped++;
    }
    this.#buffer.push(message);
  }

  /** Called by the client when it closes: readers get what is buffered, then done. */
  end(): void {
    if (this.#done) return;
    this.#done = true;
    for (let w = this.#waiters.shift(); w !== undefined; w = this.#waiters.shift()) w({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<ReceivedMessage>> {
    const message = this.#buffer.shift();
    if (message !== undefined) return Promise.resolve({ value: message, done: false });
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  return(): Promise<IteratorResult<ReceivedMessage>> {
    this.#detach(this);
    this.end();
    this.#buffer.clear();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
