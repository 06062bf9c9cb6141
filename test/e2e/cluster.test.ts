/**
 * Three Petrel nodes (child processes) over one real redis-server, with MQTT.js clients spread
 * over the nodes: routing across nodes (once each, in publish order, wildcards, only to nodes
 * that subscribe), retained messages cluster-wide, a SIGKILLed node (a survivor takes its session
 * and its stream over, so the acknowledged QoS 1 messages for its persistent session reach the
 * client when it comes back to the restarted node), and a Redis restart (local clients served
 * meanwhile, forwards queued and delivered once Redis is back).
 */
import assert from 'node:assert/strict';
import { after, before, describe, type TestContext, test } from 'node:test';
import { Redis } from 'ioredis';
import mqtt, { type MqttClient } from 'mqtt';
import { clientOptions, connectClient, endAll, Inbox, waitFor } from '../helpers/mqttjs.js';
import { PetrelNode } from '../helpers/petrel-node.js';
import { RedisServer } from '../helpers/redis-server.js';

let redis: RedisServer;
const nodes: PetrelNode[] = [];
let a: PetrelNode;
let b: PetrelNode;
let c: PetrelNode;

before(async () => {
  redis = await RedisServer.start({ appendOnly: true });
  nodes.push(...await Promise.all(['a', 'b', 'c'].map((nodeId) => PetrelNode.start({ redis: redis.url, nodeId }))));
  [a, b, c] = nodes as [PetrelNode, PetrelNode, PetrelNode];
});

after(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  await redis.close();
});

async function client(t: TestContext, node: PetrelNode, clientId: string, persistent = false): Promise<MqttClient> {
  const m = await connectClient(node.url, 5, { clientId, ...(persistent ? { clean: false, properties: { sessionExpiryInterval: 300 } } : {}) });
  t.after(() => endAll([m]));
  return m;
}

/** How many entries were ever appended to a node's stream (XINFO STREAM entries-added). */
async function entriesAdded(nodeId: string): Promise<number> {
  const r = new Redis(redis.url);
  try {
    const info = await r.call('XINFO', 'STREAM', `petrel:{node:${nodeId}}:in`) as unknown[];
    const at = info.indexOf('entries-added');
    return at < 0 ? 0 : Number(info[at + 1]);
  } finally {
    r.disconnect();
  }
}

const payloads = (n: number, tag: string): string[] => Array.from({ length: n }, (_, i) => `${tag}-${i}`);

describe('cluster of three nodes over Redis', () => {
  test('a message published on any node reaches every matching subscriber on every node once, in order; a node without subscribers gets nothing', async (t) => {
    const s1 = new Inbox(await client(t, a, 's1'));
    const s2 = new Inbox(await client(t, b, 's2'));
    await s1.client.subscribeAsync('sensors/+/temp', { qos: 1 });
    await s2.client.subscribeAsync('sensors/#', { qos: 0 });
    await Promise.all([b.route('a', 'sensors/+/temp'), c.route('a', 'sensors/+/temp'), a.route('b', 'sensors/#'), c.route('b', 'sensors/#')]);
    const cBefore = await entriesAdded('c');
    const pubC = await client(t, c, 'pub-c');
    const pubA = await client(t, a, 'pub-a');
    const fromC = payloads(30, 'c');
    const fromA = payloads(30, 'a');
    // Overlapping subscriptions of one node still carry one copy per node per message.
    for (let i = 0; i < 30; i++) {
      void pubC.publishAsync('sensors/x/temp', fromC[i]!, { qos: 1 });
      void pubA.publishAsync('sensors/y/temp', fromA[i]!, { qos: 1 });
    }
    await pubC.publishAsync('other/topic', 'nobody', { qos: 1 });
    await s1.until((m) => m.length >= 60, '60 messages at s1');
    await s2.until((m) => m.length >= 60, '60 messages at s2');
    for (const inbox of [s1, s2]) {
      assert.deepEqual(inbox.on('sensors/x/temp').map((m) => m.payload), fromC, 'in publish order, once each');
      assert.deepEqual(inbox.on('sensors/y/temp').map((m) => m.payload), fromA, 'in publish order, once each');
      assert.equal(inbox.on('other/topic').length, 0);
    }
    // Node c subscribes to nothing: nothing was sent to it.
    assert.equal(await entriesAdded('c'), cBefore);
    // No duplicates arrive late: a marker published after everything comes after it, alone.
    await pubC.publishAsync('sensors/z/temp', 'marker', { qos: 1 });
    await s1.next('sensors/z/temp');
    assert.equal(s1.messages.length, 61);
  });

  test('retained messages are cluster-wide: a subscriber on another node gets the retained message at SUBSCRIBE', async (t) => {
    const witness = new Inbox(await client(t, c, 'witness'));
    await witness.client.subscribeAsync('status/#', { qos: 1 });
    await a.route('c', 'status/#');
    const pub = await client(t, a, 'pub-r');
    await pub.publishAsync('status/door', 'open', { qos: 1, retain: true });
    await witness.next('status/door');
    // Node b has no subscriber for status/#, but keeps the retained message for later subscribers.
    const late = new Inbox(await client(t, b, 'late'));
    await late.client.subscribeAsync('status/+', { qos: 1 });
    const got = await late.next('status/door');
    assert.equal(got.payload, 'open');
    assert.equal(got.retain, true);
  });

  test('a SIGKILLed node: a survivor takes its sessions and stream over; acknowledged QoS 1 messages for its persistent session reach the client when it is back', async (t) => {
    const sub = await client(t, b, 'durable-sub', true);
    await sub.subscribeAsync('orders/#', { qos: 1 });
    await a.route('b', 'orders/#');
    await endAll([sub]);
    await b.stop('SIGKILL');
    const pub = await client(t, a, 'orders-pub');
    const sent = payloads(10, 'order');
    // Acknowledged by node a once in node b's stream.
    for (const p of sent) await pub.publishAsync('orders/new', p, { qos: 1 });
    // Heartbeats lapse: a survivor takes b's session (and what waits in b's stream) over; a and c forget b's routes.
    await Promise.all([a.waitFor((r) => r.dead === 'b', 'b declared dead'), c.waitFor((r) => r.dead === 'b', 'b declared dead')]);
    const mark = a.mark();
    await b.restart();
    // The inbox listens before CONNECT: the queued messages follow the CONNACK at once.
    const back = new Inbox(mqtt.connect(b.url, clientOptions(5, { clientId: 'durable-sub', clean: false, properties: { sessionExpiryInterval: 300 } })));
    t.after(() => endAll([back.client]));
    await waitFor(back.client, 'connect');
    await back.until((m) => m.length >= 10, 'the 10 orders');
    assert.deepEqual(back.on('orders/new').map((m) => m.payload), sent);
    // Clients go on through the restarted node: the session's route is there again.
    await a.route('b', 'orders/#', '+', mark);
    await pub.publishAsync('orders/new', 'after', { qos: 1 });
    await back.until((m) => m.some((x) => x.payload === 'after'), 'a message after the restart');
  });

  test('Redis restarts: local clients are served meanwhile, forwards wait and are delivered once Redis is back', async (t) => {
    const local = new Inbox(await client(t, a, 'local'));
    const remote = new Inbox(await client(t, c, 'remote'));
    await local.client.subscribeAsync('alarm/#', { qos: 1 });
    await remote.client.subscribeAsync('alarm/#', { qos: 1 });
    await a.route('c', 'alarm/#');
    const pub = await client(t, a, 'alarm-pub');
    await redis.stop();
    await a.waitFor((r) => typeof r.msg === 'string' && r.msg.startsWith('cluster: Redis connection lost'), 'the outage');
    const sent = payloads(5, 'alarm');
    const acks = sent.map((p) => pub.publishAsync('alarm/fire', p, { qos: 1 }));
    await local.until((m) => m.length >= 5, 'local deliveries while Redis is down');
    await redis.resume();
    await Promise.all(acks);
    await remote.until((m) => m.length >= 5, 'the forwards after Redis came back', 15_000);
    assert.deepEqual(remote.on('alarm/fire').map((m) => m.payload), sent);
  });
});
