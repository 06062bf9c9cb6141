/**
 * A deterministic store workload for crash tests: batch i stores message i and queues it for
 * client c(i % 4), retains it on r/(i % 8), moves queue entry i-16 to inflight and completes
 * inflight entry i-32. After batches 0..last are committed (and nothing later), the state is
 * exactly `expectedAfter(last)`, so a reader can tell which prefix of batches survived.
 */
import { Buffer } from 'node:buffer';
import type { InflightEntry, QueueEntry, StoredMessage, StoredSession, StoreOp } from '../../src/persistence/index.js';

const clients = 4;
const client = (i: number): string => `c${i % clients}`;
const packetId = (i: number): number => (i % 65535) + 1;

function message(i: number): StoredMessage {
  return {
    id: `m${i}`, topic: `crash/${i % 8}`, payload: Buffer.alloc(2048, `batch ${i};`), qos: 1, retain: false,
    properties: { correlationData: Buffer.from(`corr ${i}`) }, expiresAt: 1_700_000_000_000 + i, senderId: 'crash-writer',
  };
}

const queued = (i: number): QueueEntry => ({ clientId: client(i), seq: i, messageId: `m${i}`, qos: 1, retain: false, subscriptionIds: [i % 3 + 1] });
const inflight = (i: number): InflightEntry => ({ ...queued(i), packetId: packetId(i), state: 'publish' });
const session = (i: number): StoredSession => ({ clientId: client(i), expiryInterval: 3600, expiresAt: 1_700_000_000_000 + i, will: undefined, willAt: undefined });

export function batch(i: number): StoreOp[] {
  const ops: StoreOp[] = [
    { op: 'session', session: session(i) },
    { op: 'message', message: message(i) },
    { op: 'enqueue', entry: queued(i) },
    { op: 'retain', topic: `r/${i % 8}`, messageId: `m${i}` },
  ];
  if (i >= 16) ops.push({ op: 'dequeue', clientId: client(i - 16), seq: i - 16 }, { op: 'inflight', entry: inflight(i - 16) });
  if (i >= 32) ops.push({ op: 'complete', clientId: client(i - 32), packetId: packetId(i - 32) });
  return ops;
}

export interface Expected {
  sessions: StoredSession[];
  queue: QueueEntry[];
  inflight: InflightEntry[];
  retained: { topic: string; messageId: string }[];
  messages: StoredMessage[];
}

/** The state after batches 0..last, with lists sorted by client then seq (messages by index). */
export function expectedAfter(last: number): Expected {
  const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, k) => from + k);
  const bySeq = <E extends QueueEntry>(list: E[]): E[] => list.sort((a, b) => (a.clientId === b.clientId ? a.seq - b.seq : a.clientId < b.clientId ? -1 : 1));
  const queue = bySeq(range(Math.max(0, last - 15), last).map(queued));
  const inflightList = bySeq(range(Math.max(0, last - 31), last - 16).map(inflight));
  const retained = range(Math.max(0, last - 7), last).map((i) => ({ topic: `r/${i % 8}`, messageId: `m${i}` }));
  const sessions = range(Math.max(0, last - clients + 1), last).map(session);
  const messages = range(Math.max(0, last - 31), last).map(message);
  return { sessions, queue, inflight: inflightList, retained, messages };
}
