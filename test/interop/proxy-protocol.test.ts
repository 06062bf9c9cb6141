/**
 * Listeners with `proxyProtocol`: a PROXY v1 or v2 header ahead of the client's bytes names the
 * client, whose address then reaches events, hook contexts and the metadata; a connection
 * without a valid header (none at all, garbage, or too slow) is closed before the broker sees it.
 * Over TCP, TLS (the header comes before the handshake) and WebSocket (before the upgrade).
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import type { AuthenticateContext } from '../../src/broker/hooks.js';
import { type Broker, createBroker } from '../../src/petrel.js';
import { Decoder, encode, PacketType } from '../../src/protocol/index.js';
import { type CertFiles, makeCerts } from '../helpers/certs.js';
import { WAIT_MS, withTimeout } from '../helpers/mqttjs.js';

const HOST = '127.0.0.1';
const CONNECT = encode({
  type: PacketType.Connect, protocolName: 'MQTT', protocolVersion: 4, clientId: 'behind-proxy', clean: true, keepalive: 0,
}, 4);

const v1 = (src: string, sport: number): Buffer => Buffer.from(`PROXY TCP4 ${src} 10.0.0.1 ${sport} 1883\r\n`);
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 PROXY header for TCP over IPv6 (command PROXY), or LOCAL when `local`. */
function v2(src: string, sport: number, local = false): Buffer {
  if (local) return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  const addr = (ip: string): Buffer => {
    const [head = '', tail = ''] = ip.split('::');
    const parts = (s: string): number[] => (s === '' ? [] : s.split(':').map((h) => parseInt(h, 16)));
    const h = parts(head);
    const t = parts(tail);
    const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
    const b = Buffer.alloc(16);
    all.forEach((n, i) => b.writeUInt16BE(n, i * 2));
    return b;
  };
  const block = Buffer.alloc(36);
  addr(src).copy(block, 0);
  addr('2001:db8::1').copy(block, 16);
  block.writeUInt16BE(sport, 32);
  block.writeUInt16BE(8883, 34);
  const head = Buffer.from([0x21, 0x21, 0x00, block.length]);
  return Buffer.concat([V2_SIGNATURE, head, block]);
}

/** Sends `bytes` on a new TCP connection; resolves with the decoded reply types and whether it was closed. */
async function exchange(port: number, bytes: Buffer[]): Promise<{ types: number[]; closed: boolean }> {
  const socket: Socket = netConnect({ port, host: HOST });
  const decoder = new Decoder({ protocolVersion: 4 });
  const types: number[] = [];
  socket.on('error', () => undefined);
  let closed = false;
  const done = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      for (const p of decoder.push(chunk)) types.push(p.type);
      if (types.includes(PacketType.Connack)) resolve();
    });
    socket.once('close', () => {
      closed = true;
      resolve();
    });
  });
  socket.once('connect', () => {
    for (const b of bytes) socket.write(b);
  });
  await withTimeout(done, WAIT_MS, 'CONNACK or close');
  socket.destroy();
  return { types, closed };
}

describe('PROXY protocol on a TCP listener', () => {
  let broker: Broker;
  let port: number;
  const contexts: AuthenticateContext[] = [];
  const remotes: (string | undefined)[] = [];
  before(async () => {
    broker = createBroker({ authenticate: (ctx) => (contexts.push(ctx), true) });
    broker.on('clientConnected', (c) => remotes.push(c.remoteAddress));
    port = (await broker.listen({ type: 'tcp', port: 0, host: HOST, proxyProtocol: true, proxyTimeout: 200 })).port;
  });
  after(() => broker.close());

  test('v1: the header\'s source address and port are the client\'s, the proxy is kept as proxyAddress', async () => {
    contexts.length = 0;
    // The header and CONNECT in one write: the bytes after the header are not lost.
    const r = await exchange(port, [Buffer.concat([v1('198.51.100.7', 40001), CONNECT])]);
    assert.deepEqual(r.types, [PacketType.Connack]);
    const meta = contexts[0]?.connection;
    assert.equal(contexts[0]?.remoteAddress, '198.51.100.7');
    assert.equal(meta?.remotePort, 40001);
    assert.equal(meta?.proxy?.version, 1);
    assert.equal(meta?.proxy?.proxyAddress, HOST);
    assert.equal(meta?.proxy?.destinationPort, 1883);
    assert.equal(remotes.at(-1), '198.51.100.7');
  });

  test('v2 (IPv6), the header split across writes', async () => {
    contexts.length = 0;
    const h = v2('2001:db8::42', 50000);
    const r = await exchange(port, [h.subarray(0, 7), h.subarray(7), CONNECT]);
    assert.deepEqual(r.types, [PacketType.Connack]);
    assert.equal(contexts[0]?.remoteAddress, '2001:db8::42');
    assert.equal(contexts[0]?.connection.proxy?.version, 2);
    assert.equal(contexts[0]?.connection.remotePort, 50000);
  });

  test('v2 LOCAL (a health check of the proxy): the proxy itself is the peer', async () => {
    contexts.length = 0;
    const r = await exchange(port, [Buffer.concat([v2('', 0, true), CONNECT])]);
    assert.deepEqual(r.types, [PacketType.Connack]);
    assert.equal(contexts[0]?.remoteAddress, HOST);
  });

  test('a connection without a header (CONNECT first) is closed unanswered', async () => {
    const before = broker.stats.connectionsAccepted;
    const r = await exchange(port, [CONNECT]);
    assert.deepEqual(r, { types: [], closed: true });
    assert.equal(broker.stats.connectionsAccepted, before, 'the broker never saw it');
  });

  test('a garbage header is closed unanswered', async () => {
    for (const garbage of ['PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n', 'PROXY TCP9 1.2.3.4 5.6.7.8 1 2\r\n', 'GET / HTTP/1.1\r\n\r\n']) {
      const r = await exchange(port, [Buffer.from(garbage), CONNECT]);
      assert.deepEqual(r, { types: [], closed: true }, garbage);
    }
  });

  test('a connection that sends nothing is closed after proxyTimeout', async () => {
    const r = await exchange(port, []);
    assert.deepEqual(r, { types: [], closed: true });
  });

  test('a half header that never completes is closed after proxyTimeout', async () => {
    const r = await exchange(port, [Buffer.from('PROXY TCP4 1.2.')]);
    assert.deepEqual(r, { types: [], closed: true });
  });
});

describe('PROXY protocol ahead of TLS and of the WebSocket upgrade', () => {
  let certs: CertFiles;
  before(() => {
    certs = makeCerts();
  });
  after(() => certs.cleanup());

  test('tls: the header, then the handshake; the client address comes from the header', async (t) => {
    const contexts: AuthenticateContext[] = [];
    const broker = createBroker({ authenticate: (ctx) => (contexts.push(ctx), true) });
    t.after(() => broker.close());
    const l = await broker.listen({ type: 'tls', port: 0, host: HOST, cert: certs.cert, key: certs.key, proxyProtocol: true });
    const raw = netConnect({ port: l.port, host: HOST });
    await withTimeout(new Promise((resolve) => raw.once('connect', resolve)), WAIT_MS, 'TCP connect');
    raw.write(v1('203.0.113.9', 41000));
    const socket = tlsConnect({ socket: raw, ca: certs.ca, servername: 'localhost' });
    const decoder = new Decoder({ protocolVersion: 4 });
    const connack = new Promise<number>((resolve) => socket.on('data', (c: Buffer) => {
      for (const p of decoder.push(c)) resolve(p.type);
    }));
    socket.once('secureConnect', () => socket.write(CONNECT));
    assert.equal(await withTimeout(connack, WAIT_MS, 'CONNACK over TLS'), PacketType.Connack);
    assert.equal(contexts[0]?.remoteAddress, '203.0.113.9');
    assert.equal(contexts[0]?.connection.tls?.protocol !== undefined, true);
    socket.destroy();
  });

  test('wss: the header, then the handshake, then the upgrade request', async (t) => {
    const contexts: AuthenticateContext[] = [];
    const broker = createBroker({ authenticate: (ctx) => (contexts.push(ctx), true) });
    t.after(() => broker.close());
    const l = await broker.listen({ type: 'wss', port: 0, host: HOST, cert: certs.cert, key: certs.key, proxyProtocol: true });
    const ws = new WebSocket(`wss://${HOST}:${l.port}/mqtt`, ['mqtt'], {
      ca: certs.ca,
      createConnection: ((opts: object) => {
        const raw = netConnect({ host: HOST, port: l.port });
        raw.write(v2('2001:db8::77', 43000));
        return tlsConnect({ ...opts, socket: raw, ca: certs.ca, servername: 'localhost' });
      }) as never,
    });
    ws.on('error', () => undefined);
    const decoder = new Decoder({ protocolVersion: 4 });
    const connack = new Promise<number>((resolve) => ws.on('message', (d: Buffer) => {
      for (const p of decoder.push(d)) resolve(p.type);
    }));
    ws.once('open', () => ws.send(CONNECT));
    assert.equal(await withTimeout(connack, WAIT_MS, 'CONNACK over secure WebSocket'), PacketType.Connack);
    assert.equal(contexts[0]?.remoteAddress, '2001:db8::77');
    assert.equal(contexts[0]?.connection.listener?.type, 'wss');
    assert.ok(contexts[0]?.connection.tls !== undefined);
    ws.terminate();
  });

  test('ws: the header, then the upgrade request; headers and the PROXY source both reach the hook', async (t) => {
    const contexts: AuthenticateContext[] = [];
    const broker = createBroker({ authenticate: (ctx) => (contexts.push(ctx), true) });
    t.after(() => broker.close());
    const l = await broker.listen({ type: 'ws', port: 0, host: HOST, proxyProtocol: true });
    const ws = new WebSocket(`ws://${HOST}:${l.port}/mqtt`, ['mqtt'], {
      headers: { 'x-forwarded-for': '203.0.113.10' },
      // The PROXY header goes first on the socket the WebSocket client opens.
      createConnection: ((opts: { host?: string; port?: number }) => {
        const s = netConnect({ host: opts.host ?? HOST, port: opts.port ?? l.port });
        s.write(v1('203.0.113.10', 42000));
        return s;
      }) as never,
    });
    ws.on('error', () => undefined);
    const decoder = new Decoder({ protocolVersion: 4 });
    const connack = new Promise<number>((resolve) => ws.on('message', (d: Buffer) => {
      for (const p of decoder.push(d)) resolve(p.type);
    }));
    ws.once('open', () => ws.send(CONNECT));
    assert.equal(await withTimeout(connack, WAIT_MS, 'CONNACK over WebSocket'), PacketType.Connack);
    assert.equal(contexts[0]?.remoteAddress, '203.0.113.10');
    assert.equal(contexts[0]?.connection.remotePort, 42000);
    assert.equal(contexts[0]?.connection.headers?.['x-forwarded-for'], '203.0.113.10');
    ws.terminate();
  });
});
