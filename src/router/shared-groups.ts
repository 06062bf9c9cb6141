/**
 * Shared subscriptions (§4.8.2): a `$share/{group}/{filter}` group whose members take turns, so
 * each message goes to one member only.
 *
 * The group's own state (group name, filter, ordered member keys, round-robin cursor) is kept
 * plain and serialisable (`toJSON()`), separate from the member objects, so that a later cluster
 * backend (e.g. Redis) can hold groups cluster-wide and each node only maps keys to its local
 * members. Pure data structure: no I/O, no timers.
 */

export type ShareStrategy = 'round-robin' | 'random' | 'least-inflight';

/** The serialisable part of a group. */
export interface SharedGroupState {
  group: string;
  filter: string;
  /** Member keys in join order; round robin walks this order. */
  keys: string[];
  /** Index in `keys` of the next member to consider for round robin. */
  cursor: number;
}

export class SharedGroup<M> {
  readonly group: string;
  readonly filter: string;
  private readonly keys: string[] = [];
  private cursor = 0;
  private readonly byKey = new Map<string, M>();

  constructor(group: string, filter: string) {
    this.group = group;
    this.filter = filter;
  }

  get size(): number {
    return this.keys.length;
  }

  /** Adds `member` under `key`; true when new. Replacing keeps the member's place in the rotation. */
  add(key: string, member: M): boolean {
    const isNew = !this.byKey.has(key);
    this.byKey.set(key, member);
    // New members join at the end, i.e. just before the cursor wraps, so they wait at most one round.
    if (isNew) this.keys.push(key);
    return isNew;
  }

  remove(key: string): boolean {
    if (!this.byKey.delete(key)) return false;
    const index = this.keys.indexOf(key);
    this.keys.splice(index, 1);
    // Keep the cursor on the same next member: everything after `index` shifted left by one.
    if (index < this.cursor) this.cursor--;
    if (this.cursor >= this.keys.length) this.cursor = 0;
    return true;
  }

  get(key: string): M | undefined {
    return this.byKey.get(key);
  }

  members(): IterableIterator<M> {
    return this.byKey.values();
  }

  toJSON(): SharedGroupState {
    return { group: this.group, filter: this.filter, keys: [...this.keys], cursor: this.cursor };
  }

  /**
   * Picks one member. `available` excludes members that cannot take the message now (e.g.
   * offline); `load` gives a member's inflight count for 'least-inflight'. `random` is injectable
   * for tests. Round robin is fair over successive calls even as members join and leave.
   */
  pick(
    strategy: ShareStrategy,
    available?: (m: M) => boolean,
    load?: (m: M) => number,
    random: () => number = Math.random,
  ): M | undefined {
    if (this.keys.length === 0) return undefined;
    switch (strategy) {
      case 'round-robin':
        return this.pickRoundRobin(available);
      case 'random':
        return this.pickRandom(available, random);
      case 'least-inflight':
        return this.pickLeastInflight(available, load);
    }
  }

  private memberAt(index: number): M {
    return this.byKey.get(this.keys[index] as string) as M;
  }

  /** The first available member from the cursor on; the cursor moves just past it. */
  private pickRoundRobin(available?: (m: M) => boolean): M | undefined {
    const n = this.keys.length;
    for (let step = 0; step < n; step++) {
      const index = (this.cursor + step) % n;
      const member = this.memberAt(index);
      if (available === undefined || available(member)) {
        this.cursor = (index + 1) % n;
        return member;
      }
    }
    return undefined;
  }

  private pickRandom(available: ((m: M) => boolean) | undefined, random: () => number): M | undefined {
    const candidates: M[] = [];
    for (let index = 0; index < this.keys.length; index++) {
      const member = this.memberAt(index);
      if (available === undefined || available(member)) candidates.push(member);
    }
    if (candidates.length === 0) return undefined;
    // Clamp: a source returning exactly 1 (or a little more) must not index past the end.
    const at = Math.min(candidates.length - 1, Math.max(0, Math.floor(random() * candidates.length)));
    return candidates[at];
  }

  /**
   * The available member with the lowest load. Ties are broken in round-robin order from the
   * cursor, and the cursor advances past the winner, so equally loaded members take turns.
   */
  private pickLeastInflight(available?: (m: M) => boolean, load?: (m: M) => number): M | undefined {
    const n = this.keys.length;
    let best = -1;
    let bestLoad = Infinity;
    for (let step = 0; step < n; step++) {
      const index = (this.cursor + step) % n;
      const member = this.memberAt(index);
      if (available !== undefined && !available(member)) continue;
      const value = load === undefined ? 0 : load(member);
      if (best === -1 || value < bestLoad) {
        best = index;
        bestLoad = value;
      }
    }
    if (best === -1) return undefined;
    this.cursor = (best + 1) % n;
    return this.memberAt(best);
  }
}
