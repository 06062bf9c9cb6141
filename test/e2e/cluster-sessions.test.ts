/**
 * Sessions across the nodes of a cluster (three nodes as child processes over one real
 * redis-server, MQTT.js clients): a persistent session resumes on another node with its queued
 * QoS 1 messages, a client id connected to another node is taken over there (5.0: DISCONNECT
 * 0x8E) [MQTT-3.1.4-2], and two connects with one client id at the same moment on two nodes end
 * with exactly one connection; when a node is SIGKILLed, a survivor takes its sessions over:
 * it publishes the wills of its clients (stored before their CONNACK) and ends their sessions
 * when they expire; messages on their way to a session's old node while it moves reach it.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, describe, type TestContext, test } from 'node:test';
import { Redis } from 'ioredis';
import mqtt, { type IDisconnectPacket, type MqttClient } from 'mqtt';
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
  nodes.push(...await Promise.all(['a', 'b', 'c'].map((nodeId) => PetrelNode.start({ redis: redis.url, nodeId }))));
  [a, b, c] = nodes as [PetrelNode, PetrelNode, PetrelNode];
});

after(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  await redis.close();
});

const persistent = { clean: false, properties: { sessionExpiryInterval: 300 } } as const;

async function client(t: TestContext, node: PetrelNode, clientId: string, extra = {}): Promise<MqttClient> {
  const m = await connectClient(node.url, 5, { clientId, ...extra });
  t.after(() => endAll([m]));
  return m;
}

/** Resolves once `node` logged bus reads that delivered `n` messages in all, counted after record `since`. */
function delivered(node: PetrelNode, n: number, since: number): Promise<LogRecord> {
  let sum = 0;
  let seen = since;
  return node.waitFor((r) => {
    if (r.msg === 'cluster bus read') sum += r.receivers as number;
    return sum >= n;
  }, `${n} deliveries from the bus`, 15_000, seen++);
}

describe('sessions across the nodes of a cluster', () => {
  test('a persistent session resumes on another node with its subscriptions and its queued QoS 1 messages', async (t) => {
    const first = await client(t, a, 'roamer', persistent);
    await first.subscribeAsync('orders/#', { qos: 1 });
    await c.route('a', 'orders/#');
    await endAll([first]);
    const pub = await client(t, c, 'roamer-pub');
    const mark = a.mark();
    const sent = Array.from({ length: 5 }, (_, i) => `order-${i}`);
    for (const p of sent) await pub.publishAsync('orders/new', p, { qos: 1 });
    // Queued in the offline session on node a (stored once node a read its stream).
    await delivered(a, 5, mark);
    // The inbox listens before CONNECT: the queued messages follow the CONNACK at once.
    const back = new Inbox(mqtt.connect(b.url, clientOptions(5, { clientId: 'roamer', ...persistent })));
    t.after(() => endAll([back.client]));
    const [connack] = await waitFor(back.client, 'connect');
    assert.equal((connack as { sessionPresent: boolean }).sessionPresent, true, 'the session of node a is present on node b [MQTT-3.2.2-2]');
    await back.until((m) => m.length >= 5, 'the 5 queued orders');
    assert.deepEqual(back.on('orders/new').map((m) => m.payload), sent);
    // The session's subscriptions moved: new messages go to node b.
    await c.route('b', 'orders/#');
    await pub.publishAsync('orders/new', 'after-move', { qos: 1 });
    await back.until((m) => m.some((x) => x.payload === 'after-move'), 'a message after the move');
    assert.equal(back.messages.length, 6, 'each message once');
  });

  test('[MQTT-3.1.4-2] a client id connecting to another node takes over the connection there: the old client gets DISCONNECT 0x8E', async (t) => {
    const old = await client(t, a, 'taken', persistent);
    const disconnected = waitFor(old, 'disconnect');
    const fresh = await client(t, b, 'taken', persistent);
    const [packet] = await disconnected;
    assert.equal((packet as IDisconnectPacket).reasonCode, 0x8e);
    assert.equal(fresh.connected, true);
    // The new connection works: its own subscription receives.
    const inbox = new Inbox(fresh);
    await fresh.subscribeAsync('taken/echo', { qos: 1 });
    await fresh.publishAsync('taken/echo', 'hi', { qos: 1 });
    await inbox.next('taken/echo');
  });

  test('two connects with one client id at the same moment on two nodes end with exactly one connected', async (t) => {
    const opts = clientOptions(5, { clientId: 'twin', ...persistent });
    const twins = [mqtt.connect(a.url, opts), mqtt.connect(b.url, opts)];
    t.after(() => endAll(twins));
    const state = twins.map(() => ({ connected: false, closed: false }));
    await withTimeout(new Promise<void>((resolve) => {
      const check = (): void => {
        const up = state.filter((s) => s.connected && !s.closed).length;
        const down = state.filter((s) => s.closed).length;
        if (up === 1 && down === 1) resolve();
      };
      twins.forEach((m, i) => {
        m.on('connect', () => {
          state[i]!.connected = true;
          check();
        });
        m.on('close', () => {
          state[i]!.closed = true;
          check();
        });
      });
    }), 30_000, 'one twin connected and the other closed');
    const winner = twins[state.findIndex((s) => !s.closed)]!;
    // The one left is really connected (a round trip through its node) and holds the only lease.
    const inbox = new Inbox(winner);
    await winner.subscribeAsync('twin/echo', { qos: 1 });
    await winner.publishAsync('twin/echo', 'x', { qos: 1 });
    await inbox.next('twin/echo');
    const r = new Redis(redis.url);
    try {
      const lease = await r.get('petrel:{store}:lease:twin');
      assert.match(lease ?? '', /^[ab]\|\d+$/);
      assert.equal(lease?.[0], winner === twins[0] ? 'a' : 'b');
    } finally {
      r.disconnect();
    }
  });

  test('messages on their way to the old node while a session moves reach it on the new node: none lost, none twice', async (t) => {
    const first = await client(t, a, 'mover', persistent);
    await first.subscribeAsync('flow/#', { qos: 1 });
    await c.route('a', 'flow/#');
    await endAll([first]);
    const pub = await client(t, c, 'mover-pub');
    const total = 300;
    const sent = Array.from({ length: total }, (_, i) => `flow-${i}`);
    let moved: Promise<unknown> | undefined;
    let back: Inbox | undefined;
    // A steady stream of QoS 1 messages; a third of the way through, the client connects to node b.
    for (let i = 0; i < total; i++) {
      if (i === 100) {
        back = new Inbox(mqtt.connect(b.url, clientOptions(5, { clientId: 'mover', ...persistent, connectTimeout: 20_000 })));
        const inbox = back;
        t.after(() => endAll([inbox.client]));
        moved = waitFor(inbox.client, 'connect', 20_000);
      }
      await pub.publishAsync('flow/x', sent[i]!, { qos: 1 });
    }
    await moved;
    const inbox = back!;
    await inbox.until((m) => new Set(m.map((x) => x.payload)).size >= total, `the ${total} messages`, 15_000);
    // A marker after everything: nothing more (no late copy) is on its way.
    await pub.publishAsync('flow/x', 'marker', { qos: 1 });
    await inbox.until((m) => m.some((x) => x.payload === 'marker'), 'the marker', 15_000);
    const got = inbox.on('flow/x').map((m) => m.payload).filter((p) => p !== 'marker');
    assert.deepEqual([...new Set(got)].sort(), [...sent].sort(), 'every message reached the moved session');
    assert.equal(got.length, total, 'each once');
  });

  test('a SIGKILLed node: a survivor publishes its clients\' wills [MQTT-3.1.2-8] and expires its sessions, the will at the session end [MQTT-3.1.3-9]', async (t) => {
    const watcher = new Inbox(await client(t, c, 'will-watcher'));
    await watcher.client.subscribeAsync('wills/#', { qos: 1 });
    await Promise.all([a.route('c', 'wills/#'), b.route('c', 'wills/#')]);
    // A clean session's will (published at once) and a persistent session that expires in 2 s,
    // its will delayed beyond that (so it goes when the session ends).
    const mortal = await connectClient(b.url, 5, { clientId: 'mortal', will: { topic: 'wills/mortal', payload: Buffer.from('gone'), qos: 1, retain: false } });
    const fleeting = await connectClient(b.url, 5, {
      clientId: 'fleeting', clean: false, properties: { sessionExpiryInterval: 2 },
      will: { topic: 'wills/fleeting', payload: Buffer.from('expired'), qos: 1, retain: false, properties: { willDelayInterval: 600 } },
    });
    t.after(() => endAll([mortal, fleeting]));
    // In a cluster CONNACK comes once the session's record (with its will) is in the store: the
    // node may die right after it.
    await b.stop('SIGKILL');
    await watcher.next('wills/mortal', 30_000);
    await watcher.next('wills/fleeting', 30_000);
    assert.equal(watcher.on('wills/mortal').length, 1);
    // A survivor took the dead node's sessions over; the will of 'fleeting' went at its session's end.
    const adopted = (r: LogRecord): boolean => r.msg === 'cluster: session of a dead node taken over' && r.clientId === 'fleeting';
    await Promise.any([a.waitFor(adopted, 'the take-over'), c.waitFor(adopted, 'the take-over')]);
    // The session is gone cluster-wide: connecting elsewhere finds none [MQTT-3.2.2-3].
    const again = new Inbox(mqtt.connect(a.url, clientOptions(5, { clientId: 'fleeting', clean: false, properties: { sessionExpiryInterval: 2 } })));
    t.after(() => endAll([again.client]));
    const [connack] = await waitFor(again.client, 'connect');
    assert.equal((connack as { sessionPresent: boolean }).sessionPresent, false);
  });
});
