/**
 * Large lists through the HTTP API: stable paging over 1,000 in-process clients (page/limit and
 * the cursor, with clients leaving between pages), answers streamed in bounded chunks (100,000
 * items never become one string), and Server-Sent Events of the statistics over a real port.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import type { MqttClient } from '../../src/client/client.js';
import { CHUNK_ITEMS, jsonList } from '../../src/ops/http/json-stream.js';
import { createHttpApi, type HttpApi } from '../../src/ops/http/index.js';
import { type Broker, createBroker } from '../../src/petrel.js';
import { withTimeout } from '../helpers/mqttjs.js';

const KEY = 'paging-key-0123456789abcdef';
const CLIENTS = 1000;

interface Page {
  pageNumber: number;
  pageSize: number;
  totalRow: number;
  next: string | null;
  list: { clientId: string }[];
}

async function setup(t: TestContext): Promise<{ broker: Broker; api: HttpApi; clients: MqttClient[]; get: (url: string) => Promise<Page> }> {
  const broker = createBroker();
  const api = createHttpApi(broker, { auth: { apiKeys: [KEY] }, port: 0, host: '127.0.0.1', sseInterval: 100 });
  const clients: MqttClient[] = [];
  t.after(async () => {
    await api.close();
    await broker.close();
  });
  for (let i = 0; i < CLIENTS; i++) clients.push(await broker.connectLocal({ clientId: `dev-${String((i * 7919) % CLIENTS).padStart(4, '0')}` }));
  const get = async (url: string): Promise<Page> => {
    const r = await api.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(r.statusCode, 200, r.body);
    return (r.json() as { data: Page }).data;
  };
  return { broker, api, clients, get };
}

const sortedIds = Array.from({ length: CLIENTS }, (_, i) => `dev-${String(i).padStart(4, '0')}`);

describe('paging', () => {
  test('pages by _page/_limit and by cursor cover every client once, sorted by id', async (t) => {
    const { get } = await setup(t);
    const byPage: string[] = [];
    for (let p = 1; p <= 10; p++) {
      const page = await get(`/api/v1/clients?_page=${p}&_limit=100`);
      assert.equal(page.totalRow, CLIENTS);
      assert.equal(page.pageNumber, p);
      assert.equal(page.list.length, 100);
      byPage.push(...page.list.map((c) => c.clientId));
      assert.equal(page.next, p < 10 ? page.list[99]?.clientId : null);
    }
    assert.deepEqual(byPage, sortedIds);
    const byCursor: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 20; i++) {
      const page: Page = await get(`/api/v1/clients?_limit=150${after === null ? '' : `&after=${after}`}`);
      byCursor.push(...page.list.map((c) => c.clientId));
      after = page.next;
      if (after === null) break;
    }
    assert.deepEqual(byCursor, sortedIds);
    assert.deepEqual((await get('/api/v1/clients?_page=11&_limit=100')).list, []);
    // mica-mqtt's default page size is 10,000: one page holds them all.
    assert.equal((await get('/api/v1/clients')).list.length, CLIENTS);
  });

  test('the cursor stays right when clients leave between pages: nobody is skipped or repeated', async (t) => {
    const { broker, clients, get } = await setup(t);
    const first = await get('/api/v1/clients?_limit=100');
    // Ten clients of the first page and ten of the rest disconnect.
    const leaving = new Set([...first.list.slice(0, 10).map((c) => c.clientId), ...sortedIds.slice(500, 510)]);
    await Promise.all(clients.filter((_c, i) => leaving.has(`dev-${String((i * 7919) % CLIENTS).padStart(4, '0')}`)).map((c) => c.end()));
    assert.equal(broker.clientIds().length, CLIENTS - 20);
    const rest: string[] = [];
    let after = first.next;
    for (let i = 0; i < 20 && after !== null; i++) {
      const page = await get(`/api/v1/clients?_limit=100&after=${after}`);
      rest.push(...page.list.map((c) => c.clientId));
      after = page.next;
    }
    assert.deepEqual(rest, sortedIds.slice(100).filter((id) => !leaving.has(id)));
  });

  test('sessions page the same way', async (t) => {
    const { get } = await setup(t);
    const page = await get('/api/v1/sessions?_page=2&_limit=300');
    assert.deepEqual(page.list.map((s) => s.clientId), sortedIds.slice(300, 600));
  });
});

describe('streamed answers', () => {
  test('100,000 items are written in chunks of a bounded size, never as one string, and parse back whole', async () => {
    const ids = Array.from({ length: 100_000 }, (_, i) => i);
    const stream = jsonList('{"list":[', ids, (i) => ({ clientId: `client-${i}`, connected: true }), ']}');
    let total = '';
    let chunks = 0;
    let largest = 0;
    for await (const chunk of stream) {
      const text = String(chunk);
      chunks++;
      largest = Math.max(largest, text.length);
      total += text;
    }
    assert.ok(chunks >= 100_000 / CHUNK_ITEMS, `only ${chunks} chunks`);
    // One chunk is CHUNK_ITEMS items of about 40 bytes: far below the 4 MB of the whole.
    assert.ok(largest < CHUNK_ITEMS * 64, `a chunk of ${largest} characters`);
    const parsed = JSON.parse(total) as { list: { clientId: string }[] };
    assert.equal(parsed.list.length, 100_000);
    assert.equal(parsed.list[99_999]?.clientId, 'client-99999');
  });

  test('items that went away are left out, commas stay right', async () => {
    const stream = jsonList('[', [1, 2, 3, 4, 5, 6], (i) => (i % 2 === 0 ? undefined : i), ']', 2);
    let total = '';
    for await (const chunk of stream) total += String(chunk);
    assert.deepEqual(JSON.parse(total), [1, 3, 5]);
    let none = '';
    for await (const chunk of jsonList('[', [1, 2], () => undefined, ']', 1)) none += String(chunk);
    assert.equal(none, '[]');
  });

  test('over a real port, the client list arrives in several chunks and parses', async (t) => {
    const { api } = await setup(t);
    const { port } = await api.listen();
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/clients`, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(res.status, 200);
    assert.match(String(res.headers.get('content-type')), /application\/json/);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    let reads = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      reads++;
      text += decoder.decode(value, { stream: true });
    }
    const page = (JSON.parse(text) as { code: number; data: Page }).data;
    assert.equal(page.list.length, CLIENTS);
    assert.ok(reads > 1, 'written in more than one piece');
  });
});

describe('GET /api/v1/stats/sse', () => {
  test('sends a stats event at once and then periodically; a login token works as ?access_token=; close() ends the stream', async (t) => {
    const broker = createBroker();
    const api = createHttpApi(broker, { auth: { apiKeys: [KEY] }, port: 0, host: '127.0.0.1', sseInterval: 100 });
    t.after(() => broker.close());
    const { port } = await api.listen();
    await broker.connectLocal({ clientId: 'seen' });
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/stats/sse`, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    const events = (): { event: string; data: Record<string, unknown> }[] => text.split('\n\n').filter((b) => b.includes('data: ')).map((b) => ({
      event: /^event: (.*)$/m.exec(b)?.[1] ?? '', data: JSON.parse(/^data: (.*)$/m.exec(b)?.[1] ?? '{}') as Record<string, unknown>,
    }));
    // Two complete events (the text ends each with a blank line), bounded.
    await withTimeout((async () => {
      while (text.split('\n\n').length < 3) {
        const { done, value } = await reader.read();
        if (done) throw new Error('the stream ended early');
        text += decoder.decode(value, { stream: true });
      }
    })(), 10_000, 'two stats events');
    const got = events();
    assert.ok(got.length >= 2);
    assert.equal(got[0]?.event, 'stats');
    assert.equal(got[0]?.data.connections, 1);
    // close() ends the open stream rather than waiting for the client to go.
    await withTimeout(api.close(), 5000, 'close with an open event stream');
    await withTimeout((async () => {
      for (;;) if ((await reader.read()).done) return;
    })(), 5000, 'the stream to end');
  });

  test('the event stream accepts a login token as ?access_token= and refuses a wrong one', async (t) => {
    const broker = createBroker();
    const { hashPassword } = await import('../../src/auth/password-file.js');
    const api = createHttpApi(broker, { auth: { users: [{ username: 'u', password: await hashPassword('pw') }] }, port: 0, host: '127.0.0.1', sseInterval: 100 });
    t.after(async () => {
      await api.close();
      await broker.close();
    });
    const { port } = await api.listen();
    const login = await api.app.inject({ method: 'POST', url: '/api/v1/login', payload: { username: 'u', password: 'pw' } });
    const token = (login.json().data as { token: string }).token;
    assert.equal((await fetch(`http://127.0.0.1:${port}/api/v1/stats/sse?access_token=wrong`)).status, 401);
    const ctl = new AbortController();
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/stats/sse?access_token=${token}`, { signal: ctl.signal });
    assert.equal(res.status, 200);
    ctl.abort();
  });
});
