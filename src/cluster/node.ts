/**
 * One Petrel node of a cluster over Redis (see docs/cluster.md).
 *
 * Routes. Each node keeps the topic filters its sessions subscribe to in a Redis set
 * (`<prefix>{cluster}:routes:<node>`) and announces every change on a pub/sub channel; every
 * node caches the other nodes' filters in a `TopicTree` (src/router), so a publish looks up the
 * nodes that want it locally, without a Redis round trip, and a node with no subscriber for a
 * topic receives nothing for it. Retained messages go to every node (each keeps the retained
 * index its subscribers need). A node reloads the whole table when it (re)connects.
 *
 * The hop. Messages for a node are appended (XADD) to that node's stream
 * (`<prefix>{node:<id>}:in`), in one pipeline per node and event-loop turn; the node reads its
 * stream with XREADGROUP, delivers locally, waits until the local store committed what that
 * delivery wrote, then acknowledges and deletes the entries (XACK, XDEL). An entry read but not
 * acknowledged when a node dies is read again (pending entries) when it comes back.
 *
 * Guarantees per QoS: QoS 1 and 2 PUBLISHes are acknowledged to their publisher only once their
 * forwards are in Redis (`pending` / `forwarded()`); Redis keeps them (with appendonly) until the
 * receiving node delivered them. The hop is at least once: if Redis fails after storing an XADD
 * but before answering, the retry stores it again, so across such a failure a QoS 2 message can
 * reach a remote subscriber twice. QoS 0 takes the same path but nobody waits for it.
 *
 * Failure. While Redis is away, local clients are served as usual; forwards wait in a bounded
 * queue (`maxPendingMessages`, oldest dropped beyond, every drop counted in `stats.dropped` and
 * logged) and go out when Redis is back, followed by a resync of the route table. Heartbeats
 * (`alive:<node>` keys with a TTL of `nodeTimeout`) let the others see a dead node: one survivor
 * takes its sessions and its stream over, then its routes leave Redis and every cache.
 *
 * Shared subscriptions are picked cluster-wide: every node knows every group's members (with
 * their online state), and the node where a message is published picks one member per group.
 * Sessions that move to another node have what still arrives for them passed on.
 * docs/cluster.md has the whole picture, with what is and is not guaranteed.
 */
import type { Buffer } from 'node:buffer';
import type { BrokerCore, SharedTarget } from '../broker/broker.js';
import type { ClusterLink } from '../broker/cluster.js';
import type { Message } from '../broker/message.js';
import { type Logger, silentLogger } from '../observability/logger.js';
import { connectRedis, type RedisConnection } from '../persistence/redis/connection.js';
import type { StoredSession } from '../persistence/types.js';
import { matches, parseShared, type WillMessage } from '../protocol/index.js';
import { SharedGroup, type ShareStrategy, TopicTree } from '../router/index.js';
import { type BusMessage, decodeBusMessage, encodeBusMessage, reencodeBusMessage } from './codec.js';

export interface ClusterNodeOptions {
  /** Redis URL (redis://, rediss://, redis-sentinel://, redis-cluster://). */
  redis: string;
  /** This node's id, unique in the cluster and stable across restarts (its stream and routes are named by it). */
  nodeId: string;
  /** Key prefix; default `petrel:`. */
  prefix?: string;
  /** Milliseconds between heartbeats; default 1000. */
  heartbeatInterval?: number;
  /** Milliseconds without a heartbeat after which a node counts as dead; default 5000. */
  nodeTimeout?: number;
  /** Forwards kept while Redis is unreachable; beyond, the oldest is dropped (counted). Default 100,000. */
  maxPendingMessages?: number;
  /** Approximate length bound of a node's stream (XADD MAXLEN ~); default 1,000,000. */
  maxStreamLength?: number;
  /** Stream entries read per XREADGROUP; default 1000. */
  readCount?: number;
  logger?: Logger;
}

export interface ClusterStats {
  /** Messages appended to other nodes' streams. */
  forwarded: number;
  /** Messages read from this node's stream and delivered here. */
  received: number;
  /** Forwards dropped because the pending queue was full while Redis was away. */
  dropped: number;
  /** Pipelines that failed (Redis away) and were retried. */
  retries: number;
  /** Times the route table was reloaded after (re)connecting. */
  resyncs: number;
  /** Shared-group messages passed on to a member on another node (the picked member had gone from here). */
  reshared: number;
  /** Shared-group messages that found no member of their group on any node (or were passed on too often). */
  unplaced: number;
  /** Messages passed on to the new node of a session that had just moved away from here. */
  passedOn: number;
  /** Messages for a moved session that were not delivered (it was gone again, or its connect failed). */
  lostInMove: number;
}

/** A session that moved from here to `node`: what arrives for it until `until` is passed on. */
interface MovedOut {
  readonly node: string;
  readonly filters: readonly string[];
  readonly until: number;
}

/** A session that moved here: the ids of messages it got directly, so that a copy passed on by its old node is dropped. */
interface MovedIn {
  readonly filters: readonly string[];
  readonly until: number;
  readonly seen: Set<string>;
}

/** A member of a shared group as this node knows it (any node's). */
interface ShareMember {
  readonly node: string;
  readonly clientId: string;
  online: boolean;
  /** In-flight plus queued deliveries as its node last reported them. */
  load: number;
  /** Messages this node gave it since that report. */
  sent: number;
}

/** How often a shared-group message may be passed on when its member had gone. */
const MAX_SHARE_HOPS = 3;

interface Out {
  readonly data: Buffer;
  /** Flush generation of a QoS 1/2 forward (its publisher's acknowledgement waits for it); -1 for QoS 0. */
  readonly epoch: number;
}

const GROUP = 'petrel';

/**
 * The client id lease (KEYS[1]: the store's base key; ARGV: client id, node, TTL ms): taken when
 * nobody else holds it, with a new fencing token (HINCRBY). Returns {token, session owner} or
 * {0, holder}.
 */
const ACQUIRE_SCRIPT = `
local B = KEYS[1]
local L = B .. 'lease:' .. ARGV[1]
local v = redis.call('GET', L)
if v and string.sub(v, 1, #ARGV[2] + 1) ~= ARGV[2] .. '|' then return { 0, v } end
local token = redis.call('HINCRBY', B .. 'f', ARGV[1], 1)
redis.call('SET', L, ARGV[2] .. '|' .. token, 'PX', ARGV[3])
return { token, redis.call('HGET', B .. 'o', ARGV[1]) or '' }
`;

/**
 * Renews this node's leases (ARGV: node, TTL ms, then client id and token pairs); returns the
 * client ids whose lease another node holds now. A lease that lapsed (Redis was away longer than
 * the TTL) is taken again while nobody else has it and the session is still this node's with
 * that token.
 */
const RENEW_SCRIPT = `
local B = KEYS[1]
local lost = {}
for i = 3, #ARGV, 2 do
  local L = B .. 'lease:' .. ARGV[i]
  local mine = ARGV[1] .. '|' .. ARGV[i + 1]
  local v = redis.call('GET', L)
  if v == mine then redis.call('PEXPIRE', L, ARGV[2])
  elseif not v and redis.call('HGET', B .. 'o', ARGV[i]) == mine then redis.call('SET', L, mine, 'PX', ARGV[2])
  else lost[#lost + 1] = ARGV[i] end
end
return lost
`;

/** Gives a lease back if it is still the one taken (ARGV: client id, "<node>|<token>"). */
const RELEASE_SCRIPT = `
local L = KEYS[1] .. 'lease:' .. ARGV[1]
if redis.call('GET', L) == ARGV[2] then redis.call('DEL', L) end
return 1
`;

/** What the broker must do for the node when another node takes one of its clients over. */
export interface ClusterBroker {
  releaseSession(clientId: string, clean: boolean): Promise<void>;
  publishWill(clientId: string, will: WillMessage): void;
}

/** What a survivor needs of the shared store to take a dead node's sessions over (the RedisStore). */
export interface SharedSessions {
  ownedSessions(node: string): Promise<{ clientId: string; owner: string; session: StoredSession }[]>;
}

interface LeaseScripts {
  petrelAcquire(key: string, clientId: string, node: string, ttl: string): Promise<[number, string]>;
  petrelRenew(key: string, ...args: string[]): Promise<string[]>;
  petrelRelease(key: string, clientId: string, value: string): Promise<number>;
}

export class ClusterNode implements ClusterLink {
  readonly nodeId: string;
  readonly stats: ClusterStats = { forwarded: 0, received: 0, dropped: 0, retries: 0, resyncs: 0, reshared: 0, unplaced: 0, passedOn: 0, lostInMove: 0 };
  readonly #prefix: string;
  readonly #heartbeatMs: number;
  readonly #timeoutMs: number;
  readonly #maxPending: number;
  readonly #maxStream: number;
  readonly #readCount: number;
  readonly #logger: Logger;
  readonly #url: string;
  /** Commands and pipelines. */
  readonly #cmd: RedisConnection;
  /** Route announcements (pub/sub). */
  readonly #sub: RedisConnection;
  /** The blocking stream reads. */
  readonly #blk: RedisConnection;
  #broker: BrokerCore | undefined;
  #sessions: SharedSessions | undefined;
  /** While above 0 (a dead node's sessions being taken over), route changes wait (see #takeOver). */
  #holdRoutes = 0;
  /** Sessions that moved to another node lately (see #passOn). */
  readonly #movedOut = new Map<string, MovedOut>();
  /** Sessions that moved here lately, and claims of sessions coming from another node. */
  readonly #movedIn = new Map<string, MovedIn>();
  readonly #movingIn = new Set<string>();
  /** Ids of the plain entries read while a session was on its way here (its claim not settled). */
  readonly #recentDirect = new Set<string>();
  /** Messages passed on for a session whose claim here is not settled yet: delivered once it is connected. */
  readonly #parked = new Map<string, BusMessage[]>();
  /** While above 0 (a session leaving for another node), a route that empties stays a node timeout longer. */
  #moving = 0;
  readonly #idPrefix = `${Date.now().toString(36)}.`;
  #idCounter = 0;
  /** Other nodes' filters: (filter, node id) -> node id. */
  readonly #routes = new TopicTree<string>({ cacheSize: 10_000, cacheBytes: 4 * 1024 * 1024 });
  /** The filters of each other node, as loaded and announced. */
  readonly #nodeFilters = new Map<string, Set<string>>();
  /** Nodes seen alive (other than this one). */
  readonly #live = new Set<string>();
  /** This node's filters with the number of local subscriptions on each. */
  readonly #local = new Map<string, number>();
  /** Route changes not yet written: filter -> true (add) / false (remove). */
  #routeChanges = new Map<string, boolean>();
  /** Every shared group of the cluster with its members on every node (this one included): group key -> group. */
  readonly #shares = new Map<string, SharedGroup<ShareMember>>();
  /** The same groups by filter (key: the group name). */
  readonly #shareTree = new TopicTree<SharedGroup<ShareMember>>({ cacheSize: 10_000, cacheBytes: 4 * 1024 * 1024 });
  /** This node's members: client id -> keys of its groups. */
  readonly #localShares = new Map<string, Set<string>>();
  /** Member changes of this node not yet written: field (JSON [group, filter, client id]) -> '1' online, '0' offline, '' left. */
  #shareChanges = new Map<string, string>();
  /** Loads last reported per local member. */
  readonly #reportedLoads = new Map<string, number>();
  #strategy: ShareStrategy = 'round-robin';
  readonly #loadOf = (m: ShareMember): number => (m.node === this.nodeId ? Math.max(0, this.#broker?.sessionLoad(m.clientId) ?? 0) : m.load + m.sent);
  /** Forwards per target node, waiting for the next flush (or for Redis). */
  readonly #out = new Map<string, Out[]>();
  #queued = 0;
  #flushScheduled = false;
  /** The epoch messages published now belong to. */
  #epoch = 0;
  /** Outstanding QoS 1/2 forwards per epoch, in epoch order. */
  readonly #outstanding = new Map<number, number>();
  readonly #waiters: { epoch: number; resolve: () => void }[] = [];
  #sending = 0;
  #closed = false;
  #started = false;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #reading: Promise<void> | undefined;
  #redisDown = false;
  readonly #seen = new Set<string>();
  /** Client ids connected here, with the token of their lease (renewed with each heartbeat). */
  readonly #leases = new Map<string, number>();
  /** Claims in progress here (lease taken, CONNECT not accepted yet): a release request waits for them. */
  readonly #settling = new Map<string, { done: Promise<void>; resolve: () => void }>();
  /** Claims waiting for another node's release of a client id: resolved by its answer. */
  readonly #releaseWaiters = new Map<string, Set<() => void>>();
  readonly #flushSoon = (): void => this.#flush();

  constructor(options: ClusterNodeOptions) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(options.nodeId)) throw new RangeError(`nodeId must be 1 to 64 of A-Z a-z 0-9 _ . -, got ${JSON.stringify(options.nodeId)}`);
    this.nodeId = options.nodeId;
    this.#prefix = options.prefix ?? 'petrel:';
    this.#heartbeatMs = options.heartbeatInterval ?? 1000;
    this.#timeoutMs = options.nodeTimeout ?? 5000;
    if (!(this.#heartbeatMs > 0) || !(this.#timeoutMs > this.#heartbeatMs)) throw new RangeError('nodeTimeout must be longer than heartbeatInterval (both in ms, above 0)');
    this.#maxPending = options.maxPendingMessages ?? 100_000;
    this.#maxStream = options.maxStreamLength ?? 1_000_000;
    this.#readCount = options.readCount ?? 1000;
    this.#logger = options.logger ?? silentLogger;
    this.#url = options.redis;
    this.#cmd = connectRedis(options.redis, { connectionName: `petrel-${this.nodeId}` });
    this.#sub = connectRedis(options.redis, { connectionName: `petrel-${this.nodeId}-routes` });
    this.#blk = connectRedis(options.redis, { connectionName: `petrel-${this.nodeId}-in` });
    this.#cmd.defineCommand('petrelAcquire', { numberOfKeys: 1, lua: ACQUIRE_SCRIPT });
    this.#cmd.defineCommand('petrelRenew', { numberOfKeys: 1, lua: RENEW_SCRIPT });
    this.#cmd.defineCommand('petrelRelease', { numberOfKeys: 1, lua: RELEASE_SCRIPT });
  }

  get #storeKey(): string {
    return `${this.#prefix}{store}:`;
  }

  get #lease(): LeaseScripts {
    return this.#cmd as unknown as LeaseScripts;
  }

  /** The Redis URL the node uses (the Redis store of a cluster node uses it too). */
  get redisUrl(): string {
    return this.#url;
  }

  /** The prefix of the store every node shares (sessions are cluster-wide; see `RedisStore` `node`). */
  get storePrefix(): string {
    return this.#prefix;
  }

  /** Other nodes currently seen alive. */
  get liveNodes(): string[] {
    return [...this.#live].sort();
  }

  /** The filters of another node as this node knows them. */
  routesOf(nodeId: string): string[] {
    return [...(this.#nodeFilters.get(nodeId) ?? [])].sort();
  }

  #key(name: string): string {
    return `${this.#prefix}{cluster}:${name}`;
  }

  #streamOf(nodeId: string): string {
    return `${this.#prefix}{node:${nodeId}}:in`;
  }

  get #channel(): string {
    return this.#key('events');
  }

  /** Connects, announces this node and its routes, loads the others' and starts reading its stream. */
  async start(broker: BrokerCore, sessions?: SharedSessions): Promise<void> {
    if (this.#started) throw new Error('cluster node already started');
    this.#started = true;
    this.#broker = broker;
    this.#sessions = sessions;
    this.#strategy = broker.sharedSubscriptionStrategy;
    this.#sub.on('message', (_channel: string, text: string) => this.#announcement(text));
    this.#cmd.on('ready', () => {
      if (this.#redisDown) this.#reconnected();
    });
    this.#cmd.on('close', () => {
      if (!this.#closed && !this.#redisDown) {
        this.#redisDown = true;
        this.#logger.warn({ node: this.nodeId }, 'cluster: Redis connection lost; serving local clients, forwards wait (bounded)');
      }
    });
    await Promise.all([this.#cmd, this.#sub, this.#blk].map((conn) => (conn.status === 'wait' ? conn.connect() : undefined)));
    await this.#sub.subscribe(this.#channel);
    await this.#resync();
    this.#heartbeat = setInterval(() => void this.#beat(), this.#heartbeatMs);
    this.#heartbeat.unref();
    this.#reading = this.#readLoop();
    this.#schedule();
    this.#logger.info({ node: this.nodeId, nodes: this.liveNodes }, 'cluster node started');
  }

  // ---- ClusterLink: called by the broker -----------------------------------------------------

  published(msg: Message): number {
    if (this.#closed) return 0;
    let data: Buffer | undefined;
    let n = 0;
    const epoch = msg.qos > 0 ? this.#epoch : -1;
    // Shared groups: one member cluster-wide per group, picked here; a member here gets it at once.
    let picks: Map<string, SharedTarget[]> | undefined;
    if (this.#shares.size > 0) {
      for (const g of this.#shareTree.match(msg.topic)) {
        const m = this.#pick(g, undefined);
        if (m === undefined) continue;
        if (m.node === this.nodeId) {
          if (this.#broker?.deliverToMember(g.group, g.filter, m.clientId, msg) === true) n++;
          continue;
        }
        m.sent++;
        picks ??= new Map();
        let list = picks.get(m.node);
        if (list === undefined) picks.set(m.node, list = []);
        list.push({ group: g.group, filter: g.filter, clientId: m.clientId });
      }
    }
    const seen = this.#seen;
    if (msg.retain) {
      for (const node of this.#live) seen.add(node);
    } else {
      const nodes = this.#routes.match(msg.topic);
      for (let i = 0; i < nodes.length; i++) seen.add(nodes[i]!);
    }
    if (seen.size === 0 && picks === undefined) return n;
    const now = performance.now();
    const id = `${this.nodeId}.${this.#idPrefix}${(this.#idCounter++).toString(36)}`;
    const to = seen.size === 0 ? [] : [...seen];
    for (const node of seen) {
      const shared = picks?.get(node);
      if (shared === undefined) {
        data ??= encodeBusMessage(msg, now, id, to);
        this.#enqueue(node, data, epoch);
      } else {
        picks!.delete(node);
        this.#enqueue(node, encodeBusMessage(msg, now, id, to, true, shared), epoch);
      }
      n++;
    }
    seen.clear();
    if (picks !== undefined) {
      for (const [node, shared] of picks) {
        this.#enqueue(node, encodeBusMessage(msg, now, id, [], false, shared), epoch);
        n++;
      }
    }
    this.#schedule();
    return n;
  }

  /**
   * One member of `g` by this node's strategy, an online one if any (as the single broker does),
   * never one on `exceptNode`; least-inflight compares what each member's node last reported plus
   * what this node gave it since (exact for members here).
   */
  #pick(g: SharedGroup<ShareMember>, exceptNode: string | undefined): ShareMember | undefined {
    const online = exceptNode === undefined ? isOnline : (m: ShareMember): boolean => m.online && m.node !== exceptNode;
    const other = exceptNode === undefined ? undefined : (m: ShareMember): boolean => m.node !== exceptNode;
    return g.pick(this.#strategy, online, this.#loadOf) ?? g.pick(this.#strategy, other, this.#loadOf);
  }

  /** A shared-group message whose member had gone from here (and no other member is here): passed on to a member elsewhere. */
  #reshare(m: BusMessage, t: SharedTarget, hops: number): void {
    const g = this.#shares.get(shareKey(t.group, t.filter));
    const member = g === undefined || hops >= MAX_SHARE_HOPS ? undefined : this.#pick(g, this.nodeId);
    if (member === undefined) {
      this.stats.unplaced++;
      this.#logger.warn({ node: this.nodeId, group: t.group, filter: t.filter, topic: m.topic, hops }, 'cluster: shared-group message without a member on any node; dropped');
      return;
    }
    member.sent++;
    this.stats.reshared++;
    this.#enqueue(member.node, reencodeBusMessage(m, [{ group: t.group, filter: t.filter, clientId: member.clientId }], hops + 1), m.qos > 0 ? this.#epoch : -1);
    this.#schedule();
  }

  // ---- shared groups: the members of every node ------------------------------------------

  shareAvailable(group: string, filter: string, clientId: string, online: boolean): boolean {
    const g = this.#shares.get(shareKey(group, filter));
    if (g === undefined) return false;
    for (const m of g.members()) if ((m.node !== this.nodeId || m.clientId !== clientId) && (!online || m.online)) return true;
    return false;
  }

  /** A leaving member's unacknowledged message (see BrokerState.redistribute): to another member, on any node, online first. */
  reshare(group: string, filter: string, msg: Message, clientId: string): boolean {
    const g = this.#shares.get(shareKey(group, filter));
    if (g === undefined || this.#closed) return false;
    const other = (m: ShareMember): boolean => m.node !== this.nodeId || m.clientId !== clientId;
    const member = g.pick(this.#strategy, (m) => m.online && other(m), this.#loadOf) ?? g.pick(this.#strategy, other, this.#loadOf);
    if (member === undefined) return false;
    if (member.node === this.nodeId) return this.#broker?.deliverToMember(group, filter, member.clientId, msg) === true;
    member.sent++;
    this.stats.reshared++;
    const id = `${this.nodeId}.${this.#idPrefix}${(this.#idCounter++).toString(36)}`;
    this.#enqueue(member.node, encodeBusMessage(msg, performance.now(), id, [], false, [{ group, filter, clientId: member.clientId }]), msg.qos > 0 ? this.#epoch : -1);
    this.#schedule();
    return true;
  }

  shareJoined(group: string, filter: string, clientId: string): void {
    const key = shareKey(group, filter);
    let keys = this.#localShares.get(clientId);
    if (keys === undefined) this.#localShares.set(clientId, keys = new Set());
    keys.add(key);
    const online = this.#leases.has(clientId);
    this.#setMember(this.nodeId, group, filter, clientId, online);
    this.#shareChanges.set(JSON.stringify([group, filter, clientId]), online ? '1' : '0');
    this.#schedule();
  }

  shareLeft(group: string, filter: string, clientId: string): void {
    const keys = this.#localShares.get(clientId);
    keys?.delete(shareKey(group, filter));
    if (keys?.size === 0) {
      this.#localShares.delete(clientId);
      this.#reportedLoads.delete(clientId);
    }
    this.#setMember(this.nodeId, group, filter, clientId, undefined);
    this.#shareChanges.set(JSON.stringify([group, filter, clientId]), '');
    this.#schedule();
  }

  /** A local client connected or went: its memberships are announced online or offline. */
  #shareOnline(clientId: string, online: boolean): void {
    const keys = this.#localShares.get(clientId);
    if (keys === undefined) return;
    for (const key of keys) {
      const g = this.#shares.get(key);
      if (g === undefined) continue;
      this.#setMember(this.nodeId, g.group, g.filter, clientId, online);
      this.#shareChanges.set(JSON.stringify([g.group, g.filter, clientId]), online ? '1' : '0');
    }
    this.#schedule();
  }

  /** Adds or updates (online given) or removes (undefined) a member of a group in this node's view. */
  #setMember(node: string, group: string, filter: string, clientId: string, online: boolean | undefined): void {
    const key = shareKey(group, filter);
    const mk = `${node}\u0000${clientId}`;
    let g = this.#shares.get(key);
    if (online === undefined) {
      if (g === undefined || !g.remove(mk)) return;
      if (g.size === 0) {
        this.#shares.delete(key);
        this.#shareTree.remove(filter, group);
      }
      return;
    }
    if (g === undefined) {
      g = new SharedGroup<ShareMember>(group, filter);
      this.#shares.set(key, g);
      this.#shareTree.add(filter, group, g);
    }
    const m = g.get(mk);
    if (m !== undefined) m.online = online;
    else g.add(mk, { node, clientId, online, load: 0, sent: 0 });
  }

  /** Every member of `node` leaves this node's view (it died, or is reloaded). */
  #dropMembers(node: string): void {
    for (const g of [...this.#shares.values()]) {
      for (const m of [...g.members()]) if (m.node === node) this.#setMember(node, g.group, g.filter, m.clientId, undefined);
    }
  }

  /** A member announcement of another node: `{ n: node, g: group, f: filter, c: client id, o: '1' | '0' | '' }`. */
  #shareAnnounced(text: string): void {
    let r: { n?: unknown; g?: unknown; f?: unknown; c?: unknown; o?: unknown };
    try {
      r = JSON.parse(text) as typeof r;
    } catch {
      return;
    }
    if (typeof r.n !== 'string' || r.n === this.nodeId || typeof r.g !== 'string' || typeof r.f !== 'string' || typeof r.c !== 'string') return;
    this.#live.add(r.n);
    this.#setMember(r.n, r.g, r.f, r.c, r.o === '' ? undefined : r.o === '1');
    this.#logger.debug({ node: this.nodeId, from: r.n, group: r.g, filter: r.f, clientId: r.c, op: r.o === '' ? '-' : r.o === '1' ? 'online' : 'offline' }, 'cluster share');
  }

  /** Loads another node reported for its members: `{ n: node, l: [[client id, load], …] }`. */
  #loadsAnnounced(text: string): void {
    let r: { n?: unknown; l?: unknown };
    try {
      r = JSON.parse(text) as typeof r;
    } catch {
      return;
    }
    if (typeof r.n !== 'string' || r.n === this.nodeId || !Array.isArray(r.l)) return;
    const loads = new Map<string, number>();
    for (const e of r.l as unknown[]) if (Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number') loads.set(`${r.n}\u0000${e[0]}`, e[1]);
    for (const g of this.#shares.values()) {
      for (const [mk, load] of loads) {
        const m = g.get(mk);
        if (m === undefined) continue;
        m.load = load;
        m.sent = 0;
      }
    }
  }

  /** Heartbeat: the loads of this node's members that changed since the last report (least-inflight elsewhere picks by them). */
  #reportLoads(): void {
    if (this.#localShares.size === 0 || this.#broker === undefined) return;
    const changed: [string, number][] = [];
    for (const cid of this.#localShares.keys()) {
      const load = Math.max(0, this.#broker.sessionLoad(cid));
      if (this.#reportedLoads.get(cid) === load) continue;
      this.#reportedLoads.set(cid, load);
      changed.push([cid, load]);
    }
    for (let i = 0; i < changed.length; i += 500) {
      void this.#cmd.publish(this.#channel, `l${JSON.stringify({ n: this.nodeId, l: changed.slice(i, i + 500) })}`).catch(() => undefined);
    }
  }

  get pending(): boolean {
    return this.#outstanding.size > 0;
  }

  forwarded(): Promise<void> {
    if (this.#outstanding.size === 0) return Promise.resolve();
    const epoch = this.#epoch;
    return new Promise<void>((resolve) => this.#waiters.push({ epoch, resolve }));
  }

  subscribed(filter: string): void {
    const n = this.#local.get(filter) ?? 0;
    this.#local.set(filter, n + 1);
    if (n === 0) {
      this.#routeChanges.set(filter, true);
      this.#schedule();
    }
  }

  unsubscribed(filter: string): void {
    const n = this.#local.get(filter) ?? 0;
    if (n <= 1) {
      this.#local.delete(filter);
      if (n === 1 && this.#moving > 0) {
        // The session left for another node: publishers keep sending here until they learnt
        // its new route (what comes is passed on, see #passOn), then the route goes.
        const t = setTimeout(() => {
          if (this.#local.has(filter) || this.#closed) return;
          this.#routeChanges.set(filter, false);
          this.#schedule();
        }, this.#timeoutMs);
        t.unref();
      } else if (n === 1) {
        this.#routeChanges.set(filter, false);
        this.#schedule();
      }
    } else this.#local.set(filter, n - 1);
  }

  // ---- sessions that move between nodes -------------------------------------------------------

  /** The plain (not shared) filters of a session here. */
  #plainFilters(clientId: string): string[] {
    return (this.#broker?.subscriptions(clientId) ?? []).map((s) => s.topicFilter).filter((f) => parseShared(f) === undefined);
  }

  /**
   * An entry read here, after its delivery: sessions that moved away lately and whose filters
   * match get it from their new node (for them alone). The publisher may not have known the new
   * route yet, or its message was on its way here when the session left.
   */
  #passOn(m: BusMessage): void {
    const now = Date.now();
    let to: Map<string, string[]> | undefined;
    for (const [cid, mv] of this.#movedOut) {
      if (now >= mv.until) {
        this.#movedOut.delete(cid);
        continue;
      }
      // Still here (it got the message itself, and takes it along), or not matching.
      if (!mv.filters.some((f) => matches(f, m.topic)) || this.#broker?.subscriptions(cid) !== undefined) continue;
      to ??= new Map();
      let list = to.get(mv.node);
      if (list === undefined) to.set(mv.node, list = []);
      list.push(cid);
    }
    if (to === undefined) return;
    for (const [node, cids] of to) {
      this.stats.passedOn += cids.length;
      this.#enqueue(node, reencodeBusMessage(m, [], m.hops + 1, cids), m.qos > 0 ? this.#epoch : -1);
    }
    this.#schedule();
  }

  /** A plain entry read here: its id is remembered for the sessions that moved here lately and whose filters match. */
  #sawDirect(m: BusMessage): void {
    if (this.#movingIn.size > 0 && this.#recentDirect.size < 100_000) this.#recentDirect.add(m.id);
    else if (this.#movingIn.size === 0 && this.#recentDirect.size > 0) this.#recentDirect.clear();
    const now = Date.now();
    for (const [cid, mv] of this.#movedIn) {
      if (now >= mv.until) {
        this.#movedIn.delete(cid);
        continue;
      }
      if (mv.seen.size < 100_000 && mv.filters.some((f) => matches(f, m.topic))) mv.seen.add(m.id);
    }
  }

  /** An entry passed on by a session's old node, for `m.only`: delivered, unless it came directly already. */
  #deliverPassedOn(m: BusMessage): number {
    let n = 0;
    for (const cid of m.only) {
      if (this.#settling.has(cid)) {
        let list = this.#parked.get(cid);
        if (list === undefined) this.#parked.set(cid, list = []);
        if (list.length < 100_000) list.push(m);
        else this.stats.lostInMove++;
        continue;
      }
      n += this.#deliverMoved(cid, m);
    }
    return n;
  }

  #deliverMoved(cid: string, m: BusMessage): number {
    if (m.id !== '' && m.to.includes(this.nodeId)) {
      // Its publisher sent it here too: the session got that copy (or gets it: it comes after
      // this one), unless the copy was read before the session arrived.
      if (this.#movedIn.get(cid)?.seen.has(m.id) === true || !this.#recentDirect.has(m.id)) return 0;
    }
    const n = this.#broker!.deliverTo([cid], m);
    if (n > 0 || this.#broker!.subscriptions(cid) !== undefined) return n;
    const mv = this.#movedOut.get(cid);
    if (mv !== undefined && m.hops < MAX_SHARE_HOPS) {
      // It moved on again.
      this.stats.passedOn++;
      this.#enqueue(mv.node, reencodeBusMessage(m, [], m.hops + 1, [cid]), m.qos > 0 ? this.#epoch : -1);
      this.#schedule();
    } else {
      this.stats.lostInMove++;
      this.#logger.warn({ node: this.nodeId, clientId: cid, topic: m.topic }, 'cluster: a message passed on for a moved session found no session');
    }
    return 0;
  }

  // ---- client ids cluster-wide ----------------------------------------------------------------

  /**
   * Takes the lease of `clientId` (SET NX semantics with a fencing token): while another node
   * holds it, that node is asked to let the client go (its connection gets 0x8E) and the claim
   * waits for its answer, or for the lease to lapse when that node is dead; then, when the session
   * itself is held by another live node, that node is asked to write it out and let it go; when
   * it is held by a dead node, the claim waits (without the lease) until the survivor that reaps
   * that node took it over, and then asks the survivor. Bounded by four node timeouts; past that
   * the claim fails (the CONNECT is refused).
   */
  async claim(clientId: string, clean: boolean): Promise<number> {
    const start = Date.now();
    const deadline = start + 4 * this.#timeoutMs;
    const me = this.nodeId;
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new Error('cluster node closed');
      const [token, info] = await this.#lease.petrelAcquire(this.#storeKey, clientId, me, String(this.#timeoutMs));
      if (token > 0) {
        let resolve = (): void => undefined;
        const done = new Promise<void>((r) => {
          resolve = r;
        });
        this.#settling.set(clientId, { done, resolve });
        const owner = nodeOf(info);
        let answered = owner === undefined || owner === me;
        if (!answered && this.#live.has(owner!) && await this.#cmd.exists(this.#key(`alive:${owner!}`)) === 1) {
          // The session is held (offline) by a live node: it writes it out and lets it go first.
          this.#movingIn.add(clientId);
          answered = await this.#askRelease(owner!, clientId, clean, Math.min(this.#timeoutMs, Math.max(0, deadline - Date.now())));
          if (!answered) this.#movingIn.delete(clientId);
        }
        if (!answered && Date.now() < deadline - this.#timeoutMs) {
          // Its node is dead (or does not answer): the survivor that reaps it takes the session
          // over first, with what waits in the dead node's stream; then it is asked as above.
          this.#settled(clientId);
          await this.#lease.petrelRelease(this.#storeKey, clientId, `${me}|${token}`).catch(() => undefined);
          await this.#ownerMoved(clientId, info, deadline - this.#timeoutMs);
          continue;
        }
        this.#logger.debug({ node: me, clientId, token, from: owner ?? null }, 'cluster: client id claimed');
        return token;
      }
      const holder = nodeOf(info);
      const left = deadline - Date.now();
      if (left <= 0 || attempt > 1000) throw new Error(`client id ${clientId} is held by node ${holder ?? '?'}`);
      if (holder !== undefined && this.#live.has(holder)) await this.#askRelease(holder, clientId, clean, Math.min(left, this.#timeoutMs));
      // A dead holder's lease lapses within the node timeout.
      else await delay(Math.min(left, this.#heartbeatMs));
    }
  }

  connected(clientId: string, token: number): void {
    this.#leases.set(clientId, token);
    this.#settled(clientId);
    this.#shareOnline(clientId, true);
    this.#movedOut.delete(clientId);
    // Longer than the old node passes messages on (twice the node timeout from its release).
    if (this.#movingIn.delete(clientId)) this.#movedIn.set(clientId, { filters: this.#plainFilters(clientId), until: Date.now() + 3 * this.#timeoutMs, seen: new Set() });
    const parked = this.#parked.get(clientId);
    if (parked !== undefined) {
      this.#parked.delete(clientId);
      for (const m of parked) this.#deliverMoved(clientId, m);
    }
  }

  unclaimed(clientId: string, token: number): void {
    this.#settled(clientId);
    this.#movingIn.delete(clientId);
    const parked = this.#parked.get(clientId);
    if (parked !== undefined) {
      // Its connect failed: the session (loaded or not) gets them if it is here, else they are counted lost.
      this.#parked.delete(clientId);
      for (const m of parked) this.#deliverMoved(clientId, m);
    }
    if (this.#leases.get(clientId) === token) {
      this.#leases.delete(clientId);
      this.#shareOnline(clientId, false);
    }
    if (this.#closed) return;
    void this.#lease.petrelRelease(this.#storeKey, clientId, `${this.nodeId}|${token}`).catch(() => undefined);
  }

  #settled(clientId: string): void {
    const s = this.#settling.get(clientId);
    if (s === undefined) return;
    this.#settling.delete(clientId);
    s.resolve();
  }

  /** Waits (polling, bounded by `until`) until the owner of `clientId`'s session is no longer `owner`. */
  async #ownerMoved(clientId: string, owner: string, until: number): Promise<void> {
    while (!this.#closed && Date.now() < until) {
      await delay(this.#heartbeatMs);
      const now = await this.#cmd.hget(`${this.#storeKey}o`, clientId).catch(() => owner);
      if (now !== owner) return;
    }
  }

  /** Asks `node` to let `clientId` go; resolves on its answer (true) or after `ms` (false). */
  async #askRelease(node: string, clientId: string, clean: boolean, ms: number): Promise<boolean> {
    let waiters = this.#releaseWaiters.get(clientId);
    if (waiters === undefined) this.#releaseWaiters.set(clientId, waiters = new Set());
    let timer: ReturnType<typeof setTimeout> | undefined;
    let wake = (): void => undefined;
    const answered = new Promise<boolean>((resolve) => {
      wake = () => resolve(true);
      timer = setTimeout(() => resolve(false), ms);
    });
    waiters.add(wake);
    try {
      await this.#cmd.publish(this.#channel, `j${JSON.stringify({ k: 'release', from: this.nodeId, to: node, cid: clientId, clean })}`);
      return await answered;
    } finally {
      clearTimeout(timer);
      waiters.delete(wake);
      if (waiters.size === 0) this.#releaseWaiters.delete(clientId);
    }
  }

  /** Another node takes `clientId` over: after a claim in progress here settles, the broker lets it go, then the lease. */
  async #release(from: string, clientId: string, clean: boolean): Promise<void> {
    const settling = this.#settling.get(clientId);
    if (settling !== undefined) await Promise.race([settling.done, delay(this.#timeoutMs)]);
    const token = this.#leases.get(clientId);
    const filters = clean ? [] : this.#plainFilters(clientId);
    // What arrives here for it once it left is passed on to its new node for a while (see #passOn).
    if (filters.length > 0) this.#movedOut.set(clientId, { node: from, filters, until: Date.now() + 2 * this.#timeoutMs });
    this.#moving++;
    try {
      await (this.#broker as ClusterBroker | undefined)?.releaseSession(clientId, clean);
    } catch (err) {
      this.#logger.error({ node: this.nodeId, clientId, err }, 'cluster: session release failed');
    } finally {
      this.#moving--;
    }
    if (token !== undefined && this.#leases.get(clientId) === token) {
      this.#leases.delete(clientId);
      await this.#lease.petrelRelease(this.#storeKey, clientId, `${this.nodeId}|${token}`).catch(() => undefined);
    }
    this.#logger.info({ node: this.nodeId, clientId, to: from }, 'cluster: client taken over by another node');
    await this.#cmd.publish(this.#channel, `j${JSON.stringify({ k: 'released', from: this.nodeId, to: from, cid: clientId })}`).catch(() => undefined);
  }

  #request(text: string): void {
    let r: { k?: unknown; from?: unknown; to?: unknown; cid?: unknown; clean?: unknown };
    try {
      r = JSON.parse(text.slice(1)) as typeof r;
    } catch {
      return;
    }
    if (r.to !== this.nodeId || typeof r.cid !== 'string' || typeof r.from !== 'string') return;
    if (r.k === 'release') void this.#release(r.from, r.cid, r.clean === true);
    else if (r.k === 'released') for (const wake of this.#releaseWaiters.get(r.cid) ?? []) wake();
  }

  /** Heartbeat: the leases of the clients connected here; a lease another node has now means the client was taken over. */
  async #renewLeases(): Promise<void> {
    if (this.#leases.size === 0) return;
    const entries = [...this.#leases];
    for (let i = 0; i < entries.length; i += 1000) {
      const args: string[] = [this.nodeId, String(this.#timeoutMs)];
      for (const [cid, token] of entries.slice(i, i + 1000)) args.push(cid, String(token));
      const lost = await this.#lease.petrelRenew(this.#storeKey, ...args);
      for (const cid of lost) {
        if (this.#leases.get(cid) === undefined) continue;
        this.#leases.delete(cid);
        this.#shareOnline(cid, false);
        this.#logger.warn({ node: this.nodeId, clientId: cid }, 'cluster: lease lost; the client is let go');
        void (this.#broker as ClusterBroker | undefined)?.releaseSession(cid, false);
      }
    }
  }

  // ---- a dead node's sessions and stream --------------------------------------------------

  /**
   * The survivor that reaped `dead` takes its sessions over (adopts them: each becomes an offline
   * session here, its subscriptions routed here, its will and expiry timed here, as after a
   * restart of its own node), then announces the node gone together with the adopted routes (in
   * that order, on one connection: a publisher sends a message either to the dead node's stream
   * or here, never to both and never to neither), then delivers what waits in the dead node's
   * stream: to the adopted sessions, and to a member picked anew for each shared-group message.
   */
  async #takeOver(dead: string): Promise<void> {
    const me = this.nodeId;
    const adopted = new Set<string>();
    this.#holdRoutes++;
    try {
      if (this.#sessions !== undefined) {
        for (const { clientId, owner } of await this.#sessions.ownedSessions(dead)) {
          if (this.#closed) return;
          if (await this.#adopt(clientId, owner)) adopted.add(clientId);
        }
      }
    } finally {
      this.#holdRoutes--;
    }
    await this.#cmd.multi().del(this.#key(`routes:${dead}`), this.#key(`shares:${dead}`)).hdel(this.#key('nodes'), dead).publish(this.#channel, `d${dead}`).exec();
    this.#forget(dead);
    this.#schedule();
    this.#logger.warn({ node: me, dead, adopted: adopted.size }, 'cluster: node timed out; its routes were removed and its sessions taken over');
    await this.#drain(dead, adopted);
  }

  /** Takes the session of `clientId` over from the dead node that owns it (`owner`), holding its client id lease meanwhile. */
  async #adopt(clientId: string, owner: string): Promise<boolean> {
    const me = this.nodeId;
    const deadline = Date.now() + 2 * this.#timeoutMs;
    for (;;) {
      const [token, info] = await this.#lease.petrelAcquire(this.#storeKey, clientId, me, String(this.#timeoutMs));
      if (token > 0) {
        try {
          // Someone else took it meanwhile (its client connected elsewhere): that node has it.
          if (info !== owner) return false;
          const ok = await this.#broker!.adoptSession(clientId, token);
          if (ok) this.#logger.info({ node: me, clientId, from: nodeOf(owner) }, 'cluster: session of a dead node taken over');
          return ok;
        } catch (err) {
          this.#logger.error({ node: me, clientId, err }, 'cluster: a dead node\'s session could not be taken over');
          return false;
        } finally {
          await this.#lease.petrelRelease(this.#storeKey, clientId, `${me}|${token}`).catch(() => undefined);
        }
      }
      // Held by the dead node: its lease lapses within the node timeout. Held by a live node: its
      // client connected there and it took the session (the owner changed), or it waits for
      // this take-over (see claim) and gives the lease back.
      if (Date.now() >= deadline || this.#closed) return false;
      if (this.#live.has(nodeOf(info) ?? '') && await this.#cmd.hget(`${this.#storeKey}o`, clientId) !== owner) return false;
      await delay(this.#heartbeatMs);
    }
  }

  /**
   * Delivers what waits in the stream of `dead`: the stream is renamed (a publisher that still
   * appends, or the node when it comes back, starts a new one), read to the end and deleted;
   * again while entries arrive, until a node timeout passed without any, or the node is back.
   */
  async #drain(dead: string, adopted: ReadonlySet<string>): Promise<void> {
    const src = this.#streamOf(dead);
    let quietSince = Date.now();
    let delivered = 0;
    for (let round = 0; round < 10_000 && !this.#closed; round++) {
      if (await this.#cmd.exists(this.#key(`alive:${dead}`)) === 1) break;
      const orphan = `${this.#prefix}{node:${dead}}:orphan:${this.nodeId}:${Date.now()}:${round}`;
      const moved = await this.#cmd.renamenx(src, orphan).then(() => true, () => false);
      if (moved) {
        delivered += await this.#drainKey(orphan, adopted);
        quietSince = Date.now();
        continue;
      }
      if (Date.now() - quietSince >= this.#timeoutMs) break;
      await delay(this.#heartbeatMs);
    }
    this.#logger.info({ node: this.nodeId, dead, delivered }, 'cluster: the dead node\'s stream was delivered');
  }

  async #drainKey(key: string, adopted: ReadonlySet<string>): Promise<number> {
    const broker = this.#broker!;
    let n = 0;
    for (let batch = 0; batch < 100_000 && !this.#closed; batch++) {
      const entries = await this.#cmd.xrangeBuffer(key, '-', '+', 'COUNT', this.#readCount);
      if (entries.length === 0) break;
      const ids: Buffer[] = [];
      for (const [id, fields] of entries) {
        ids.push(id);
        let data: Buffer | undefined;
        for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.toString('latin1') === 'm') data = fields[i + 1];
        if (data === undefined) continue;
        try {
          const m = decodeBusMessage(data);
          if (m.plain) n += broker.deliverTo(adopted, m);
          for (const t of m.shared) n += this.#placeShared(m, t, m.hops);
        } catch (err) {
          this.#logger.error({ node: this.nodeId, err }, 'cluster: undeliverable bus entry of a dead node skipped');
        }
      }
      // Stored here (or in another node's stream) before the entries go.
      await broker.settled();
      if (this.pending) await this.forwarded();
      await this.#cmd.xdel(key, ...ids);
    }
    if (!this.#closed) await this.#cmd.del(key);
    return n;
  }

  /** A shared-group message of a dead node's stream: to a member picked anew (here, or forwarded). */
  #placeShared(m: BusMessage, t: SharedTarget, hops: number): number {
    const g = this.#shares.get(shareKey(t.group, t.filter));
    const member = g === undefined ? undefined : this.#pick(g, undefined);
    if (member === undefined) {
      this.stats.unplaced++;
      this.#logger.warn({ node: this.nodeId, group: t.group, filter: t.filter, topic: m.topic }, 'cluster: shared-group message without a member on any node; dropped');
      return 0;
    }
    if (member.node === this.nodeId) {
      return this.#broker!.deliverRemote({ ...m, plain: false, shared: [{ group: t.group, filter: t.filter, clientId: member.clientId }] });
    }
    member.sent++;
    this.stats.reshared++;
    this.#enqueue(member.node, reencodeBusMessage(m, [{ group: t.group, filter: t.filter, clientId: member.clientId }], hops + 1), m.qos > 0 ? this.#epoch : -1);
    this.#schedule();
    return 1;
  }

  // ---- forwarding ----------------------------------------------------------------------------

  #enqueue(node: string, data: Buffer, epoch: number): void {
    let list = this.#out.get(node);
    if (list === undefined) {
      list = [];
      this.#out.set(node, list);
    }
    if (this.#queued >= this.#maxPending) this.#dropOldest();
    list.push({ data, epoch });
    this.#queued++;
    if (epoch >= 0) this.#outstanding.set(epoch, (this.#outstanding.get(epoch) ?? 0) + 1);
  }

  #dropOldest(): void {
    for (const list of this.#out.values()) {
      const o = list.shift();
      if (o === undefined) continue;
      this.#queued--;
      this.stats.dropped++;
      if (this.stats.dropped === 1 || this.stats.dropped % 1000 === 0) {
        this.#logger.warn({ node: this.nodeId, dropped: this.stats.dropped, maxPendingMessages: this.#maxPending }, 'cluster: forward queue full while Redis is away; oldest forwards dropped');
      }
      this.#settle(o.epoch);
      return;
    }
  }

  #settle(epoch: number): void {
    if (epoch < 0) return;
    const left = (this.#outstanding.get(epoch) ?? 1) - 1;
    if (left > 0) {
      this.#outstanding.set(epoch, left);
      return;
    }
    this.#outstanding.delete(epoch);
    // The lowest epoch still outstanding (a Map iterates in insertion order, and epochs only grow).
    let lowest = Infinity;
    for (const e of this.#outstanding.keys()) {
      lowest = e;
      break;
    }
    const waiters = this.#waiters;
    let i = 0;
    while (i < waiters.length && waiters[i]!.epoch < lowest) waiters[i++]!.resolve();
    if (i > 0) waiters.splice(0, i);
  }

  #schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#flushSoon);
  }

  #flush(): void {
    this.#flushScheduled = false;
    this.#epoch++;
    // Before start (the broker restoring its sessions) and while Redis is away, forwards and
    // route changes wait: start and the reconnect write every route anyway.
    if (this.#redisDown || this.#reading === undefined) return;
    if ((this.#routeChanges.size > 0 || this.#shareChanges.size > 0) && this.#holdRoutes === 0) this.#writeRoutes();
    for (const [node, list] of this.#out) {
      if (list.length === 0) continue;
      this.#out.set(node, []);
      this.#queued -= list.length;
      void this.#send(node, list);
    }
  }

  async #send(node: string, list: Out[]): Promise<void> {
    const stream = this.#streamOf(node);
    const p = this.#cmd.pipeline();
    for (const o of list) p.xaddBuffer(stream, 'MAXLEN', '~', this.#maxStream, '*', 'm', o.data);
    this.#sending++;
    let results: [Error | null, unknown][] | null;
    try {
      results = await p.exec();
    } catch {
      results = null;
    } finally {
      this.#sending--;
    }
    const failed: Out[] = [];
    for (let i = 0; i < list.length; i++) {
      const r = results?.[i];
      if (r === undefined || r[0] !== null) failed.push(list[i]!);
      else {
        this.stats.forwarded++;
        this.#settle(list[i]!.epoch);
      }
    }
    if (failed.length === 0) return;
    if (this.#closed) {
      for (const o of failed) this.#settle(o.epoch);
      return;
    }
    this.stats.retries++;
    // Back at the head of the node's queue, in order, bounded like any other forward.
    const current = this.#out.get(node) ?? [];
    this.#out.set(node, [...failed, ...current]);
    this.#queued += failed.length;
    while (this.#queued > this.#maxPending) this.#dropOldest();
    this.#retrySoon();
  }

  #retrySoon(): void {
    if (this.#retryTimer !== undefined || this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#schedule();
    }, Math.min(this.#heartbeatMs, 500));
    this.#retryTimer.unref();
  }

  #writeRoutes(): void {
    const changes = this.#routeChanges;
    this.#routeChanges = new Map();
    const shares = this.#shareChanges;
    this.#shareChanges = new Map();
    const p = this.#cmd.pipeline();
    const set = this.#key(`routes:${this.nodeId}`);
    for (const [filter, add] of changes) {
      if (add) p.sadd(set, filter);
      else p.srem(set, filter);
      p.publish(this.#channel, `${add ? '+' : '-'}${this.nodeId} ${filter}`);
    }
    const hash = this.#key(`shares:${this.nodeId}`);
    for (const [field, o] of shares) {
      if (o === '') p.hdel(hash, field);
      else p.hset(hash, field, o);
      const [g, f, c] = JSON.parse(field) as [string, string, string];
      p.publish(this.#channel, `m${JSON.stringify({ n: this.nodeId, g, f, c, o })}`);
    }
    void p.exec().then((results) => {
      if (results?.some((r) => r[0] !== null)) this.#routesFailed(changes, shares);
    }, () => this.#routesFailed(changes, shares));
  }

  /** Route changes that did not reach Redis are written again (the resync after a reconnect writes them all anyway). */
  #routesFailed(changes: Map<string, boolean>, shares: Map<string, string>): void {
    if (this.#closed) return;
    for (const [filter, add] of changes) if (!this.#routeChanges.has(filter)) this.#routeChanges.set(filter, add);
    for (const [field, o] of shares) if (!this.#shareChanges.has(field)) this.#shareChanges.set(field, o);
    this.#retrySoon();
  }

  // ---- the route table -------------------------------------------------------------------------

  #announcement(text: string): void {
    const kind = text[0];
    if (kind === 'j') {
      this.#request(text);
      return;
    }
    if (kind === 'm') {
      this.#shareAnnounced(text.slice(1));
      return;
    }
    if (kind === 'l') {
      this.#loadsAnnounced(text.slice(1));
      return;
    }
    const space = text.indexOf(' ');
    const node = space < 0 ? text.slice(1) : text.slice(1, space);
    if (node === this.nodeId) return;
    if (kind === '+' || kind === '-') {
      const filter = text.slice(space + 1);
      this.#live.add(node);
      if (kind === '+') this.#addRoute(node, filter);
      else this.#removeRoute(node, filter);
      this.#logger.debug({ node: this.nodeId, from: node, filter, op: kind }, 'cluster route');
    } else if (kind === 'r') {
      this.#live.add(node);
      void this.#loadNode(node).catch(() => undefined);
    } else if (kind === 'd') this.#forget(node);
  }

  #addRoute(node: string, filter: string): void {
    let set = this.#nodeFilters.get(node);
    if (set === undefined) {
      set = new Set();
      this.#nodeFilters.set(node, set);
    }
    if (set.has(filter)) return;
    set.add(filter);
    this.#routes.add(filter, node, node);
  }

  #removeRoute(node: string, filter: string): void {
    const set = this.#nodeFilters.get(node);
    if (set === undefined || !set.delete(filter)) return;
    this.#routes.remove(filter, node);
  }

  async #loadNode(node: string): Promise<void> {
    const [filters, members] = await Promise.all([this.#cmd.smembers(this.#key(`routes:${node}`)), this.#cmd.hgetall(this.#key(`shares:${node}`))]);
    const next = new Set(filters);
    for (const f of this.#nodeFilters.get(node) ?? []) if (!next.has(f)) this.#removeRoute(node, f);
    for (const f of next) this.#addRoute(node, f);
    const wanted = new Set<string>();
    for (const [field, o] of Object.entries(members)) {
      const [g, f, c] = JSON.parse(field) as [string, string, string];
      wanted.add(`${shareKey(g, f)}\u0000${c}`);
      this.#setMember(node, g, f, c, o === '1');
    }
    for (const g of [...this.#shares.values()]) {
      for (const m of [...g.members()]) if (m.node === node && !wanted.has(`${shareKey(g.group, g.filter)}\u0000${m.clientId}`)) this.#setMember(node, g.group, g.filter, m.clientId, undefined);
    }
    this.#logger.debug({ node: this.nodeId, from: node, routes: next.size }, 'cluster routes loaded');
  }

  #forget(node: string): void {
    if (!this.#live.delete(node) && !this.#nodeFilters.has(node)) return;
    for (const f of this.#nodeFilters.get(node) ?? []) this.#routes.remove(f, node);
    this.#nodeFilters.delete(node);
    this.#dropMembers(node);
    // What waits for a dead node stays in its stream for when it comes back.
    this.#logger.info({ node: this.nodeId, dead: node }, 'cluster: node gone, its routes removed');
  }

  /** Writes this node's presence and routes, then (re)loads every other node's routes. */
  async #resync(): Promise<void> {
    const me = this.nodeId;
    const set = this.#key(`routes:${me}`);
    const p = this.#cmd.multi();
    p.hset(this.#key('nodes'), me, String(Date.now()));
    p.set(this.#key(`alive:${me}`), '1', 'PX', this.#timeoutMs);
    p.del(set);
    const filters = [...this.#local.keys()];
    for (let i = 0; i < filters.length; i += 1000) p.sadd(set, ...filters.slice(i, i + 1000));
    const hash = this.#key(`shares:${me}`);
    p.del(hash);
    const fields: string[] = [];
    for (const [cid, keys] of this.#localShares) {
      for (const key of keys) {
        const g = this.#shares.get(key);
        if (g !== undefined) fields.push(JSON.stringify([g.group, g.filter, cid]), this.#leases.has(cid) ? '1' : '0');
      }
    }
    for (let i = 0; i < fields.length; i += 1000) p.hset(hash, ...fields.slice(i, i + 1000));
    p.publish(this.#channel, `r${me}`);
    await p.exec();
    this.#routeChanges.clear();
    this.#shareChanges.clear();
    await this.#blk.call('XGROUP', 'CREATE', this.#streamOf(me), GROUP, '0', 'MKSTREAM').catch((err: unknown) => {
      if (!String(err).includes('BUSYGROUP')) throw err;
    });
    const nodes = Object.keys(await this.#cmd.hgetall(this.#key('nodes'))).filter((n) => n !== me);
    const alive = await Promise.all(nodes.map((n) => this.#cmd.exists(this.#key(`alive:${n}`))));
    for (const [i, node] of nodes.entries()) {
      if (alive[i] === 1) {
        this.#live.add(node);
        await this.#loadNode(node);
      } else this.#forget(node);
    }
    this.stats.resyncs++;
  }

  #reconnected(): void {
    this.#resync().then(() => {
      this.#redisDown = false;
      this.#logger.info({ node: this.nodeId, queued: this.#queued, dropped: this.stats.dropped }, 'cluster: Redis back; routes resynced, queued forwards resumed');
      this.#schedule();
    }, (err: unknown) => {
      this.#logger.warn({ node: this.nodeId, err }, 'cluster: resync failed; retrying');
      const t = setTimeout(() => this.#reconnected(), Math.min(this.#heartbeatMs, 500));
      t.unref();
    });
  }

  /** Heartbeat: this node is alive; other nodes whose heartbeat lapsed are dead (one survivor reaps them). */
  async #beat(): Promise<void> {
    if (this.#closed || this.#redisDown) return;
    try {
      const me = this.nodeId;
      await this.#cmd.multi().hset(this.#key('nodes'), me, String(Date.now())).set(this.#key(`alive:${me}`), '1', 'PX', this.#timeoutMs).exec();
      await this.#renewLeases();
      this.#reportLoads();
      const nodes = Object.keys(await this.#cmd.hgetall(this.#key('nodes'))).filter((n) => n !== me);
      const alive = await Promise.all(nodes.map((n) => this.#cmd.exists(this.#key(`alive:${n}`))));
      for (const [i, node] of nodes.entries()) {
        if (alive[i] === 1) {
          if (!this.#live.has(node)) {
            this.#live.add(node);
            await this.#loadNode(node);
          }
          continue;
        }
        // Its shared-group members are picked no more; its routes stay until the survivor that
        // reaps it took its sessions over (what is sent to its stream meanwhile is delivered then).
        this.#live.delete(node);
        this.#dropMembers(node);
        // One survivor reaps it: takes its sessions and its stream over, then removes its routes.
        const won = await this.#cmd.set(this.#key(`reap:${node}`), me, 'PX', 4 * this.#timeoutMs, 'NX');
        if (won === 'OK') {
          void this.#takeOver(node).catch((err: unknown) => this.#logger.error({ node: me, dead: node, err }, 'cluster: the dead node could not be taken over'));
        }
      }
    } catch {
      // Redis away: the reconnect resyncs.
    }
  }

  // ---- receiving -------------------------------------------------------------------------------

  async #readLoop(): Promise<void> {
    const stream = this.#streamOf(this.nodeId);
    // First what was read but not acknowledged before (a crash), then new entries.
    let from = '0';
    while (!this.#closed) {
      let reply: unknown;
      try {
        reply = await this.#blk.callBuffer('XREADGROUP', 'GROUP', GROUP, this.nodeId, 'COUNT', this.#readCount, 'BLOCK', 1000, 'STREAMS', stream, from);
      } catch (err) {
        if (this.#closed) return;
        if (String(err).includes('NOGROUP')) {
          // Redis lost the stream (restarted without persistence): start a new group.
          await this.#blk.call('XGROUP', 'CREATE', stream, GROUP, '0', 'MKSTREAM').catch(() => undefined);
          from = '0';
        } else await this.#waitReady(this.#blk);
        continue;
      }
      const entries = streamEntries(reply);
      if (entries.length === 0) {
        if (from === '0') from = '>';
        continue;
      }
      const broker = this.#broker!;
      const ids: Buffer[] = [];
      let receivers = 0;
      for (const [id, data] of entries) {
        ids.push(id);
        if (data === undefined) continue;
        try {
          const m = decodeBusMessage(data);
          if (m.only.length > 0) receivers += this.#deliverPassedOn(m);
          else {
            if (m.plain && (this.#movedIn.size > 0 || this.#movingIn.size > 0 || this.#recentDirect.size > 0) && m.id !== '') this.#sawDirect(m);
            receivers += broker.deliverRemote(m, m.shared.length === 0 ? undefined : (t) => this.#reshare(m, t, m.hops));
            if (m.plain && this.#movedOut.size > 0) this.#passOn(m);
          }
          this.stats.received++;
        } catch (err) {
          this.#logger.error({ node: this.nodeId, err }, 'cluster: undeliverable bus entry skipped');
        }
      }
      this.#logger.debug({ node: this.nodeId, entries: entries.length, receivers, pending: from === '0' }, 'cluster bus read');
      try {
        // What the deliveries stored (persistent sessions) is durable before Redis forgets the entries.
        await broker.settled();
        // Shared-group messages passed on to other nodes are in their streams first.
        if (this.pending) await this.forwarded();
        await this.#cmd.multi().xack(stream, GROUP, ...ids).xdel(stream, ...ids).exec();
      } catch {
        // Not acknowledged: read again as pending after the reconnect (at least once).
        from = '0';
      }
    }
  }

  async #waitReady(conn: RedisConnection): Promise<void> {
    if (conn.status === 'ready' || this.#closed) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, 1000);
      t.unref();
      function done(): void {
        clearTimeout(t);
        conn.off('ready', done);
        resolve();
      }
      conn.once('ready', done);
    });
  }

  /** Stops heartbeats and reading, removes this node's routes and membership, closes the connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flush();
    this.#closed = true;
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    if (this.#started && !this.#redisDown) {
      const me = this.nodeId;
      await this.#cmd.multi().del(this.#key(`routes:${me}`), this.#key(`shares:${me}`), this.#key(`alive:${me}`)).hdel(this.#key('nodes'), me)
        .publish(this.#channel, `d${me}`).exec().catch(() => undefined);
    }
    for (const w of this.#waiters.splice(0)) w.resolve();
    this.#blk.disconnect();
    await this.#reading?.catch(() => undefined);
    for (const c of [this.#cmd, this.#sub]) {
      try {
        await c.quit();
      } catch {
        c.disconnect();
      }
    }
  }
}

const isOnline = (m: ShareMember): boolean => m.online;

function shareKey(group: string, filter: string): string {
  return `${group}\u0000${filter}`;
}

/** The node of an owner or lease value "<node>|<token>"; undefined for none. */
function nodeOf(value: string): string | undefined {
  const bar = value.lastIndexOf('|');
  return bar <= 0 ? undefined : value.slice(0, bar);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });
}

/** [id, value of field "m"] per entry of an XREADGROUP reply on one stream. */
function streamEntries(reply: unknown): [Buffer, Buffer | undefined][] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  // [[key, entries], …] from Redis; ioredis may hand a single stream's reply over as [key, entries].
  const stream = (Array.isArray(reply[0]) ? reply[0] : reply) as [Buffer, [Buffer, Buffer[] | null][] | null];
  if (!Array.isArray(stream[1])) return [];
  const out: [Buffer, Buffer | undefined][] = [];
  for (const [id, fields] of stream[1]) {
    let data: Buffer | undefined;
    if (fields !== null) for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.toString('latin1') === 'm') data = fields[i + 1];
    out.push([id, data]);
  }
  return out;
}
