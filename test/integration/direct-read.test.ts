/**
 * Direct reads (src/transport/direct-read.ts): plain TCP sockets read into one buffer shared by
 * every socket, which the next read overwrites. What a connection keeps of its bytes (payloads,
 * retained messages, a packet split across reads) must be a copy; acknowledgements are decoded in
 * place. These tests interleave reads of several sockets so that a byte kept from the shared
 * buffer would be overwritten before it is written out or read back.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createServer, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { readDirect } from '../../src/transport/direct-read.js';
import { encode, PacketType } from '../../src/protocol/index.js';
import { connectClient, endAll, Inbox, RawClient, startBroker, WAIT_MS, withTimeout } from '../helpers/mqttjs.js';

/** A distinct payload per index, long enough to span many bytes of the shared buffer. */
const payloadOf = (i: number): string => `message ${i} `.repeat(1 + (i % 7)) + '#'.repeat(i % 300);

describe('direct reads of plain TCP sockets', () => {
  test('an accepted TCP socket reads into the shared buffer; a stream with a data listener or not a socket is left alone', async () => {
    const got: string[] = [];
    let installed: boolean[] = [];
    const server = createServer((s: Socket) => {
      installed.push(readDirect(s, function (nread, buf) {
        got.push(buf.subarray(0, nread).toString());
        if (got.join('') === 'hello') s.end();
      }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const raw = await RawClient.connect(port, 4);
    raw.socket.write('hel');
    raw.socket.write('lo');
    await raw.waitClosed();
    assert.deepEqual(installed, [true]);
    assert.equal(got.join(''), 'hello');
    installed = [];

    const stream = new PassThrough();
    assert.equal(readDirect(stream, () => undefined), false);
    const listened = createServer((s: Socket) => {
      s.on('data', () => undefined);
      installed.push(readDirect(s, () => undefined));
      s.destroy();
    });
    await new Promise<void>((resolve) => listened.listen(0, '127.0.0.1', resolve));
    const other = await RawClient.connect((listened.address() as { port: number }).port, 4);
    await other.waitClosed();
    assert.deepEqual(installed, [false]);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => listened.close(() => resolve()));
  });

  test('QoS 1 payloads reach two acknowledging subscribers intact while other sockets read in between', async (t) => {
    const { broker, url } = await startBroker();
    const clients: MqttClient[] = [];
    t.after(async () => {
      await endAll(clients);
      await broker.close();
    });
    const a = await connectClient(url, 4, { clientId: 'sub-a' });
    const b = await connectClient(url, 5, { clientId: 'sub-b' });
    const pub1 = await connectClient(url, 4, { clientId: 'pub-1' });
    const pub2 = await connectClient(url, 5, { clientId: 'pub-2' });
    clients.push(a, b, pub1, pub2);
    const inboxA = new Inbox(a);
    const inboxB = new Inbox(b);
    await a.subscribeAsync('d/#', { qos: 1 });
    await b.subscribeAsync('d/#', { qos: 1 });
    const n = 300;
    // Two publishers at once: their reads and the subscribers' PUBACK reads alternate in the shared buffer.
    await Promise.all([
      Promise.all(Array.from({ length: n }, (_, i) => pub1.publishAsync(`d/1/${i % 5}`, payloadOf(i), { qos: 1 }))),
      Promise.all(Array.from({ length: n }, (_, i) => pub2.publishAsync(`d/2/${i % 5}`, payloadOf(n + i), { qos: 1 }))),
    ]);
    await inboxA.count(2 * n, 3 * WAIT_MS);
    await inboxB.count(2 * n, 3 * WAIT_MS);
    for (const inbox of [inboxA, inboxB]) {
      const want = new Set<string>();
      for (let i = 0; i < n; i++) {
        want.add(`d/1/${i % 5} ${payloadOf(i)}`);
        want.add(`d/2/${i % 5} ${payloadOf(n + i)}`);
      }
      const seen = new Set(inbox.messages.map((m) => `${m.topic} ${m.payload}`));
      assert.equal(seen.size, 2 * n);
      assert.deepEqual([...seen].filter((x) => !want.has(x)), []);
    }
  });

  test('a retained message read in one chunk with others, and a PUBLISH split across reads, come back intact', async (t) => {
    const { broker, port, url } = await startBroker();
    const clients: MqttClient[] = [];
    const raw = await RawClient.connect(port, 4);
    t.after(async () => {
      raw.destroy();
      await endAll(clients);
      await broker.close();
    });
    const watcher = await connectClient(url, 4, { clientId: 'watcher' });
    clients.push(watcher);
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync('s/#', { qos: 1 });
    raw.sendConnect({ clientId: 'raw-pub' });
    await raw.take(PacketType.Connack);
    const retained = Buffer.from('retained bytes '.repeat(40));
    const chunk = Buffer.concat([
      encode({ type: PacketType.Publish, topic: 'r/kept', payload: retained, qos: 1, retain: true, dup: false, packetId: 1 }, 4),
      encode({ type: PacketType.Publish, topic: 's/one', payload: Buffer.from('first'), qos: 1, retain: false, dup: false, packetId: 2 }, 4),
    ]);
    const split = encode({ type: PacketType.Publish, topic: 's/split', payload: Buffer.from('x'.repeat(900) + 'end'), qos: 1, retain: false, dup: false, packetId: 3 }, 4);
    raw.socket.write(Buffer.concat([chunk, split.subarray(0, 400)]));
    await raw.take(PacketType.Puback);
    await raw.take(PacketType.Puback);
    // Meanwhile other sockets' reads (the watcher's PUBACKs) overwrite the shared buffer.
    await inbox.next('s/one');
    raw.socket.write(split.subarray(400));
    const got = await inbox.next('s/split');
    assert.equal(got.payload, 'x'.repeat(900) + 'end');
    // Read back after many other reads: the retained copy is the one the broker keeps.
    for (let i = 0; i < 50; i++) await watcher.publishAsync('s/noise', payloadOf(i), { qos: 1 });
    const late = await connectClient(url, 4, { clientId: 'late' });
    clients.push(late);
    const lateInbox = new Inbox(late);
    await late.subscribeAsync('r/#', { qos: 1 });
    const back = await withTimeout(lateInbox.next('r/kept'), WAIT_MS, 'the retained message');
    assert.equal(back.payload, retained.toString());
    assert.equal(back.retain, true);
  });

  test('hostile bytes over TCP (acknowledgement-shaped, bit-flipped, truncated, split) crash nothing and corrupt no one else\'s payloads', async (t) => {
    const { broker, port, url } = await startBroker();
    const clients: MqttClient[] = [];
    const raws: RawClient[] = [];
    t.after(async () => {
      for (const r of raws) r.destroy();
      await endAll(clients);
      await broker.close();
    });
    const sub = await connectClient(url, 5, { clientId: 'ctl-sub' });
    const pub = await connectClient(url, 4, { clientId: 'ctl-pub' });
    clients.push(sub, pub);
    const inbox = new Inbox(sub);
    await sub.subscribeAsync('ctl/#', { qos: 1 });
    // A seeded generator: the same bytes every run.
    let seed = 0x5eed;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const ackShaped = (): Buffer => {
      const types = [0x40, 0x50, 0x62, 0x70, 0xc0];
      const first = types[rand(types.length)] as number;
      if (first === 0xc0) return Buffer.from([0xc0, 0]);
      const len = 2 + rand(3);
      const b = Buffer.alloc(2 + len);
      b[0] = first;
      b[1] = len;
      for (let i = 2; i < b.length; i++) b[i] = rand(256);
      return b;
    };
    const hostile = (): Buffer => {
      const parts: Buffer[] = [];
      for (let i = 0, k = 1 + rand(12); i < k; i++) {
        const b = ackShaped();
        const r = rand(4);
        if (r === 0) {
          const at = rand(b.length);
          b[at] = (b[at] as number) ^ (1 << rand(8)); // a flipped bit
        }
        parts.push(r === 1 ? b.subarray(0, rand(b.length)) : b); // truncated
        if (rand(8) === 0) parts.push(Buffer.from([rand(256), rand(256), rand(256)])); // noise
      }
      return Buffer.concat(parts);
    };
    const CONNECTIONS = 30;
    const CHUNKS = 40;
    for (let c = 0; c < CONNECTIONS; c++) {
      const raw = await RawClient.connect(port, c % 2 === 0 ? 4 : 5);
      raws.push(raw);
      raw.sendConnect({ clientId: `hostile-${c}` });
    }
    // Control traffic and hostile bytes interleave in the shared read buffer.
    const n = 200;
    const published = Promise.all(Array.from({ length: n }, (_, i) => pub.publishAsync(`ctl/${i % 7}`, payloadOf(i), { qos: 1 })));
    for (let round = 0; round < CHUNKS; round++) {
      for (const raw of raws) {
        if (raw.socket.destroyed) continue;
        const bytes = hostile();
        const cut = rand(bytes.length + 1);
        raw.socket.write(bytes.subarray(0, cut));
        raw.socket.write(bytes.subarray(cut));
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await withTimeout(published, 3 * WAIT_MS, 'control publishes acknowledged');
    await inbox.count(n, 3 * WAIT_MS);
    const want = new Set(Array.from({ length: n }, (_, i) => `ctl/${i % 7} ${payloadOf(i)}`));
    const seen = new Set(inbox.messages.map((m) => `${m.topic} ${m.payload}`));
    assert.equal(seen.size, n);
    assert.deepEqual([...seen].filter((x) => !want.has(x)), []);
    // Malformed packets closed some hostile connections [MQTT-4.8.0-1]; the broker stands and takes
    // new clients.
    await withTimeout(Promise.race(raws.map((r) => r.closed)), WAIT_MS, 'a hostile connection closed');
    const late = await connectClient(url, 4, { clientId: 'late' });
    clients.push(late);
    await late.publishAsync('ctl/late', 'still here', { qos: 1 });
    assert.equal((await inbox.next('ctl/late')).payload, 'still here');
  });
});
