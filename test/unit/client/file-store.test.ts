/**
 * FileStore: a client restarted with the same client id, Clean Start 0 and the same directory
 * resends what the server had not acknowledged [MQTT-4.4.0-1]; the journal survives a torn last
 * line and stays bounded.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FileStore, MqttClient } from '../../../src/client/index.js';
import { Buffer } from 'node:buffer';
import { PacketType, type PublishPacket } from '../../../src/protocol/index.js';
import { ScriptedServer } from '../../helpers/client-fakes.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-filestore-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function packet(id: number, payload: string): PublishPacket {
  return {
    type: PacketType.Publish, topic: 'fs/t', payload: Buffer.from(payload), qos: 1, retain: false, dup: false, packetId: id,
    properties: { correlationData: Buffer.from([1, 2, 3]), userProperties: [['k', 'v']] },
  };
}

describe('FileStore', () => {
  test('a new client process with the same store resends the unacknowledged QoS 1 PUBLISH with DUP and its packet identifier [MQTT-4.4.0-1]', async (t) => {
    const dir = tempDir(t);
    // Process 1: publishes to a server that never acknowledges, then goes away without DISCONNECT.
    const s0 = new ScriptedServer();
    const first = new MqttClient(s0.client, { clientId: 'fs', clean: false, keepalive: 0, store: new FileStore(dir) });
    const connecting = first.connect();
    await s0.expect(PacketType.Connect);
    s0.send({ type: PacketType.Connack, sessionPresent: false, reasonCode: 0 });
    await connecting;
    const lost = first.publish('fs/t', 'keep me', { qos: 1 });
    const sent = await s0.expect(PacketType.Publish);
    s0.client.destroy();
    await assert.rejects(lost);
    // Process 2: a new store opened on the same directory.
    const s1 = new ScriptedServer();
    const store = new FileStore(dir);
    const second = new MqttClient(s1.client, { clientId: 'fs', clean: false, keepalive: 0, store });
    const reconnecting = second.connect();
    const connect = await s1.expect(PacketType.Connect);
    assert.equal(connect.clean, false);
    s1.send({ type: PacketType.Connack, sessionPresent: true, reasonCode: 0 });
    await reconnecting;
    const resent = await s1.expect(PacketType.Publish);
    assert.equal(resent.dup, true);
    assert.equal(resent.packetId, sent.packetId);
    assert.equal(resent.payload.toString(), 'keep me');
    // Acknowledged now: the next process has nothing to send.
    s1.send({ type: PacketType.Puback, packetId: resent.packetId as number });
    // A later round trip: the PUBACK before it was handled.
    const later = second.publish('fs/t', 'later', { qos: 1 });
    s1.send({ type: PacketType.Puback, packetId: (await s1.expect(PacketType.Publish)).packetId as number });
    await later;
    await second.end();
    store.close();
    assert.equal([...new FileStore(dir).outgoing()].length, 0);
  });

  test('round trip: entries, phases, properties and inbound identifiers come back after reopening', (t) => {
    const dir = tempDir(t);
    const a = new FileStore(dir);
    a.putOutgoing(7, { packet: packet(7, 'seven'), phase: 'publish' });
    a.putOutgoing(9, { packet: packet(9, 'nine'), phase: 'publish' });
    a.putOutgoing(9, { packet: packet(9, 'nine'), phase: 'pubrel' });
    a.putOutgoing(11, { packet: packet(11, 'eleven'), phase: 'publish' });
    a.deleteOutgoing(11);
    a.addIncoming(3);
    a.addIncoming(4);
    a.deleteIncoming(3);
    a.close();
    const b = new FileStore(dir);
    assert.deepEqual([...b.outgoing()].map(([id, e]) => [id, e.phase, e.packet.payload.toString()]), [[7, 'publish', 'seven'], [9, 'pubrel', 'nine']]);
    assert.deepEqual(b.getOutgoing(7)?.packet.properties, packet(7, 'seven').properties);
    assert.equal(b.hasIncoming(3), false);
    assert.equal(b.hasIncoming(4), true);
    b.close();
  });

  test('a torn last line (a crash mid-write) is ignored; the lines before it count', (t) => {
    const dir = tempDir(t);
    const a = new FileStore(dir);
    a.putOutgoing(1, { packet: packet(1, 'one'), phase: 'publish' });
    a.close();
    appendFileSync(join(dir, 'inflight.log'), '{"o":"put","id":2,"pha');
    const b = new FileStore(dir);
    assert.deepEqual([...b.outgoing()].map(([id]) => id), [1]);
    b.close();
  });

  test('the journal is bounded: past maxJournalBytes it is rewritten as its live content', (t) => {
    const dir = tempDir(t);
    const store = new FileStore(dir, { fsync: false, maxJournalBytes: 4096 });
    for (let i = 0; i < 2000; i++) {
      store.putOutgoing((i % 5) + 1, { packet: packet((i % 5) + 1, `m${i}`), phase: 'publish' });
      store.deleteOutgoing((i % 5) + 1);
    }
    store.putOutgoing(1, { packet: packet(1, 'last'), phase: 'publish' });
    assert.ok(statSync(join(dir, 'inflight.log')).size <= 4096 + 512, `journal ${statSync(join(dir, 'inflight.log')).size} bytes`);
    store.close();
    assert.deepEqual([...new FileStore(dir).outgoing()].map(([, e]) => e.packet.payload.toString()), ['last']);
  });
});
