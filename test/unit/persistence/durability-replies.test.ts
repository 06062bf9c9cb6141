/**
 * The broker's side of group commit (broker/durability.ts): everything one turn collects is one
 * store write, every commit() of the turn gets the same promise, and the replies of a connection
 * that wait for it are sent after it, in order [MQTT-4.6.0-2], without a promise per reply; a
 * reply made after a link of the chain fired is never lost, and a failed write sends nothing.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { Durability, replyAfterCommit, type ReplyTarget } from '../../../src/broker/durability.js';
import { createMessage, type Message } from '../../../src/broker/message.js';
import { MemoryStore } from '../../../src/persistence/memory.js';
import type { StoreOp } from '../../../src/persistence/types.js';
import { ManualClock } from '../../../src/session/clock.js';

/** A memory store whose writes wait for `release()` (or fail with `fail()`); it records every write. */
class GatedStore extends MemoryStore {
  readonly writes: (readonly StoreOp[])[] = [];
  #gates: { open: () => void; fail: (err: Error) => void }[] = [];

  override write(ops: readonly StoreOp[]): Promise<void> {
    this.writes.push(ops);
    return new Promise<void>((resolve, reject) => {
      this.#gates.push({ open: resolve, fail: reject });
    }).then(() => super.write(ops));
  }

  release(): void {
    for (const g of this.#gates.splice(0)) g.open();
  }

  fail(): void {
    for (const g of this.#gates.splice(0)) g.fail(new Error('disk on fire'));
  }
}

class Conn implements ReplyTarget {
  phase = 'connected';
  failures: unknown[] = [];
  fail(err: unknown): void {
    this.failures.push(err);
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function setup(): Promise<{ store: GatedStore; d: Durability; chains: WeakMap<Conn, Promise<void>>; c: Conn }> {
  const store = new GatedStore();
  await store.open();
  return { store, d: new Durability(store, new ManualClock(), () => 0), chains: new WeakMap(), c: new Conn() };
}

const failure = (): Error => new Error('the message could not be stored');

describe('Durability: one write per turn, replies after it', () => {
  test('[MQTT-4.6.0-2] the replies of a turn wait for its one write and go in order; nothing is sent before it', async () => {
    const { store, d, chains, c } = await setup();
    const sent: number[] = [];
    const commits = new Set<Promise<void>>();
    for (let i = 0; i < 5; i++) {
      d.unsubscribed(`client-${i}`, 'f');
      assert.equal(d.pending, true);
      replyAfterCommit(d, chains, c, () => sent.push(i), failure);
      assert.equal(d.pending, false, 'the reply took the commit');
      commits.add(d.commit());
    }
    // A reply that stored nothing itself still waits behind the earlier ones.
    replyAfterCommit(d, chains, c, () => sent.push(5), failure);
    assert.equal(commits.size, 1, 'every commit() of the turn is the same promise');
    await turn();
    assert.equal(store.writes.length, 1, 'the turn is one write');
    assert.equal(store.writes[0]!.length, 5);
    await turn();
    assert.equal(sent.length, 0, 'nothing before the write is durable');
    store.release();
    await d.commit();
    await turn();
    assert.deepEqual(sent, [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(c.failures, []);
  });

  test('a reply made after a link of the chain sent its replies, before the chain forgot it, is still sent', async () => {
    const { store, d, chains, c } = await setup();
    const sent: string[] = [];
    d.unsubscribed('a', 'f');
    replyAfterCommit(d, chains, c, () => {
      sent.push('first');
      // Runs after this link's sends and before the chain's clean-up: another promise settling.
      queueMicrotask(() => replyAfterCommit(d, chains, c, () => sent.push('second'), failure));
    }, failure);
    await turn();
    store.release();
    for (let i = 0; i < 10 && sent.length < 2; i++) await turn();
    assert.deepEqual(sent, ['first', 'second']);
  });

  test('a failed write sends none of the replies that waited for it and fails the connection', async () => {
    const { store, d, chains, c } = await setup();
    const sent: number[] = [];
    d.unsubscribed('a', 'f');
    replyAfterCommit(d, chains, c, () => sent.push(1), failure);
    d.unsubscribed('b', 'f');
    replyAfterCommit(d, chains, c, () => sent.push(2), failure);
    await turn();
    store.fail();
    await d.commit().catch(() => undefined);
    for (let i = 0; i < 10 && c.failures.length === 0; i++) await turn();
    assert.equal(sent.length, 0);
    assert.equal(c.failures.length, 1);
    // The next turn's writes go on.
    d.unsubscribed('c', 'f');
    replyAfterCommit(d, chains, c, () => sent.push(3), failure);
    await turn();
    store.release();
    for (let i = 0; i < 10 && sent.length === 0; i++) await turn();
    assert.deepEqual(sent, [3]);
  });

  /** A message with `refs` stored entries, as routing to persistent receivers leaves it. */
  const stored = (refs: number): Message => {
    const m = createMessage({ topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, now: 0 });
    m.storeRefs = refs;
    return m;
  };
  /** Its receivers acknowledged it: what Durability.acknowledged does once the last stored entry ends. */
  const deliver = (m: Message): void => {
    m.storeRefs = 0;
    const w = m.ackWaiter;
    m.ackWaiter = undefined;
    w?.delivered();
  };

  test('[MQTT-4.6.0-2] early replies of a turn share one link: it goes once all their messages are delivered, before the commit, in order', async () => {
    const { store, d, chains, c } = await setup();
    const sent: number[] = [];
    const [m1, m2] = [stored(1), stored(2)];
    d.unsubscribed('a', 'f');
    replyAfterCommit(d, chains, c, () => sent.push(1), failure, undefined, m1);
    replyAfterCommit(d, chains, c, () => sent.push(2), failure, undefined, m2);
    assert.ok(m1.ackWaiter !== undefined && m1.ackWaiter === m2.ackWaiter, 'one link');
    await turn();
    deliver(m1);
    await turn();
    assert.deepEqual(sent, [], 'the second message is not delivered yet');
    deliver(m2);
    for (let i = 0; i < 10 && sent.length < 2; i++) await turn();
    assert.deepEqual(sent, [1, 2], 'sent with the write still held');
    // The held write fails later: what went early was delivered; the connection is not failed for it.
    store.fail();
    await d.commit().catch(() => undefined);
    await turn();
    assert.deepEqual(c.failures, []);
  });

  test('a reply that must wait for the commit holds the early replies it joins, and a link that went early takes no more replies', async () => {
    const { store, d, chains, c } = await setup();
    const sent: string[] = [];
    const push = (what: string) => (): void => {
      sent.push(what);
    };
    const m = stored(1);
    d.unsubscribed('a', 'f');
    replyAfterCommit(d, chains, c, push('early'), failure, undefined, m);
    d.unsubscribed('b', 'f');
    replyAfterCommit(d, chains, c, push('waits'), failure);
    deliver(m);
    for (let i = 0; i < 5; i++) await turn();
    assert.deepEqual(sent, [], 'held by the reply that waits for the commit');
    store.release();
    for (let i = 0; i < 10 && sent.length < 2; i++) await turn();
    assert.deepEqual(sent, ['early', 'waits']);
    // A message with no stored entry left goes at once (its link is released as it starts); a
    // later reply of the turn that must wait gets a link of its own instead of joining it.
    const none = stored(0);
    d.unsubscribed('c', 'f');
    replyAfterCommit(d, chains, c, push('nothing stored'), failure, undefined, none);
    d.unsubscribed('d', 'f');
    replyAfterCommit(d, chains, c, push('after'), failure);
    for (let i = 0; i < 10 && sent.length < 3; i++) await turn();
    assert.deepEqual(sent, ['early', 'waits', 'nothing stored']);
    store.release();
    for (let i = 0; i < 10 && sent.length < 4; i++) await turn();
    assert.deepEqual(sent, ['early', 'waits', 'nothing stored', 'after']);
    assert.deepEqual(c.failures, []);
  });
});
