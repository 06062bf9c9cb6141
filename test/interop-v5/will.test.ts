/**
 * MQTT.js 5.0 against Petrel over TCP: will messages with 5.0 properties, Will Delay Interval
 * and DISCONNECT with reason code 0x04.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import type { IClientOptions, MqttClient } from 'mqtt';
import { ReasonCode } from '../../src/protocol/index.js';
import { ManualClock } from '../../src/session/clock.js';
import { type Env, Inbox, setup, waitFor } from '../helpers/mqttjs-v5.js';

function willOptions(clientId: string, topic: string, willDelayInterval: number | undefined, sessionExpiryInterval = 60): IClientOptions {
  return {
    clientId, clean: false, properties: { sessionExpiryInterval },
    will: {
      topic, payload: Buffer.from(`${clientId} gone`), qos: 1, retain: false,
      ...(willDelayInterval === undefined ? {} : { properties: { willDelayInterval } }),
    },
  };
}

/** Drops the TCP connection without DISCONNECT and waits until the broker has seen the loss. */
async function drop(env: Env, client: MqttClient): Promise<void> {
  const lost = waitFor(env.broker, 'connectionLost', undefined, (info) => info.clientId === client.options.clientId);
  client.stream.destroy();
  await lost;
}

async function watcher(env: Env): Promise<Inbox> {
  const w = await env.connect({ clientId: 'watcher' });
  const inbox = new Inbox(w);
  await w.subscribeAsync(['will/#', 'marker'], { qos: 1 });
  return inbox;
}

/** Publishes a marker and waits for it: whatever the broker routed before has arrived. */
async function flush(env: Env, inbox: Inbox, id: string): Promise<void> {
  await env.broker.publish({ topic: 'marker', payload: id, qos: 1 });
  await inbox.find((m) => m.topic === 'marker' && m.payload.toString() === id, `marker ${id}`);
}

describe('MQTT 5.0 (MQTT.js): will messages', () => {
  test('[MQTT-3.1.3-10] the will carries its 5.0 properties: content type, response topic, correlation data, user properties, expiry', async (t) => {
    const env = await setup(t);
    const inbox = await watcher(env);
    const properties = {
      contentType: 'text/plain', responseTopic: 'will/reply', correlationData: Buffer.from('corr'),
      userProperties: { first: '1', many: ['a', 'b'] }, payloadFormatIndicator: true, messageExpiryInterval: 300,
    };
    const dying = await env.connect({ clientId: 'props', will: { topic: 'will/props', payload: Buffer.from('bye'), qos: 1, retain: false, properties } });
    await drop(env, dying);
    const m = await inbox.next('will/props');
    const p = m.packet.properties;
    assert.deepEqual(
      {
        contentType: p?.contentType, responseTopic: p?.responseTopic, correlationData: p?.correlationData,
        userProperties: { ...p?.userProperties }, payloadFormatIndicator: p?.payloadFormatIndicator, messageExpiryInterval: p?.messageExpiryInterval,
      },
      properties,
    );
    assert.equal(m.payload.toString(), 'bye');
  });

  test('[MQTT-3.1.3-9] the will is not sent when the session resumes within the Will Delay Interval', async (t) => {
    const clock = new ManualClock(0);
    const env = await setup(t, { clock });
    const inbox = await watcher(env);
    const opts = willOptions('resumer', 'will/resumer', 10);
    await drop(env, await env.connect(opts));
    clock.advance(5_000);
    const { connack } = env.open(opts);
    assert.equal((await connack).sessionPresent, true);
    // A control client whose will falls due after the resumer's would have.
    await drop(env, await env.connect(willOptions('control', 'will/control', 1)));
    clock.advance(20_000);
    await inbox.next('will/control');
    await flush(env, inbox, 'after-control');
    assert.deepEqual(inbox.on('will/resumer'), []);
  });

  test('the will is sent once the Will Delay Interval has passed, not before', async (t) => {
    const clock = new ManualClock(0);
    const env = await setup(t, { clock });
    const inbox = await watcher(env);
    await drop(env, await env.connect(willOptions('late', 'will/late', 5)));
    // A control will due after 3 s: once it arrives, the broker's timers have run past 4 s.
    await drop(env, await env.connect(willOptions('early', 'will/early', 3)));
    clock.advance(4_000);
    await inbox.next('will/early');
    await flush(env, inbox, 'before');
    assert.deepEqual(inbox.on('will/late'), [], 'not before the delay');
    clock.advance(1_100);
    const m = await inbox.next('will/late');
    assert.equal(m.payload.toString(), 'late gone');
  });

  test('the will is sent after a real 1 s Will Delay Interval', async (t) => {
    const env = await setup(t);
    const inbox = await watcher(env);
    const published = waitFor(env.broker, 'published', 5000, (m) => m.topic === 'will/real');
    await drop(env, await env.connect(willOptions('real', 'will/real', 1)));
    const [message] = await published;
    assert.equal(message.clientId, 'real');
    assert.equal((await inbox.next('will/real')).payload.toString(), 'real gone');
  });

  test('the will is sent when the session ends before the Will Delay Interval', async (t) => {
    const clock = new ManualClock(0);
    const env = await setup(t, { clock });
    const inbox = await watcher(env);
    const expired = waitFor(env.broker, 'sessionExpired');
    await drop(env, await env.connect(willOptions('short', 'will/short', 100, 2)));
    clock.advance(2_100);
    await expired;
    assert.equal((await inbox.next('will/short')).payload.toString(), 'short gone');
  });

  test('[MQTT-3.14.4-3] DISCONNECT 0x04 (Disconnect with Will Message) publishes the will; 0x00 discards it', async (t) => {
    const env = await setup(t);
    const inbox = await watcher(env);
    const withWill = await env.connect(willOptions('with-will', 'will/with', undefined));
    const gone = waitFor(env.broker, 'clientDisconnected', undefined, (info) => info.clientId === 'with-will');
    await withWill.endAsync(false, { reasonCode: ReasonCode.DisconnectWithWillMessage });
    await gone;
    assert.equal((await inbox.next('will/with')).payload.toString(), 'with-will gone');

    const normal = await env.connect(willOptions('normal', 'will/normal', undefined));
    const gone2 = waitFor(env.broker, 'clientDisconnected', undefined, (info) => info.clientId === 'normal');
    await normal.endAsync(false, { reasonCode: ReasonCode.Success });
    await gone2;
    await flush(env, inbox, 'after-normal');
    assert.deepEqual(inbox.on('will/normal'), []);
  });

  test('the clientDisconnected event reports the reason code of the client\'s DISCONNECT (0x04)', async (t) => {
    const env = await setup(t);
    const c = await env.connect(willOptions('reason', 'will/reason', undefined));
    const gone = waitFor(env.broker, 'clientDisconnected', undefined, (info) => info.clientId === 'reason');
    await c.endAsync(false, { reasonCode: ReasonCode.DisconnectWithWillMessage });
    const [, code] = await gone;
    assert.equal(code, ReasonCode.DisconnectWithWillMessage);
  });
});
