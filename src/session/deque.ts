/** Shared by every empty, never-used deque; never written (any push grows first). */
const NO_ITEMS: readonly unknown[] = [];

/** A growable ring buffer: O(1) push, shift and unshift; used for per-session queues. */
export class Deque<T> {
  #items: (T | undefined)[];
  #head = 0;
  #length = 0;

  /** The backing array is allocated on first push: an idle session's queue shares one empty array. */
  constructor(capacity = 0) {
    this.#items = capacity === 0 ? (NO_ITEMS as (T | undefined)[]) : new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.#length;
  }

  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) % this.#items.length] = item;
    this.#length++;
  }

  unshift(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#head = (this.#head - 1 + this.#items.length) % this.#items.length;
    this.#items[this.#head] = item;
    this.#length++;
  }

  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#length--;
    return item;
  }

  peek(): T | undefined {
    return this.#length === 0 ? undefined : this.#items[this.#head];
  }

  /** Removes the first item matching `pred`; returns it. O(n). */
  removeFirst(pred: (item: T) => boolean): T | undefined {
    for (let i = 0; i < this.#length; i++) {
      const idx = (this.#head + i) % this.#items.length;
      const item = this.#items[idx] as T;
      if (!pred(item)) continue;
      for (let j = i; j < this.#length - 1; j++) {
        this.#items[(this.#head + j) % this.#items.length] = this.#items[(this.#head + j + 1) % this.#items.length];
      }
      this.#items[(this.#head + this.#length - 1) % this.#items.length] = undefined;
      this.#length--;
      return item;
    }
    return undefined;
  }

  /** Removes every item matching `pred`, keeping the order of the rest; returns the removed ones. */
  removeAll(pred: (item: T) => boolean): T[] {
    const removed: T[] = [];
    const kept: T[] = [];
    for (const item of this) (pred(item) ? removed : kept).push(item);
    if (removed.length === 0) return removed;
    this.clear();
    for (const item of kept) this.push(item);
    return removed;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.#length; i++) yield this.#items[(this.#head + i) % this.#items.length] as T;
  }

  clear(): void {
    this.#items = NO_ITEMS as (T | undefined)[];
    this.#head = 0;
    this.#length = 0;
  }

  #grow(): void {
    const next = new Array<T | undefined>(Math.max(8, this.#items.length * 2));
    for (let i = 0; i < this.#length; i++) next[i] = this.#items[(this.#head + i) % this.#items.length];
    this.#items = next;
    this.#head = 0;
  }
}
