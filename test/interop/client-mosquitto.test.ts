/**
 * Petrel's client over TCP against a real Mosquitto started by the test (3.1.1 and 5.0):
 * connect, subscribe, publish QoS 1 and 2 round trips.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type MqttClient, type ReceivedMessage } from '../../src/client/index.js';
import { within } from '../helpers/duplex-client.js';

const MOSQUITTO = '/usr/sbin/mosquitto';

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Dials until Mosquitto listens: bounded in attempts, each waiting for the child's output or a short pause. */
async function waitListening(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}`);
    try {
      const s = await dial(port);
      s.destroy();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error('mosquitto did not listen');
}

describe('Petrel client against Mosquitto over TCP', () => {
  let child: ChildProcess;
  let port = 0;
  let dir = '';

  before(async () => {
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'petrel-mosq-'));
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
    child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitListening(port, child);
  });

  after(async () => {
    if (child.exitCode === null && child.pid !== undefined) {
      const exited = once(child, 'exit');
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  for (const protocolVersion of [4, 5] as const) {
    test(`protocol level ${protocolVersion}: connect, subscribe, publish QoS 1 and 2 [MQTT-4.3.2-1] [MQTT-4.3.3-1]`, async () => {
      const open = (clientId: string): Promise<MqttClient> => connect(() => dial(port), { protocolVersion, clientId, keepalive: 30 });
      const sub = await open(`petrel-sub-${protocolVersion}`);
      const pub = await open(`petrel-pub-${protocolVersion}`);
      try {
        assert.equal(sub.connack.reasonCode, 0);
        assert.equal(sub.sessionPresent, false);
        const inbox = sub.messages('petrel/#');
        const granted = await sub.subscribe([{ topicFilter: 'petrel/two/#', qos: 2 }, { topicFilter: 'petrel/one', qos: 1 }]);
        assert.deepEqual(granted.reasonCodes, [2, 1]);
        const one = await pub.publish('petrel/one', 'q1', { qos: 1 });
        assert.ok((one.packetId ?? 0) > 0);
        const two = await pub.publish('petrel/two/x', Buffer.from('q2'), { qos: 2 });
        assert.ok((two.packetId ?? 0) > 0);
        const got: ReceivedMessage[] = [];
        for (let i = 0; i < 2; i++) {
          const r = await within(inbox.next(), 5000, 'message');
          assert.equal(r.done, false);
          got.push(r.value as ReceivedMessage);
        }
        assert.deepEqual(got.map((m) => `${m.topic} ${m.payload.toString()} ${m.qos}`), ['petrel/one q1 1', 'petrel/two/x q2 2']);
        assert.deepEqual((await sub.unsubscribe(['petrel/two/#', 'petrel/one'])).reasonCodes, [0, 0]);
      } finally {
        await Promise.all([sub.end(), pub.end()]);
      }
    });
  }

  test('5.0: the assigned client identifier is taken from CONNACK', async () => {
    const client = await connect(() => dial(port), { keepalive: 0 });
    try {
      assert.ok(client.clientId.length > 0);
      assert.equal(client.clientId, client.connack.properties?.assignedClientIdentifier);
    } finally {
      await client.end();
    }
  });

  test('mqtt:// URL, 5.0 topic aliases and request / response against Mosquitto [MQTT-3.3.2-12] [MQTT-4.10.0]', async () => {
    const url = `mqtt://127.0.0.1:${port}`;
    const responder = await connect(url, { clientId: 'petrel-responder', keepalive: 30 });
    const client = await connect(url, { clientId: 'petrel-requester', keepalive: 30, topicAliases: true });
    try {
      await responder.subscribe('svc/mosq', { qos: 1 });
      responder.on('message', (m) => {
        const rt = m.properties?.responseTopic;
        if (rt !== undefined) void responder.publish(rt, `re ${m.payload.toString()}`, { qos: 1, properties: { correlationData: m.properties?.correlationData as Buffer } });
      });
      // Mosquitto allows 10 aliases by default: the second and third request go by alias.
      for (const word of ['a', 'b', 'c']) {
        const answer = await client.request('svc/mosq', word, { timeout: 5000 });
        assert.equal(answer.payload.toString(), `re ${word}`);
      }
      assert.ok((client.connack.properties?.topicAliasMaximum ?? 0) > 0);
    } finally {
      await Promise.all([client.end(), responder.end()]);
    }
  });
});
