/**
 * A Map and a Set for long-lived owners whose keys come and go at a high rate (an id per message,
 * a packet id per delivery).
 *
 * V8's Map and Set keep their entries in a hash table that is replaced by a new one when deletes
 * and inserts have filled it (and on `clear()`), and the old table keeps a pointer to its
 * successor (for iterators that were running). Once one table of such a map has aged into the
 * old generation, every young collection finds that pointer in the old-to-new remembered set and
 * keeps the successor alive, dead or not, with every value it held; the successor is promoted, and
 * points to its own successor: until the next full collection, every table the map goes through,
 * and what those tables referenced, survives the young generation and is copied and promoted.
 * Measured on the SQLite store's window (3 churned maps, one delivery a few µs): young
 * collections took 5–20 ms instead of about 1, a quarter of the broker's time, and the state
 * never ended once it began.
 *
 * These classes break the chain: at the first insert after as many deletes as the map holds
 * entries (1,024 at least), the entries are copied into a new Map, whose table is young and
 * which no older table points to; `clear()` starts a new Map instead of clearing the old one. A
 * copy costs one insert per entry, at most one per delete made since the last one. The copy
 * happens on an insert, never on a delete, so a loop that deletes entries while it iterates
 * (the common pattern) sees the map as a Map would show it; a loop that inserts while it
 * iterates may not see what it inserted.
 */

const MIN_DELETES = 1024;

export class RotatingMap<K, V> {
  #map = new Map<K, V>();
  #deletes = 0;
  /** Copies into a new Map so far (diagnostics and tests). */
  rotations = 0;

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  set(key: K, value: V): void {
    if (this.#deletes >= MIN_DELETES && this.#deletes >= this.#map.size) this.#rotate();
    this.#map.set(key, value);
  }

  delete(key: K): boolean {
    if (!this.#map.delete(key)) return false;
    this.#deletes++;
    return true;
  }

  #rotate(): void {
    this.#map = new Map(this.#map);
    this.#deletes = 0;
    this.rotations++;
  }

  clear(): void {
    if (this.#map.size === 0 && this.#deletes === 0) return;
    this.#map = new Map();
    this.#deletes = 0;
  }

  keys(): IterableIterator<K> {
    return this.#map.keys();
  }

  values(): IterableIterator<V> {
    return this.#map.values();
  }

  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.#map.entries();
  }
}

export class RotatingSet<T> {
  #set = new Set<T>();
  #deletes = 0;
  /** Copies into a new Set so far (diagnostics and tests). */
  rotations = 0;

  get size(): number {
    return this.#set.size;
  }

  has(value: T): boolean {
    return this.#set.has(value);
  }

  add(value: T): void {
    if (this.#deletes >= MIN_DELETES && this.#deletes >= this.#set.size) this.#rotate();
    this.#set.add(value);
  }

  delete(value: T): boolean {
    if (!this.#set.delete(value)) return false;
    this.#deletes++;
    return true;
  }

  #rotate(): void {
    this.#set = new Set(this.#set);
    this.#deletes = 0;
    this.rotations++;
  }

  clear(): void {
    if (this.#set.size === 0 && this.#deletes === 0) return;
    this.#set = new Set();
    this.#deletes = 0;
  }

  values(): IterableIterator<T> {
    return this.#set.values();
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.#set.values();
  }
}
