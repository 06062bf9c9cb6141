/**
 * MQTT.js 5.0 against Petrel over TCP: PUBLISH properties, acknowledgement reason codes,
 * message expiry and subscription identifiers.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { ReasonCode } from '../../src/protocol/index.js';
import { ManualClock } from '../../src/session/clock.js';
import { Inbox, setup, waitFor } from '../helpers/mqttjs-v5.js';

type CodedError = Error & { code?: number };
const withCode = (code: number) => (err: CodedError): boolean => err.code === code;

describe('MQTT 5.0 (MQTT.js): PUBLISH properties', () => {
  test('[MQTT-3.3.2-4] Payload Format Indicator: forwarded unaltered; a payload that is not UTF-8 is refused with 0x99 (PUBACK and PUBREC)', async (t) => {
    const env = await setup(t);
    const pub = await env.connect({ clientId: 'pfi-pub' });
    const sub = await env.connect({ clientId: 'pfi-sub' });
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('pfi/#', { qos: 1 });
    const bad = Buffer.from([0x61, 0xff, 0xfe]);
    await assert.rejects(pub.publishAsync('pfi/bad', bad, { qos: 1, properties: { payloadFormatIndicator: true } }), withCode(ReasonCode.PayloadFormatInvalid));
    await assert.rejects(pub.publishAsync('pfi/bad', bad, { qos: 2, properties: { payloadFormatIndicator: true } }), withCode(ReasonCode.PayloadFormatInvalid));
    // The same bytes without the indicator are just bytes.
    await pub.publishAsync('pfi/binary', bad, { qos: 1 });
    await pub.publishAsync('pfi/text', 'héllo', { qos: 1, properties: { payloadFormatIndicator: true } });
    const text = await inbox.next('pfi/text');
    assert.equal(text.packet.properties?.payloadFormatIndicator, true);
    assert.equal(text.payload.toString('utf8'), 'héllo');
    assert.deepEqual(inbox.items.map((m) => m.topic), ['pfi/binary', 'pfi/text'], 'refused messages are not routed');
    assert.deepEqual(inbox.items[0]?.payload, bad);
    assert.equal(pub.connected, true, 'a refused PUBLISH does not end the connection');
  });

  test('[MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20] response topic, correlation data, user properties and content type are forwarded unaltered', async (t) => {
    const env = await setup(t);
    const pub = await env.connect({ clientId: 'props-pub' });
    const sub = await env.connect({ clientId: 'props-sub' });
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('props', { qos: 2 });
    const properties = {
      contentType: 'application/json; charset=utf-8',
      responseTopic: 'reply/props-pub',
      correlationData: Buffer.from([0, 1, 2, 0xff]),
      userProperties: { region: 'eu', tag: ['first', 'second', 'third'] },
    };
    for (const qos of [0, 1, 2] as const) await pub.publishAsync('props', `{"qos":${qos}}`, { qos, properties });
    await inbox.until((m) => m.length === 3, 'three messages');
    for (const m of inbox.items) {
      const p = m.packet.properties;
      assert.deepEqual(
        { contentType: p?.contentType, responseTopic: p?.responseTopic, correlationData: p?.correlationData, userProperties: { ...p?.userProperties } },
        properties,
      );
    }
    assert.deepEqual(inbox.items.map((m) => m.packet.qos), [0, 1, 2]);
  });

  test('request / response with Response Information, Response Topic and Correlation Data', async (t) => {
    const env = await setup(t, { responseInformation: 'replies/' });
    const requester = await env.connect({ clientId: 'requester', properties: { requestResponseInformation: true } });
    const base = requester.serverProperties?.responseInformation;
    assert.equal(base, 'replies/');
    const replyTopic = `${base ?? ''}requester`;
    const inbox = new Inbox(requester);
    await requester.subscribeAsync(replyTopic, { qos: 1 });

    const responder = await env.connect({ clientId: 'responder' });
    responder.on('message', (_topic, payload, packet) => {
      const { responseTopic, correlationData } = packet.properties ?? {};
      if (responseTopic === undefined) return;
      responder.publish(responseTopic, `echo:${payload.toString()}`, { qos: 1, properties: { ...(correlationData ? { correlationData } : {}) } });
    });
    await responder.subscribeAsync('service/echo', { qos: 1 });

    for (const id of [7, 9]) {
      await requester.publishAsync('service/echo', `req-${id}`, { qos: 1, properties: { responseTopic: replyTopic, correlationData: Buffer.from([id]) } });
    }
    await inbox.until((m) => m.length === 2, 'two replies');
    assert.deepEqual(
      inbox.items.map((m) => [m.payload.toString(), m.packet.properties?.correlationData]).sort(),
      [['echo:req-7', Buffer.from([7])], ['echo:req-9', Buffer.from([9])]],
    );
  });

  test('[MQTT-3.3.2-5] [MQTT-3.3.2-6] Message Expiry Interval: expired queued messages are dropped; the remaining interval is forwarded', async (t) => {
    const clock = new ManualClock(0);
    const env = await setup(t, { clock });
    const opts = { clientId: 'mei-sub', clean: false, properties: { sessionExpiryInterval: 300 } };
    const sub = await env.connect(opts);
    const live = new Inbox(sub);
    await sub.subscribeAsync('mei/#', { qos: 1 });
    const pub = await env.connect({ clientId: 'mei-pub' });
    // Live delivery: nothing waited, the interval is forwarded as received.
    await pub.publishAsync('mei/live', 'now', { qos: 1, properties: { messageExpiryInterval: 30 } });
    assert.equal((await live.next('mei/live')).packet.properties?.messageExpiryInterval, 30);

    const gone = waitFor(env.broker, 'clientDisconnected');
    await sub.endAsync();
    await gone;
    await pub.publishAsync('mei/short', 's', { qos: 1, properties: { messageExpiryInterval: 2 } });
    await pub.publishAsync('mei/long', 'l', { qos: 1, properties: { messageExpiryInterval: 10 } });
    await pub.publishAsync('mei/forever', 'f', { qos: 1 });
    clock.advance(3_000);

    const { client, connack } = env.open(opts);
    const inbox = new Inbox(client);
    assert.equal((await connack).sessionPresent, true);
    await inbox.until((m) => m.length === 2, 'the two unexpired messages');
    assert.deepEqual(inbox.items.map((m) => [m.topic, m.packet.properties?.messageExpiryInterval]), [['mei/long', 7], ['mei/forever', undefined]]);
  });

  test('[MQTT-3.3.2-5] an expired retained message is not sent to a new subscriber', async (t) => {
    const clock = new ManualClock(0);
    const env = await setup(t, { clock });
    const pub = await env.connect({ clientId: 'ret-pub' });
    await pub.publishAsync('ret/short', 'x', { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } });
    await pub.publishAsync('ret/long', 'y', { qos: 1, retain: true, properties: { messageExpiryInterval: 100 } });
    clock.advance(2_000);
    const sub = await env.connect({ clientId: 'ret-sub' });
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('ret/#', { qos: 1 });
    await env.broker.publish({ topic: 'ret/marker', payload: 'm' });
    await inbox.next('ret/marker');
    assert.deepEqual(inbox.items.map((m) => [m.topic, m.packet.retain, m.packet.properties?.messageExpiryInterval]), [['ret/long', true, 98], ['ret/marker', false, undefined]]);
  });
});

describe('MQTT 5.0 (MQTT.js): acknowledgement reason codes', () => {
  test('0x10 No matching subscribers resolves publishAsync; 0x87 Not authorized and 0x97 Quota exceeded reject it', async (t) => {
    const env = await setup(t, { authorizePublish: (ctx) => !ctx.topic.startsWith('secret/'), maxRetainedMessages: 1 });
    const c = await env.connect({ clientId: 'codes' });
    const acks: (number | undefined)[] = [];
    c.on('packetreceive', (p) => {
      if (p.cmd === 'puback') acks.push(p.reasonCode);
    });
    await c.publishAsync('nobody/listens', 'x', { qos: 1 });
    assert.deepEqual(acks, [ReasonCode.NoMatchingSubscribers]);
    await assert.rejects(c.publishAsync('secret/x', 'x', { qos: 1 }), withCode(ReasonCode.NotAuthorized));
    await assert.rejects(c.publishAsync('secret/y', 'x', { qos: 2 }), withCode(ReasonCode.NotAuthorized));
    await c.publishAsync('keep/1', 'x', { qos: 1, retain: true });
    await assert.rejects(c.publishAsync('keep/2', 'x', { qos: 1, retain: true }), withCode(ReasonCode.QuotaExceeded));
    assert.equal(c.connected, true);
  });

  test('[MQTT-3.2.2-11] QoS above the announced Maximum QoS gives DISCONNECT 0x9B; subscriptions are granted at most that QoS', async (t) => {
    const env = await setup(t, { maximumQoS: 1 });
    const c = await env.connect({ clientId: 'maxqos' });
    assert.equal(c.serverProperties?.maximumQoS, 1);
    const granted = await c.subscribeAsync('mq/t', { qos: 2 });
    assert.equal(granted[0]?.qos, 1);
    const disconnect = waitFor(c, 'disconnect');
    c.publish('mq/t', 'x', { qos: 2 }, () => undefined);
    const [packet] = await disconnect;
    assert.equal(packet.reasonCode, ReasonCode.QoSNotSupported);
  });
});

describe('MQTT 5.0 (MQTT.js): subscription identifiers', () => {
  test('[MQTT-3.3.4-3] [MQTT-3.3.4-4] the Subscription Identifier reaches the subscriber; overlapping subscriptions give one copy with all of them', async (t) => {
    const env = await setup(t);
    const sub = await env.connect({ clientId: 'sid' });
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('sid/+', { qos: 0, properties: { subscriptionIdentifier: 11 } });
    await sub.subscribeAsync('sid/#', { qos: 1, properties: { subscriptionIdentifier: 22 } });
    await sub.subscribeAsync('sid/x/#', { qos: 1 });
    await env.broker.publish({ topic: 'sid/x', payload: 'both', qos: 1 });
    await env.broker.publish({ topic: 'sid/x/y', payload: 'one', qos: 1 });
    await inbox.until((m) => m.length === 2, 'two messages');
    const both = inbox.items[0]?.packet;
    const ids = both?.properties?.subscriptionIdentifier;
    assert.deepEqual(([] as number[]).concat(ids ?? []).sort((a, b) => a - b), [11, 22]);
    assert.equal(both?.qos, 1, 'the single copy has the highest granted QoS');
    // sid/x/y matches sid/# (22) and sid/x/# (no identifier).
    assert.deepEqual(([] as number[]).concat(inbox.items[1]?.packet.properties?.subscriptionIdentifier ?? []), [22]);
    assert.equal(inbox.items.length, 2);
  });

  test('a new SUBSCRIBE replaces the identifier; one without identifier removes it', async (t) => {
    const env = await setup(t);
    const sub = await env.connect({ clientId: 'sid-replace' });
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('rep/t', { qos: 0, properties: { subscriptionIdentifier: 5 } });
    await env.broker.publish({ topic: 'rep/t', payload: '1' });
    await sub.subscribeAsync('rep/t', { qos: 0, properties: { subscriptionIdentifier: 6 } });
    await env.broker.publish({ topic: 'rep/t', payload: '2' });
    await sub.subscribeAsync('rep/t', { qos: 0 });
    await env.broker.publish({ topic: 'rep/t', payload: '3' });
    await inbox.until((m) => m.length === 3, 'three messages');
    assert.deepEqual(inbox.items.map((m) => m.packet.properties?.subscriptionIdentifier), [5, 6, undefined]);
  });

  test('Subscription Identifier Available 0: a SUBSCRIBE with an identifier gets DISCONNECT 0xA1', async (t) => {
    const env = await setup(t, { subscriptionIdentifiersAvailable: false });
    const c = await env.connect({ clientId: 'no-sid' });
    assert.equal(c.serverProperties?.subscriptionIdentifiersAvailable, false);
    const disconnect = waitFor(c, 'disconnect');
    c.subscribe('x', { qos: 0, properties: { subscriptionIdentifier: 4 } }, () => undefined);
    const [packet] = await disconnect;
    assert.equal(packet.reasonCode, ReasonCode.SubscriptionIdentifiersNotSupported);
  });
});
