/**
 * Subscription trie (§4.7): maps topic filters to values and finds every value whose filter
 * matches a topic name. Each trie level is one topic level; '+' and '#' live in dedicated child
 * slots so a match walks only the branches that can match (literal child, '+', '#') and its cost
 * does not grow with unrelated subscriptions.
 *
 * A bounded cache maps topic -> result array, bounded in entries and in bytes (each entry is
 * charged for its topic at two bytes per character, its result array and its index nodes, see
 * `entryCost`). A topic nobody subscribes to is cached only when it is short, so publishes to
 * many long unsubscribed topics leave nothing behind. An add or remove deletes only the cached
 * topics its filter matches, found through a trie of the cached topics (`CacheIndex`), so a
 * cached result is always exactly what a fresh walk would return and unrelated entries stay warm;
 * a filter rooted at '#' (or '+/#') clears it, which is cheaper than walking every entry.
 * Eviction is insertion order (oldest first): a hit costs one Map lookup and never reorders,
 * which keeps the hot path cheap.
 *
 * Pure data structure: no I/O, no timers. Shared subscriptions are inserted by the caller under
 * their inner filter (see shared-groups.ts); this tree never sees a `$share/` filter.
 */

export interface TopicTreeOptions {
  /** Match cache entries, default 10_000; 0 disables the cache. */
  cacheSize?: number;
  /** Match cache bytes (see `entryCost`), default 8 MiB; 0 disables the cache. */
  cacheBytes?: number;
}

const DEFAULT_CACHE_SIZE = 10_000;
const DEFAULT_CACHE_BYTES = 8 * 1024 * 1024;
/** Longest topic whose empty result is cached: a short key is cheap, a long one is an attack. */
const EMPTY_TOPIC_MAX = 64;
/** Per entry: the Map slot and the result array's headers. */
const ENTRY_BYTES = 128;
/** Per index node: the node, its slot in the parent's Map, its own Map and level string (measured: about 290). */
const NODE_BYTES = 320;

/**
 * What one cache entry may hold on to, in bytes, at most: the topic at two bytes per character
 * (the most a JavaScript string uses), the result array and one new index node per level.
 */
function entryCost(topic: string, levels: number, results: number): number {
  return ENTRY_BYTES + 2 * topic.length + 8 * results + NODE_BYTES * levels;
}

const INDEX_THRESHOLD = 16;
const EMPTY: readonly never[] = Object.freeze([]);

/**
 * One filter level. Fields are always initialised so every node has the same hidden class.
 * Entries are parallel `keys`/`values` arrays: a match copies the dense `values` array (cheaper
 * than iterating a Map). Most filters have one or a few subscribers, so keys are found by a linear
 * scan and a key -> index Map is only built past INDEX_THRESHOLD entries, keeping add/remove O(1)
 * for popular filters without paying a Map per node.
 */
class Node<T> {
  children: Map<string, Node<T>> | undefined = undefined;
  plus: Node<T> | undefined = undefined;
  hash: Node<T> | undefined = undefined;
  index: Map<string, number> | undefined = undefined;
  keys: string[] | undefined = undefined;
  values: T[] | undefined = undefined;

  constructor(
    readonly parent: Node<T> | undefined,
    readonly level: string,
  ) {}

  /** Position of `key` in `keys`, or -1. */
  private position(key: string): number {
    if (this.index !== undefined) return this.index.get(key) ?? -1;
    return this.keys === undefined ? -1 : this.keys.indexOf(key);
  }

  get(key: string): T | undefined {
    const at = this.position(key);
    return at === -1 ? undefined : this.values?.[at];
  }

  /** Sets `key`; true when it is new. */
  set(key: string, value: T): boolean {
    const { keys, values } = this;
    if (keys === undefined || values === undefined) {
      // Literals allocate exactly one slot; `[]` + push would reserve 17.
      this.keys = [key];
      this.values = [value];
      return true;
    }
    const at = this.position(key);
    if (at !== -1) {
      values[at] = value;
      return false;
    }
    this.index?.set(key, keys.length);
    keys.push(key);
    values.push(value);
    if (this.index === undefined && keys.length >= INDEX_THRESHOLD) {
      this.index = new Map(keys.map((k, i) => [k, i]));
    }
    return true;
  }

  /** Deletes `key`; true when it existed. Swaps the last entry into the hole. */
  delete(key: string): boolean {
    const at = this.position(key);
    const { keys, values } = this;
    if (at === -1 || keys === undefined || values === undefined) return false;
    this.index?.delete(key);
    const lastKey = keys.pop() as string;
    const lastValue = values.pop() as T;
    if (at < keys.length) {
      keys[at] = lastKey;
      values[at] = lastValue;
      this.index?.set(lastKey, at);
    }
    if (keys.length === 0) this.index = this.keys = this.values = undefined;
    return true;
  }

  isEmpty(): boolean {
    return this.keys === undefined && this.children === undefined && this.plus === undefined && this.hash === undefined;
  }
}

function pushValues<T>(node: Node<T>, out: T[]): void {
  const values = node.values;
  if (values === undefined) return;
  for (let i = 0; i < values.length; i++) out.push(values[i] as T);
}

/** Topic levels; a manual indexOf/slice loop is about twice as fast as String.prototype.split here. */
function splitLevels(topic: string): string[] {
  const levels: string[] = [];
  let start = 0;
  for (let end = topic.indexOf('/'); end !== -1; end = topic.indexOf('/', start)) {
    levels.push(topic.slice(start, end));
    start = end + 1;
  }
  levels.push(topic.slice(start));
  return levels;
}

export class TopicTree<T> {
  private readonly root = new Node<T>(undefined, '');
  private readonly cache = new Map<string, readonly T[]>();
  private readonly index = new CacheIndex();
  private readonly cacheSize: number;
  private readonly cacheBytes: number;
  private count = 0;
  private hits = 0;
  private misses = 0;

  constructor(options: TopicTreeOptions = {}) {
    const size = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    const bytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    const on = Number.isFinite(size) && size > 0 && Number.isFinite(bytes) && bytes > 0;
    this.cacheSize = on ? Math.floor(size) : 0;
    this.cacheBytes = on ? Math.floor(bytes) : 0;
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
    const levels = splitLevels(filter);
    for (const level of levels) node = this.childFor(node, level);
    const isNew = node.set(key, value);
    if (isNew) this.count++;
    this.invalidate(filter, levels);
    return isNew;
  }

  /** Removes the (filter,key) pair and prunes nodes left empty. Returns true when it existed. */
  remove(filter: string, key: string): boolean {
    const levels = splitLevels(filter);
    let node = this.find(levels);
    if (node === undefined || !node.delete(key)) return false;
    this.count--;
    while (node.parent !== undefined && node.isEmpty()) {
      detach(node.parent, node);
      node = node.parent;
    }
    this.invalidate(filter, levels);
    return true;
  }

  get(filter: string, key: string): T | undefined {
    return this.find(splitLevels(filter))?.get(key);
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
    const levels = splitLevels(topic);
    walk(this.root, levels, 0, topic.charCodeAt(0) === 0x24 /* '$' */, out);
    const result: readonly T[] = out.length === 0 ? EMPTY : out;
    if (this.cacheSize > 0 && (out.length > 0 || topic.length <= EMPTY_TOPIC_MAX)) this.remember(topic, levels, result);
    return result;
  }

  cacheStats(): { hits: number; misses: number; entries: number } {
    return { hits: this.hits, misses: this.misses, entries: this.cache.size };
  }

  /** What the cached entries are charged against the cache's byte bound. */
  cacheBytesUsed(): number {
    return this.index.bytes;
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
  private find(levels: readonly string[]): Node<T> | undefined {
    let node: Node<T> | undefined = this.root;
    for (const level of levels) {
      if (level === '+') node = node.plus;
      else if (level === '#') node = node.hash;
      else node = node.children?.get(level);
      if (node === undefined) return undefined;
    }
    return node;
  }

  private remember(topic: string, levels: readonly string[], result: readonly T[]): void {
    const cost = entryCost(topic, levels.length, result.length);
    if (cost > this.cacheBytes) return;
    const cache = this.cache;
    while (cache.size > 0 && (cache.size >= this.cacheSize || this.index.bytes + cost > this.cacheBytes)) {
      // Map iteration is insertion order, so the first key is the oldest entry.
      const oldest = cache.keys().next().value as string;
      cache.delete(oldest);
      this.index.delete(oldest);
    }
    cache.set(topic, result);
    this.index.add(topic, levels, cost - NODE_BYTES * levels.length);
  }

  /** Drops the cached results `filter` (just added or removed) can change. */
  private invalidate(filter: string, levels: readonly string[]): void {
    const cache = this.cache;
    if (cache.size === 0) return;
    const first = levels[0];
    if (first === '#' || (first === '+' && levels[1] === '#')) {
      cache.clear();
      this.index.clear();
      return;
    }
    if (levels.indexOf('+') === -1 && levels.indexOf('#') === -1) {
      // A literal filter changes the result of one topic only: itself.
      if (cache.delete(filter)) this.index.delete(filter);
      return;
    }
    for (const topic of this.index.matching(levels)) {
      cache.delete(topic);
      this.index.delete(topic);
    }
  }
}

/** One level of a cached topic; `topic` is set where a cached topic ends. */
class CacheNode {
  children: Map<string, CacheNode> | undefined = undefined;
  topic: string | undefined = undefined;
  cost = 0;

  constructor(
    readonly parent: CacheNode | undefined,
    readonly level: string,
  ) {}
}

/**
 * The cached topics as a trie over their levels, so that a filter finds the cached topics it
 * matches without scanning the cache. `bytes` is the charge of every entry plus NODE_BYTES per
 * node, so topics sharing a prefix share its charge.
 */
class CacheIndex {
  private root = new CacheNode(undefined, '');
  bytes = 0;

  add(topic: string, levels: readonly string[], cost: number): void {
    let node = this.root;
    for (const level of levels) {
      const children = (node.children ??= new Map<string, CacheNode>());
      let child = children.get(level);
      if (child === undefined) {
        child = new CacheNode(node, level);
        children.set(level, child);
        this.bytes += NODE_BYTES;
      }
      node = child;
    }
    node.topic = topic;
    node.cost = cost;
    this.bytes += cost;
  }

  delete(topic: string): void {
    let node: CacheNode | undefined = this.root;
    for (const level of splitLevels(topic)) {
      node = node.children?.get(level);
      if (node === undefined) return;
    }
    if (node.topic === undefined) return;
    this.bytes -= node.cost;
    node.topic = undefined;
    node.cost = 0;
    while (node.parent !== undefined && node.topic === undefined && node.children === undefined) {
      const parent: CacheNode = node.parent;
      parent.children?.delete(node.level);
      if (parent.children?.size === 0) parent.children = undefined;
      this.bytes -= NODE_BYTES;
      node = parent;
    }
  }

  clear(): void {
    this.root = new CacheNode(undefined, '');
    this.bytes = 0;
  }

  /**
   * Cached topics that `filter` (as levels) matches, and possibly a few more: the '$' rule
   * [MQTT-4.7.2-1] is not applied, which only drops entries that were still valid.
   */
  matching(levels: readonly string[]): string[] {
    const out: string[] = [];
    const stack: { node: CacheNode; i: number }[] = [{ node: this.root, i: 0 }];
    for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
      const { node, i } = top;
      if (i === levels.length) {
        if (node.topic !== undefined) out.push(node.topic);
        continue;
      }
      const level = levels[i] as string;
      if (level === '#') {
        // §4.7.1.2: 'a/#' matches 'a' itself and everything below it.
        const subtree: CacheNode[] = [node];
        for (let n = subtree.pop(); n !== undefined; n = subtree.pop()) {
          if (n.topic !== undefined) out.push(n.topic);
          if (n.children !== undefined) for (const child of n.children.values()) subtree.push(child);
        }
        continue;
      }
      const children = node.children;
      if (children === undefined) continue;
      if (level === '+') {
        for (const child of children.values()) stack.push({ node: child, i: i + 1 });
        continue;
      }
      const child = children.get(level);
      if (child !== undefined) stack.push({ node: child, i: i + 1 });
    }
    return out;
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
    pushValues(node, out);
    // §4.7.1.2: 'a/#' also matches the parent level 'a'.
    if (node.hash !== undefined) pushValues(node.hash, out);
    return;
  }
  // [MQTT-4.7.2-1]: a wildcard first level never matches a topic starting with '$'.
  const wildcardsAllowed = i > 0 || !dollar;
  if (wildcardsAllowed) {
    if (node.hash !== undefined) pushValues(node.hash, out);
    if (node.plus !== undefined) walk(node.plus, levels, i + 1, dollar, out);
  }
  const children = node.children;
  if (children !== undefined) {
    const child = children.get(levels[i] as string);
    if (child !== undefined) walk(child, levels, i + 1, dollar, out);
  }
}
