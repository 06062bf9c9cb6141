/**
 * MQTT.js 5.0 against Petrel over TCP: Receive Maximum, Maximum Packet Size and topic aliases
 * in both directions.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import mqtt, { type IPublishPacket, type MqttClient, type Packet as MqttPacket } from 'mqtt';
import { PacketType, ReasonCode } from '../../src/protocol/index.js';
import { Inbox, Recorder, setup, v5Options, waitFor, WireTap } from '../helpers/mqttjs-v5.js';

/** Records the PUBLISH packets an MQTT.js client sends or receives, as MQTT.js sees them. */
function publishes(client: MqttClient, event: 'packetsend' | 'packetreceive'): Recorder<IPublishPacket> {
  const out = new Recorder<IPublishPacket>();
  client.on(event, (p: MqttPacket) => {
    if (p.cmd === 'publish') out.push({ ...p });
  });
  return out;
}

function countSent(client: MqttClient, cmd: string): () => number {
  let n = 0;
  client.on('packetsend', (p: MqttPacket) => {
    if (p.cmd === cmd) n++;
  });
  return () => n;
}

function errors(client: MqttClient): Error[] {
  const out: Error[] = [];
  client.on('error', (e) => out.push(e));
  return out;
}

describe('MQTT 5.0 (MQTT.js): Receive Maximum', () => {
  test('[MQTT-3.3.4-9] QoS 1: with acknowledgements held back, never more unacknowledged PUBLISH on the wire than the client allows', async (t) => {
    const env = await setup(t);
    const held: (() => void)[] = [];
    const arrivals = new Recorder<string>();
    const client = env.track(mqtt.connect(env.url, v5Options({
      clientId: 'rm1', properties: { receiveMaximum: 2 },
      customHandleAcks: (_topic, message, _packet, done) => {
        held.push(() => done(0));
        arrivals.push(message.toString());
      },
    })));
    const tap = new WireTap(client);
    const pubacks = countSent(client, 'puback');
    let maxOutstanding = 0;
    tap.onPush(() => {
      maxOutstanding = Math.max(maxOutstanding, tap.count(PacketType.Publish) - pubacks());
    });
    await waitFor(client, 'connect');
    await client.subscribeAsync('rm', { qos: 1 });
    for (let i = 0; i < 5; i++) await env.broker.publish({ topic: 'rm', payload: `${i}`, qos: 1 });

    // The broker wrote its PUBLISHes before this PINGRESP: exactly two are on the wire.
    await tap.until(() => tap.count(PacketType.Publish) >= 2, 'two PUBLISH on the wire');
    client.sendPing();
    await tap.until(() => tap.count(PacketType.Pingresp) >= 1, 'PINGRESP');
    assert.equal(tap.count(PacketType.Publish), 2);
    assert.deepEqual(arrivals.items, ['0']);

    // Each acknowledgement lets exactly one more through.
    let released = 0;
    while (released < 5) {
      await arrivals.until((a) => a.length > released, `message ${released}`);
      held[released]?.();
      released++;
      if (released === 1) {
        await tap.until(() => tap.count(PacketType.Publish) >= 3, 'the third PUBLISH');
        client.sendPing();
        await tap.until(() => tap.count(PacketType.Pingresp) >= 2, 'the second PINGRESP');
        assert.equal(tap.count(PacketType.Publish), 3);
      }
    }
    assert.deepEqual(arrivals.items, ['0', '1', '2', '3', '4']);
    assert.equal(tap.count(PacketType.Publish), 5);
    assert.equal(maxOutstanding, 2);
  });

  test('[MQTT-3.3.4-9] QoS 2: MQTT.js enforces its Receive Maximum and the broker never trips it', async (t) => {
    const env = await setup(t);
    const client = env.track(mqtt.connect(env.url, v5Options({ clientId: 'rm2', properties: { receiveMaximum: 2 } })));
    const errs = errors(client);
    const tap = new WireTap(client);
    const pubcomps = countSent(client, 'pubcomp');
    let maxOutstanding = 0;
    tap.onPush(() => {
      maxOutstanding = Math.max(maxOutstanding, tap.count(PacketType.Publish) - pubcomps());
    });
    const inbox = new Inbox(client);
    await waitFor(client, 'connect');
    await client.subscribeAsync('rm2', { qos: 2 });
    for (let i = 0; i < 10; i++) await env.broker.publish({ topic: 'rm2', payload: `${i}`, qos: 2 });
    await inbox.until((m) => m.length === 10, 'ten QoS 2 messages');
    assert.deepEqual(inbox.payloads(), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.ok(maxOutstanding <= 2, `at most 2 in flight, saw ${maxOutstanding}`);
    assert.deepEqual(errs, []);
    assert.equal(client.connected, true);
  });

  test('[MQTT-3.3.4-7] the broker\'s Receive Maximum reaches MQTT.js; exceeding it with QoS 2 gets DISCONNECT 0x93', async (t) => {
    const env = await setup(t, { receiveMaximum: 2 });
    const pub = await env.connect({ clientId: 'rm-pub' });
    assert.equal(pub.serverProperties?.receiveMaximum, 2);
    // MQTT.js does not limit its own sending to the broker's Receive Maximum: five QoS 2
    // PUBLISH leave in one go, before the first PUBREC can come back.
    const disconnect = waitFor(pub, 'disconnect');
    for (let i = 0; i < 5; i++) pub.publish('burst', `${i}`, { qos: 2 }, () => undefined);
    const [packet] = await disconnect;
    assert.equal(packet.reasonCode, ReasonCode.ReceiveMaximumExceeded);
  });
});

describe('MQTT 5.0 (MQTT.js): Maximum Packet Size', () => {
  test('[MQTT-3.1.2-24] [MQTT-3.1.2-25] a message larger than the client\'s Maximum Packet Size is not sent to it; smaller ones are', async (t) => {
    const env = await setup(t);
    const dropped = new Recorder<string>();
    env.broker.on('messageDropped', (clientId, _topic, reason) => dropped.push(`${clientId}:${reason}`));
    const sub = env.track(mqtt.connect(env.url, v5Options({ clientId: 'small', properties: { maximumPacketSize: 256 } })));
    const errs = errors(sub);
    const inbox = new Inbox(sub);
    await waitFor(sub, 'connect');
    const big = await env.connect({ clientId: 'big-sender' });
    const bigInbox = new Inbox(big);
    await sub.subscribeAsync('mps/#', { qos: 1 });
    await big.subscribeAsync('mps/#', { qos: 1 });
    await big.publishAsync('mps/large', Buffer.alloc(1000, 0x61), { qos: 1 });
    await big.publishAsync('mps/small', 'ok', { qos: 1 });
    await inbox.next('mps/small');
    await bigInbox.next('mps/small');
    assert.deepEqual(inbox.items.map((m) => m.topic), ['mps/small'], 'the large message was skipped, the QoS 1 flow goes on');
    assert.deepEqual(bigInbox.items.map((m) => m.topic), ['mps/large', 'mps/small'], 'other subscribers get it');
    await dropped.until((d) => d.includes('small:too-large'), 'messageDropped too-large');
    assert.deepEqual(errs, []);
    assert.equal(sub.connected, true);
  });

  test('a packet larger than the broker\'s Maximum Packet Size gets DISCONNECT 0x95', async (t) => {
    const env = await setup(t, { maxPacketSize: 512 });
    const c = await env.connect({ clientId: 'too-big' });
    assert.equal(c.serverProperties?.maximumPacketSize, 512);
    const disconnect = waitFor(c, 'disconnect');
    c.publish('t', Buffer.alloc(1000), { qos: 0 });
    const [packet] = await disconnect;
    assert.equal(packet.reasonCode, ReasonCode.PacketTooLarge);
  });
});

describe('MQTT 5.0 (MQTT.js): topic aliases', () => {
  test('[MQTT-3.3.2-12] client to broker: an alias set with a topic, then used with an empty topic', async (t) => {
    const env = await setup(t);
    const pub = await env.connect({ clientId: 'ta-pub' });
    assert.equal(pub.serverProperties?.topicAliasMaximum, 10);
    const sent = publishes(pub, 'packetsend');
    const sub = await env.connect({ clientId: 'ta-sub' });
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('alias/#', { qos: 1 });
    await pub.publishAsync('alias/one', '1', { qos: 1, properties: { topicAlias: 3 } });
    await pub.publishAsync('', '2', { qos: 1, properties: { topicAlias: 3 } });
    await pub.publishAsync('alias/two', '3', { qos: 0, properties: { topicAlias: 3 } }); // remapped
    await pub.publishAsync('', '4', { qos: 1, properties: { topicAlias: 3 } });
    await inbox.until((m) => m.length === 4, 'four messages');
    assert.deepEqual(sent.items.map((p) => [p.topic, p.properties?.topicAlias]), [['alias/one', 3], ['', 3], ['alias/two', 3], ['', 3]]);
    assert.deepEqual(inbox.items.map((m) => [m.topic, m.payload.toString()]), [['alias/one', '1'], ['alias/one', '2'], ['alias/two', '3'], ['alias/two', '4']]);
  });

  test('client to broker: MQTT.js autoUseTopicAlias and autoAssignTopicAlias (LRU within the broker\'s Topic Alias Maximum)', async (t) => {
    const env = await setup(t, { topicAliasMaximum: 2 });
    const sub = await env.connect({ clientId: 'auto-sub' });
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('auto/#', { qos: 1 });

    const user = await env.connect({ clientId: 'auto-use', autoUseTopicAlias: true });
    const usedSent = publishes(user, 'packetsend');
    await user.publishAsync('auto/use', 'a', { qos: 1, properties: { topicAlias: 1 } });
    await user.publishAsync('auto/use', 'b', { qos: 1 });
    assert.deepEqual(usedSent.items.map((p) => [p.topic, p.properties?.topicAlias]), [['auto/use', 1], ['', 1]]);

    const assigner = await env.connect({ clientId: 'auto-assign', autoAssignTopicAlias: true });
    assert.equal(assigner.serverProperties?.topicAliasMaximum, 2);
    const assignSent = publishes(assigner, 'packetsend');
    const topics = ['auto/1', 'auto/1', 'auto/2', 'auto/3', 'auto/1', 'auto/3'];
    for (const [i, topic] of topics.entries()) await assigner.publishAsync(topic, `${i}`, { qos: 1 });
    assert.ok(assignSent.items.every((p) => (p.properties?.topicAlias ?? 0) >= 1 && (p.properties?.topicAlias ?? 0) <= 2), 'aliases within 1..2');
    assert.ok(assignSent.items.some((p) => p.topic === ''), 'some PUBLISH went with an empty topic');

    await inbox.until((m) => m.length === 2 + topics.length, 'every message');
    assert.deepEqual(inbox.items.map((m) => m.topic), ['auto/use', 'auto/use', ...topics]);
    assert.deepEqual(inbox.payloads().slice(2), ['0', '1', '2', '3', '4', '5']);
  });

  test('[MQTT-3.3.2-12] broker to client at every QoS: MQTT.js sees every topic (QoS 2 deliveries restate the topic with the alias)', async (t) => {
    const env = await setup(t);
    const sub = await env.connect({ clientId: 'out-alias-sub', properties: { topicAliasMaximum: 10 } });
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('out/#', { qos: 2 });
    const pub = await env.connect({ clientId: 'out-alias-pub' });
    for (let i = 0; i < 9; i++) await pub.publishAsync(`out/${i % 3}`, `${i}`, { qos: (i % 3) as 0 | 1 | 2 });
    await inbox.until((m) => m.length === 9, 'nine messages');
    assert.deepEqual(inbox.items.map((m) => [m.topic, m.payload.toString()]), [0, 1, 2, 3, 4, 5, 6, 7, 8].map((i) => [`out/${i % 3}`, `${i}`]));
    // QoS 0 and 1 repeats went alias-only; aliases were used at all.
    assert.ok(inbox.items.slice(3).some((m) => m.packet.properties?.topicAlias !== undefined));
  });

  test('[MQTT-3.3.2-7] alias mappings do not survive the connection: an unknown alias is a Protocol Error (0x82)', async (t) => {
    const env = await setup(t);
    const first = await env.connect({ clientId: 'ta-carry' });
    await first.publishAsync('carry/t', 'x', { qos: 1, properties: { topicAlias: 1 } });
    await first.endAsync();
    const second = await env.connect({ clientId: 'ta-carry' });
    const disconnect = waitFor(second, 'disconnect');
    second.publish('', 'y', { qos: 0, properties: { topicAlias: 1 } });
    const [packet] = await disconnect;
    assert.equal(packet.reasonCode, ReasonCode.ProtocolError);
  });

  test('[MQTT-3.1.2-26] [MQTT-3.3.2-11] broker to client: aliases assigned within the client\'s Topic Alias Maximum; MQTT.js resolves them', async (t) => {
    const env = await setup(t);
    const sub = env.track(mqtt.connect(env.url, v5Options({ clientId: 'oa', properties: { topicAliasMaximum: 2 } })));
    const errs = errors(sub);
    const received = publishes(sub, 'packetreceive');
    const inbox = new Inbox(sub);
    await waitFor(sub, 'connect');
    await sub.subscribeAsync('out/#', { qos: 1 });
    const topics = ['out/a', 'out/a', 'out/b', 'out/c', 'out/a', 'out/c', 'out/b', 'out/b'];
    for (const [i, topic] of topics.entries()) await env.broker.publish({ topic, payload: `${i}`, qos: i % 2 === 0 ? 0 : 1 });
    await inbox.until((m) => m.length === topics.length, 'every message');
    assert.deepEqual(inbox.items.map((m) => m.topic), topics);
    const aliases = received.items.map((p) => p.properties?.topicAlias);
    // A full alias table may leave later topics without an alias; none goes above the maximum.
    assert.ok(aliases.every((a) => a === undefined || (a >= 1 && a <= 2)), `aliases within 1..2: ${JSON.stringify(aliases)}`);
    assert.ok(aliases.filter((a) => a !== undefined).length >= 2, `aliases were used: ${JSON.stringify(aliases)}`);
    assert.equal(received.items[1]?.topic, '', 'the repeated topic went as an alias alone');
    assert.deepEqual(errs, []);
  });

  test('[MQTT-3.1.2-27] no Topic Alias Maximum from the client: the broker sends no aliases', async (t) => {
    const env = await setup(t);
    const sub = await env.connect({ clientId: 'no-alias' });
    const errs = errors(sub);
    const received = publishes(sub, 'packetreceive');
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('plain/#', { qos: 0 });
    for (let i = 0; i < 3; i++) await env.broker.publish({ topic: 'plain/t', payload: `${i}` });
    await inbox.until((m) => m.length === 3, 'three messages');
    assert.deepEqual(received.items.map((p) => [p.topic, p.properties?.topicAlias]), [['plain/t', undefined], ['plain/t', undefined], ['plain/t', undefined]]);
    assert.deepEqual(errs, []);
  });

  test('broker to client: outboundTopicAliases false sends no aliases even when the client allows them', async (t) => {
    const env = await setup(t, { outboundTopicAliases: false });
    const sub = await env.connect({ clientId: 'oa-off', properties: { topicAliasMaximum: 10 } });
    const received = publishes(sub, 'packetreceive');
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('off/#', { qos: 0 });
    for (let i = 0; i < 2; i++) await env.broker.publish({ topic: 'off/t', payload: `${i}` });
    await inbox.until((m) => m.length === 2, 'two messages');
    assert.deepEqual(received.items.map((p) => [p.topic, p.properties?.topicAlias]), [['off/t', undefined], ['off/t', undefined]]);
  });
});
