/**
 * Deliveries that ended are reused by the next delivery of any session (session.ts, `spares`).
 * A reused delivery must start as a new one: no packet identifier, QoS 2 state, subscription
 * identifiers or shared group of its previous life, and a spare must not keep its message
 * (with its payload) alive.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { createMessage, type Message } from '../../../src/broker/message.js';
import type { QoS } from '../../../src/protocol/index.js';
import { type DropSink, Session, type SessionLink, sessionLimits } from '../../../src/broker/session.js';

interface Sent {
  msg: Message;
  qos: QoS;
  subIds: number[] | undefined;
  packetId: number;
  dup: boolean;
}

class FakeLink implements SessionLink {
  readonly version = 5;
  readonly congested = false;
  readonly sent: Sent[] = [];
  readonly pubrels: number[] = [];
  sendPublish(_now: number, msg: Message, qos: QoS, _retain: boolean, subIds: number[] | undefined, packetId: number, dup: boolean): boolean {
    this.sent.push({ msg, qos, subIds, packetId, dup });
    return true;
  }
  sendPubrel(packetId: number): void {
    this.pubrels.push(packetId);
  }
}

const drops: DropSink = { dropped: () => undefined, backlogged: () => undefined, relieved: () => undefined };
const limits = sessionLimits({ maxInflight: 20, maxQueuedMessages: 1000, maxQueuedBytes: 0, queueQos0Offline: false });

function online(id: string): { session: Session; link: FakeLink } {
  const session = new Session(id, limits, drops);
  const link = new FakeLink();
  session.link = link;
  return { session, link };
}

const message = (topic: string, payload: Buffer | string, qos: QoS): Message =>
  createMessage({ topic, payload: typeof payload === 'string' ? Buffer.from(payload) : payload, qos, retain: false, now: 0 });

describe('reused deliveries', () => {
  test('a delivery reused after a completed QoS 2 flow starts unreleased: PUBCOMP before PUBREC is a mismatch', () => {
    const a = online('a');
    a.session.deliver(message('t/a', 'first', 2), 2, false, [7], 0);
    const first = a.link.sent[0] as Sent;
    assert.equal(a.session.received(first.packetId, false, 1), 'done');
    assert.equal(a.session.complete(first.packetId, 2, 2), 'done');
    assert.equal(a.session.inflightCount, 0);

    // The ended delivery is the spare the next deliver takes, here for another session.
    const b = online('b');
    b.session.deliver(message('t/b', 'second', 2), 2, false, undefined, 3);
    const second = b.link.sent[0] as Sent;
    assert.equal(second.msg.topic, 't/b');
    assert.equal(second.subIds, undefined);
    assert.equal(second.dup, false);
    // PUBCOMP is only for a released delivery: the reused entry must not still be released.
    assert.equal(b.session.complete(second.packetId, 2, 4), 'mismatch');
    assert.equal(b.session.received(second.packetId, false, 5), 'done');
    assert.equal(b.session.complete(second.packetId, 2, 6), 'done');
  });

  test('many deliveries through a small window: every one is sent once with its own message, QoS and subscription identifiers, and acks complete them', () => {
    const { session, link } = online('w');
    const total = 500;
    let acked = 0;
    const ackNext = (now: number): void => {
      const s = link.sent[acked] as Sent;
      assert.ok(s !== undefined, `delivery ${acked} was sent`);
      if (s.qos === 2) assert.equal(session.received(s.packetId, false, now), 'done');
      assert.equal(session.complete(s.packetId, s.qos as 1 | 2, now), 'done');
      acked++;
    };
    // Deliveries and acknowledgements interleave, so that ended deliveries are reused while
    // others are in flight; every loop is bounded by `total`.
    for (let i = 0; i < total; i++) {
      session.deliver(message(`t/${i}`, `p${i}`, 1), (1 + (i % 2)) as QoS, false, i % 3 === 0 ? [i] : undefined, i);
      if (session.inflightCount === 20) ackNext(i);
    }
    while (acked < total && acked < link.sent.length) ackNext(total + acked);
    assert.equal(link.sent.length, total);
    link.sent.forEach((s, i) => {
      assert.equal(s.msg.topic, `t/${i}`);
      assert.equal(s.msg.payload.toString(), `p${i}`);
      assert.equal(s.qos, 1 + (i % 2));
      assert.deepEqual(s.subIds, i % 3 === 0 ? [i] : undefined);
    });
    assert.equal(session.inflightCount, 0);
    assert.equal(session.queue.length, 0);
  });

  test('a spare does not keep its message alive', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    assert.ok(gc !== undefined, 'the suite runs with --expose-gc');
    const { session, link } = online('g');
    let ref: WeakRef<Message> | undefined;
    (() => {
      const msg = message('big', Buffer.alloc(1024 * 1024, 1), 1);
      ref = new WeakRef(msg);
      session.deliver(msg, 1, false, undefined, 0);
      const s = link.sent.pop() as Sent;
      assert.equal(session.complete(s.packetId, 1, 1), 'done');
    })();
    // Let the WeakRef's target go at the end of this job, then collect.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    assert.equal(ref?.deref(), undefined);
  });
});
