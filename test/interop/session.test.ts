/**
 * MQTT.js against Petrel over TCP: persistent sessions (Clean Session 0 / 5.0 session expiry)
 * and will messages.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { PacketType } from '../../src/protocol/index.js';
import {
  clientOptions, connectClient, endAll, Inbox, RawClient, startBroker, type Version, versionName, VERSIONS, waitFor,
} from '../helpers/mqttjs.js';

/** A session that outlives the connection: Clean Session 0, or in 5.0 Clean Start 0 plus an expiry. */
function persistent(v: Version): IClientOptions {
  return v === 5 ? { clean: false, properties: { sessionExpiryInterval: 300 } } : { clean: false };
}

for (const v of VERSIONS) {
  describe(`${versionName(v)}: persistent sessions`, () => {
    test('subscriptions resume and QoS 1/2 messages queued while offline are delivered on reconnect [MQTT-3.1.2-4] [MQTT-3.1.2-5]', async (t) => {
      const { broker, url } = await startBroker();
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      const id = `persist-${v}`;
      const first = await connectClient(url, v, { clientId: id, ...persistent(v) });
      clients.push(first);
      await first.subscribeAsync({ 'off/1': { qos: 1 }, 'off/2': { qos: 2 }, 'off/0': { qos: 0 } });
      const gone = waitFor(broker, 'clientDisconnected');
      await first.endAsync();
      await gone;
      // The session survives, with its subscriptions.
      assert.deepEqual(broker.subscriptions(id)?.map((s) => [s.topicFilter, s.qos]).sort(), [['off/0', 0], ['off/1', 1], ['off/2', 2]]);

      const pub = await connectClient(url, v, { clientId: `persist-pub-${v}` });
      clients.push(pub);
      await pub.publishAsync('off/1', 'q1-a', { qos: 1 });
      await pub.publishAsync('off/2', 'q2-a', { qos: 2 });
      await pub.publishAsync('off/0', 'q0', { qos: 0 });
      await pub.publishAsync('off/1', 'q1-b', { qos: 1 });
      await pub.publishAsync('off/2', 'q2-b', { qos: 2 });

      // Reconnect without subscribing again; attach the inbox before CONNACK arrives.
      const again = mqtt.connect(url, clientOptions(v, { clientId: id, ...persistent(v) }));
      clients.push(again);
      const inbox = new Inbox(again);
      const [connack] = (await waitFor(again, 'connect')) as [IConnackPacket];
      assert.equal(connack.sessionPresent, true, '[MQTT-3.2.2-2] Session Present 1');
      await inbox.until((m) => m.length >= 4, 'the four queued messages');
      // A live message proves the subscription is active again; it is sent after the queued ones.
      await pub.publishAsync('off/1', 'live', { qos: 1 });
      await inbox.until((m) => m.some((x) => x.payload === 'live'), 'the live message');
      assert.deepEqual(inbox.on('off/1').map((m) => [m.payload, m.qos]), [['q1-a', 1], ['q1-b', 1], ['live', 1]]);
      assert.deepEqual(inbox.on('off/2').map((m) => [m.payload, m.qos]), [['q2-a', 2], ['q2-b', 2]]);
      // QoS 0 messages are not kept for an offline session by default (queueQos0Offline: false).
      assert.deepEqual(inbox.on('off/0'), []);
    });

    test('a clean session discards the stored subscriptions and messages [MQTT-3.1.2-6]', async (t) => {
      const { broker, url } = await startBroker();
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      const id = `discard-${v}`;
      const first = await connectClient(url, v, { clientId: id, ...persistent(v) });
      clients.push(first);
      await first.subscribeAsync('gone/t', { qos: 1 });
      await first.endAsync();
      await broker.publish({ topic: 'gone/t', payload: 'queued', qos: 1 });
      const again = mqtt.connect(url, clientOptions(v, { clientId: id, clean: true }));
      clients.push(again);
      const inbox = new Inbox(again);
      const [connack] = (await waitFor(again, 'connect')) as [IConnackPacket];
      assert.equal(connack.sessionPresent, false);
      assert.deepEqual(broker.subscriptions(id), []);
      await again.subscribeAsync('marker', { qos: 1 });
      await broker.publish({ topic: 'gone/t', payload: 'after', qos: 1 });
      await broker.publish({ topic: 'marker', payload: 'm', qos: 1 });
      await inbox.next('marker');
      assert.deepEqual(inbox.on('gone/t'), []);
    });
  });

  test(`${versionName(v)}: unacknowledged QoS 1 and 2 deliveries are resent with DUP on reconnect, QoS 2 release resumes with PUBREL [MQTT-4.4.0-1] [MQTT-3.3.1-1]`, async (t) => {
    const { broker, port } = await startBroker();
    const raws: RawClient[] = [];
    t.after(async () => {
      for (const r of raws) r.destroy();
      await broker.close();
    });
    const open = async (): Promise<RawClient> => {
      const raw = await RawClient.connect(port, v);
      raws.push(raw);
      raw.sendConnect({ clientId: `dup-${v}`, clean: false, properties: { sessionExpiryInterval: 300 } });
      await raw.take(PacketType.Connack);
      return raw;
    };
    const first = await open();
    first.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'dup/#', qos: 2 }] });
    await first.take(PacketType.Suback);
    await broker.publish({ topic: 'dup/1', payload: 'one', qos: 1 });
    await broker.publish({ topic: 'dup/2', payload: 'two', qos: 2 });
    await broker.publish({ topic: 'dup/3', payload: 'three', qos: 2 });
    const p1 = await first.take(PacketType.Publish);
    const p2 = await first.take(PacketType.Publish);
    const p3 = await first.take(PacketType.Publish);
    assert.deepEqual([p1, p2, p3].map((p) => [p.topic, p.qos, p.dup]), [['dup/1', 1, false], ['dup/2', 2, false], ['dup/3', 2, false]]);
    // Acknowledge the first step of dup/3 only (PUBREC), then drop the connection.
    first.send({ type: PacketType.Pubrec, packetId: p3.packetId as number });
    await first.take(PacketType.Pubrel);
    const lost = waitFor(broker, 'connectionLost');
    first.destroy();
    await lost;

    const second = await open();
    // In the original order: PUBLISH dup/1 and dup/2 again with DUP 1 and the same ids, and PUBREL for dup/3.
    const r1 = await second.take(PacketType.Publish);
    const r2 = await second.take(PacketType.Publish);
    assert.deepEqual([r1, r2].map((p) => [p.topic, p.qos, p.dup, p.packetId]),
      [['dup/1', 1, true, p1.packetId], ['dup/2', 2, true, p2.packetId]]);
    const rel = await second.take(PacketType.Pubrel);
    assert.equal(rel.packetId, p3.packetId);
    // Completing the flows frees the window: a new message gets through.
    second.send({ type: PacketType.Puback, packetId: r1.packetId as number });
    second.send({ type: PacketType.Pubrec, packetId: r2.packetId as number });
    second.send({ type: PacketType.Pubcomp, packetId: p3.packetId as number });
    assert.equal((await second.take(PacketType.Pubrel)).packetId, r2.packetId);
    second.send({ type: PacketType.Pubcomp, packetId: r2.packetId as number });
    await broker.publish({ topic: 'dup/4', payload: 'four', qos: 1 });
    const r4 = await second.take(PacketType.Publish);
    assert.deepEqual([r4.topic, r4.dup], ['dup/4', false]);
    assert.equal(second.packets.length, 0, 'nothing else was sent');
  });

  describe(`${versionName(v)}: will messages`, () => {
    for (const [qos, retain] of [[1, true], [2, false], [0, false]] as const) {
      test(`the will is published on abnormal loss with its QoS ${qos} and retain ${retain} [MQTT-3.1.2-8] [MQTT-3.1.2-${retain ? 17 : 16}]`, async (t) => {
        const { broker, url } = await startBroker();
        const clients: MqttClient[] = [];
        t.after(async () => {
          await endAll(clients);
          await broker.close();
        });
        const watcher = await connectClient(url, v, { clientId: `watch-${v}` });
        clients.push(watcher);
        const inbox = new Inbox(watcher);
        await watcher.subscribeAsync('will/#', { qos: 2 });
        const topic = `will/${qos}`;
        const dying = await connectClient(url, v, { clientId: `dying-${v}`, will: { topic, payload: Buffer.from('bye'), qos, retain } });
        clients.push(dying);
        const published = waitFor(broker, 'published', undefined, (m) => m.topic === topic);
        dying.stream.destroy();
        const [message] = await published;
        assert.equal(message.qos, qos);
        assert.equal(message.retain, retain);
        assert.equal(message.clientId, `dying-${v}`);
        const got = await inbox.next(topic);
        assert.equal(got.payload, 'bye');
        assert.equal(got.qos, qos, 'the watcher subscribed at QoS 2, so the will keeps its own QoS');
        assert.equal(got.retain, false, 'a live delivery has RETAIN 0 [MQTT-3.3.1-9]');
        // A later subscriber sees the will as retained only when it was published with retain.
        const late = await connectClient(url, v, { clientId: `late-${v}` });
        clients.push(late);
        const lateInbox = new Inbox(late);
        await late.subscribeAsync(['will/#', 'will-marker'], { qos: 2 });
        await broker.publish({ topic: 'will-marker', payload: 'm' });
        await lateInbox.next('will-marker');
        if (retain) {
          assert.deepEqual(lateInbox.on(topic).map((m) => [m.payload, m.retain, m.qos]), [['bye', true, qos]]);
        } else {
          assert.deepEqual(lateInbox.on(topic), []);
        }
      });
    }

    test('the will is not published after a clean DISCONNECT [MQTT-3.1.2-10] [MQTT-3.14.4-3]', async (t) => {
      const { broker, url } = await startBroker();
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      const watcher = await connectClient(url, v, { clientId: `watch-${v}` });
      clients.push(watcher);
      const inbox = new Inbox(watcher);
      await watcher.subscribeAsync('will/#', { qos: 1 });
      const polite = await connectClient(url, v, { clientId: `polite-${v}`, will: { topic: 'will/polite', payload: Buffer.from('bye'), qos: 1, retain: true } });
      clients.push(polite);
      const disconnected = waitFor(broker, 'clientDisconnected');
      await polite.endAsync();
      await disconnected;
      // A will would have been routed before the disconnect event; the marker comes after it.
      await broker.publish({ topic: 'will/marker', payload: 'm', qos: 1 });
      await inbox.next('will/marker');
      assert.deepEqual(inbox.messages.map((m) => m.topic), ['will/marker']);
    });
  });
}
