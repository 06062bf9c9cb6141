/**
 * The HTTP API's routes through fastify's `inject` against an in-process broker: publishing
 * (encodings, MQTT 5 properties, batches), subscribing on a client's behalf, clients, sessions,
 * retained messages, listeners, config, stats, health, metrics, the endpoint list and the OpenAPI
 * description; every bad input answers 400 naming its field.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { MqttClient } from '../../src/client/client.js';
import { createHttpApi, type HttpApiOptions } from '../../src/ops/http/index.js';
import { type Broker, createBroker } from '../../src/petrel.js';
import { connectClient, endAll, Inbox, withTimeout } from '../helpers/mqttjs.js';

const KEY = 'test-admin-key-0123456789';
const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

interface Answer {
  status: number;
  json: Record<string, unknown>;
  headers: Record<string, unknown>;
  body: string;
}

async function setup(t: TestContext, options: HttpApiOptions = {}): Promise<{ broker: Broker; req: (method: 'GET' | 'POST', url: string, payload?: unknown) => Promise<Answer> }> {
  const broker = createBroker();
  const api = createHttpApi(broker, { auth: { apiKeys: [KEY] }, ...options });
  t.after(async () => {
    await api.close();
    await broker.close();
  });
  const req = async (method: 'GET' | 'POST', url: string, payload?: unknown): Promise<Answer> => {
    const type = typeof payload === 'string' ? { 'content-type': 'application/json' } : {};
    const r = await api.app.inject({
      method, url, headers: { authorization: `Bearer ${KEY}`, ...type }, ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
    });
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(r.body) as Record<string, unknown>;
    } catch {
      // not JSON (metrics)
    }
    return { status: r.statusCode, json, headers: r.headers, body: r.body };
  };
  return { broker, req };
}

/** The next message an in-process client receives, bounded. */
async function next(client: MqttClient): Promise<{ topic: string; payload: Buffer; qos: number; retain: boolean; properties: Record<string, unknown> | undefined }> {
  const it = client.messages();
  const r = await withTimeout(it.next(), 5000, 'a message');
  assert.equal(r.done, false);
  return r.value as never;
}

const data = (a: Answer): Record<string, unknown> => a.json.data as Record<string, unknown>;

describe('POST /api/v1/mqtt/publish', () => {
  test('a plain payload reaches a subscriber; the answer counts the receivers', async (t) => {
    const { broker, req } = await setup(t);
    const sub = await broker.connectLocal({ clientId: 'sub' });
    await sub.subscribe('a/#', { qos: 1 });
    const got = next(sub);
    const r = await req('POST', '/api/v1/mqtt/publish', { topic: 'a/b', payload: 'Hello World', qos: 1, retain: false, clientId: 'httpApi' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { code: 1, data: { receivers: 1 } });
    const m = await got;
    assert.equal(m.topic, 'a/b');
    assert.equal(m.payload.toString(), 'Hello World');
    assert.equal(m.qos, 1);
  });

  test('hex and base64 payloads are decoded; retain keeps the message', async (t) => {
    const { broker, req } = await setup(t);
    assert.equal((await req('POST', '/api/v1/mqtt/publish', { topic: 'h', payload: '00ff10', encoding: 'hex', retain: true })).status, 200);
    assert.equal((await req('POST', '/api/v1/mqtt/publish', { topic: 'b', payload: Buffer.from([1, 2, 250]).toString('base64'), encoding: 'base64', retain: true })).status, 200);
    const byTopic = new Map(broker.retained().map((m) => [m.topic, m.payload]));
    assert.deepEqual(byTopic.get('h'), Buffer.from([0, 0xff, 0x10]));
    assert.deepEqual(byTopic.get('b'), Buffer.from([1, 2, 250]));
  });

  test('MQTT 5 properties reach a 5.0 subscriber: user properties, content type, response topic, correlation data, message expiry', async (t) => {
    const { broker, req } = await setup(t);
    const sub = await broker.connectLocal({ clientId: 'sub5' });
    await sub.subscribe('p');
    const got = next(sub);
    const r = await req('POST', '/api/v1/mqtt/publish', {
      topic: 'p', payload: '{"x":1}', properties: {
        userProperties: [['k', 'v1'], ['k', 'v2']], contentType: 'application/json', responseTopic: 'replies/1',
        correlationData: 'c0ffee', correlationDataEncoding: 'hex', messageExpiryInterval: 60, payloadFormatIndicator: true,
      },
    });
    assert.equal(r.status, 200, r.body);
    const p = (await got).properties as Record<string, unknown>;
    assert.deepEqual(p.userProperties, [['k', 'v1'], ['k', 'v2']]);
    assert.equal(p.contentType, 'application/json');
    assert.equal(p.responseTopic, 'replies/1');
    assert.deepEqual(p.correlationData, Buffer.from('c0ffee', 'hex'));
    assert.equal(p.payloadFormatIndicator, true);
    // The expiry counts down from 60 [MQTT-3.3.2-6]: at most 60 when it arrives at once.
    assert.ok(typeof p.messageExpiryInterval === 'number' && p.messageExpiryInterval <= 60 && p.messageExpiryInterval >= 59);
  });

  test('user properties may be a mapping too', async (t) => {
    const { broker, req } = await setup(t);
    const sub = await broker.connectLocal({ clientId: 'sub' });
    await sub.subscribe('u');
    const got = next(sub);
    assert.equal((await req('POST', '/api/v1/mqtt/publish', { topic: 'u', payload: '', properties: { userProperties: { a: '1', b: '2' } } })).status, 200);
    assert.deepEqual((await got).properties?.userProperties, [['a', '1'], ['b', '2']]);
  });

  const bad: [string, unknown, string, number][] = [
    ['no topic', { payload: 'x' }, 'body.topic', 101],
    ['no payload', { topic: 't' }, 'body.payload', 101],
    ['a topic with a wildcard [MQTT-3.3.2-2]', { topic: 'a/+', payload: 'x' }, 'body.topic', 102],
    ['an empty topic [MQTT-4.7.3-1]', { topic: '', payload: 'x' }, 'body.topic', 102],
    ['QoS 3', { topic: 't', payload: 'x', qos: 3 }, 'body.qos', 102],
    ['retain not a boolean', { topic: 't', payload: 'x', retain: 'yes' }, 'body.retain', 102],
    ['an unknown encoding', { topic: 't', payload: 'x', encoding: 'utf16' }, 'body.encoding', 102],
    ['an unknown field', { topic: 't', payload: 'x', priority: 1 }, 'body.priority', 102],
    ['odd hex', { topic: 't', payload: 'abc', encoding: 'hex' }, 'body.payload', 102],
    ['not hex', { topic: 't', payload: 'zz', encoding: 'hex' }, 'body.payload', 102],
    ['not base64', { topic: 't', payload: 'a*b=', encoding: 'base64' }, 'body.payload', 102],
    ['a response topic with a wildcard [MQTT-3.3.2-14]', { topic: 't', payload: 'x', properties: { responseTopic: 'r/#' } }, 'body.properties.responseTopic', 102],
    ['correlationDataEncoding without correlationData', { topic: 't', payload: 'x', properties: { correlationDataEncoding: 'hex' } }, 'body.properties.correlationDataEncoding', 102],
    ['bad correlation data hex', { topic: 't', payload: 'x', properties: { correlationData: 'q', correlationDataEncoding: 'hex' } }, 'body.properties.correlationData', 102],
    ['an expiry above 32 bits', { topic: 't', payload: 'x', properties: { messageExpiryInterval: 2 ** 32 } }, 'body.properties.messageExpiryInterval', 102],
    ['an unknown property', { topic: 't', payload: 'x', properties: { topicAlias: 3 } }, 'body.properties.topicAlias', 102],
    ['a payload that is not UTF-8 marked as UTF-8 [MQTT-3.3.2-4]', { topic: 't', payload: 'ff', encoding: 'hex', properties: { payloadFormatIndicator: true } }, 'body.payload', 102],
  ];
  test('every bad input is a 400 naming the field, and nothing is published', async (t) => {
    const { broker, req } = await setup(t);
    for (const [name, body, field, code] of bad) {
      await t.test(`${name}: ${field}`, async () => {
        const r = await req('POST', '/api/v1/mqtt/publish', body);
        assert.equal(r.status, 400, r.body);
        assert.equal(r.json.field, field);
        assert.equal(r.json.code, code);
        assert.equal(broker.stats.messagesReceived, 0, 'nothing was published');
      });
    }
  });

  test('400 for a body that is not JSON', async (t) => {
    const { req } = await setup(t);
    const r = await req('POST', '/api/v1/mqtt/publish', '{"topic": ');
    assert.equal(r.status, 400);
  });
});

describe('POST /api/v1/mqtt/publish/batch', () => {
  test('publishes every message in order', async (t) => {
    const { broker, req } = await setup(t);
    const sub = await broker.connectLocal({ clientId: 'sub' });
    await sub.subscribe('q');
    const it = sub.messages();
    const r = await req('POST', '/api/v1/mqtt/publish/batch', [
      { topic: 'q', payload: 'one', clientId: 'example' }, { topic: 'q', payload: '74776f', encoding: 'hex' }, { topic: 'q', payload: 'dGhyZWU=', encoding: 'base64' },
    ]);
    assert.deepEqual(r.json, { code: 1, data: { receivers: [1, 1, 1] } });
    const got: string[] = [];
    for (let i = 0; i < 3; i++) got.push(((await withTimeout(it.next(), 5000, 'a message')).value as { payload: Buffer }).payload.toString());
    assert.deepEqual(got, ['one', 'two', 'three']);
  });

  test('one invalid item: 400 naming it (body[1].topic) and nothing is published', async (t) => {
    const { broker, req } = await setup(t);
    const r = await req('POST', '/api/v1/mqtt/publish/batch', [{ topic: 'ok', payload: 'x' }, { topic: 'bad/#', payload: 'x' }]);
    assert.equal(r.status, 400);
    assert.equal(r.json.field, 'body[1].topic');
    assert.equal(broker.stats.messagesReceived, 0);
  });

  test('400 for an empty batch and for an object in place of a list', async (t) => {
    const { req } = await setup(t);
    assert.equal((await req('POST', '/api/v1/mqtt/publish/batch', [])).status, 400);
    const single = await req('POST', '/api/v1/mqtt/publish/batch', { topic: 'x', payload: 'y' });
    assert.equal(single.status, 400, single.body);
  });
});

describe('subscribing on behalf of a client', () => {
  test('subscribe: the client gets matching messages and the retained one [MQTT-3.3.1-8]; unsubscribe ends that', async (t) => {
    const { broker, req } = await setup(t);
    const c = await broker.connectLocal({ clientId: 'dev1' });
    await broker.publish({ topic: 'cmd/old', payload: 'kept', retain: true });
    const it = c.messages();
    const r = await req('POST', '/api/v1/mqtt/subscribe', { clientId: 'dev1', topic: 'cmd/#', qos: 1 });
    assert.deepEqual(r.json, { code: 1, data: [{ clientId: 'dev1', topic: 'cmd/#', reasonCode: 1 }] });
    const retained = (await withTimeout(it.next(), 5000, 'the retained message')).value as { topic: string; retain: boolean };
    assert.equal(retained.topic, 'cmd/old');
    assert.equal(retained.retain, true);
    assert.equal(await broker.publish({ topic: 'cmd/go', payload: 'now', qos: 1 }), 1);
    assert.equal(((await withTimeout(it.next(), 5000, 'a message')).value as { topic: string }).topic, 'cmd/go');
    assert.deepEqual(broker.subscriptions('dev1')?.map((s) => [s.topicFilter, s.qos]), [['cmd/#', 1]]);
    const u = await req('POST', '/api/v1/mqtt/unsubscribe', { clientId: 'dev1', topic: 'cmd/#' });
    assert.deepEqual(u.json, { code: 1, data: [{ clientId: 'dev1', topic: 'cmd/#', reasonCode: 0 }] });
    assert.equal(await broker.publish({ topic: 'cmd/go', payload: 'again' }), 0);
    // [MQTT-3.11.3-1]-like: 0x11 No Subscription Existed the second time.
    assert.equal(((await req('POST', '/api/v1/mqtt/unsubscribe', { clientId: 'dev1', topic: 'cmd/#' })).json.data as { reasonCode: number }[])[0]?.reasonCode, 0x11);
  });

  test('batch subscribe and unsubscribe, several clients', async (t) => {
    const { broker, req } = await setup(t);
    await broker.connectLocal({ clientId: 'a' });
    await broker.connectLocal({ clientId: 'b' });
    const r = await req('POST', '/api/v1/mqtt/subscribe/batch', [{ clientId: 'a', topic: 'x', qos: 2 }, { clientId: 'b', topic: 'y' }, { clientId: 'a', topic: 'z', qos: 1 }]);
    assert.deepEqual((r.json.data as { reasonCode: number }[]).map((d) => d.reasonCode), [2, 0, 1]);
    assert.deepEqual(broker.subscriptions('a')?.map((s) => s.topicFilter).sort(), ['x', 'z']);
    const u = await req('POST', '/api/v1/mqtt/unsubscribe/batch', [{ clientId: 'a', topic: 'x' }, { clientId: 'b', topic: 'nope' }]);
    assert.deepEqual((u.json.data as { reasonCode: number }[]).map((d) => d.reasonCode), [0, 0x11]);
    assert.deepEqual(broker.subscriptions('a')?.map((s) => s.topicFilter), ['z']);
  });

  test('404 for a client without a session (nothing subscribed), 400 for a bad filter [MQTT-4.7.1-1] or a missing clientId', async (t) => {
    const { broker, req } = await setup(t);
    await broker.connectLocal({ clientId: 'a' });
    const missing = await req('POST', '/api/v1/mqtt/subscribe/batch', [{ clientId: 'a', topic: 'x' }, { clientId: 'ghost', topic: 'y' }]);
    assert.equal(missing.status, 404);
    assert.match(String(missing.json.message), /body\[1\]\.clientId/);
    assert.deepEqual(broker.subscriptions('a'), []);
    const badFilter = await req('POST', '/api/v1/mqtt/subscribe', { clientId: 'a', topic: 'a/#/b' });
    assert.equal(badFilter.status, 400);
    assert.equal(badFilter.json.field, 'body.topic');
    const noClient = await req('POST', '/api/v1/mqtt/subscribe', { topic: 'x' });
    assert.equal(noClient.json.field, 'body.clientId');
    assert.equal(noClient.json.code, 101);
    const badQos = await req('POST', '/api/v1/mqtt/unsubscribe', { clientId: 'a', topic: 'x', qos: 1 });
    assert.equal(badQos.json.field, 'body.qos');
  });
});

describe('clients', () => {
  test('list (sorted by client id), info, subscriptions; 404 and 400 cases', async (t) => {
    const { broker, req } = await setup(t);
    for (const id of ['c', 'a', 'b']) await broker.connectLocal({ clientId: id, protocolVersion: id === 'b' ? 4 : 5 });
    await (await broker.connectLocal({ clientId: 'd' })).subscribe([{ topicFilter: 's/#', qos: 1 }]);
    const list = await req('GET', '/api/v1/clients');
    assert.equal(list.status, 200);
    const page = data(list);
    assert.deepEqual((page.list as { clientId: string }[]).map((c) => c.clientId), ['a', 'b', 'c', 'd']);
    assert.equal(page.totalRow, 4);
    const b = (page.list as Record<string, unknown>[])[1] as Record<string, unknown>;
    assert.equal(b.protoVer, 4);
    assert.equal(b.connected, true);
    assert.equal(b.listener, 'local');
    const info = await req('GET', '/api/v1/clients/info?clientId=d');
    assert.equal(data(info).subscriptions, 1);
    assert.equal(typeof data(info).connectedAt, 'number');
    const subs = await req('GET', '/api/v1/client/subscriptions?clientId=d');
    assert.deepEqual(subs.json.data, [{ clientId: 'd', topicFilter: 's/#', mqttQoS: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionIdentifier: null }]);
    assert.equal((await req('GET', '/api/v1/clients/info?clientId=zz')).status, 404);
    assert.equal((await req('GET', '/api/v1/client/subscriptions?clientId=zz')).status, 404);
    const noId = await req('GET', '/api/v1/clients/info');
    assert.equal(noId.status, 400);
    assert.equal(noId.json.field, 'querystring.clientId');
    assert.equal((await req('GET', '/api/v1/clients?_limit=0')).json.field, 'querystring._limit');
    assert.equal((await req('GET', '/api/v1/clients?_page=x')).json.field, 'querystring._page');
    assert.equal((await req('GET', '/api/v1/clients?sort=desc')).json.field, 'querystring.sort');
  });

  test('delete kicks the client (5.0: DISCONNECT 0x98) and ends its session', async (t) => {
    const { broker, req } = await setup(t);
    const c = await broker.connectLocal({ clientId: 'k', clean: false, properties: { sessionExpiryInterval: 3600 } });
    const closed = once(c, 'close');
    const r = await req('POST', '/api/v1/clients/delete?clientId=k');
    assert.deepEqual(r.json, { code: 1 });
    await withTimeout(closed, 5000, 'the client to be closed');
    assert.equal(broker.clientIds().length, 0);
    assert.equal(broker.hasSession('k'), false, 'the persistent session went with it');
    assert.equal((await req('POST', '/api/v1/clients/delete?clientId=k')).status, 404);
  });
});

describe('sessions and retained messages', () => {
  test('an offline persistent session: listed, its queue depth shown, then deleted', async (t) => {
    const { broker, req } = await setup(t);
    const c = await broker.connectLocal({ clientId: 'p', clean: false, properties: { sessionExpiryInterval: 3600 } });
    await c.subscribe([{ topicFilter: 'q/#', qos: 1 }]);
    await c.end();
    for (let i = 0; i < 3; i++) await broker.publish({ topic: 'q/x', payload: String(i), qos: 1 });
    const list = await req('GET', '/api/v1/sessions');
    const s = (data(list).list as Record<string, unknown>[])[0] as Record<string, unknown>;
    assert.equal(s.clientId, 'p');
    assert.equal(s.connected, false);
    assert.equal(s.expiryInterval, 3600);
    assert.ok(typeof s.expiresInSeconds === 'number' && s.expiresInSeconds > 3500);
    const info = data(await req('GET', '/api/v1/sessions/info?clientId=p'));
    assert.equal(info.queued, 3);
    assert.equal(info.inflight, 0);
    assert.deepEqual((info.subscriptionList as { topicFilter: string }[]).map((x) => x.topicFilter), ['q/#']);
    assert.deepEqual((await req('POST', '/api/v1/sessions/delete?clientId=p')).json, { code: 1 });
    assert.equal(broker.hasSession('p'), false);
    assert.equal((await req('GET', '/api/v1/sessions/info?clientId=p')).status, 404);
    assert.equal((await req('POST', '/api/v1/sessions/delete?clientId=p')).status, 404);
  });

  test('retained: listed by filter, sorted and paged, payload encodings; deleted without a delivery', async (t) => {
    const { broker, req } = await setup(t);
    for (const topic of ['r/c', 'r/a', 'other', 'r/b']) await broker.publish({ topic, payload: `v-${topic}`, retain: true });
    await broker.publish({ topic: 'r/bin', payload: Buffer.from([0xff, 0]), retain: true });
    const all = data(await req('GET', '/api/v1/retained?filter=r/%2B&encoding=plain'));
    assert.deepEqual((all.list as { topic: string }[]).map((m) => m.topic), ['r/a', 'r/b', 'r/bin', 'r/c']);
    const a = (all.list as Record<string, unknown>[])[0] as Record<string, unknown>;
    assert.equal(a.payload, 'v-r/a');
    assert.equal(a.encoding, 'plain');
    // Bytes that are not UTF-8 fall back to base64, and say so.
    const bin = (all.list as Record<string, unknown>[])[2] as Record<string, unknown>;
    assert.deepEqual([bin.payload, bin.encoding], [Buffer.from([0xff, 0]).toString('base64'), 'base64']);
    const p2 = data(await req('GET', '/api/v1/retained?filter=r/%23&_limit=2&_page=2'));
    assert.deepEqual((p2.list as { topic: string }[]).map((m) => m.topic), ['r/bin', 'r/c']);
    assert.equal(p2.totalRow, 4);
    assert.equal((await req('GET', '/api/v1/retained?filter=a/%23/b')).json.field, 'querystring.filter');
    const sub = await broker.connectLocal({ clientId: 'watch' });
    await sub.subscribe([{ topicFilter: 'r/#', qos: 0, retainHandling: 2 }]);
    const received: string[] = [];
    void (async () => {
      for await (const m of sub.messages()) received.push(m.topic);
    })();
    assert.deepEqual((await req('POST', '/api/v1/retained/delete?topic=r/a')).json, { code: 1 });
    assert.equal((await req('POST', '/api/v1/retained/delete?topic=r/a')).status, 404);
    assert.deepEqual(broker.retained('r/a'), []);
    // Ordering proof instead of a sleep: a later publish arrives, and nothing came before it.
    const marker = next(sub);
    await broker.publish({ topic: 'r/marker', payload: 'm' });
    assert.equal((await marker).topic, 'r/marker');
    assert.deepEqual(received.filter((x) => x !== 'r/marker'), []);
  });
});

describe('the broker and the API itself', () => {
  test('listeners with their connection counts', async (t) => {
    const { broker, req } = await setup(t);
    const l = await broker.listen({ port: 0, host: '127.0.0.1', name: 'main' });
    const clients = [await connectClient(`mqtt://127.0.0.1:${l.port}`, 4), await connectClient(`mqtt://127.0.0.1:${l.port}`, 5)];
    t.after(() => endAll(clients));
    const r = await req('GET', '/api/v1/listeners');
    assert.deepEqual(r.json.data, [{ name: 'main', type: 'tcp', host: '127.0.0.1', port: l.port, connections: 2 }]);
  });

  test('a WebSocket listener reports its path (what a browser connects to); TCP listeners have none', async (t) => {
    const { broker, req } = await setup(t);
    const tcp = await broker.listen({ port: 0, host: '127.0.0.1', name: 'plain' });
    const ws = await broker.listen({ type: 'ws', port: 0, host: '127.0.0.1', name: 'web', path: '/ws' });
    const r = await req('GET', '/api/v1/listeners');
    assert.deepEqual(r.json.data, [
      { name: 'plain', type: 'tcp', host: '127.0.0.1', port: tcp.port, connections: 0 },
      { name: 'web', type: 'ws', host: '127.0.0.1', port: ws.port, path: '/ws', connections: 0 },
    ]);
  });

  test('GET /api/v1/subscriptions: every session\'s subscriptions sorted by client id then filter, narrowed by clientId or match, paged by cursor', async (t) => {
    const { broker, req } = await setup(t);
    const a = await broker.connectLocal({ clientId: 'a' });
    const ab = await broker.connectLocal({ clientId: 'ab' });
    t.after(async () => {
      await a.end();
      await ab.end();
    });
    await a.subscribe(['x/#', 'cmd/a'], { qos: 1 });
    await ab.subscribe('cmd/ab');
    const list = async (url: string): Promise<{ rows: string[]; next: unknown; total: unknown }> => {
      const d = data(await req('GET', url));
      return { rows: (d.list as { clientId: string; topicFilter: string }[]).map((s) => `${s.clientId} ${s.topicFilter}`), next: d.next, total: d.totalRow };
    };
    // "a" with all its filters before "ab", whatever the filters.
    assert.deepEqual((await list('/api/v1/subscriptions')).rows, ['a cmd/a', 'a x/#', 'ab cmd/ab']);
    assert.deepEqual((await list('/api/v1/subscriptions?clientId=ab')).rows, ['ab cmd/ab']);
    assert.deepEqual((await list('/api/v1/subscriptions?match=cmd')).rows, ['a cmd/a', 'ab cmd/ab']);
    assert.deepEqual((await list('/api/v1/subscriptions?clientId=nobody')).rows, []);
    const first = await list('/api/v1/subscriptions?_limit=2');
    assert.deepEqual([first.rows, first.total], [['a cmd/a', 'a x/#'], 3]);
    assert.equal(typeof first.next, 'string');
    const second = await list(`/api/v1/subscriptions?_limit=2&after=${encodeURIComponent(first.next as string)}`);
    assert.deepEqual([second.rows, second.next], [['ab cmd/ab'], null]);
    const one = data(await req('GET', '/api/v1/subscriptions?clientId=a&match=x')).list as Record<string, unknown>[];
    assert.deepEqual(one, [{ clientId: 'a', topicFilter: 'x/#', mqttQoS: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, subscriptionIdentifier: null }]);
  });

  test('the dashboard option serves its files at /dashboard/ without credentials (/ redirects there); the API still needs them', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'petrel-dashboard-files-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>dash</title>');
    const broker = createBroker();
    const api = createHttpApi(broker, { auth: { apiKeys: [KEY] }, dashboard: dir });
    t.after(async () => {
      await api.close();
      await broker.close();
    });
    const index = await api.app.inject({ method: 'GET', url: '/dashboard/' });
    assert.equal(index.statusCode, 200);
    assert.match(index.body, /<title>dash<\/title>/);
    assert.equal((await api.app.inject({ method: 'GET', url: '/dashboard/index.html' })).statusCode, 200);
    const root = await api.app.inject({ method: 'GET', url: '/' });
    assert.deepEqual([root.statusCode, root.headers.location], [302, '/dashboard/']);
    const bare = await api.app.inject({ method: 'GET', url: '/dashboard' });
    assert.equal(bare.statusCode, 301);
    assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/stats' })).statusCode, 401);
    assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/clients' })).statusCode, 401);
    // Without the option there is nothing public there.
    const { req } = await setup(t);
    assert.equal((await req('GET', '/dashboard/')).status, 404);
  });

  test('config: shown with every secret redacted, the rest as given; 404 when none was given', async (t) => {
    const { req } = await setup(t, {
      config: {
        port: 1883,
        listeners: [{ type: 'tls', cert: 'c.pem', key: 'k.pem', passphrase: 'hunter2' }],
        auth: { passwordFile: 'pw', jwt: { secret: 'jwt-secret' }, http: { url: 'http://x', headers: { authorization: 'Bearer t' } } },
        http: { apiKeys: ['plain-key-1234567890', { name: 'ops', hash: 'sha256:00', role: 'viewer' }], users: [{ username: 'u', password: '$scrypt$x' }] },
      },
    });
    const r = await req('GET', '/api/v1/config');
    const text = r.body;
    for (const secret of ['hunter2', 'jwt-secret', 'Bearer t', 'plain-key-1234567890', 'sha256:00', '$scrypt$x']) assert.ok(!text.includes(secret), `${secret} leaked`);
    const c = data(r);
    assert.equal(c.port, 1883);
    assert.deepEqual((c.http as { apiKeys: unknown[] }).apiKeys, ['[redacted]', { name: 'ops', hash: '[redacted]', role: 'viewer' }]);
    assert.equal(((c.listeners as Record<string, unknown>[])[0] as Record<string, unknown>).key, 'k.pem', 'a key file path is shown');
    assert.equal((c.auth as { passwordFile: string }).passwordFile, 'pw');
    const { req: bare } = await setup(t);
    assert.equal((await bare('GET', '/api/v1/config')).status, 404);
  });

  test('stats count clients, sessions, subscriptions, retained messages and messages', async (t) => {
    const { broker, req } = await setup(t);
    const c = await broker.connectLocal({ clientId: 's' });
    await c.subscribe(['a', 'b']);
    await broker.publish({ topic: 'a', payload: 'x', retain: true });
    const s = data(await req('GET', '/api/v1/stats'));
    assert.equal(s.connections, 1);
    assert.equal(s.sessions, 1);
    assert.equal(s.subscriptions, 2);
    assert.equal(s.retained, 1);
    assert.equal(s.messagesReceived, 1);
    assert.equal(s.messagesRouted, 1);
    assert.equal(typeof (s.memory as { rss: number }).rss, 'number');
  });

  test('health and ready need no credentials; ready is 503 once the broker is closed', async (t) => {
    const broker = createBroker();
    const api = createHttpApi(broker, { auth: { apiKeys: [KEY] } });
    t.after(() => api.close());
    assert.deepEqual((await api.app.inject({ method: 'GET', url: '/health' })).json(), { status: 'ok' });
    assert.equal((await api.app.inject({ method: 'GET', url: '/ready' })).statusCode, 200);
    await broker.close();
    const ready = await api.app.inject({ method: 'GET', url: '/ready' });
    assert.equal(ready.statusCode, 503);
    assert.equal((await api.app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
  });

  test('metrics: 404 without a source; the source text with its content type; authenticated unless metricsAuth is false', async (t) => {
    const { req } = await setup(t);
    assert.equal((await req('GET', '/metrics')).status, 404);
    const metrics = { contentType: 'text/plain; version=0.0.4; charset=utf-8', render: async () => 'petrel_up 1\n' };
    const broker = createBroker();
    t.after(() => broker.close());
    const secured = createHttpApi(broker, { auth: { apiKeys: [KEY] }, metrics });
    const open = createHttpApi(broker, { auth: { apiKeys: [KEY] }, metrics, metricsAuth: false });
    t.after(async () => {
      await secured.close();
      await open.close();
    });
    assert.equal((await secured.app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401);
    const ok = await secured.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(ok.body, 'petrel_up 1\n');
    assert.equal(ok.headers['content-type'], metrics.contentType);
    assert.equal((await open.app.inject({ method: 'GET', url: '/metrics' })).body, 'petrel_up 1\n');
    assert.equal((await open.app.inject({ method: 'GET', url: '/api/v1/stats' })).statusCode, 401, 'only metrics are opened');
  });

  test("the endpoint list has mica-mqtt's routes; the OpenAPI description has every route, with its schemas", async (t) => {
    const { req } = await setup(t);
    const endpoints = (await req('GET', '/api/v1/endpoints')).json.data as { method: string; path: string }[];
    const have = new Set(endpoints.map((e) => `${e.method} ${e.path}`));
    for (const mica of [
      'GET /api/v1/endpoints', 'GET /api/v1/clients', 'GET /api/v1/clients/info', 'POST /api/v1/clients/delete', 'GET /api/v1/client/subscriptions',
      'GET /api/v1/stats', 'GET /api/v1/stats/sse', 'POST /api/v1/mqtt/publish', 'POST /api/v1/mqtt/publish/batch', 'POST /api/v1/mqtt/subscribe',
      'POST /api/v1/mqtt/subscribe/batch', 'POST /api/v1/mqtt/unsubscribe', 'POST /api/v1/mqtt/unsubscribe/batch',
    ]) assert.ok(have.has(mica), `${mica} is missing`);
    const doc = (await req('GET', '/api/openapi.json')).json as { openapi: string; paths: Record<string, Record<string, Record<string, unknown>>> };
    assert.equal(doc.openapi, '3.1.0');
    for (const e of endpoints) {
      const op = doc.paths[e.path]?.[e.method.toLowerCase()];
      assert.ok(op !== undefined, `${e.method} ${e.path} is not in the OpenAPI description`);
      assert.ok((op.responses as Record<string, unknown>)['200'] !== undefined);
    }
    const publish = doc.paths['/api/v1/mqtt/publish']?.post as { requestBody: { content: Record<string, { schema: { required: string[] } }> } };
    assert.deepEqual(publish.requestBody.content['application/json']?.schema.required, ['topic', 'payload']);
    const info = doc.paths['/api/v1/clients/info']?.get as { parameters: { name: string; required: boolean }[] };
    assert.deepEqual(info.parameters.map((p) => [p.name, p.required]), [['clientId', true]]);
  });

  test("every curl example in the README calls a route of the OpenAPI description", async (t) => {
    const { req } = await setup(t);
    const doc = (await req('GET', '/api/openapi.json')).json as { paths: Record<string, Record<string, unknown>> };
    const readme = readFileSync(README, 'utf8');
    const section = readme.slice(readme.indexOf('## HTTP API'));
    const calls = [...section.slice(0, section.indexOf('\n## ', 5)).matchAll(/^curl .*$/gm)].map((m) => m[0]);
    assert.ok(calls.length >= 10, `only ${calls.length} curl examples`);
    for (const call of calls) {
      const url = /https?:\/\/[^/\s"']+(\/[^?\s"']*)/.exec(call);
      assert.ok(url !== null, `no URL in: ${call}`);
      const method = /-X (GET|POST)/.exec(call)?.[1] ?? (/ -d /.test(call) ? 'POST' : 'GET');
      assert.ok(doc.paths[url[1] as string]?.[method.toLowerCase()] !== undefined, `${method} ${url[1]} (README) is not a route`);
    }
  });

  test('a curl -d body (application/x-www-form-urlencoded holding JSON), as in mica-mqtt\'s examples, is read as JSON', async (t) => {
    const broker = createBroker();
    const api = createHttpApi(broker, { auth: { apiKeys: [KEY] } });
    t.after(async () => {
      await api.close();
      await broker.close();
    });
    const r = await api.app.inject({
      method: 'POST', url: '/api/v1/mqtt/publish', payload: '{"topic":"a/b/c","payload":"Hello World","qos":1,"retain":false,"clientId":"example"}',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.deepEqual(r.json(), { code: 1, data: { receivers: 0 } });
  });

  test('an empty body labelled application/json is no body: fine where parameters are in the query, a 400 naming body where one is needed', async (t) => {
    const broker = createBroker();
    const api = createHttpApi(broker, { auth: { apiKeys: [KEY] } });
    t.after(async () => {
      await api.close();
      await broker.close();
    });
    await broker.publish({ topic: 'gone', payload: 'x', retain: true });
    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    assert.deepEqual((await api.app.inject({ method: 'POST', url: '/api/v1/retained/delete?topic=gone', headers, payload: '' })).json(), { code: 1 });
    const publish = await api.app.inject({ method: 'POST', url: '/api/v1/mqtt/publish', headers, payload: '' });
    assert.equal(publish.statusCode, 400);
    assert.equal(publish.json().field, 'body');
  });

  test('MQTT.js subscriber over TCP gets a message published over HTTP', async (t) => {
    const { broker, req } = await setup(t);
    const l = await broker.listen({ port: 0, host: '127.0.0.1' });
    const c = await connectClient(`mqtt://127.0.0.1:${l.port}`, 5);
    t.after(() => endAll([c]));
    const inbox = new Inbox(c);
    await c.subscribeAsync('via/http', { qos: 1 });
    await req('POST', '/api/v1/mqtt/publish', { topic: 'via/http', payload: 'hi', qos: 1 });
    const m = await inbox.next('via/http');
    assert.equal(m.payload, 'hi');
  });
});
