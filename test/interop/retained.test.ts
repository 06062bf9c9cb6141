/**
 * MQTT.js against Petrel over TCP: retained messages.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { connectClient, endAll, Inbox, startBroker, versionName, VERSIONS } from '../helpers/mqttjs.js';

for (const v of VERSIONS) {
  describe(`${versionName(v)}: retained messages`, () => {
    test('stored, sent on subscribe with RETAIN 1, live copies with RETAIN 0, cleared by an empty payload '
      + '[MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-8] [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]', async (t) => {
      const { broker, url } = await startBroker();
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      const pub = await connectClient(url, v, { clientId: `rpub-${v}` });
      const live = await connectClient(url, v, { clientId: `rlive-${v}` });
      clients.push(pub, live);
      const liveInbox = new Inbox(live);
      await live.subscribeAsync('r/#', { qos: 1 });

      await pub.publishAsync('r/a', 'A', { qos: 1, retain: true });
      await pub.publishAsync('r/b', 'B', { qos: 0, retain: true });
      await liveInbox.count(2);
      assert.deepEqual(liveInbox.messages.map((m) => [m.topic, m.payload, m.retain]), [['r/a', 'A', false], ['r/b', 'B', false]],
        'an established subscription gets RETAIN 0 [MQTT-3.3.1-9]');

      // A new subscription receives the retained messages with RETAIN 1, at min(message, subscription) QoS.
      const late = await connectClient(url, v, { clientId: `rlate-${v}` });
      clients.push(late);
      const lateInbox = new Inbox(late);
      await late.subscribeAsync('r/+', { qos: 2 });
      await lateInbox.count(2);
      const byTopic = new Map(lateInbox.messages.map((m) => [m.topic, m]));
      assert.deepEqual([byTopic.get('r/a')?.payload, byTopic.get('r/a')?.retain, byTopic.get('r/a')?.qos], ['A', true, 1]);
      assert.deepEqual([byTopic.get('r/b')?.payload, byTopic.get('r/b')?.retain, byTopic.get('r/b')?.qos], ['B', true, 0]);

      // A newer retained message replaces the old one.
      await pub.publishAsync('r/b', 'B2', { qos: 1, retain: true });
      // An empty retained payload is delivered as usual and removes the retained message.
      await pub.publishAsync('r/a', '', { qos: 1, retain: true });
      await liveInbox.count(4);
      assert.deepEqual(liveInbox.messages.slice(2).map((m) => [m.topic, m.payload, m.retain]), [['r/b', 'B2', false], ['r/a', '', false]]);

      const after = await connectClient(url, v, { clientId: `rafter-${v}` });
      clients.push(after);
      const afterInbox = new Inbox(after);
      await after.subscribeAsync(['r/#', 'r-marker'], { qos: 1 });
      // The retained messages are sent right after SUBACK; a live marker published next arrives after them.
      await pub.publishAsync('r-marker', 'm', { qos: 1 });
      await afterInbox.next('r-marker');
      assert.deepEqual(afterInbox.messages.map((m) => [m.topic, m.payload, m.retain]), [['r/b', 'B2', true], ['r-marker', 'm', false]]);
    });

    test('a message published without RETAIN neither stores nor replaces the retained message [MQTT-3.3.1-12] (3.1.1)', async (t) => {
      const { broker, url } = await startBroker();
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      const pub = await connectClient(url, v, { clientId: `nr-${v}` });
      clients.push(pub);
      await pub.publishAsync('nr/t', 'kept', { qos: 1, retain: true });
      await pub.publishAsync('nr/t', 'not kept', { qos: 1, retain: false });
      await pub.publishAsync('nr/u', 'never kept', { qos: 1, retain: false });
      const sub = await connectClient(url, v, { clientId: `nrs-${v}` });
      clients.push(sub);
      const inbox = new Inbox(sub);
      await sub.subscribeAsync(['nr/#', 'nr-marker'], { qos: 1 });
      await pub.publishAsync('nr-marker', 'm', { qos: 1 });
      await inbox.next('nr-marker');
      assert.deepEqual(inbox.messages.map((m) => [m.topic, m.payload, m.retain]), [['nr/t', 'kept', true], ['nr-marker', 'm', false]]);
    });

    test('broker.publish with retain is stored and delivered to later subscribers', async (t) => {
      const { broker, url } = await startBroker();
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      await broker.publish({ topic: 'status/broker', payload: 'up', qos: 1, retain: true });
      const sub = await connectClient(url, v, { clientId: `bs-${v}` });
      clients.push(sub);
      const inbox = new Inbox(sub);
      await sub.subscribeAsync('status/#', { qos: 1 });
      const got = await inbox.next('status/broker');
      assert.deepEqual([got.payload, got.retain, got.qos], ['up', true, 1]);
    });
  });
}
