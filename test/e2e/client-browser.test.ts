/**
 * petrel/client in a real browser: the browser build (scripts/build-browser.mjs, from the
 * compiled client) is installed as `petrel` in a temporary node_modules, a page that imports
 * `petrel/client` is bundled with Vite (so the package's `browser` export condition is what picks
 * the bundle), served over HTTP and run in headless Chromium against a Petrel broker's WebSocket
 * listener. The page proves connect, subscribe, publish at QoS 0/1/2 both ways, 5.0 user
 * properties, and reconnect after the broker drops the connection; the broker's events prove the
 * connections came over the WebSocket listener with the `mqtt` subprotocol [MQTT-6.0.0-3].
 * Chromium is required: without /usr/bin/chromium this test fails.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { ClientInfo, PublishedMessage } from '../../src/broker/index.js';
import { type Broker, createBroker } from '../../src/petrel.js';

/** The page's global object, as the callbacks given to page.evaluate (which run in the page) see it. */
declare const window: unknown;

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const COMPILED = join(ROOT, 'build/src');
/** Bounds every wait inside the page (a connect, a message, a reconnect) on a loaded machine. */
const WAIT_MS = 20_000;

/** The page: each test calls one of these with page.evaluate and checks what it returns. */
const PAGE_SCRIPT = `
import { connect, ClientClosedError, MqttClient } from 'petrel/client';

const WAIT_MS = ${WAIT_MS};
function bounded(promise, what) {
  let timer;
  const limit = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(what + ': nothing within ' + WAIT_MS + ' ms')), WAIT_MS); });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}
function nextEvent(client, event) {
  return bounded(new Promise((resolve) => client.once(event, (arg) => resolve(arg))), event);
}
function text(bytes) {
  return new TextDecoder().decode(bytes);
}
function plain(m) {
  return { topic: m.topic, qos: m.qos, payload: text(m.payload), isUint8Array: m.payload instanceof Uint8Array,
    userProperties: m.properties?.userProperties ?? null, contentType: m.properties?.contentType ?? null };
}
/** Collects messages until 'count' have arrived. */
function collect(client, count) {
  const got = [];
  return bounded(new Promise((resolve) => {
    client.on('message', (m) => { got.push(plain(m)); if (got.length === count) resolve(got); });
  }), 'messages');
}

window.petrel = {
  hasClient: typeof MqttClient === 'function' && typeof ClientClosedError === 'function',

  async roundTrip(url) {
    const client = await bounded(connect(url, { clientId: 'browser-rt', protocolVersion: 5, reconnect: false }), 'connect');
    const suback = await bounded(client.subscribe('browser/rt/#', { qos: 2 }), 'subscribe');
    const arrived = collect(client, 3);
    const results = [];
    for (const qos of [0, 1, 2]) {
      const r = await bounded(client.publish('browser/rt/' + qos, 'hello ' + qos + ' \\u00e9\\u6f22', {
        qos, properties: { userProperties: [['from', 'browser'], ['qos', String(qos)]], contentType: 'text/plain' },
      }), 'publish ' + qos);
      results.push(r.reasonCode);
    }
    const messages = (await arrived).sort((a, b) => a.qos - b.qos);
    return { connected: client.connected, version: client.protocolVersion, granted: suback.reasonCodes, results, messages, client };
  },

  async fromBroker(url) {
    const client = await bounded(connect(url, { clientId: 'browser-in', protocolVersion: 5, reconnect: false }), 'connect');
    await bounded(client.subscribe('browser/in/#', { qos: 2 }), 'subscribe');
    window.petrelInbound = collect(client, 3);
    window.petrelInboundClient = client;
    return 'subscribed';
  },

  async fromBrokerResult() {
    const messages = (await window.petrelInbound).sort((a, b) => a.qos - b.qos);
    await window.petrelInboundClient.end();
    return messages;
  },

  async reconnectStart(url, version) {
    const events = [];
    const client = await bounded(connect(url, {
      clientId: 'browser-rc-' + version, protocolVersion: version, clean: true,
      reconnect: { initialDelay: 50, maxDelay: 200 },
    }), 'connect');
    await bounded(client.subscribe('browser/rc/' + version, { qos: 1 }), 'subscribe');
    for (const e of ['offline', 'reconnect', 'online', 'close']) client.on(e, () => events.push(e));
    window.petrelReconnect = { client, events, offline: nextEvent(client, 'offline'), online: nextEvent(client, 'online') };
    return client.clientId;
  },

  async reconnectFinish(version) {
    const { client, events, offline, online } = window.petrelReconnect;
    const why = await offline;
    await online;
    // Subscribed again (a clean session lost the subscription), then a round trip at QoS 1.
    const arrived = collect(client, 1);
    const r = await bounded(client.publish('browser/rc/' + version, 'after reconnect', { qos: 1 }), 'publish');
    const [message] = await arrived;
    await client.end();
    return { events, offlineReason: why === undefined ? null : String(why.message ?? why), reasonCode: r.reasonCode, message };
  },

  async refused(url) {
    try {
      await connect(url, { reconnect: false, connectTimeout: WAIT_MS });
      return 'connected';
    } catch (err) {
      return err.name + ': ' + err.message;
    }
  },
};
window.petrelReady = true;
`;

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.map': 'application/json' };

describe('petrel/client in headless Chromium over WebSocket', () => {
  let dir = '';
  let broker: Broker;
  let wsUrl = '';
  let http: Server;
  let browser: Browser;
  let page: Page;
  const accepted: ClientInfo[] = [];
  const published: PublishedMessage[] = [];

  before(async () => {
    // CI installs Chromium; a missing browser must not pass silently.
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is not installed: the browser test cannot run`);
    dir = mkdtempSync(join(tmpdir(), 'petrel-browser-'));
    const pkg = join(dir, 'node_modules/petrel');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'package.json'), readFileSync(join(ROOT, 'package.json')));
    const { buildBrowserClient } = await import(join(ROOT, 'scripts/build-browser.mjs')) as {
      buildBrowserClient(o: { from: string; outDir: string }): Promise<string>;
    };
    const bundle = await buildBrowserClient({ from: COMPILED, outDir: join(pkg, 'dist/browser') });
    const code = readFileSync(bundle, 'utf8');
    assert.doesNotMatch(code, /^\s*import\s|\brequire\(|from\s+["']node:/m, 'the browser bundle imports nothing');

    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'index.html'), '<!doctype html><html><body><script type="module" src="./main.js"></script></body></html>');
    writeFileSync(join(app, 'main.js'), PAGE_SCRIPT);
    const { build } = await import('vite');
    await build({ configFile: false, root: app, logLevel: 'warn', base: './', build: { outDir: join(app, 'dist'), minify: false, target: 'es2022' } });

    broker = createBroker({});
    broker.on('clientConnected', (info) => accepted.push(info));
    broker.on('published', (m) => published.push(m));
    const ws = await broker.listen({ type: 'ws', port: 0, host: '127.0.0.1' });
    wsUrl = `ws://127.0.0.1:${ws.port}/mqtt`;

    const served = join(app, 'dist');
    http = createServer((req, res) => {
      const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0] as string));
      const file = join(served, path === '/' ? 'index.html' : path);
      if (!file.startsWith(served) || !existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const address = http.address();
    if (address === null || typeof address === 'string') throw new Error('no HTTP address');

    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`http://127.0.0.1:${address.port}/`);
    await page.waitForFunction(() => (window as unknown as { petrelReady?: boolean }).petrelReady === true, undefined, { timeout: WAIT_MS });
    assert.deepEqual(pageErrors, []);
  });

  after(async () => {
    await browser?.close();
    if (http !== undefined) {
      http.close();
      http.closeAllConnections();
    }
    await broker?.close();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  interface RoundTrip {
    connected: boolean;
    version: number;
    granted: number[];
    results: number[];
    messages: { topic: string; qos: number; payload: string; isUint8Array: boolean; userProperties: [string, string][] | null; contentType: string | null }[];
  }

  test('connect, subscribe and publish at QoS 0, 1 and 2 with 5.0 user properties: a round trip through the broker', async () => {
    const r = await page.evaluate(async (url) => {
      const out = await (window as unknown as { petrel: { roundTrip(u: string): Promise<RoundTrip & { client: { end(): Promise<void> } }> } }).petrel.roundTrip(url);
      await out.client.end();
      return { ...out, client: undefined };
    }, wsUrl);
    assert.equal(r.connected, true);
    assert.equal(r.version, 5);
    assert.deepEqual(r.granted, [2]);
    assert.deepEqual(r.results, [0, 0, 0], 'QoS 0 reports 0; PUBACK and PUBCOMP were Success [MQTT-4.3.2-1] [MQTT-4.3.3-1]');
    assert.deepEqual(r.messages.map((m) => [m.topic, m.qos, m.payload]), [0, 1, 2].map((q) => [`browser/rt/${q}`, q, `hello ${q} é漢`]));
    for (const m of r.messages) {
      assert.equal(m.isUint8Array, true);
      // User Properties are forwarded unaltered, in order [MQTT-3.3.2-17] [MQTT-3.3.2-18].
      assert.deepEqual(m.userProperties, [['from', 'browser'], ['qos', String(m.qos)]]);
      assert.equal(m.contentType, 'text/plain');
    }
    // The broker decoded what the browser encoded.
    const fromBrowser = published.filter((m) => m.clientId === 'browser-rt');
    assert.deepEqual(fromBrowser.map((m) => [m.topic, m.qos, m.payload.toString('utf8')]), [0, 1, 2].map((q) => [`browser/rt/${q}`, q, `hello ${q} é漢`]));
    assert.deepEqual(fromBrowser[2]?.properties?.userProperties, [['from', 'browser'], ['qos', '2']]);
    const conn = accepted.find((c) => c.clientId === 'browser-rt');
    assert.equal(conn?.connection.listener?.type, 'ws');
    assert.equal(conn?.connection.headers?.['sec-websocket-protocol'], 'mqtt');
    assert.match(String(conn?.connection.headers?.['user-agent']), /Chrome/);
  });

  test('messages the broker publishes at QoS 0, 1 and 2 reach the page with their user properties', async () => {
    const ready = await page.evaluate((url) => (window as unknown as { petrel: { fromBroker(u: string): Promise<string> } }).petrel.fromBroker(url), wsUrl);
    assert.equal(ready, 'subscribed');
    for (const qos of [0, 1, 2] as const) {
      const n = await broker.publish({ topic: `browser/in/${qos}`, payload: Buffer.from([0xf0, 0x9f, 0x90, 0xa6, 0x30 + qos]), qos,
        properties: { userProperties: [['k', 'v'], ['k', 'w']] } });
      assert.equal(n, 1);
    }
    const messages = await page.evaluate(() => (window as unknown as { petrel: { fromBrokerResult(): Promise<RoundTrip['messages']> } }).petrel.fromBrokerResult());
    assert.deepEqual(messages.map((m) => [m.topic, m.qos, m.payload]), [0, 1, 2].map((q) => [`browser/in/${q}`, q, `🐦${q}`]));
    for (const m of messages) assert.deepEqual(m.userProperties, [['k', 'v'], ['k', 'w']]);
  });

  for (const version of [5, 4] as const) {
    const how = version === 5 ? 'with DISCONNECT 0x98' : 'by closing the socket (3.1.1)';
    test(`the broker drops the connection ${how}: the client reconnects, subscribes again and round-trips`, async () => {
      const clientId = await page.evaluate(([url, v]) => (window as unknown as { petrel: { reconnectStart(u: string, v: number): Promise<string> } })
        .petrel.reconnectStart(url, v), [wsUrl, version] as const);
      const before = accepted.filter((c) => c.clientId === clientId).length;
      assert.equal(before, 1);
      assert.equal(broker.disconnect(clientId), true);
      const r = await page.evaluate((v) => (window as unknown as { petrel: { reconnectFinish(v: number): Promise<{
        events: string[]; offlineReason: string | null; reasonCode: number; message: { topic: string; payload: string; qos: number };
      }> } }).petrel.reconnectFinish(v), version);
      assert.equal(r.events[0], 'offline');
      assert.ok(r.events.indexOf('reconnect') > 0 && r.events.indexOf('online') > r.events.indexOf('reconnect'), r.events.join(' '));
      assert.equal(r.events.at(-1), 'close');
      if (version === 5) assert.match(r.offlineReason ?? '', /0x98/);
      assert.equal(r.reasonCode, 0);
      assert.deepEqual([r.message.topic, r.message.payload, r.message.qos], [`browser/rc/${version}`, 'after reconnect', 1]);
      assert.equal(accepted.filter((c) => c.clientId === clientId).length, 2, 'a second connection');
    });
  }

  test('a URL the browser cannot open: mqtt:// is refused with a DialError', async () => {
    const r = await page.evaluate((url) => (window as unknown as { petrel: { refused(u: string): Promise<string> } }).petrel.refused(url), 'mqtt://127.0.0.1:1883');
    assert.match(r, /^DialError: unsupported scheme mqtt: in a browser/);
  });
});
