/**
 * MQTT.js 5.0 against Petrel over TCP: subscription options (No Local, Retain As Published,
 * Retain Handling), SUBACK / UNSUBACK reason codes and shared subscriptions.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import mqtt, { type MqttClient, type Packet as MqttPacket } from 'mqtt';
import { ReasonCode } from '../../src/protocol/index.js';
import { Inbox, Recorder, setup, v5Options, WAIT_MS, waitFor } from '../helpers/mqttjs-v5.js';

/** Sends SUBSCRIBE and resolves with the SUBACK's reason codes, whatever they are. */
async function subackCodes(c: MqttClient, ...args: Parameters<MqttClient['subscribe']>): Promise<number[]> {
  const suback = waitFor(c, 'packetreceive', WAIT_MS, (p: MqttPacket) => p.cmd === 'suback');
  c.subscribe(args[0], args[1] as object, () => undefined);
  const [p] = await suback;
  return p.cmd === 'suback' ? p.granted.map(Number) : [];
}

describe('MQTT 5.0 (MQTT.js): subscription options', () => {
  test('[MQTT-3.8.3-3] No Local: the client does not receive its own messages; others\' still arrive', async (t) => {
    const env = await setup(t);
    const c = await env.connect({ clientId: 'nl' });
    const inbox = new Inbox(c);
    await c.subscribeAsync('nl/t', { qos: 1, nl: true });
    await c.subscribeAsync('nl/echo', { qos: 1 });
    await c.publishAsync('nl/t', 'mine', { qos: 1 });
    await c.publishAsync('nl/echo', 'mine too', { qos: 1 });
    const other = await env.connect({ clientId: 'nl-other' });
    await other.publishAsync('nl/t', 'theirs', { qos: 1 });
    await inbox.until((m) => m.length === 2, 'two messages');
    assert.deepEqual(inbox.items.map((m) => [m.topic, m.payload.toString()]), [['nl/echo', 'mine too'], ['nl/t', 'theirs']]);
  });

  test('[MQTT-3.3.1-12] [MQTT-3.3.1-13] Retain As Published keeps RETAIN on live delivery; without it RETAIN is cleared', async (t) => {
    const env = await setup(t);
    const c = await env.connect({ clientId: 'rap' });
    const inbox = new Inbox(c);
    await c.subscribeAsync({ 'rap/kept': { qos: 0, rap: true }, 'rap/cleared': { qos: 0, rap: false } });
    const pub = await env.connect({ clientId: 'rap-pub' });
    await pub.publishAsync('rap/kept', 'a', { qos: 1, retain: true });
    await pub.publishAsync('rap/cleared', 'b', { qos: 1, retain: true });
    await pub.publishAsync('rap/kept', 'c', { qos: 1, retain: false });
    await inbox.until((m) => m.length === 3, 'three messages');
    assert.deepEqual(inbox.items.map((m) => [m.topic, m.payload.toString(), m.packet.retain]), [
      ['rap/kept', 'a', true], ['rap/cleared', 'b', false], ['rap/kept', 'c', false],
    ]);
  });

  test('[MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] Retain Handling 0 (always), 1 (new subscription only), 2 (never)', async (t) => {
    const env = await setup(t);
    await env.broker.publish({ topic: 'rh/t', payload: 'kept', retain: true });
    const c = await env.connect({ clientId: 'rh' });
    const inbox = new Inbox(c);
    await c.subscribeAsync('rh-marker', { qos: 0 });
    let n = 0;
    // Retained messages follow the SUBACK; a marker published after it comes after them.
    const retainedAfter = async (rh: 0 | 1 | 2): Promise<number> => {
      const before = inbox.on('rh/t').length;
      await c.subscribeAsync('rh/t', { qos: 0, rh });
      const marker = `m${n++}`;
      await env.broker.publish({ topic: 'rh-marker', payload: marker });
      await inbox.find((m) => m.payload.toString() === marker, `marker ${marker}`);
      return inbox.on('rh/t').length - before;
    };
    assert.equal(await retainedAfter(2), 0, '2: never');
    await c.unsubscribeAsync('rh/t');
    assert.equal(await retainedAfter(1), 1, '1: the subscription is new');
    assert.equal(await retainedAfter(1), 0, '1: the subscription already existed');
    assert.equal(await retainedAfter(0), 1, '0: every SUBSCRIBE');
    assert.equal(await retainedAfter(0), 1, '0: again');
    assert.ok(inbox.on('rh/t').every((m) => m.packet.retain && m.payload.toString() === 'kept'), 'sent with RETAIN 1 [MQTT-3.3.1-8]');
  });
});

describe('MQTT 5.0 (MQTT.js): SUBACK and UNSUBACK reason codes', () => {
  test('SUBACK per filter: granted QoS capped by Maximum QoS, 0x87 Not authorized (authorizeSubscribe), 0x9E shared and 0xA2 wildcards unsupported', async (t) => {
    const env = await setup(t, {
      authorizeSubscribe: (ctx) => !ctx.topicFilter.startsWith('private/'),
      sharedSubscriptionsAvailable: false, wildcardSubscriptionAvailable: false, maximumQoS: 1,
    });
    const c = await env.connect({ clientId: 'suback' });
    assert.equal(c.serverProperties?.sharedSubscriptionAvailable, false);
    assert.equal(c.serverProperties?.wildcardSubscriptionAvailable, false);
    const codes = await subackCodes(c, {
      'private/x': { qos: 0 }, '$share/g/a': { qos: 0 }, 'a/+': { qos: 1 }, 'a/#': { qos: 1 }, ok: { qos: 2 }, fine: { qos: 0 },
    });
    assert.deepEqual(codes, [
      ReasonCode.NotAuthorized, ReasonCode.SharedSubscriptionsNotSupported, ReasonCode.WildcardSubscriptionsNotSupported,
      ReasonCode.WildcardSubscriptionsNotSupported, 1, 0,
    ]);
    // subscribeAsync surfaces a refusal as an error carrying the SUBACK.
    await assert.rejects(c.subscribeAsync('private/y', { qos: 0 }), (err: Error & { packet?: { granted: number[] } }) => err.packet?.granted[0] === ReasonCode.NotAuthorized);
    assert.deepEqual(env.broker.subscriptions('suback')?.map((s) => s.topicFilter).sort(), ['fine', 'ok']);
  });

  test('an authorizeSubscribe hook that answers asynchronously', async (t) => {
    const env = await setup(t, { authorizeSubscribe: async (ctx) => Promise.resolve(ctx.qos < 2) });
    const c = await env.connect({ clientId: 'async-auth' });
    assert.deepEqual(await subackCodes(c, { q0: { qos: 0 }, q2: { qos: 2 }, q1: { qos: 1 } }), [0, ReasonCode.NotAuthorized, 1]);
  });

  test('[MQTT-3.10.4-5] UNSUBACK: 0x00 for a removed subscription, 0x11 No subscription existed', async (t) => {
    const env = await setup(t);
    const c = await env.connect({ clientId: 'unsuback' });
    await c.subscribeAsync('here', { qos: 1 });
    const packet = await c.unsubscribeAsync(['here', 'never', 'here']);
    assert.equal(packet?.cmd, 'unsuback');
    assert.deepEqual(packet?.cmd === 'unsuback' ? packet.granted : undefined, [ReasonCode.Success, ReasonCode.NoSubscriptionExisted, ReasonCode.NoSubscriptionExisted]);
    assert.deepEqual(env.broker.subscriptions('unsuback'), []);
  });
});

describe('MQTT 5.0 (MQTT.js): shared subscriptions', () => {
  test('§4.8.2: each message goes to exactly one member of the group (round robin); a plain subscriber gets all', async (t) => {
    const env = await setup(t);
    const a = await env.connect({ clientId: 'member-a' });
    const b = await env.connect({ clientId: 'member-b' });
    const plain = await env.connect({ clientId: 'plain' });
    const ip = new Inbox(plain);
    const group = new Recorder<[member: string, payload: string]>();
    a.on('message', (_t, payload) => group.push(['a', payload.toString()]));
    b.on('message', (_t, payload) => group.push(['b', payload.toString()]));
    await a.subscribeAsync('$share/workers/jobs/+', { qos: 1 });
    await b.subscribeAsync('$share/workers/jobs/+', { qos: 1 });
    await plain.subscribeAsync('jobs/+', { qos: 1 });
    const pub = await env.connect({ clientId: 'jobs-pub' });
    const sent = Array.from({ length: 10 }, (_, i) => `${i}`);
    for (const p of sent) await pub.publishAsync(`jobs/${p}`, p, { qos: 1 });
    // A marker published after the ten: once it reached the group and the plain subscriber,
    // every earlier message has been delivered too.
    await pub.publishAsync('jobs/end', 'end', { qos: 1 });
    await ip.next('jobs/end');
    await group.find(([, p]) => p === 'end', 'the marker at the group');
    const payloads = group.items.map(([, p]) => p);
    assert.deepEqual(payloads.filter((p) => p !== 'end').sort(), [...sent].sort(), 'every message exactly once across the group');
    assert.equal(payloads.length, 11);
    const toA = group.items.filter(([m]) => m === 'a').length;
    assert.ok(toA >= 5 && toA <= 6, `round robin: ${toA} of 11 to member a`);
    sent.push('end');
    assert.deepEqual(ip.payloads(), sent);
  });

  test('§4.8.2: retained messages are not sent to a shared subscription', async (t) => {
    const env = await setup(t);
    await env.broker.publish({ topic: 'shr/r', payload: 'kept', retain: true, qos: 1 });
    const a = await env.connect({ clientId: 'shr-a' });
    const inbox = new Inbox(a);
    await a.subscribeAsync('$share/g/shr/#', { qos: 1 });
    await env.broker.publish({ topic: 'shr/live', payload: 'live', qos: 1 });
    await inbox.next('shr/live');
    assert.deepEqual(inbox.items.map((m) => m.topic), ['shr/live']);
  });

  test('a QoS 1 message left unacknowledged by a member that goes away is delivered to another member', async (t) => {
    const env = await setup(t);
    const got = new Recorder<string>();
    const a = env.track(mqtt.connect(env.url, v5Options({
      clientId: 'leaver', customHandleAcks: (_t, message) => got.push(message.toString()), // never acknowledges
    })));
    await waitFor(a, 'connect');
    await a.subscribeAsync('$share/w/work', { qos: 1 });
    await env.broker.publish({ topic: 'work', payload: 'task', qos: 1 });
    await got.until((g) => g.length === 1, 'the task at the first member');
    const b = await env.connect({ clientId: 'stayer' });
    const inbox = new Inbox(b);
    await b.subscribeAsync('$share/w/work', { qos: 1 });
    const lost = waitFor(env.broker, 'connectionLost');
    a.stream.destroy();
    await lost;
    const m = await inbox.next('work');
    assert.equal(m.payload.toString(), 'task');
  });

  test('[MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error (DISCONNECT 0x82)', async (t) => {
    const env = await setup(t);
    const c = await env.connect({ clientId: 'nl-shared' });
    const disconnect = waitFor(c, 'disconnect');
    c.subscribe('$share/g/t', { qos: 0, nl: true }, () => undefined);
    const [packet] = await disconnect;
    assert.equal(packet.reasonCode, ReasonCode.ProtocolError);
  });
});
