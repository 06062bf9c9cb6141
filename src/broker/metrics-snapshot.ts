/**
 * `BrokerCore.metrics()`: one consistent snapshot of the counters (counters.ts) and of what is
 * computed from the broker's state when asked (connections per listener, sessions, queues,
 * subscriptions, retained messages). Costs one pass over the connections and the sessions, so
 * it is meant for a scrape or a $SYS update, not for every packet.
 */
import type { DropReason } from './events.js';
import { DROP_REASONS, HOOK_KINDS, type HistogramSnapshot, type HookKind } from './counters.js';
import type { BrokerState } from './state.js';

/** Packet types by name; a packet type's number is its index plus one. */
export const PACKET_NAMES = [
  'connect', 'connack', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'suback', 'unsubscribe', 'unsuback',
  'pingreq', 'pingresp', 'disconnect', 'auth',
] as const;
export type PacketName = (typeof PACKET_NAMES)[number];

export interface PacketCount {
  packets: number;
  /** Whole packets, fixed header included. */
  bytes: number;
}

/** Clients of one listener and protocol level. */
export interface ListenerClients {
  /** The listener's name; 'none' for streams handed to `handle()` without one. */
  listener: string;
  /** '3.1', '3.1.1' or '5.0'. */
  protocol: string;
  /** Connected now. */
  connected: number;
  /** CONNECTs accepted since start. */
  total: number;
}

export interface BrokerMetrics {
  /** Seconds since the broker was created (its clock). */
  uptime: number;
  /** By packet type: what clients sent (decoded packets). */
  received: Record<PacketName, PacketCount>;
  /** By packet type: what the broker handed to connections for writing. */
  sent: Record<PacketName, PacketCount>;
  messages: {
    /** Messages published: PUBLISH accepted from clients, the broker's publish() and wills. */
    published: number;
    /** Copies handed to sessions (sent at once or queued), $SYS messages included. */
    delivered: number;
    /** Deliveries dropped, by reason. */
    dropped: Record<DropReason, number>;
  };
  /** Streams handed to the broker (sockets accepted). */
  sockets: number;
  /** CONNECTs accepted. */
  connects: number;
  clients: {
    connected: number;
    byListener: ListenerClients[];
  };
  sessions: {
    /** Sessions, connected or not. */
    total: number;
    connected: number;
    /** Persistent sessions without a connection. */
    disconnected: number;
    /** Ended by their expiry interval since start. */
    expired: number;
    /** Most sessions at once (sampled when a snapshot is taken). */
    maximum: number;
  };
  subscriptions: {
    /** Every session's subscriptions, shared ones included. */
    total: number;
    /** Members of shared subscription groups. */
    shared: number;
    sharedGroups: number;
  };
  /** Clients' retained messages (the broker's own $SYS messages are not counted). */
  retained: { messages: number; bytes: number };
  /** QoS 1/2 deliveries sent and not acknowledged yet. */
  inflight: number;
  queued: {
    /** Deliveries waiting in session queues (memory). */
    messages: number;
    bytes: number;
    /** The deepest single queue. */
    deepest: number;
    /** Queue entries of offline persistent sessions kept in the store only. */
    spilled: number;
  };
  /** Latency of user code by kind (HOOK_KINDS). */
  hooks: Record<HookKind, HistogramSnapshot>;
  /** Store writes; undefined without a store. */
  store: {
    batches: number;
    records: number;
    errors: number;
    /** QoS 1 PUBACKs sent before their commit, every stored receiver having acknowledged the message. */
    earlyAcks: number;
    /** Ops never written: messages delivered and acknowledged while their batch was held back, with their deliveries. */
    unwritten: number;
    /** From a batch's first record to its commit. */
    commit: HistogramSnapshot;
    /** The store's write call per batch. */
    write: HistogramSnapshot;
  } | undefined;
}

const PROTOCOLS: Readonly<Record<number, string>> = { 3: '3.1', 4: '3.1.1', 5: '5.0' };
const protocolName = (v: number): string => PROTOCOLS[v] ?? String(v);

function packetCounts(packets: Float64Array, bytes: Float64Array): Record<PacketName, PacketCount> {
  const out = {} as Record<PacketName, PacketCount>;
  PACKET_NAMES.forEach((name, i) => {
    out[name] = { packets: packets[i + 1] as number, bytes: bytes[i + 1] as number };
  });
  return out;
}

export function brokerMetrics(st: BrokerState): BrokerMetrics {
  const c = st.counters;
  const dropped = {} as Record<DropReason, number>;
  DROP_REASONS.forEach((reason, i) => {
    dropped[reason] = c.dropped[i] as number;
  });

  const byListener = new Map<string, ListenerClients>();
  for (const { listener, protocolVersion, total } of c.connects()) {
    const protocol = protocolName(protocolVersion);
    byListener.set(`${listener}\u0000${protocol}`, { listener, protocol, connected: 0, total });
  }
  for (const conn of st.connections.values()) {
    const listener = conn.meta.listener?.name ?? 'none';
    const protocol = protocolName(conn.version);
    const key = `${listener}\u0000${protocol}`;
    const entry = byListener.get(key);
    if (entry !== undefined) entry.connected++;
    else byListener.set(key, { listener, protocol, connected: 1, total: 0 });
  }

  let subscriptions = 0;
  let inflight = 0;
  let queuedMessages = 0;
  let queuedBytes = 0;
  let deepest = 0;
  let spilled = 0;
  let connectedSessions = 0;
  for (const s of st.registry.values()) {
    subscriptions += s.subscriptionCount;
    inflight += s.inflightCount;
    const depth = s.queue.length;
    queuedMessages += depth;
    queuedBytes += s.queuedBytes;
    if (depth > deepest) deepest = depth;
    spilled += s.spilledCount;
    if (s.link !== undefined) connectedSessions++;
  }
  let shared = 0;
  for (const g of st.groups.values()) shared += g.size;
  const total = st.registry.size;
  if (total > c.sessionsMaximum) c.sessionsMaximum = total;

  const hooks = {} as Record<HookKind, HistogramSnapshot>;
  for (const kind of HOOK_KINDS) hooks[kind] = c.hooks[kind].snapshot();

  return {
    uptime: (st.clock.now() - st.startedAt) / 1000,
    received: packetCounts(c.packetsIn, c.bytesIn),
    sent: packetCounts(c.packetsOut, c.bytesOut),
    messages: { published: st.stats.messagesReceived, delivered: st.stats.messagesRouted, dropped },
    sockets: st.stats.connectionsAccepted,
    connects: c.connectsAccepted,
    clients: { connected: st.connections.size, byListener: [...byListener.values()] },
    sessions: {
      total, connected: connectedSessions, disconnected: total - connectedSessions, expired: c.sessionsExpired, maximum: c.sessionsMaximum,
    },
    subscriptions: { total: subscriptions, shared, sharedGroups: st.groups.size },
    retained: { messages: st.retained.size, bytes: st.retained.bytes },
    inflight,
    queued: { messages: queuedMessages, bytes: queuedBytes, deepest, spilled },
    hooks,
    store: st.durability === undefined ? undefined : {
      batches: c.storeBatches, records: c.storeOps, errors: c.storeErrors, earlyAcks: c.storeEarlyAcks, unwritten: c.storeUnwritten, commit: c.storeCommit.snapshot(), write: c.storeWrite.snapshot(),
    },
  };
}
