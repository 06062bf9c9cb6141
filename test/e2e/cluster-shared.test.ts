/**
 * Shared subscriptions across the nodes of a cluster (three Petrel nodes as child processes over
 * one real redis-server, MQTT.js 5.0 clients spread over the nodes): each message published to
 * a `$share/{group}/{filter}` goes to ONE member cluster-wide (§4.8.2), picked by the
 * publishing node's strategy (node a round-robin, b random, c least-inflight), online members
 * first; plain subscribers still get every message; when the node of the picked member dies,
 * the messages waiting in its stream go to the group's other members.
 */
import assert from 'node:assert/strict';
import { after, before, describe, type TestContext, test } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { clientOptions, connectClient, endAll, Inbox, waitFor, withTimeout } from '../helpers/mqttjs.js';
import { type LogRecord, PetrelNode } from '../helpers/petrel-node.js';
import { RedisServer } from '../helpers/redis-server.js';

let redis: RedisServer;
const nodes: PetrelNode[] = [];
let a: PetrelNode;
let b: PetrelNode;
let c: PetrelNode;

before(async () => {
  redis = await RedisServer.start({ appendOnly: true });
  nodes.push(...await Promise.all([
    PetrelNode.start({ redis: redis.url, nodeId: 'a', sharedSubscriptionStrategy: 'round-robin' }),
    PetrelNode.start({ redis: redis.url, nodeId: 'b', sharedSubscriptionStrategy: 'random' }),
    PetrelNode.start({ redis: redis.url, nodeId: 'c', sharedSubscriptionStrategy: 'least-inflight' }),
  ]));
  [a, b, c] = nodes as [PetrelNode, PetrelNode, PetrelNode];
});

after(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  await redis.close();
});

const persistent = { clean: false, properties: { sessionExpiryInterval: 300 } } as const;

async function member(t: TestContext, node: PetrelNode, clientId: string, filter: string, extra = {}): Promise<Inbox> {
  const m = new Inbox(await connectClient(node.url, 5, { clientId, ...extra }));
  t.after(() => endAll([m.client]));
  await m.client.subscribeAsync(filter, { qos: 1 });
  return m;
}

async function publisher(t: TestContext, node: PetrelNode, clientId: string): Promise<MqttClient> {
  const p = await connectClient(node.url, 5, { clientId });
  t.after(() => endAll([p]));
  return p;
}

const payloads = (n: number, tag: string): string[] => Array.from({ length: n }, (_, i) => `${tag}-${i}`);

/** Every payload of `sent` was received exactly once over all `inboxes` on `topic`. */
function onceEach(inboxes: readonly Inbox[], topic: string, sent: readonly string[]): void {
  const got = inboxes.flatMap((i) => i.on(topic).map((m) => m.payload)).sort();
  assert.deepEqual(got, [...sent].sort(), 'each message reached exactly one member of the group');
}

describe('shared subscriptions across the nodes of a cluster', () => {
  test('§4.8.2 one member cluster-wide per message, round robin over the members of every node; plain subscribers get every message', async (t) => {
    const m1 = await member(t, a, 'rr-1', '$share/rr/jobs/+');
    const m2 = await member(t, b, 'rr-2', '$share/rr/jobs/+');
    const m3 = await member(t, c, 'rr-3', '$share/rr/jobs/+');
    const plain = await member(t, b, 'rr-plain', 'jobs/#');
    await Promise.all([a.share('b', 'rr', 'rr-2'), a.share('c', 'rr', 'rr-3'), a.route('b', 'jobs/#')]);
    const pub = await publisher(t, a, 'rr-pub');
    const sent = payloads(30, 'job');
    for (const p of sent) await pub.publishAsync('jobs/print', p, { qos: 1 });
    const group = [m1, m2, m3];
    await Promise.all(group.map((m) => m.until((x) => x.length >= 10, `10 jobs at ${m.client.options.clientId ?? '?'}`)));
    await plain.until((x) => x.length >= 30, 'the 30 jobs at the plain subscriber');
    // No late duplicates: a marker published after everything, through the same nodes, comes after them.
    await pub.publishAsync('jobs/marker', 'end', { qos: 1 });
    await plain.next('jobs/marker');
    await withAll(group, 31);
    onceEach(group, 'jobs/print', sent);
    for (const m of group) assert.equal(m.on('jobs/print').length, 10, 'round robin: an equal share each');
    assert.deepEqual(plain.on('jobs/print').map((m) => m.payload), sent, 'the plain subscriber: every message once, in order');
  });

  test('random (node b) and least-inflight (node c): still one member per message, each member used', async (t) => {
    const m1 = await member(t, a, 'mix-1', '$share/mix/work');
    const m2 = await member(t, b, 'mix-2', '$share/mix/work');
    const m3 = await member(t, c, 'mix-3', '$share/mix/work');
    await Promise.all([b.share('a', 'mix', 'mix-1'), b.share('c', 'mix', 'mix-3'), c.share('a', 'mix', 'mix-1'), c.share('b', 'mix', 'mix-2')]);
    const fromB = await publisher(t, b, 'mix-pub-b');
    const fromC = await publisher(t, c, 'mix-pub-c');
    const sentB = payloads(60, 'b');
    const sentC = payloads(30, 'c');
    await Promise.all([...sentB.map((p) => fromB.publishAsync('work', p, { qos: 1 })), ...sentC.map((p) => fromC.publishAsync('work', p, { qos: 1 }))]);
    const group = [m1, m2, m3];
    await withAll(group, 90);
    onceEach(group, 'work', [...sentB, ...sentC]);
    // Least-inflight with equal loads takes the members in turn: each gets some of node c's messages.
    for (const m of group) assert.ok(m.messages.some((x) => x.payload.startsWith('c-')), `${m.client.options.clientId ?? '?'} got some of node c's messages`);
    // Random over three members: (2/3)^60 is the chance that one member gets none of node b's 60.
    for (const m of group) assert.ok(m.messages.some((x) => x.payload.startsWith('b-')), `${m.client.options.clientId ?? '?'} got some of node b's messages`);
  });

  test('an offline member on another node gets nothing while members are online (online members first, as in one broker)', async (t) => {
    const m1 = await member(t, a, 'on-1', '$share/on/tasks');
    const away = await member(t, b, 'on-away', '$share/on/tasks', persistent);
    const m3 = await member(t, c, 'on-3', '$share/on/tasks');
    await Promise.all([a.share('b', 'on', 'on-away'), a.share('c', 'on', 'on-3')]);
    const mark = a.mark();
    await endAll([away.client]);
    await a.share('b', 'on', 'on-away', 'offline', mark);
    const pub = await publisher(t, a, 'on-pub');
    const sent = payloads(12, 'task');
    for (const p of sent) await pub.publishAsync('tasks', p, { qos: 1 });
    await withAll([m1, m3], 12);
    onceEach([m1, m3], 'tasks', sent);
    // Back online: nothing was queued for it; later messages include it again.
    const mark2 = a.mark();
    const back = new Inbox(mqtt.connect(b.url, clientOptions(5, { clientId: 'on-away', ...persistent })));
    t.after(() => endAll([back.client]));
    const [connack] = await waitFor(back.client, 'connect');
    assert.equal((connack as { sessionPresent: boolean }).sessionPresent, true);
    await a.share('b', 'on', 'on-away', 'online', mark2);
    const later = payloads(3, 'later');
    for (const p of later) await pub.publishAsync('tasks', p, { qos: 1 });
    await back.until((x) => x.length >= 1, 'a message after coming back');
    await withAll([m1, back, m3], 15);
    assert.ok(back.messages.every((x) => x.payload.startsWith('later-')), `only later messages, got ${JSON.stringify(back.messages.map((x) => x.payload))}`);
    onceEach([m1, back, m3], 'tasks', [...sent, ...later]);
  });

  test('§4.8.2 a member that leaves with unacknowledged messages: another node\'s member gets them', async (t) => {
    // A member that never acknowledges (its QoS 1 deliveries stay in flight at the broker).
    let unacked = 0;
    let counted = (): void => undefined;
    const stuck = await connectClient(a.url, 5, {
      clientId: 'rd-stuck',
      customHandleAcks: () => {
        unacked++;
        counted();
      },
    });
    t.after(() => endAll([stuck]));
    await stuck.subscribeAsync('$share/rd/orders', { qos: 1 });
    const other = await member(t, c, 'rd-other', '$share/rd/orders');
    await a.share('c', 'rd', 'rd-other');
    const pub = await publisher(t, a, 'rd-pub');
    const sent = payloads(10, 'rd');
    await Promise.all(sent.map((p) => pub.publishAsync('orders', p, { qos: 1 })));
    await other.until((x) => x.length >= 5, 'the other member\'s half');
    // All 10 were routed (acknowledged): 5 went to rd-stuck, which took the first and reads no more until it acknowledges it.
    await withTimeout(new Promise<void>((resolve) => {
      counted = () => {
        if (unacked >= 1) resolve();
      };
      counted();
    }), 15_000, 'a message at the stuck member');
    // Its session ends with its connection: its in-flight messages go to the member on node c.
    await endAll([stuck]);
    await other.until((x) => x.length >= 10, 'all 10 at the other member', 15_000);
    assert.deepEqual(other.on('orders').map((m) => m.payload).sort(), [...sent].sort());
  });

  test('a SIGKILLed node: what waits in its stream reaches the group\'s other members, and its persistent subscriber on the node it reconnects to', async (t) => {
    const m1 = await member(t, a, 'dd-1', '$share/dd/alerts');
    const m2 = await member(t, b, 'dd-2', '$share/dd/alerts');
    const m3 = await member(t, c, 'dd-3', '$share/dd/alerts');
    const sub = await member(t, b, 'dd-sub', 'alerts', persistent);
    await Promise.all([a.share('b', 'dd', 'dd-2'), a.share('c', 'dd', 'dd-3'), a.route('b', 'alerts')]);
    await endAll([sub.client]);
    await b.stop('SIGKILL');
    await endAll([m2.client]);
    const pub = await publisher(t, a, 'dd-pub');
    const sent = payloads(30, 'alert');
    // Acknowledged once in Redis. Node a routes to node b until a survivor took node b over:
    // the round robin's picks of dd-2 and every message for dd-sub wait in node b's stream.
    await Promise.all(sent.map((p) => pub.publishAsync('alerts', p, { qos: 1 })));
    await withAll([m1, m3], 30);
    onceEach([m1, m3], 'alerts', sent);
    assert.equal(m2.messages.length, 0);
    // The survivor delivered the stream: the 30 for dd-sub's session, and the group's picks of dd-2.
    const drained = (r: LogRecord): boolean => r.msg === 'cluster: the dead node\'s stream was delivered' && r.dead === 'b';
    const report = await Promise.any([a.waitFor(drained, 'the stream delivered'), c.waitFor(drained, 'the stream delivered')]);
    assert.ok((report.delivered as number) > 30, `shared-group picks of dd-2 waited in node b's stream too: ${String(report.delivered)}`);
    // The persistent subscriber comes back on another node: its session, with what waited, is there [MQTT-3.2.2-2].
    const back = new Inbox(mqtt.connect(c.url, clientOptions(5, { clientId: 'dd-sub', ...persistent })));
    t.after(() => endAll([back.client]));
    const [connack] = await waitFor(back.client, 'connect', 15_000);
    assert.equal((connack as { sessionPresent: boolean }).sessionPresent, true);
    await back.until((x) => x.length >= 30, 'the 30 alerts that waited in the dead node\'s stream', 15_000);
    assert.deepEqual(back.on('alerts').map((m) => m.payload), sent, 'every one once, in order');
  });

  test('a persistent client of a SIGKILLed node reconnecting elsewhere at once gets what waited in the dead node\'s stream', async (t) => {
    if (!b.running) await b.restart();
    const sub = await connectClient(b.url, 5, { clientId: 'mv-sub', ...persistent });
    t.after(() => endAll([sub]));
    await sub.subscribeAsync('moves', { qos: 1 });
    await a.route('b', 'moves');
    await b.stop('SIGKILL');
    await endAll([sub]);
    const pub = await publisher(t, a, 'mv-pub');
    const sent = payloads(10, 'move');
    await Promise.all(sent.map((p) => pub.publishAsync('moves', p, { qos: 1 })));
    // Its lease lapses with the node; the CONNECT waits until a survivor took the session over.
    const back = new Inbox(mqtt.connect(c.url, clientOptions(5, { clientId: 'mv-sub', ...persistent, connectTimeout: 20_000 })));
    t.after(() => endAll([back.client]));
    const [connack] = await waitFor(back.client, 'connect', 20_000);
    assert.equal((connack as { sessionPresent: boolean }).sessionPresent, true);
    await back.until((x) => x.length >= 10, 'the 10 messages of the dead node\'s stream', 15_000);
    assert.deepEqual(back.on('moves').map((m) => m.payload), sent, 'every one once, in order');
  });
});

/** Waits (bounded) until the inboxes together hold `n` messages. */
async function withAll(inboxes: readonly Inbox[], n: number): Promise<void> {
  const total = (): number => inboxes.reduce((s, i) => s + i.messages.length, 0);
  let check = (): void => undefined;
  const done = new Promise<void>((resolve) => {
    check = (): void => {
      if (total() >= n) resolve();
    };
  });
  // The Inbox records a message before later 'message' listeners run.
  for (const i of inboxes) i.client.on('message', check);
  try {
    check();
    await withTimeout(done, 15_000, `${n} messages over the group (got ${total()})`);
  } finally {
    for (const i of inboxes) i.client.off('message', check);
  }
}
