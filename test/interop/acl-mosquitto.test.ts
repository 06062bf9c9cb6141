/**
 * The same ACL file in the real Mosquitto and in AclFile: for a table of publishes and
 * deliveries, Mosquitto's decisions (seen by what actually arrives) equal AclFile's.
 * Mosquitto 2.0 grants every SUBSCRIBE in its acl_file and filters each delivery, so this
 * compares canPublish and canReceive; canSubscribe is Petrel's stricter check (unit tests).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { MqttClient } from 'mqtt';
import { AclFile } from '../../src/auth/index.js';
import { connectClient, endAll, Inbox, WAIT_MS, withTimeout } from '../helpers/mqttjs.js';

const MOSQUITTO = '/usr/sbin/mosquitto';

const ACL = `# anonymous
topic read public/#
topic read $SYS/broker/uptime

user alice
topic readwrite sensors/#
topic write commands/alice
topic read weather/+/temp
topic deny sensors/secret/#

user bob
topic sensors/bob

user admin
topic #

user carol
topic deny clients/k1/private

pattern readwrite clients/%c/#
pattern read users/%u/inbox/#
pattern write users/%u/outbox
pattern deny clients/%c/locked
pattern read dev_%c/status
`;

const TOPICS = [
  'public/news', 'sensors/kitchen', 'sensors/secret/door', 'sensors/bob', 'commands/alice', 'weather/paris/temp',
  'weather/paris/wind', 'clients/c1/state', 'clients/a1/state', 'clients/k1/private', 'clients/k1/locked', 'clients/b1/x',
  'users/alice/inbox/1', 'users/alice/outbox', 'users/bob/inbox/1', 'dev_a1/status', 'dev_c1/status', 'anything',
];

const IDENTITIES: { username: string | undefined; clientId: string }[] = [
  { username: undefined, clientId: 'c1' },
  { username: 'alice', clientId: 'a1' },
  { username: 'bob', clientId: 'b1' },
  { username: 'carol', clientId: 'k1' },
  { username: 'mallory', clientId: 'm1' },
];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function startMosquitto(dir: string): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const aclFile = join(dir, 'acl');
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(aclFile, ACL);
  const asRoot = process.getuid?.() === 0 ? 'user root\n' : '';
  writeFileSync(conf, `${asRoot}listener ${port} 127.0.0.1\nallow_anonymous true\nacl_file ${aclFile}\nlog_dest stderr\npersistence false\n`);
  const child = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      child.stderr?.on('data', (chunk: Buffer) => {
        log += chunk.toString();
        if (/running/.test(log)) resolve();
      });
      child.once('exit', (code) => reject(new Error(`mosquitto exited (${code}): ${log}`)));
    }),
    WAIT_MS,
    'mosquitto to start',
  );
  return { child, url: `mqtt://127.0.0.1:${port}` };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return Promise.resolve();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  return withTimeout(exited, WAIT_MS, 'mosquitto to stop');
}

function connectAs(url: string, username: string | undefined, clientId: string): Promise<MqttClient> {
  return connectClient(url, 4, username === undefined ? { clientId } : { clientId, username });
}

describe('AclFile agrees with Mosquitto on the same acl_file', { skip: existsSync(MOSQUITTO) ? false : `${MOSQUITTO} not installed` }, () => {
  test('publish (write) and delivery (read) decisions for each identity and topic', async () => {
    const acl = AclFile.parse(ACL);
    const dir = mkdtempSync(join(tmpdir(), 'petrel-acl-'));
    const { child, url } = await startMosquitto(dir);
    const clients: MqttClient[] = [];
    try {
      const spy = await connectAs(url, 'admin', 'spy');
      clients.push(spy);
      const spyInbox = new Inbox(spy);
      await spy.subscribeAsync('#', { qos: 0 });

      for (const { username, clientId } of IDENTITIES) {
        const who = `${username ?? '(anonymous)'}/${clientId}`;
        const client = await connectAs(url, username, clientId);
        clients.push(client);
        const inbox = new Inbox(client);
        await client.subscribeAsync('#', { qos: 0 });
        const sentinel = `clients/${clientId}/sentinel`;

        // Writes: what the admin spy sees of this client's publishes, in order, up to the sentinel.
        const seenBefore = spyInbox.messages.length;
        for (const topic of TOPICS) client.publish(topic, `from ${clientId}`, { qos: 0 });
        client.publish(sentinel, 'end-write', { qos: 0 });
        await spyInbox.until((m) => m.slice(seenBefore).some((r) => r.topic === sentinel && r.payload === 'end-write'), `${who} sentinel at the spy`);
        const written = new Set(spyInbox.messages.slice(seenBefore).filter((r) => r.payload === `from ${clientId}`).map((r) => r.topic));
        for (const topic of TOPICS) {
          assert.equal(written.has(topic), acl.canPublish(username, clientId, topic), `${who} publish ${topic}`);
        }

        // Reads: the admin publishes every topic; what reaches this client's '#' subscription.
        inbox.messages.length = 0;
        for (const topic of TOPICS) spy.publish(topic, 'from admin', { qos: 0 });
        spy.publish(sentinel, 'end-read', { qos: 0 });
        await inbox.until((m) => m.some((r) => r.topic === sentinel && r.payload === 'end-read'), `${who} sentinel`);
        const read = new Set(inbox.messages.filter((r) => r.payload === 'from admin').map((r) => r.topic));
        for (const topic of TOPICS) {
          assert.equal(read.has(topic), acl.canReceive(username, clientId, topic), `${who} receive ${topic}`);
        }
        await endAll([client]);
      }
    } finally {
      await endAll(clients);
      await stop(child);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
