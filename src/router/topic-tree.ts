/**
 * Subscription trie (§4.7): maps topic filters to values and finds every value whose filter
 * matches a topic name. Each trie level is one topic level; '+' and '#' live in dedicated child
 * slots so a match walks only the branches that can match (literal child, '+', '#') and its cost
 * does not grow with unrelated subscriptions.
 *
 * A bounded cache maps topic -> result array. Any add or remove clears it, so a cached result is
 * always exactly what a fresh walk would return. Eviction is insertion order (oldest first): a hit
 * costs one Map lookup and never reorders, which keeps the hot path cheap.
 *
 * Pure data structure: no I/O, no timers. Shared subscriptions are inserted by the caller under
 * their inner filter (see shared-groups.ts); this tree never sees a `$share/` filter.
 */

export interface TopicTreeOptions {
  /** Match cache entries, default 10_000; 0 disables the cache. */
  cacheSize?: number;
}

const DEFAULT_CACHE_SIZE = 10_000;
const EMPTY: readonly never[] = Object.freeze([]);

/** One filter level. Fields are always initialised so every node has the same hidden class. */
class Node<T> {
  children: Map<string, Node<T>> | undefined = undefined;
  plus: Node<T> | undefined = undefined;
  hash: Node<T> | undefined = undefined;
  entries: Map<string, T> | undefined = undefined;

  constructor(
    readonly parent: Node<T> | undefined,
    readonly level: string,
  ) {}

  isEmpty(): boolean {
    return this.entries === undefined && this.children === undefined && this.plus === undefined && this.hash === undefined;
  }
}

function pushEntries<T>(node: Node<T>, out: T[]): void {
  const entries = node.entries;
  if (entries === undefined) return;
  for (const value of entries.values()) out.push(value);
}

export class TopicTree<T> {
  private readonly root = new Node<T>(undefined, '');
  private readonly cache = new Map<string, readonly T[]>();
  private readonly cacheSize: number;
  private count = 0;
  private hits = 0;
  private misses = 0;

  constructor(options: TopicTreeOptions = {}) {
    const size = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.cacheSize = Number.isFinite(size) && size > 0 ? Math.floor(size) : 0;
  }

  /** Number of (filter,key) pairs. */
  get size(): number {
    return this.count;
  }

  /**
   * Adds or replaces the value of `key` under `filter` (already validated, never `$share/`).
   * Returns true when the (filter,key) pair is new.
   */
  add(filter: string, key: string, value: T): boolean {
    let node = this.root;
    for (const level of filter.split('/')) node = this.childFor(node, level);
    const entries = (node.entries ??= new Map<string, T>());
    const isNew = !entries.has(key);
    entries.set(key, value);
    if (isNew) this.count++;
    this.invalidate();
    return isNew;
  }

  /** Removes the (filter,key) pair and prunes nodes left empty. Returns true when it existed. */
  remove(filter: string, key: string): boolean {
    let node = this.find(filter);
    if (node?.entries === undefined || !node.entries.delete(key)) return false;
    this.count--;
    if (node.entries.size === 0) node.entries = undefined;
    while (node.parent !== undefined && node.isEmpty()) {
      detach(node.parent, node);
      node = node.parent;
    }
    this.invalidate();
    return true;
  }

  get(filter: string, key: string): T | undefined {
    return this.find(filter)?.entries?.get(key);
  }

  /**
   * Every value whose filter matches `topic`, one per (filter,key) pair. Filters whose first level
   * is a wildcard do not match topics starting with '$' [MQTT-4.7.2-1]. The array may be shared
   * with the cache: callers must not mutate it.
   */
  match(topic: string): readonly T[] {
    if (this.cacheSize > 0) {
      const hit = this.cache.get(topic);
      if (hit !== undefined) {
        this.hits++;
        return hit;
      }
    }
    this.misses++;
    const out: T[] = [];
    const levels = topic.split('/');
    walk(this.root, levels, 0, topic.charCodeAt(0) === 0x24 /* '$' */, out);
    const result: readonly T[] = out.length === 0 ? EMPTY : out;
    if (this.cacheSize > 0) this.remember(topic, result);
    return result;
  }

  cacheStats(): { hits: number; misses: number; entries: number } {
    return { hits: this.hits, misses: this.misses, entries: this.cache.size };
  }

  private childFor(node: Node<T>, level: string): Node<T> {
    if (level === '+') return (node.plus ??= new Node<T>(node, level));
    if (level === '#') return (node.hash ??= new Node<T>(node, level));
    const children = (node.children ??= new Map<string, Node<T>>());
    let child = children.get(level);
    if (child === undefined) {
      child = new Node<T>(node, level);
      children.set(level, child);
    }
    return child;
  }

  /** The node of `filter`, or undefined when no subscription was ever stored there. */
  private find(filter: string): Node<T> | undefined {
    let node: Node<T> | undefined = this.root;
    for (const level of filter.split('/')) {
      if (level === '+') node = node.plus;
      else if (level === '#') node = node.hash;
      else node = node.children?.get(level);
      if (node === undefined) return undefined;
    }
    return node;
  }

  private remember(topic: string, result: readonly T[]): void {
    if (this.cache.size >= this.cacheSize) {
      // Map iteration is insertion order, so the first key is the oldest entry.
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    this.cache.set(topic, result);
  }

  private invalidate(): void {
    if (this.cache.size > 0) this.cache.clear();
  }
}

/** Unlinks an empty `node` from its parent. */
function detach<T>(parent: Node<T>, node: Node<T>): void {
  if (parent.plus === node) parent.plus = undefined;
  else if (parent.hash === node) parent.hash = undefined;
  else if (parent.children !== undefined) {
    parent.children.delete(node.level);
    if (parent.children.size === 0) parent.children = undefined;
  }
}

/**
 * Collects matches for `levels[i..]` below `node`. Each trie node is reached by at most one path
 * for a given topic, so every (filter,key) pair is pushed at most once.
 */
function walk<T>(node: Node<T>, levels: readonly string[], i: number, dollar: boolean, out: T[]): void {
  if (i === levels.length) {
    pushEntries(node, out);
    // §4.7.1.2: 'a/#' also matches the parent level 'a'.
    if (node.hash !== undefined) pushEntries(node.hash, out);
    return;
  }
  // [MQTT-4.7.2-1]: a wildcard first level never matches a topic starting with '$'.
  const wildcardsAllowed = i > 0 || !dollar;
  if (wildcardsAllowed) {
    if (node.hash !== undefined) pushEntries(node.hash, out);
    if (node.plus !== undefined) walk(node.plus, levels, i + 1, dollar, out);
  }
  const children = node.children;
  if (children !== undefined) {
    const child = children.get(levels[i] as string);
    if (child !== undefined) walk(child, levels, i + 1, dollar, out);
  }
}
