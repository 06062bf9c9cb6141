/**
 * The web dashboard in headless Chromium against the standalone server as a child process
 * (`dist/bin/petrel.js`, which serves dist/dashboard/ at /dashboard/): log in with the printed
 * admin key; an MQTT.js client's connection moves the count and the connections chart and is
 * listed and inspected; the publish form (QoS 1, retain, MQTT 5 properties) reaches a subscribed
 * MQTT.js client; retained messages are listed and deleted; the rate chart goes from zero to
 * non-zero in both series while messages flow; the topic tree, connected over the WebSocket
 * listener with petrel/client, shows live messages; a kicked client's MQTT.js 'close' fires.
 * Every page is captured into docs/screenshots/ as the test goes. Chromium is required: without
 * /usr/bin/chromium this test fails.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { IPublishPacket, MqttClient } from 'mqtt';
import type { Browser, Page } from 'playwright-core';
import { connectClient, endAll, waitFor, withTimeout } from '../helpers/mqttjs.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'dist/bin/petrel.js');
const SHOTS = join(ROOT, 'docs/screenshots');
/** Bounds every wait: the server's start, a page element, an MQTT event. */
const WAIT_MS = 15_000;

interface Received {
  topic: string;
  payload: string;
  packet: IPublishPacket;
}

describe('the web dashboard in headless Chromium', () => {
  let dir = '';
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let key = '';
  let mqttUrl = '';
  let base = '';
  let browser: Browser | undefined;
  let page: Page;
  const clients: MqttClient[] = [];
  const pageErrors: string[] = [];
  let device: MqttClient;
  const inbox: Received[] = [];

  const el = (selector: string, hasText?: string | RegExp): Promise<void> =>
    page.locator(selector, hasText === undefined ? {} : { hasText }).first().waitFor({ timeout: WAIT_MS });
  const go = async (path: string): Promise<void> => {
    await page.evaluate(`location.hash = ${JSON.stringify(`#/${path}`)}`);
    await el(`main[data-page="${path}"]`);
  };
  const shot = async (name: string): Promise<void> => {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  /** Resolves with the first message that `check` accepts (counting those already received). */
  const received = (check: (m: Received) => boolean, what: string): Promise<Received> => {
    const found = inbox.find(check);
    if (found !== undefined) return Promise.resolve(found);
    return withTimeout(new Promise<Received>((resolve) => {
      const on = (topic: string, payload: Buffer, packet: IPublishPacket): void => {
        const m = { topic, payload: payload.toString(), packet };
        if (!check(m)) return;
        device.off('message', on);
        resolve(m);
      };
      device.on('message', on);
    }), WAIT_MS, what);
  };

  before(async () => {
    // CI installs Chromium; a missing browser must not pass silently.
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is not installed: the dashboard test cannot run`);
    assert.ok(existsSync(join(ROOT, 'dist/dashboard/index.html')), 'dist/dashboard/ is not built: run npm run build');
    mkdirSync(SHOTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'petrel-dashboard-'));
    // Statistics every 200 ms, so the charts get points quickly.
    const config = join(dir, 'petrel.json');
    writeFileSync(config, JSON.stringify({ http: { sseInterval: 200 } }));
    const proc = spawn(process.execPath, [BIN, '--config', config, '--port', '0', '--ws-port', '0', '--http-port', '0', '--host', '127.0.0.1', '--data-dir', dir],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    exited = new Promise<void>((resolve) => proc.once('close', () => resolve()));
    let out = '';
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
    const ports = await withTimeout(new Promise<Record<string, number>>((resolve, reject) => {
      const found: Record<string, number> = {};
      proc.stdout.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        for (const line of out.split('\n').slice(0, -1)) {
          const r = JSON.parse(line) as { msg?: string; type?: string; port?: number };
          if (r.msg === 'listening' && typeof r.type === 'string' && typeof r.port === 'number') found[r.type] = r.port;
        }
        if (found.tcp !== undefined && found.ws !== undefined && found.http !== undefined) resolve(found);
      });
      void exited.then(() => reject(new Error(`petrel exited before listening: ${err}`)));
    }), WAIT_MS, 'the listening records');
    const printed = /HTTP API admin key \(shown only this once\): (petrel_\S+)/.exec(err);
    assert.ok(printed !== null, `no admin key on stderr: ${err}`);
    key = printed[1] as string;
    mqttUrl = `mqtt://127.0.0.1:${ports.tcp}`;
    base = `http://127.0.0.1:${ports.http}`;

    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await endAll(clients);
    await browser?.close();
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await withTimeout(exited, 10_000, 'petrel to stop').catch(() => child?.kill('SIGKILL'));
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  test('the files are served without credentials, the data is not; a wrong key is refused and the admin key logs in', async () => {
    const index = await fetch(`${base}/dashboard/`);
    assert.equal(index.status, 200);
    const html = await index.text();
    assert.doesNotMatch(html, /https?:\/\//, 'nothing is loaded from elsewhere');
    assert.equal((await fetch(`${base}/api/v1/stats`)).status, 401);

    await page.goto(`${base}/`);
    assert.match(page.url(), /\/dashboard\/$/, '/ redirects to the dashboard');
    await el('input[name=apiKey]');
    await page.fill('input[name=apiKey]', 'petrel_not-the-key');
    await page.click('button[type=submit]');
    await el('[role=alert]', /wrong credentials/);
    await shot('login');
    await page.fill('input[name=apiKey]', key);
    await page.click('button[type=submit]');
    await el('[data-testid=stat-connections]', /^0$/);
    assert.equal(await page.evaluate('sessionStorage.getItem("petrel.token")'), key, 'the token is kept in sessionStorage');
  });

  test('an MQTT.js client connects: the connection count and chart move, the clients page lists it, inspect shows its subscription', async () => {
    device = await connectClient(mqttUrl, 5, { clientId: 'dash-device' });
    clients.push(device);
    device.on('message', (topic, payload, packet) => inbox.push({ topic, payload: payload.toString(), packet }));
    await device.subscribeAsync('dash/#', { qos: 1 });
    await el('[data-testid=stat-connections]', /^1$/);
    await el('[data-testid=chart-connections][data-last="[1]"]');

    await go('clients');
    await el('tr[data-client=dash-device]', 'MQTT 5');
    await page.click('tr[data-client=dash-device] button:text("Inspect")');
    await el('[data-testid=client-inspect] td', 'dash/#');
    await shot('clients');
  });

  test('the publish form (QoS 1, MQTT 5 properties) reaches the subscribed MQTT.js client', async () => {
    await go('publish');
    await page.fill('input[name=topic]', 'dash/form');
    await page.fill('textarea[name=payload]', 'from the form');
    await page.selectOption('select[name=qos]', '1');
    await page.fill('input[name=contentType]', 'text/plain');
    await page.fill('input[name=responseTopic]', 'dash/replies');
    await page.fill('textarea[name=userProperties]', 'origin=dashboard\nshift=night');
    await shot('publish');
    const arrived = received((m) => m.topic === 'dash/form', 'the form\'s message');
    await page.click('button[type=submit]');
    await el('[data-testid=publish-result]', '1 receiver');
    const m = await arrived;
    assert.equal(m.payload, 'from the form');
    assert.equal(m.packet.qos, 1);
    assert.equal(m.packet.properties?.contentType, 'text/plain');
    assert.equal(m.packet.properties?.responseTopic, 'dash/replies');
    assert.deepEqual({ ...m.packet.properties?.userProperties }, { origin: 'dashboard', shift: 'night' });
  });

  test('retained messages (one from the form, one from MQTT.js) are listed by filter and one is deleted', async () => {
    await page.fill('input[name=topic]', 'dash/status');
    await page.fill('textarea[name=payload]', 'online');
    await page.fill('textarea[name=userProperties]', '');
    await page.check('input[name=retain]');
    await page.click('button[type=submit]');
    await el('[data-testid=publish-result]', 'dash/status');
    await device.publishAsync('dash/retained/2', 'kept', { qos: 1, retain: true });

    await go('retained');
    await page.fill('input[name=filter]', 'dash/#');
    await page.click('button:text("List")');
    await el('tr[data-topic="dash/status"]', 'online');
    await el('tr[data-topic="dash/retained/2"]', 'kept');
    await shot('retained');
    await page.click('tr[data-topic="dash/status"] button:text("Delete")');
    await page.locator('tr[data-topic="dash/status"]').waitFor({ state: 'detached' });
    const left = await (await fetch(`${base}/api/v1/retained?filter=dash/%23`, { headers: { authorization: `Bearer ${key}` } })).json() as
      { data: { list: { topic: string }[] } };
    assert.deepEqual(left.data.list.map((r) => r.topic), ['dash/retained/2']);
  });

  test('the rate chart moves from zero while messages flow (messages in and out per second)', async () => {
    await go('overview');
    // A fresh page: its series start empty; two points of a quiet broker first.
    await el('[data-testid=chart-rates][data-max="[0,0]"]');
    await page.waitForFunction('Number(document.querySelector("[data-testid=chart-rates]").dataset.points) >= 2');
    const publisher = await connectClient(mqttUrl, 5, { clientId: 'dash-load' });
    clients.push(publisher);
    // Publishes until the chart shows traffic in both series (bounded in count; the wait below in time).
    let sent = 0;
    const pump = setInterval(() => {
      if (sent++ < 5000) publisher.publish('dash/load', 'x', { qos: 0 });
    }, 5);
    try {
      await page.waitForFunction(`(() => {
        const c = document.querySelector('[data-testid=chart-rates]');
        const [i, o] = JSON.parse(c.dataset.max);
        return i > 0 && o > 0;
      })()`, undefined, { timeout: WAIT_MS });
    } finally {
      clearInterval(pump);
    }
    assert.ok(sent > 0);
    assert.equal(await page.locator('[data-testid=chart-rates] canvas').count(), 1, 'uPlot drew it');
    const counted = Number(await page.locator('[data-testid=stat-received]').textContent());
    assert.ok(counted > 0, `messages in: ${counted}`);
    await shot('overview');
  });

  test('the topic tree connects over WebSocket with petrel/client and shows live messages', async () => {
    await go('topics');
    await el('[data-testid=mqtt-status]', 'subscribed to #');
    // The retained message arrives on subscribing; a new one while the page watches.
    await el('li[data-topic="dash/retained/2"]', 'kept');
    await device.publishAsync('dash/tree/leaf', 'leaf-payload', { qos: 1 });
    await el('li[data-topic="dash/tree/leaf"]', 'leaf-payload');
    await page.click('li[data-topic="dash/tree/leaf"] a');
    await el('[data-testid=topic-detail]', 'QoS 0');
    const list = await (await fetch(`${base}/api/v1/clients`, { headers: { authorization: `Bearer ${key}` } })).json() as
      { data: { list: { clientId: string; transport: string }[] } };
    const browserClient = list.data.list.find((c) => c.clientId.startsWith('petrel-dashboard-'));
    assert.equal(browserClient?.transport, 'ws', 'the page\'s MQTT client came over the WebSocket listener');
    await shot('topics');
  });

  test('sessions, subscriptions, listeners and configuration pages show the broker\'s state', async () => {
    await go('sessions');
    await el('tr[data-session=dash-device]', 'yes');
    await shot('sessions');
    await go('subscriptions');
    await el('[data-testid=subscriptions] tr', 'dash/#');
    await page.fill('input[name=clientId]', 'dash-device');
    await el('[data-testid=subscriptions] tr', 'dash-device');
    await shot('subscriptions');
    await go('listeners');
    await el('[data-testid=listeners] tr', '/mqtt');
    await el('[data-testid=config]', 'sseInterval');
    await shot('listeners');
  });

  test('kicking a client from the clients page closes its MQTT.js connection', async () => {
    const victim = await connectClient(mqttUrl, 5, { clientId: 'dash-kick' });
    clients.push(victim);
    const closed = waitFor(victim, 'close', WAIT_MS);
    await go('clients');
    await page.click('button:text("Refresh")');
    await el('tr[data-client=dash-kick]');
    await page.click('tr[data-client=dash-kick] button:text("Kick")');
    await closed;
    await page.locator('tr[data-client=dash-kick]').waitFor({ state: 'detached' });
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });
});
