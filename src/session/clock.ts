/** Time as an input: the broker and the session state machines read `now()` from a Clock. */

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
}

export const systemClock: Clock = { now: () => performance.now() };

/** A clock that moves only when told to; for tests. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start = 0) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

/**
 * What advances a broker's timers: `start` calls `run` about every `intervalMs` until the
 * returned stop function is called. The broker reads the time from its Clock on each run.
 */
export interface Ticker {
  start(run: () => void, intervalMs: number): () => void;
}

/** A ticker that runs only when told to (`tick()`); with a ManualClock, tests drive time fully. */
export class ManualTicker implements Ticker {
  readonly #runs = new Set<() => void>();

  start(run: () => void): () => void {
    const own = (): void => run();
    this.#runs.add(own);
    return () => this.#runs.delete(own);
  }

  /** Runs every started ticker once. */
  tick(): void {
    for (const run of [...this.#runs]) run();
  }
}
