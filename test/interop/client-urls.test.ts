/**
 * Petrel's client through its URL dialers: against Petrel over TCP, TLS, WebSocket and secure
 * WebSocket listeners, across a broker restart on the same port (reconnect, resubscribe, offline
 * queue), and against Aedes (3.1.1) in-process on a free port.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Aedes } from 'aedes';
import { connect, connectUrl, DialError, type MqttClient } from '../../src/client/index.js';
import { createBroker } from '../../src/petrel.js';
import { type CertFiles, makeCerts } from '../helpers/certs.js';
import { within } from '../helpers/duplex-client.js';

const HOST = '127.0.0.1';

async function roundTrip(client: MqttClient, topic: string): Promise<void> {
  const inbox = client.messages(topic);
  await client.subscribe(topic, { qos: 1 });
  await client.publish(topic, 'ping', { qos: 1 });
  const r = await within(inbox.next(), 5000, `message on ${topic}`);
  assert.equal(r.value?.payload.toString(), 'ping');
}

describe('Petrel client dialing URLs against Petrel', () => {
  let certs: CertFiles;
  before(() => {
    certs = makeCerts();
  });
  after(() => certs.cleanup());

  test('mqtt://, mqtts:// (CA checked), ws:// and wss:// each carry a QoS 1 round trip', async (t) => {
    const broker = createBroker();
    t.after(() => broker.close());
    const tcp = await broker.listen({ type: 'tcp', port: 0, host: HOST });
    const tls = await broker.listen({ type: 'tls', port: 0, host: HOST, cert: certs.cert, key: certs.key });
    const ws = await broker.listen({ type: 'ws', port: 0, host: HOST });
    const wss = await broker.listen({ type: 'wss', port: 0, host: HOST, cert: certs.cert, key: certs.key });
    const urls = [`mqtt://${HOST}:${tcp.port}`, `mqtts://localhost:${tls.port}`, `ws://${HOST}:${ws.port}/mqtt`, `wss://localhost:${wss.port}/mqtt`];
    for (const url of urls) {
      const client = await connectUrl(url, { ca: certs.ca, keepalive: 10 });
      try {
        await roundTrip(client, `urls/${url.slice(0, url.indexOf(':'))}`);
      } finally {
        await client.end();
      }
    }
  });

  test('mqtts:// with a CA that did not sign the server certificate is refused', async (t) => {
    const broker = createBroker();
    t.after(() => broker.close());
    const tls = await broker.listen({ type: 'tls', port: 0, host: HOST, cert: certs.cert, key: certs.key });
    await assert.rejects(connect(`mqtts://localhost:${tls.port}`, { ca: certs.stranger('x').cert, reconnect: false }));
    await assert.rejects(connect('gopher://localhost:1'), DialError);
  });

  test('a broker restart on the same port: the client reconnects, resubscribes and delivers its offline queue', async () => {
    const first = createBroker();
    const listener = await first.listen({ type: 'tcp', port: 0, host: HOST });
    const port = listener.port;
    const client = await connectUrl(`mqtt://${HOST}:${port}`, {
      clientId: 'restart', keepalive: 10, reconnect: { initialDelay: 20, maxDelay: 200, factor: 2, jitter: 0 },
    });
    const inbox = client.messages('restart/#');
    await client.subscribe('restart/#', { qos: 1 });
    const offline = once(client, 'offline');
    await first.close();
    await within(offline, 5000, 'offline');
    const queued = client.publish('restart/queued', 'kept while offline', { qos: 1 });
    assert.equal(client.queued, 1);
    const second = createBroker();
    try {
      const online = once(client, 'online');
      await second.listen({ type: 'tcp', port, host: HOST });
      const [connack] = await within(online, 10_000, 'online');
      assert.equal((connack as { sessionPresent: boolean }).sessionPresent, false);
      await within(queued, 5000, 'queued publish');
      const r = await within(inbox.next(), 5000, 'the queued message, through the renewed subscription');
      assert.equal(r.value?.topic, 'restart/queued');
      assert.deepEqual(second.subscriptions('restart')?.map((s) => s.topicFilter), ['restart/#']);
    } finally {
      await client.end();
      await second.close();
    }
  });
});

describe('Petrel client against Aedes (3.1.1)', () => {
  test('mqtt:// QoS 1 and 2 round trips, a persistent session comes back present', async () => {
    const aedes = await Aedes.createBroker();
    const server = createServer((socket) => aedes.handle(socket));
    server.listen(0, HOST);
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    try {
      const url = `mqtt://${HOST}:${port}`;
      const client = await connect(url, { protocolVersion: 4, clientId: 'petrel-aedes', clean: false, keepalive: 10 });
      const inbox = client.messages('aedes/#');
      await client.subscribe('aedes/#', { qos: 2 });
      await client.publish('aedes/1', 'one', { qos: 1 });
      await client.publish('aedes/2', 'two', { qos: 2 });
      const got = [];
      for (let i = 0; i < 2; i++) got.push((await within(inbox.next(), 5000, 'message')).value?.payload.toString());
      assert.deepEqual(got.sort(), ['one', 'two']);
      await client.end();
      const again = await connect(url, { protocolVersion: 4, clientId: 'petrel-aedes', clean: false, keepalive: 10 });
      assert.equal(again.sessionPresent, true);
      await again.end();
    } finally {
      server.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    }
  });
});
