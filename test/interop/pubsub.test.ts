/**
 * MQTT.js against Petrel over TCP: publish / subscribe at every QoS in both directions, QoS
 * downgrade, overlapping subscriptions, unsubscribe, `$` topics and the broker's events.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import type { QoS } from '../../src/protocol/index.js';
import { connectClient, endAll, Inbox, startBroker, versionName, VERSIONS, waitFor } from '../helpers/mqttjs.js';

const QOS: readonly QoS[] = [0, 1, 2];

for (const v of VERSIONS) {
  describe(`${versionName(v)}: publish and subscribe`, () => {
    test('QoS 0/1/2 both ways; delivered at the minimum of published and granted QoS [MQTT-3.8.4-6] (3.1.1)', async (t) => {
      const { broker, url } = await startBroker();
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      const sub = await connectClient(url, v, { clientId: `sub-${v}` });
      const pub = await connectClient(url, v, { clientId: `pub-${v}` });
      clients.push(sub, pub);
      const inbox = new Inbox(sub);
      const grants = await sub.subscribeAsync({ 'q/0': { qos: 0 }, 'q/1': { qos: 1 }, 'q/2': { qos: 2 } });
      assert.deepEqual(grants.map((g) => [g.topic, g.qos]), [['q/0', 0], ['q/1', 1], ['q/2', 2]]);
      const published: string[] = [];
      broker.on('published', (m) => published.push(`${m.topic} ${m.payload.toString()} ${m.qos} ${m.clientId}`));
      // Client → broker at each QoS: publishAsync resolves after PUBACK (1) or PUBCOMP (2).
      for (const pq of QOS) {
        for (const sq of QOS) await pub.publishAsync(`q/${sq}`, `p${pq}`, { qos: pq });
      }
      await inbox.count(9);
      for (const pq of QOS) {
        for (const sq of QOS) {
          const got = inbox.messages.filter((m) => m.topic === `q/${sq}` && m.payload === `p${pq}`);
          assert.equal(got.length, 1, `one copy of QoS ${pq} on a QoS ${sq} subscription`);
          assert.equal(got[0]?.qos, Math.min(pq, sq), `QoS ${pq} to a QoS ${sq} subscription`);
          assert.equal(got[0]?.retain, false);
        }
      }
      // Exactly once into the broker, even at QoS 2.
      assert.equal(published.length, 9);
      assert.ok(published.every((p) => p.endsWith(` pub-${v}`)));
    });

    test('QoS 1 and 2 flows to a subscriber complete (§4.3.2, §4.3.3): more messages than the inflight window arrive in publish order (§4.6)', async (t) => {
      // A window of 5: if PUBACK / PUBREC / PUBCOMP from MQTT.js were not handled, delivery would stall.
      const { broker, url } = await startBroker({ maxInflight: 5 });
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      const sub = await connectClient(url, v, { clientId: `win-${v}` });
      clients.push(sub);
      const inbox = new Inbox(sub);
      await sub.subscribeAsync('w/#', { qos: 2 });
      const N = 40;
      for (let i = 0; i < N; i++) await broker.publish({ topic: `w/${i % 2 === 0 ? 'one' : 'two'}`, payload: String(i), qos: (1 + (i % 2)) as QoS });
      await inbox.count(N);
      // Order is kept per topic and QoS (MQTT.js hands a QoS 2 message over only at PUBREL, so the
      // two streams interleave differently on the client side).
      const even = Array.from({ length: N / 2 }, (_, i) => 2 * i);
      assert.deepEqual(inbox.on('w/one').map((m) => Number(m.payload)), even);
      assert.deepEqual(inbox.on('w/two').map((m) => Number(m.payload)), even.map((i) => i + 1));
      assert.ok(inbox.on('w/one').every((m) => m.qos === 1));
      assert.ok(inbox.on('w/two').every((m) => m.qos === 2));
      assert.ok(inbox.messages.every((m) => !m.dup));
    });

    test('overlapping subscriptions of one client give one copy at the highest granted QoS [MQTT-3.3.5-1]', async (t) => {
      const { broker, url } = await startBroker();
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      const sub = await connectClient(url, v, { clientId: `ov-${v}` });
      const pub = await connectClient(url, v, { clientId: `ovp-${v}` });
      clients.push(sub, pub);
      const inbox = new Inbox(sub);
      await sub.subscribeAsync({ 'o/#': { qos: 1 }, 'o/+': { qos: 2 } });
      await sub.subscribeAsync('o/x', { qos: 0 });
      await pub.publishAsync('o/x', 'overlap', { qos: 2 });
      await pub.publishAsync('o/y', 'marker', { qos: 0 });
      // The marker is sent after the overlapping message, so by then every copy has arrived.
      await inbox.next('o/y');
      const copies = inbox.on('o/x');
      assert.equal(copies.length, 1);
      assert.equal(copies[0]?.qos, 2);
      assert.equal(inbox.on('o/y')[0]?.qos, 0);
    });

    test('unsubscribe stops delivery; other subscriptions keep working [MQTT-3.10.4-2] [MQTT-3.10.4-4]', async (t) => {
      const { broker, url } = await startBroker();
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      const sub = await connectClient(url, v, { clientId: `un-${v}` });
      const pub = await connectClient(url, v, { clientId: `unp-${v}` });
      clients.push(sub, pub);
      const inbox = new Inbox(sub);
      await sub.subscribeAsync(['u/a', 'u/b'], { qos: 1 });
      await pub.publishAsync('u/a', 'before', { qos: 1 });
      await inbox.next('u/a');
      await sub.unsubscribeAsync('u/a');
      assert.deepEqual(broker.subscriptions(`un-${v}`)?.map((s) => s.topicFilter), ['u/b']);
      await pub.publishAsync('u/a', 'after', { qos: 1 });
      await pub.publishAsync('u/b', 'marker', { qos: 1 });
      await inbox.next('u/b');
      assert.deepEqual(inbox.on('u/a').map((m) => m.payload), ['before']);
    });

    test('wildcards at the first level do not match topics beginning with $ [MQTT-4.7.2-1]', async (t) => {
      const { broker, url } = await startBroker();
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      const wild = await connectClient(url, v, { clientId: `wild-${v}` });
      const sys = await connectClient(url, v, { clientId: `sys-${v}` });
      clients.push(wild, sys);
      const wildInbox = new Inbox(wild);
      const sysInbox = new Inbox(sys);
      await wild.subscribeAsync(['#', '+/x', '+/+', '+/#'], { qos: 0 });
      await sys.subscribeAsync('$SYS/#', { qos: 0 });
      // Clients may not publish to $SYS, so the broker publishes.
      assert.equal(await broker.publish({ topic: '$SYS/x', payload: 'sys' }), 1, 'only the explicit $SYS/# subscriber');
      await broker.publish({ topic: 'marker/x', payload: 'marker' });
      await wildInbox.next('marker/x');
      assert.deepEqual(wildInbox.messages.map((m) => m.topic), ['marker/x'], 'one copy of the marker and no $SYS message');
      const sysMessage = await sysInbox.next('$SYS/x');
      assert.equal(sysMessage.payload, 'sys');
    });
  });

  test(`${versionName(v)}: broker events: clientConnected, subscribed, published, unsubscribed, clientDisconnected, connectionLost`, async (t) => {
    const { broker, url } = await startBroker();
    const clients: MqttClient[] = [];
    t.after(async () => {
      await endAll(clients);
      await broker.close();
    });
    const connected = waitFor(broker, 'clientConnected', undefined, (c) => c.clientId === `ev-${v}`);
    const client = await connectClient(url, v, { clientId: `ev-${v}`, username: 'alice', keepalive: 30 });
    clients.push(client);
    const [info] = await connected;
    assert.equal(info.protocolVersion, v);
    assert.equal(info.username, 'alice');
    assert.equal(info.keepalive, 30);
    assert.equal(info.remoteAddress, '127.0.0.1');

    const subscribed = waitFor(broker, 'subscribed');
    await client.subscribeAsync('ev/t', { qos: 1 });
    const [subClientId, subs] = await subscribed;
    assert.equal(subClientId, `ev-${v}`);
    assert.deepEqual(subs.map((s) => [s.topicFilter, s.qos]), [['ev/t', 1]]);

    const published = waitFor(broker, 'published');
    await client.publishAsync('ev/t', 'hello', { qos: 1, retain: true });
    const [message] = await published;
    assert.equal(message.topic, 'ev/t');
    assert.equal(message.payload.toString(), 'hello');
    assert.equal(message.qos, 1);
    assert.equal(message.retain, true);
    assert.equal(message.clientId, `ev-${v}`);

    const unsubscribed = waitFor(broker, 'unsubscribed');
    await client.unsubscribeAsync('ev/t');
    assert.deepEqual(await unsubscribed, [`ev-${v}`, ['ev/t']]);

    const disconnected = waitFor(broker, 'clientDisconnected');
    let lostOnCleanEnd = false;
    broker.on('connectionLost', (c) => {
      if (c.clientId === `ev-${v}`) lostOnCleanEnd = true;
    });
    await client.endAsync();
    const [dInfo] = await disconnected;
    assert.equal(dInfo.clientId, `ev-${v}`);
    assert.equal(lostOnCleanEnd, false, 'a DISCONNECT is not a connection loss');

    const other = await connectClient(url, v, { clientId: `ev2-${v}` });
    clients.push(other);
    const lost = waitFor(broker, 'connectionLost');
    other.stream.destroy();
    const [lInfo] = await lost;
    assert.equal(lInfo.clientId, `ev2-${v}`);
  });
}
