/**
 * Request / response over MQTT 5.0 (§4.10): a request carries a Response Topic and Correlation
 * Data; the responder publishes its answer to that topic with the same Correlation Data. The
 * client subscribes once to each response topic it uses and matches answers by correlation.
 * Invariants: each request settles once (the answer, a `RequestTimeoutError`, or a failure to
 * publish); an answer with unknown correlation is left to other listeners.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { MqttError, ReasonCode } from '../protocol/index.js';
import type { ReceivedMessage } from './messages.js';

/** No response within the request's timeout. */
export class RequestTimeoutError extends MqttError {
  constructor(ms: number) {
    super(ReasonCode.UnspecifiedError, `no response within ${ms} ms`);
  }
}

interface Pending {
  resolve: (message: ReceivedMessage) => void;
  reject: (error: Error) => void;
  cancel: () => void;
}

export class Requests {
  readonly #pending = new Map<string, Pending>();
  readonly #prefix = randomBytes(8);
  #seq = 0;

  get size(): number {
    return this.#pending.size;
  }

  /** A new Correlation Data value, unique for this client. */
  correlation(): Buffer {
    const c = Buffer.allocUnsafe(12);
    this.#prefix.copy(c, 0);
    c.writeUInt32BE(this.#seq = (this.#seq + 1) >>> 0, 8);
    return c;
  }

  add(correlation: Buffer, pending: Pending): void {
    this.#pending.set(correlation.toString('hex'), pending);
  }

  /** Settles the request a received message answers; false when it answers none. */
  answer(message: ReceivedMessage): boolean {
    const data = message.properties?.correlationData;
    if (data === undefined || this.#pending.size === 0) return false;
    const key = data.toString('hex');
    const p = this.#pending.get(key);
    if (p === undefined) return false;
    this.#pending.delete(key);
    p.cancel();
    p.resolve(message);
    return true;
  }

  fail(correlation: Buffer, error: Error): void {
    const key = correlation.toString('hex');
    const p = this.#pending.get(key);
    if (p === undefined) return;
    this.#pending.delete(key);
    p.cancel();
    p.reject(error);
  }

  failAll(error: Error): void {
    for (const p of this.#pending.values()) {
      p.cancel();
      p.reject(error);
    }
    this.#pending.clear();
  }
}
