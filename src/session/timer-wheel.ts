/**
 * One timing wheel for every deadline of a broker (keep alive, resend, will delay, session
 * expiry) instead of a timer per item. Items are bucketed by deadline at `resolution` ms;
 * `advance(now)` returns the items whose bucket is due. Cancelling is lazy: the owner checks,
 * when an item fires, whether its deadline still holds (a moved deadline is simply scheduled
 * again), so rescheduling costs one Set insertion and no search.
 */
export class TimerWheel<T> {
  readonly resolution: number;
  #buckets = new Map<number, Set<T>>();
  #cursor: number;

  constructor(now: number, resolution = 100) {
    this.resolution = resolution;
    this.#cursor = Math.floor(now / resolution);
  }

  /** Schedules `item` to fire at or after `at` (ms, on the same clock as `advance`). */
  schedule(item: T, at: number): void {
    let slot = Math.ceil(at / this.resolution);
    if (slot <= this.#cursor) slot = this.#cursor + 1;
    let bucket = this.#buckets.get(slot);
    if (bucket === undefined) {
      bucket = new Set();
      this.#buckets.set(slot, bucket);
    }
    bucket.add(item);
  }

  /** Items whose deadline is at or before `now`, each once, in deadline order. */
  advance(now: number): T[] {
    const target = Math.floor(now / this.resolution);
    const due: T[] = [];
    if (target <= this.#cursor) return due;
    if (target - this.#cursor > this.#buckets.size) {
      // A long jump: visit only the buckets that exist.
      const slots = [...this.#buckets.keys()].filter((s) => s <= target).sort((a, b) => a - b);
      for (const slot of slots) this.#take(slot, due);
    } else {
      for (let slot = this.#cursor + 1; slot <= target; slot++) this.#take(slot, due);
    }
    this.#cursor = target;
    return due;
  }

  #take(slot: number, due: T[]): void {
    const bucket = this.#buckets.get(slot);
    if (bucket === undefined) return;
    this.#buckets.delete(slot);
    for (const item of bucket) due.push(item);
  }

  /** Number of scheduled (item, slot) pairs, stale ones included. */
  get size(): number {
    let n = 0;
    for (const b of this.#buckets.values()) n += b.size;
    return n;
  }
}
