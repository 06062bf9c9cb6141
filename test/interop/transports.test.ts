/**
 * Every listener type serving one broker: MQTT.js over TCP, TLS, WebSocket and secure WebSocket
 * at once; WebSocket framing (packets split across frames, several in one frame, text frames,
 * subprotocols, path); TLS with client certificates (requested, required, the username from CN
 * or SAN), minimum version and certificate reload; and the connection metadata each one hands
 * to events and hooks. Certificates are test fixtures made by test/helpers/certs.ts.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { connect as tlsConnect, type PeerCertificate as TlsPeerCertificate } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { WebSocket } from 'ws';
import type { AuthenticateContext } from '../../src/broker/hooks.js';
import { type Broker, createBroker } from '../../src/petrel.js';
import { Decoder, encode, type Packet, PacketType } from '../../src/protocol/index.js';
import type { ConnectionMeta } from '../../src/transport/types.js';
import type { Listener } from '../../src/transport/listener.js';
import { type CertFiles, makeCerts } from '../helpers/certs.js';
import { connectClient, endAll, Inbox, WAIT_MS, withTimeout } from '../helpers/mqttjs.js';

let certs: CertFiles;
before(() => {
  certs = makeCerts();
});
after(() => certs.cleanup());

const HOST = '127.0.0.1';

/** A broker with all four listener types on free ports. */
async function fourListeners(options: Parameters<typeof createBroker>[0] = {}): Promise<{ broker: Broker; urls: Record<string, string>; listeners: Listener[] }> {
  const broker = createBroker(options);
  const tcp = await broker.listen({ type: 'tcp', port: 0, host: HOST });
  const tls = await broker.listen({ type: 'tls', port: 0, host: HOST, cert: certs.cert, key: certs.key });
  const ws = await broker.listen({ type: 'ws', port: 0, host: HOST });
  const wss = await broker.listen({ type: 'wss', port: 0, host: HOST, cert: certs.cert, key: certs.key, name: 'browsers' });
  return {
    broker,
    listeners: [tcp, tls, ws, wss],
    urls: {
      tcp: `mqtt://${HOST}:${tcp.port}`, tls: `mqtts://${HOST}:${tls.port}`,
      ws: `ws://${HOST}:${ws.port}/mqtt`, wss: `wss://${HOST}:${wss.port}/mqtt`,
    },
  };
}

describe('MQTT.js over TCP, TLS, WebSocket and secure WebSocket, all served by one broker', () => {
  test('a subscriber on each transport gets a message published on each other transport; metadata names the listener', async (t) => {
    const { broker, urls } = await fourListeners();
    const clients: MqttClient[] = [];
    t.after(async () => {
      await endAll(clients);
      await broker.close();
    });
    const metas = new Map<string, ConnectionMeta>();
    broker.on('clientConnected', (c) => metas.set(c.clientId, c.connection));
    const types = ['tcp', 'tls', 'ws', 'wss'] as const;
    const inboxes: Inbox[] = [];
    for (const type of types) {
      for (const v of [4, 5] as const) {
        const c = await connectClient(urls[type] as string, v, { clientId: `${type}-${v}`, ca: certs.ca });
        clients.push(c);
        await c.subscribeAsync('t/#', { qos: 1 });
        inboxes.push(new Inbox(c));
      }
    }
    for (const type of types) await clients[types.indexOf(type) * 2]?.publishAsync(`t/${type}`, `from ${type}`, { qos: 1 });
    for (const inbox of inboxes) {
      await inbox.count(4);
      assert.deepEqual(inbox.messages.map((m) => m.payload).sort(), ['from tcp', 'from tls', 'from ws', 'from wss']);
    }
    for (const type of types) {
      const meta = metas.get(`${type}-5`);
      assert.ok(meta !== undefined);
      assert.equal(meta.listener?.type, type);
      assert.equal(meta.remoteAddress, HOST);
      assert.equal(typeof meta.remotePort, 'number');
      assert.equal(meta.tls !== undefined, type === 'tls' || type === 'wss', `${type}: TLS info only on TLS`);
      assert.equal(meta.headers !== undefined, type === 'ws' || type === 'wss', `${type}: headers only on WebSocket`);
    }
    assert.equal(metas.get('wss-4')?.listener?.name, 'browsers');
    assert.equal(metas.get('tcp-4')?.listener?.name, `tcp:${metas.get('tcp-4')?.listener?.port}`);
    assert.match(metas.get('tls-5')?.tls?.protocol ?? '', /^TLSv1\.[23]$/);
    assert.equal(typeof metas.get('ws-5')?.headers?.['sec-websocket-key'], 'string');
  });

  test('listeners() lists them; close() releases every port', async () => {
    const { broker, listeners } = await fourListeners();
    assert.deepEqual(broker.listeners.map((l) => l.type), ['tcp', 'tls', 'ws', 'wss']);
    await broker.close();
    const reused = createBroker();
    try {
      for (const l of listeners) {
        const again = await reused.listen({ type: l.type, port: l.port, host: HOST, cert: certs.cert, key: certs.key });
        assert.equal(again.port, l.port);
      }
    } finally {
      await reused.close();
    }
  });

  test('a TLS or wss listener without a certificate is refused at listen()', async () => {
    const broker = createBroker();
    try {
      await assert.rejects(broker.listen({ type: 'tls', port: 0, host: HOST }), /certificate and a key/);
      await assert.rejects(broker.listen({ type: 'wss', port: 0, host: HOST }), /certificate and a key/);
    } finally {
      await broker.close();
    }
  });
});

// ---- WebSocket framing --------------------------------------------------------------------------

/** A raw WebSocket client that speaks MQTT through Petrel's codec, one frame per `send` call. */
class RawWs {
  readonly packets: Packet[] = [];
  readonly #decoder = new Decoder({ protocolVersion: 5 });
  readonly #arrivals = new Set<() => void>();
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.once('close', (code: number) => resolve(code)));
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer) => {
      for (const p of this.#decoder.push(data)) this.packets.push(p);
      for (const w of [...this.#arrivals]) w();
    });
  }

  static async open(url: string, protocols: string[] = ['mqtt']): Promise<RawWs> {
    const ws = new WebSocket(url, protocols);
    const client = new RawWs(ws);
    await withTimeout(once(ws, 'open'), WAIT_MS, 'WebSocket open');
    return client;
  }

  until(n: number): Promise<void> {
    if (this.packets.length >= n) return Promise.resolve();
    return withTimeout(new Promise<void>((resolve) => {
      const w = (): void => {
        if (this.packets.length < n) return;
        this.#arrivals.delete(w);
        resolve();
      };
      this.#arrivals.add(w);
    }), WAIT_MS, `${n} packets`);
  }
}

const CONNECT = encode({
  type: PacketType.Connect, protocolName: 'MQTT', protocolVersion: 5, clientId: 'raw-ws', clean: true, keepalive: 0, properties: {},
}, 5);

describe('MQTT over WebSocket framing [MQTT-6.0.0-2]', () => {
  let broker: Broker;
  let url: string;
  before(async () => {
    broker = createBroker();
    const l = await broker.listen({ type: 'ws', port: 0, host: HOST });
    url = `ws://${HOST}:${l.port}/mqtt`;
  });
  after(() => broker.close());

  test('a CONNECT split across three frames is one packet; SUBSCRIBE and PUBLISH in one frame are two', async () => {
    const c = await RawWs.open(url);
    try {
      c.ws.send(CONNECT.subarray(0, 3));
      c.ws.send(CONNECT.subarray(3, 9));
      c.ws.send(CONNECT.subarray(9));
      await c.until(1);
      assert.equal(c.packets[0]?.type, PacketType.Connack);
      const sub = encode({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'f/#', qos: 0 }], properties: {} }, 5);
      const pub = encode({ type: PacketType.Publish, topic: 'f/x', payload: Buffer.from('both'), qos: 0, retain: false, dup: false, properties: {} }, 5);
      c.ws.send(Buffer.concat([sub, pub]));
      await c.until(3);
      assert.equal(c.packets[1]?.type, PacketType.Suback);
      const got = c.packets[2];
      assert.ok(got?.type === PacketType.Publish);
      assert.equal(got.payload.toString(), 'both');
    } finally {
      c.ws.terminate();
    }
  });

  test('[MQTT-6.0.0-1] a text frame closes the connection', async () => {
    const c = await RawWs.open(url);
    c.ws.send(CONNECT);
    await c.until(1);
    c.ws.send('not binary');
    const code = await withTimeout(c.closed, WAIT_MS, 'close after a text frame');
    assert.equal(code, 1003);
  });

  test('[MQTT-6.0.0-3] the server selects the mqtt subprotocol (or mqttv3.1 when that is what is offered)', async () => {
    for (const [offered, chosen] of [[['mqtt'], 'mqtt'], [['mqttv3.1'], 'mqttv3.1'], [['other', 'mqtt'], 'mqtt']] as const) {
      const c = await RawWs.open(url, [...offered]);
      assert.equal(c.ws.protocol, chosen);
      c.ws.terminate();
    }
  });

  test('another path gets 404; a plain HTTP request gets 426 Upgrade Required', async () => {
    const port = new URL(url).port;
    const ws = new WebSocket(`ws://${HOST}:${port}/elsewhere`, ['mqtt']);
    ws.on('error', () => undefined);
    const [, res] = await withTimeout(once(ws, 'unexpected-response'), WAIT_MS, 'a refused upgrade') as [unknown, { statusCode: number }];
    assert.equal(res.statusCode, 404);
    ws.terminate();
    const plain = await fetch(`http://${HOST}:${port}/mqtt`);
    assert.equal(plain.status, 426);
  });

  test('the upgrade request headers reach the authenticate hook', async (t) => {
    const seen: AuthenticateContext[] = [];
    const b = createBroker({ authenticate: (ctx) => (seen.push(ctx), true) });
    t.after(() => b.close());
    const l = await b.listen({ type: 'ws', port: 0, host: HOST, path: '/custom' });
    const ws = new WebSocket(`ws://${HOST}:${l.port}/custom`, ['mqtt'], { headers: { 'x-device': 'sensor-7' } });
    const c = new RawWs(ws);
    await withTimeout(once(ws, 'open'), WAIT_MS, 'open');
    ws.send(CONNECT);
    await c.until(1);
    assert.equal(seen[0]?.connection.headers?.['x-device'], 'sensor-7');
    assert.equal(seen[0]?.connection.listener?.type, 'ws');
    ws.terminate();
  });
});

// ---- TLS ----------------------------------------------------------------------------------------

/**
 * Opens a TLS connection and sends CONNECT; resolves with what came back before the socket closed:
 * 'refused' when the server ended it without a byte of MQTT (a handshake alert, or the close that
 * follows a client certificate that did not verify), 'connack' when it answered.
 */
async function tlsAttempt(port: number, options: { cert?: Buffer; key?: Buffer; maxVersion?: 'TLSv1.2' }): Promise<'refused' | 'connack'> {
  const socket = tlsConnect({ host: HOST, port, ca: certs.ca, servername: 'localhost', ...options });
  let answered = false;
  socket.on('error', () => undefined);
  socket.on('secureConnect', () => socket.write(CONNECT));
  socket.on('data', () => {
    answered = true;
    socket.destroy();
  });
  // Not events.once: it would reject on the handshake alert's 'error' before the close.
  await withTimeout(new Promise((resolve) => socket.once('close', resolve)), WAIT_MS, 'the TLS connection to end');
  return answered ? 'connack' : 'refused';
}

describe('TLS listeners: client certificates, minimum version, reload', () => {
  test('requireCert: a client certificate from the CA connects; no certificate or a stranger\'s is refused', async (t) => {
    const broker = createBroker();
    t.after(() => broker.close());
    const l = await broker.listen({ type: 'tls', port: 0, host: HOST, cert: certs.cert, key: certs.key, ca: certs.ca, requireCert: true });
    const url = `mqtts://${HOST}:${l.port}`;
    let connects = 0;
    broker.on('clientConnected', () => connects++);
    const alice = certs.client('alice');
    const good = await connectClient(url, 5, { clientId: 'alice', ca: certs.ca, cert: alice.cert, key: alice.key });
    t.after(() => endAll([good]));
    const seen = broker.clients().find((c) => c.clientId === 'alice');
    assert.equal(seen?.connection.tls?.authorized, true);
    assert.equal(seen?.connection.tls?.peerCertificate?.subjectCN, 'alice');
    assert.equal(await tlsAttempt(l.port, {}), 'refused', 'no client certificate');
    const mallory = certs.stranger('mallory');
    assert.equal(await tlsAttempt(l.port, { cert: mallory.cert, key: mallory.key }), 'refused', 'a certificate from another CA');
    assert.equal(await tlsAttempt(l.port, { cert: alice.cert, key: alice.key }), 'connack', 'the same path with a good certificate');
    assert.equal(connects, 2, 'only the two clients with a good certificate reached CONNECT');
  });

  test('requestCert: clients without a certificate are accepted and marked unauthorized', async (t) => {
    const contexts: AuthenticateContext[] = [];
    const broker = createBroker({ authenticate: (ctx) => (contexts.push(ctx), true) });
    t.after(() => broker.close());
    const l = await broker.listen({ type: 'tls', port: 0, host: HOST, cert: certs.cert, key: certs.key, ca: certs.ca, requestCert: true });
    const url = `mqtts://${HOST}:${l.port}`;
    const anon = await connectClient(url, 4, { clientId: 'anon', ca: certs.ca });
    const bob = certs.client('bob');
    const withCert = await connectClient(url, 4, { clientId: 'bob', ca: certs.ca, cert: bob.cert, key: bob.key });
    t.after(() => endAll([anon, withCert]));
    const byId = new Map(contexts.map((c) => [c.clientId, c.connection.tls]));
    assert.equal(byId.get('anon')?.authorized, false);
    assert.equal(byId.get('anon')?.peerCertificate, undefined);
    assert.equal(byId.get('bob')?.authorized, true);
    assert.equal(byId.get('bob')?.peerCertificate?.subjectCN, 'bob');
  });

  test('certUsername cn / san: the verified certificate names the user, whatever CONNECT says', async (t) => {
    const usernames = new Map<string, string | undefined>();
    const broker = createBroker({ authenticate: (ctx) => (usernames.set(ctx.clientId, ctx.username), true) });
    t.after(() => broker.close());
    const base = { port: 0, host: HOST, cert: certs.cert, key: certs.key, ca: certs.ca, requireCert: true } as const;
    const byCn = await broker.listen({ ...base, type: 'tls', certUsername: 'cn' });
    const bySan = await broker.listen({ ...base, type: 'tls', certUsername: 'san' });
    const carol = certs.client('carol', 'email:carol@example.com');
    const opts = { ca: certs.ca, cert: carol.cert, key: carol.key, username: 'claimed', password: 'x' };
    const a = await connectClient(`mqtts://${HOST}:${byCn.port}`, 5, { ...opts, clientId: 'by-cn' });
    const b = await connectClient(`mqtts://${HOST}:${bySan.port}`, 4, { ...opts, clientId: 'by-san' });
    t.after(() => endAll([a, b]));
    assert.equal(usernames.get('by-cn'), 'carol');
    assert.equal(usernames.get('by-san'), 'carol@example.com');
    assert.equal(broker.clients().find((c) => c.clientId === 'by-cn')?.username, 'carol');
  });

  test('minVersion TLSv1.3 refuses a TLS 1.2 client', async (t) => {
    const broker = createBroker();
    t.after(() => broker.close());
    const l = await broker.listen({ type: 'tls', port: 0, host: HOST, cert: certs.cert, key: certs.key, minVersion: 'TLSv1.3' });
    const url = `mqtts://${HOST}:${l.port}`;
    assert.equal(await tlsAttempt(l.port, { maxVersion: 'TLSv1.2' }), 'refused');
    assert.equal(await tlsAttempt(l.port, {}), 'connack');
    const ok = await connectClient(url, 5, { clientId: 'new', ca: certs.ca });
    await endAll([ok]);
  });

  test('setCredentials: new connections get the new certificate, open ones keep working', async (t) => {
    const broker = createBroker();
    t.after(() => broker.close());
    const l = await broker.listen({ type: 'tls', port: 0, host: HOST, cert: certs.cert, key: certs.key });
    const url = `mqtts://${HOST}:${l.port}`;
    const early = await connectClient(url, 5, { clientId: 'early', ca: certs.ca });
    t.after(() => endAll([early]));
    const peerCn = async (): Promise<string | undefined> => {
      const socket = tlsConnect({ host: HOST, port: l.port, ca: certs.ca, servername: 'localhost' });
      await withTimeout(once(socket, 'secureConnect'), WAIT_MS, 'TLS handshake');
      const cert: TlsPeerCertificate = socket.getPeerCertificate();
      socket.destroy();
      const cn = cert.subject.CN;
      return Array.isArray(cn) ? cn[0] : cn;
    };
    assert.equal(await peerCn(), 'localhost');
    const renewed = certs.server('renewed.localhost');
    l.setCredentials({ cert: renewed.cert, key: renewed.key });
    assert.equal(await peerCn(), 'renewed.localhost');
    const inbox = new Inbox(early);
    await early.subscribeAsync('still', { qos: 1 });
    await early.publishAsync('still', 'alive', { qos: 1 });
    assert.equal((await inbox.next('still')).payload, 'alive');
    assert.throws(() => l.setCredentials({ cert: Buffer.from('garbage'), key: renewed.key }));
    assert.equal(await peerCn(), 'renewed.localhost', 'a bad certificate leaves the listener as it was');
  });

  test('a TCP listener has no certificate to replace', async (t) => {
    const broker = createBroker();
    t.after(() => broker.close());
    const l = await broker.listen({ type: 'tcp', port: 0, host: HOST });
    assert.throws(() => l.setCredentials({ cert: certs.cert, key: certs.key }), /no certificate/);
  });
});
