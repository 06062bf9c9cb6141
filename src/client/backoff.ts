/**
 * Reconnect delays: exponential backoff with jitter. Pure (randomness is injected), so the
 * schedule is tested without timers. Delay n (from 0) is min(maxDelay, initialDelay × factor^n),
 * of which a random share up to `jitter` is taken off, so clients that lost the same server do
 * not all come back in the same millisecond.
 */

export interface ReconnectOptions {
  /** Milliseconds before the first attempt. Default 1,000. */
  initialDelay?: number;
  /** Upper bound of a delay. Default 30,000. */
  maxDelay?: number;
  /** Growth per failed attempt. Default 2. */
  factor?: number;
  /** Share (0..1) of a delay that is random. Default 0.5. */
  jitter?: number;
}

export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: ReconnectOptions = {}, random: () => number = Math.random) {
    this.#initial = options.initialDelay ?? 1000;
    this.#max = options.maxDelay ?? 30_000;
    this.#factor = options.factor ?? 2;
    this.#jitter = options.jitter ?? 0.5;
    this.#random = random;
    if (!(this.#initial >= 0) || !(this.#max >= this.#initial) || !(this.#factor >= 1) || !(this.#jitter >= 0 && this.#jitter <= 1)) {
      throw new RangeError('reconnect: need 0 <= initialDelay <= maxDelay, factor >= 1, 0 <= jitter <= 1');
    }
  }

  /** Failed attempts since the last success. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt, in milliseconds. */
  next(): number {
    const base = Math.min(this.#max, this.#initial * this.#factor ** Math.min(this.#attempt, 64));
    this.#attempt++;
    return Math.round(base * (1 - this.#jitter * this.#random()));
  }

  /** A connection was accepted: the next loss starts from `initialDelay` again. */
  reset(): void {
    this.#attempt = 0;
  }
}
