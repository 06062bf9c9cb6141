/**
 * The Redis store and the cluster over the Redis topologies beyond one server, each a set of
 * real processes: a master found through a Sentinel (`redis-sentinel://`) and a Redis Cluster of
 * three masters (`redis-cluster://`). The store passes the same contract suite as on one server;
 * two Petrel nodes (child processes) route QoS 1 messages both ways over the Redis Cluster,
 * whose keys (each node's stream, the routes, the store) live in different hash slots.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { RedisStore } from '../../src/persistence/index.js';
import { storeContract } from '../contract/store.contract.js';
import { connectClient, endAll, Inbox } from '../helpers/mqttjs.js';
import { PetrelNode } from '../helpers/petrel-node.js';
import { ClusterSetup, SentinelSetup } from '../helpers/redis-topology.js';

let sentinel: SentinelSetup;
let cluster: ClusterSetup;

before(async () => {
  [sentinel, cluster] = await Promise.all([SentinelSetup.start(), ClusterSetup.start()]);
});

after(async () => {
  await Promise.all([sentinel?.close(), cluster?.close()]);
});

/** A fresh prefix per test: an empty store on the shared servers (removed with them at the end). */
function made(url: () => string): () => Promise<{ store: RedisStore; reopen: () => Promise<RedisStore>; cleanup: () => Promise<void> }> {
  return () => {
    const prefix = `t${randomBytes(6).toString('hex')}:`;
    return Promise.resolve({
      store: new RedisStore({ redis: url(), prefix }),
      reopen: () => Promise.resolve(new RedisStore({ redis: url(), prefix })),
      cleanup: () => Promise.resolve(),
    });
  };
}

storeContract('RedisStore through a Sentinel', made(() => sentinel.url));
storeContract('RedisStore on a Redis Cluster of three masters', made(() => cluster.url));

describe('two Petrel nodes over a Redis Cluster', () => {
  test('QoS 1 messages cross between the nodes both ways, once each and in order', async () => {
    const nodes = await Promise.all(['ra', 'rb'].map((nodeId) => PetrelNode.start({ redis: cluster.url, nodeId })));
    const [a, b] = nodes as [PetrelNode, PetrelNode];
    const clients = [];
    try {
      const onA = await connectClient(a.url, 5, { clientId: 'topo-a' });
      const onB = await connectClient(b.url, 5, { clientId: 'topo-b' });
      clients.push(onA, onB);
      const inA = new Inbox(onA);
      const inB = new Inbox(onB);
      await onA.subscribeAsync('topo/to-a', { qos: 1 });
      await onB.subscribeAsync('topo/to-b/#', { qos: 1 });
      await Promise.all([b.route('ra', 'topo/to-a'), a.route('rb', 'topo/to-b/#')]);
      const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
      await Promise.all(sent.flatMap((p) => [
        onB.publishAsync('topo/to-a', p, { qos: 1 }),
        onA.publishAsync('topo/to-b/x', p, { qos: 1 }),
      ]));
      await inA.until((m) => m.length >= sent.length, '20 messages on node ra');
      await inB.until((m) => m.length >= sent.length, '20 messages on node rb');
      assert.deepEqual(inA.on('topo/to-a').map((m) => m.payload), sent);
      assert.deepEqual(inB.on('topo/to-b/x').map((m) => m.payload), sent);
    } finally {
      await endAll(clients);
      await Promise.all(nodes.map((n) => n.close()));
    }
  });
});
