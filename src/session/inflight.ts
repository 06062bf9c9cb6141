/**
 * The QoS 1/2 deliveries in flight to one client, by packet identifier (1..65535), iterated in
 * the order they were first inserted (send order, the resend order [MQTT-4.6.0-1]).
 *
 * A Map of a few dozen entries whose keys come and go once per delivery replaces its hash table
 * every dozen or so inserts (a table full of deleted entries is rebuilt into a new one), so each
 * delivery allocated part of a table, and the old tables chain to their successors (see
 * rotating.ts). This table is open addressing with linear probing over typed arrays: a delete
 * shifts the entries after it back into place (no tombstones), so inserts and deletes never
 * allocate; the arrays grow only when more entries are in flight at once than ever before.
 * Packet identifiers are handed out in sequence, so consecutive keys fall into consecutive
 * slots and a lookup is nearly always one probe.
 *
 * Send order is kept as an insertion number per slot; `values()` sorts by it. That costs a sort
 * per iteration, which only the rare paths do (reconnect, the 3.1.1 retry timer, a shared group
 * member leaving, the store's snapshot); the per-delivery operations are get, set and delete.
 */

const MIN_CAPACITY = 32;

export class InflightTable<V> {
  /** Packet identifier per slot; 0: empty. */
  #keys: Uint16Array;
  #values: (V | undefined)[];
  /** Insertion number per slot (send order). */
  #order: Float64Array;
  #mask: number;
  #size = 0;
  #inserted = 0;

  constructor() {
    this.#keys = new Uint16Array(MIN_CAPACITY);
    this.#values = new Array<V | undefined>(MIN_CAPACITY).fill(undefined);
    this.#order = new Float64Array(MIN_CAPACITY);
    this.#mask = MIN_CAPACITY - 1;
  }

  get size(): number {
    return this.#size;
  }

  /** Slots allocated (diagnostics and tests). */
  get capacity(): number {
    return this.#keys.length;
  }

  #find(key: number): number {
    const keys = this.#keys;
    const mask = this.#mask;
    let i = key & mask;
    for (;;) {
      const k = keys[i] as number;
      if (k === key) return i;
      if (k === 0) return -1;
      i = (i + 1) & mask;
    }
  }

  get(key: number): V | undefined {
    const i = this.#find(key);
    return i < 0 ? undefined : this.#values[i];
  }

  has(key: number): boolean {
    return this.#find(key) >= 0;
  }

  /** Inserts, or replaces the value of a present key (which keeps its place in the order, as a Map's would). */
  set(key: number, value: V): void {
    if ((key & 0xffff) !== key || key === 0) throw new RangeError(`packet identifier out of range: ${key}`);
    // One probe run: it ends at the key (replace) or at the empty slot the key goes into.
    const keys = this.#keys;
    const mask = this.#mask;
    let i = key & mask;
    for (let k = keys[i] as number; k !== 0; k = keys[i] as number) {
      if (k === key) {
        this.#values[i] = value;
        return;
      }
      i = (i + 1) & mask;
    }
    this.#size++;
    // At most half full: probes stay short and an empty slot always ends them.
    if (this.#size * 2 > keys.length) {
      this.#grow();
      this.#place(key, value, ++this.#inserted);
      return;
    }
    keys[i] = key;
    this.#values[i] = value;
    this.#order[i] = ++this.#inserted;
  }

  #place(key: number, value: V, order: number): void {
    const keys = this.#keys;
    const mask = this.#mask;
    let i = key & mask;
    while (keys[i] !== 0) i = (i + 1) & mask;
    keys[i] = key;
    this.#values[i] = value;
    this.#order[i] = order;
  }

  #grow(): void {
    const keys = this.#keys;
    const values = this.#values;
    const order = this.#order;
    const cap = keys.length * 2;
    this.#keys = new Uint16Array(cap);
    this.#values = new Array<V | undefined>(cap).fill(undefined);
    this.#order = new Float64Array(cap);
    this.#mask = cap - 1;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as number;
      if (k !== 0) this.#place(k, values[i] as V, order[i] as number);
    }
  }

  delete(key: number): boolean {
    let i = this.#find(key);
    if (i < 0) return false;
    const keys = this.#keys;
    const values = this.#values;
    const order = this.#order;
    const mask = this.#mask;
    // Backward shift: an entry after the hole moves into it unless its home slot lies in the
    // cyclic range (hole, entry], where a lookup would still reach it.
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const k = keys[j] as number;
      if (k === 0) break;
      const home = k & mask;
      const reachable = i <= j ? home > i && home <= j : home > i || home <= j;
      if (reachable) continue;
      keys[i] = k;
      values[i] = values[j];
      order[i] = order[j] as number;
      i = j;
    }
    keys[i] = 0;
    values[i] = undefined;
    this.#size--;
    return true;
  }

  /** The values in insertion order: a snapshot, so the caller may delete while it goes through them. */
  values(): V[] {
    return this.#orderedSlots().map((i) => this.#values[i] as V);
  }

  /** The keys in insertion order (a snapshot). */
  keys(): number[] {
    return this.#orderedSlots().map((i) => this.#keys[i] as number);
  }

  #orderedSlots(): number[] {
    const keys = this.#keys;
    const order = this.#order;
    const slots: number[] = [];
    for (let i = 0; i < keys.length && slots.length < this.#size; i++) if (keys[i] !== 0) slots.push(i);
    return slots.sort((a, b) => (order[a] as number) - (order[b] as number));
  }
}
