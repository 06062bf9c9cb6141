/**
 * Retained messages (§3.3.1.3) keyed by topic name and found by topic filter when a client
 * subscribes. Topics are stored in a trie over topic levels so a filter walks only the matching
 * branches: a literal level is one Map lookup, '+' fans out over one level's children, and '#'
 * collects a subtree. A flat Map beside the trie serves get/size/entries in O(1). `bytes` is the
 * sum of the stored messages' weights, as the constructor's `weigh` counts them (default 0).
 * Pure data structure: no I/O, no timers.
 */

class TopicNode<M> {
  children: Map<string, TopicNode<M>> | undefined = undefined;
  /** Whether a message is stored here; `message` alone cannot tell, since M may include undefined. */
  hasMessage = false;
  message: M | undefined = undefined;

  constructor(
    readonly parent: TopicNode<M> | undefined,
    readonly level: string,
  ) {}
}

const DOLLAR = 0x24;

export class RetainedIndex<M> {
  private readonly root = new TopicNode<M>(undefined, '');
  private readonly byTopic = new Map<string, M>();
  private readonly weigh: (message: M) => number;
  #bytes = 0;

  constructor(weigh: (message: M) => number = () => 0) {
    this.weigh = weigh;
  }

  get size(): number {
    return this.byTopic.size;
  }

  /** The stored messages' weights, summed. */
  get bytes(): number {
    return this.#bytes;
  }

  set(topic: string, message: M): void {
    const old = this.byTopic.get(topic);
    if (old !== undefined || this.byTopic.has(topic)) this.#bytes -= this.weigh(old as M);
    this.#bytes += this.weigh(message);
    let node = this.root;
    for (const level of topic.split('/')) {
      const children = (node.children ??= new Map<string, TopicNode<M>>());
      let child = children.get(level);
      if (child === undefined) {
        child = new TopicNode<M>(node, level);
        children.set(level, child);
      }
      node = child;
    }
    node.hasMessage = true;
    node.message = message;
    this.byTopic.set(topic, message);
  }

  delete(topic: string): boolean {
    if (!this.byTopic.has(topic)) return false;
    this.#bytes -= this.weigh(this.byTopic.get(topic) as M);
    this.byTopic.delete(topic);
    let node: TopicNode<M> | undefined = this.root;
    for (const level of topic.split('/')) node = node?.children?.get(level);
    if (node === undefined) return true; // unreachable: the trie mirrors byTopic
    node.hasMessage = false;
    node.message = undefined;
    // Prune the branch while it holds neither a message nor children.
    while (node.parent !== undefined && !node.hasMessage && node.children === undefined) {
      const parent: TopicNode<M> = node.parent;
      parent.children?.delete(node.level);
      if (parent.children?.size === 0) parent.children = undefined;
      node = parent;
    }
    return true;
  }

  get(topic: string): M | undefined {
    return this.byTopic.get(topic);
  }

  entries(): IterableIterator<[string, M]> {
    return this.byTopic.entries();
  }

  /**
   * Messages whose topic matches `filter` (a valid, non-shared filter). A filter whose first level
   * is a wildcard does not match topics starting with '$' [MQTT-4.7.2-1].
   */
  match(filter: string): M[] {
    const out: M[] = [];
    collect(this.root, filter.split('/'), 0, out);
    return out;
  }
}

function collect<M>(node: TopicNode<M>, levels: readonly string[], i: number, out: M[]): void {
  if (i === levels.length) {
    if (node.hasMessage) out.push(node.message as M);
    return;
  }
  const level = levels[i] as string;
  const children = node.children;
  if (level === '#') {
    // §4.7.1.2: 'a/#' matches 'a' itself as well as everything below it.
    if (node.hasMessage) out.push(node.message as M);
    if (children !== undefined) collectChildren(children, i === 0, out);
    return;
  }
  if (children === undefined) return;
  if (level === '+') {
    for (const [name, child] of children) {
      if (i === 0 && name.charCodeAt(0) === DOLLAR) continue; // [MQTT-4.7.2-1]
      collect(child, levels, i + 1, out);
    }
    return;
  }
  const child = children.get(level);
  if (child !== undefined) collect(child, levels, i + 1, out);
}

/** Every message in the given subtrees; `skipDollar` drops '$' first levels [MQTT-4.7.2-1]. */
function collectChildren<M>(children: Map<string, TopicNode<M>>, skipDollar: boolean, out: M[]): void {
  const stack: TopicNode<M>[] = [];
  for (const [name, child] of children) {
    if (skipDollar && name.charCodeAt(0) === DOLLAR) continue;
    stack.push(child);
  }
  for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
    if (node.hasMessage) out.push(node.message as M);
    if (node.children !== undefined) for (const child of node.children.values()) stack.push(child);
  }
}
