/**
 * The extension API (src/broker/hooks.ts): authenticate answers, per-client ACL and data,
 * authorizeSubscribe / authorizePublish / authorizeDelivery, the publish, delivery and will
 * interceptors, run-time hooks, plugins and the inspection methods. In-process brokers; 3.1.1 and
 * 5.0 clients where the wire differs.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import type { ClientInfo } from '../../src/broker/events.js';
import type { AuthenticateResult, DeliveredMessage, PublishContext, SubscribeContext } from '../../src/broker/hooks.js';
import { OptionsError, type BrokerOptions } from '../../src/broker/options.js';
import type { UserCodeFailure } from '../../src/broker/user-code.js';
import { PacketType, type PublishPacket, ReasonCode } from '../../src/protocol/index.js';
import type { ConnectionMeta } from '../../src/transport/types.js';
import { TestClient, type ConnectOptions, within } from '../helpers/duplex-client.js';

type Version = 4 | 5;

function failures(broker: BrokerCore): UserCodeFailure[] {
  const out: UserCodeFailure[] = [];
  broker.on('error', (_err: Error, f: UserCodeFailure) => out.push(f));
  return out;
}

/** Waits (a bounded number of event-loop turns) until `pred` holds. */
async function until(pred: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (pred()) return;
    await turn();
  }
  throw new Error(`${what} never held`);
}

async function client(broker: BrokerCore, clientId: string, version: Version = 5, o: ConnectOptions = {}): Promise<TestClient> {
  const { client: c, connack } = await TestClient.connect(broker, { clientId, version, ...o });
  assert.equal(connack.reasonCode, 0, `CONNACK for ${clientId}`);
  return c;
}

async function subscriber(broker: BrokerCore, clientId: string, filter: string, qos: 0 | 1 | 2 = 1, version: Version = 5): Promise<TestClient> {
  const c = await client(broker, clientId, version);
  assert.deepEqual(await c.subscribe(filter, qos), [qos]);
  return c;
}

async function publishOf(c: TestClient): Promise<PublishPacket> {
  return c.expect(PacketType.Publish);
}

/** The 3.1.1 CONNACK bytes with return code `code`. */
const v3Connack = (code: number): number[] => [0x20, 0x02, 0x00, code];

async function refusedWith(options: BrokerOptions, version: Version): Promise<{ code: number; raw: number[] }> {
  const broker = new BrokerCore(options);
  const { client: c, connack } = await TestClient.connect(broker, { clientId: 'c', version, username: 'u' });
  const raw = [...Buffer.concat(c.raw)];
  await broker.closeConnections();
  return { code: connack.reasonCode, raw };
}

// ---- authenticate --------------------------------------------------------------------------

describe('authenticate answers', () => {
  test('true accepts; false refuses with 0x86 (3.1.1: return code 4) [MQTT-3.2.2-6]', async () => {
    assert.equal((await refusedWith({ authenticate: () => true }, 5)).code, 0);
    assert.equal((await refusedWith({ authenticate: () => false }, 5)).code, ReasonCode.BadUserNameOrPassword);
    assert.deepEqual((await refusedWith({ authenticate: () => false }, 4)).raw, v3Connack(4));
  });

  test('a number is the CONNACK code: a 5.0 code as is, a 3.1.1 return code 1 to 5 mapped', async () => {
    assert.equal((await refusedWith({ authenticate: () => ReasonCode.Banned }, 5)).code, ReasonCode.Banned);
    assert.deepEqual((await refusedWith({ authenticate: () => ReasonCode.Banned }, 4)).raw, v3Connack(5));
    // 3.1.1 return code 2 (identifier rejected) is 0x85 for a 5.0 client and 2 for a 3.1.1 one.
    assert.equal((await refusedWith({ authenticate: () => 2 }, 5)).code, ReasonCode.ClientIdentifierNotValid);
    assert.deepEqual((await refusedWith({ authenticate: () => 2 }, 4)).raw, v3Connack(2));
    assert.equal((await refusedWith({ authenticate: () => 0 }, 5)).code, 0);
  });

  test('an object with a failure reasonCode refuses; with reasonCode 0 it accepts', async () => {
    assert.equal((await refusedWith({ authenticate: () => ({ reasonCode: ReasonCode.NotAuthorized, username: 'x' }) }, 5)).code, ReasonCode.NotAuthorized);
    assert.deepEqual((await refusedWith({ authenticate: () => ({ reasonCode: ReasonCode.NotAuthorized }) }, 4)).raw, v3Connack(5));
    assert.equal((await refusedWith({ authenticate: () => ({ reasonCode: 0, data: 1 }) }, 5)).code, 0);
  });

  test('a malformed object answer refuses with 0x80 and reports an error event', async () => {
    const broker = new BrokerCore({ authenticate: () => ({ clientId: 5 }) as unknown as AuthenticateResult });
    const errors = failures(broker);
    const { connack } = await TestClient.connect(broker, { clientId: 'c', version: 5 });
    assert.equal(connack.reasonCode, ReasonCode.UnspecifiedError);
    assert.deepEqual(errors.map((e) => e.source), ['authenticate']);
    await broker.closeConnections();
  });

  test('a renamed username is seen in ClientInfo, clients(), events and later hook contexts', async () => {
    const seen: string[] = [];
    const broker = new BrokerCore({
      authenticate: (ctx) => (ctx.username === 'u' ? { username: 'alice' } : false),
      authorizeSubscribe: (ctx) => (seen.push(`sub:${ctx.username}:${ctx.client.username}`), true),
      authorizePublish: (ctx) => (seen.push(`pub:${ctx.username}:${ctx.client?.username}`), true),
    });
    const connected = new Promise<ClientInfo>((resolve) => broker.once('clientConnected', resolve));
    const c = await client(broker, 'c', 5, { username: 'u' });
    assert.equal((await within(connected)).username, 'alice');
    assert.deepEqual(broker.clients().map((i) => i.username), ['alice']);
    await c.subscribe('s', 0);
    c.publish('t', 'x', 1);
    await c.expect(PacketType.Puback);
    assert.deepEqual(seen, ['sub:alice:alice', 'pub:alice:alice']);
    const gone = new Promise<ClientInfo>((resolve) => broker.once('clientDisconnected', resolve));
    c.disconnect();
    assert.equal((await within(gone)).username, 'alice');
    await broker.closeConnections();
  });

  test('a renamed clientId keys the session; a 5.0 client gets it as Assigned Client Identifier [MQTT-3.2.2-16]', async () => {
    const created: string[] = [];
    const broker = new BrokerCore({ authenticate: (ctx) => ({ clientId: `dev-${ctx.clientId}` }) });
    broker.on('sessionCreated', (id) => created.push(id));
    const { client: c5, connack } = await TestClient.connect(broker, { clientId: 'five', version: 5 });
    assert.equal(connack.properties?.assignedClientIdentifier, 'dev-five');
    const { client: c4, connack: connack4 } = await TestClient.connect(broker, { clientId: 'four', version: 4 });
    assert.equal(connack4.reasonCode, 0);
    assert.deepEqual(broker.sessions().map((s) => s.clientId).sort(), ['dev-five', 'dev-four']);
    assert.deepEqual(broker.clients().map((i) => i.clientId).sort(), ['dev-five', 'dev-four']);
    assert.deepEqual(created, ['dev-five', 'dev-four']);
    await c5.subscribe('t', 0);
    assert.equal(broker.subscriptions('dev-five')?.length, 1);
    assert.equal(broker.subscriptions('five'), undefined);
    c4.disconnect();
    await broker.closeConnections();
  });

  test('acl.publish: outside it 5.0 gets PUBACK 0x87, 3.1.1 an acknowledgement, and nothing is routed', async () => {
    const broker = new BrokerCore({ authenticate: () => ({ acl: { publish: ['a/#'] } }) });
    const s = await subscriber(broker, 's', '#');
    for (const version of [5, 4] as const) {
      const p = await client(broker, `p${version}`, version);
      p.publish('b/x', 'no', 1, 7);
      const ack = await p.expect(PacketType.Puback);
      assert.equal(ack.packetId, 7);
      assert.equal(ack.reasonCode ?? 0, version === 5 ? ReasonCode.NotAuthorized : 0);
      p.publish('a/x', `yes${version}`, 1, 8);
      assert.equal((await p.expect(PacketType.Puback)).reasonCode ?? 0, 0);
      const got = await publishOf(s);
      assert.equal(got.topic, 'a/x');
      assert.equal(got.payload.toString(), `yes${version}`);
      s.send({ type: PacketType.Puback, packetId: got.packetId as number });
    }
    await s.expectNothing();
    await broker.closeConnections();
  });

  test('acl.subscribe: outside it SUBACK 0x87 (3.1.1: 0x80); $share/{group}/ is checked without its prefix; coverage of wildcards', async () => {
    const broker = new BrokerCore({ authenticate: (ctx) => ({ acl: { subscribe: ctx.username === 'narrow' ? ['a/b'] : ['a/#'] } }) });
    for (const version of [5, 4] as const) {
      const c = await client(broker, `c${version}`, version);
      const refused = version === 5 ? ReasonCode.NotAuthorized : 0x80;
      assert.deepEqual(await c.subscribe('b/x', 1, 1), [refused]);
      // a/# covers a/+/b: every topic a/+/b matches, a/# matches.
      assert.deepEqual(await c.subscribe('a/+/b', 1, 2), [1]);
      assert.deepEqual(await c.subscribe('$share/g/a/x', 1, 3), [1]);
      assert.deepEqual(await c.subscribe('$share/g/b/x', 1, 4), [refused]);
    }
    const narrow = await client(broker, 'n', 5, { username: 'narrow' });
    assert.deepEqual(await narrow.subscribe('a/b', 1, 1), [1]);
    assert.deepEqual(await narrow.subscribe('a/#', 1, 2), [ReasonCode.NotAuthorized]);
    assert.deepEqual(await narrow.subscribe('a/+', 1, 3), [ReasonCode.NotAuthorized]);
    await broker.closeConnections();
  });

  test('data is handed back as client.data in authorizePublish and authorizeSubscribe contexts', async () => {
    const data = { tenant: 't1' };
    const seen: unknown[] = [];
    const broker = new BrokerCore({
      authenticate: () => ({ data }),
      authorizeSubscribe: (ctx) => (seen.push(ctx.client.data), true),
      authorizePublish: (ctx) => (seen.push(ctx.client?.data), true),
    });
    const c = await client(broker, 'c', 4);
    await c.subscribe('s', 0);
    c.publish('t', 'x', 1);
    await c.expect(PacketType.Puback);
    assert.equal(seen.length, 2);
    assert.equal(seen[0], data);
    assert.equal(seen[1], data);
    assert.equal(broker.clients()[0]?.data, data);
    await broker.closeConnections();
  });

  test('the context carries the connection meta handed to handle()', async () => {
    const meta: ConnectionMeta = {
      remoteAddress: '10.1.2.3', remotePort: 4567, listener: { name: 'edge', type: 'tcp', host: '0.0.0.0', port: 1883 },
    };
    let ctxMeta: ConnectionMeta | undefined;
    let ctxRemote: string | undefined;
    const broker = new BrokerCore({
      authenticate: (ctx) => {
        ctxMeta = ctx.connection;
        ctxRemote = ctx.remoteAddress;
        return true;
      },
    });
    await client(broker, 'c', 5, { meta });
    assert.equal(ctxMeta, meta);
    assert.equal(ctxRemote, '10.1.2.3');
    assert.equal(broker.clients()[0]?.connection.listener?.name, 'edge');
    await broker.closeConnections();
  });
});

// ---- authorizeSubscribe ----------------------------------------------------------------------

describe('authorizeSubscribe answers', () => {
  test('a number 0 to 2 downgrades the granted QoS: SUBACK shows it and deliveries are capped', async () => {
    const broker = new BrokerCore({ authorizeSubscribe: (ctx) => (ctx.topicFilter === 'low' ? 0 : ctx.topicFilter === 'mid' ? 1 : true) });
    for (const version of [5, 4] as const) {
      const s = await client(broker, `s${version}`, version);
      assert.deepEqual(await s.subscribe('mid', 2, 1), [1]);
      assert.deepEqual(await s.subscribe('low', 2, 2), [0]);
      await broker.publish({ topic: 'mid', payload: 'm', qos: 2 });
      const got = await publishOf(s);
      assert.equal(got.qos, 1);
      s.send({ type: PacketType.Puback, packetId: got.packetId as number });
      await broker.publish({ topic: 'low', payload: 'l', qos: 2 });
      assert.equal((await publishOf(s)).qos, 0);
      s.disconnect();
    }
    await broker.closeConnections();
  });

  test('a code 0x80 or above passes through to 5.0; 3.1.1 gets 0x80', async () => {
    const broker = new BrokerCore({ authorizeSubscribe: () => ReasonCode.QuotaExceeded });
    const c5 = await client(broker, 'c5', 5);
    assert.deepEqual(await c5.subscribe('t', 1), [ReasonCode.QuotaExceeded]);
    const c4 = await client(broker, 'c4', 4);
    assert.deepEqual(await c4.subscribe('t', 1), [0x80]);
    assert.equal(broker.subscriptions('c5')?.length, 0);
    await broker.closeConnections();
  });

  test('{ qos } grants at most that QoS; async answers; the context carries the connected client', async () => {
    const contexts: SubscribeContext[] = [];
    const broker = new BrokerCore({
      authorizeSubscribe: async (ctx) => {
        contexts.push(ctx);
        await turn();
        return ctx.topicFilter === 'no' ? false : { qos: 1 };
      },
    });
    const c = await client(broker, 'c', 5);
    c.send({ type: PacketType.Subscribe, packetId: 3, subscriptions: [{ topicFilter: 'yes', qos: 2 }, { topicFilter: 'no', qos: 0 }] });
    assert.deepEqual((await c.expect(PacketType.Suback)).reasonCodes, [1, ReasonCode.NotAuthorized]);
    assert.equal(contexts[0]?.client.clientId, 'c');
    assert.equal(contexts[0]?.client, broker.clients()[0]);
    await broker.closeConnections();
  });
});

// ---- authorizePublish ------------------------------------------------------------------------

describe('authorizePublish rewrites and refusals', () => {
  test('a rewritten topic reaches the new topic\'s subscribers, not the old one\'s', async () => {
    const broker = new BrokerCore({ authorizePublish: (ctx) => (ctx.topic === 'in/x' ? { topic: 'out/x' } : true) });
    const oldSub = await subscriber(broker, 'old', 'in/#', 0);
    const newSub = await subscriber(broker, 'new', 'out/#', 0);
    const p = await client(broker, 'p', 5);
    p.publish('in/x', 'hello', 0);
    const got = await publishOf(newSub);
    assert.equal(got.topic, 'out/x');
    assert.equal(got.payload.toString(), 'hello');
    await oldSub.expectNothing();
    await broker.closeConnections();
  });

  test('payload (string and Buffer), QoS and properties are rewritten; 5.0 user properties arrive', async () => {
    const broker = new BrokerCore({
      authorizePublish: (ctx) => (ctx.topic === 's' ? { payload: 'from a string', qos: 0 }
        : { payload: Buffer.from([1, 2, 3]), properties: { userProperties: [['k', 'v']] } }),
    });
    const s = await subscriber(broker, 's', '+', 1);
    const p = await client(broker, 'p', 5);
    p.publish('s', 'original', 1, 1);
    let got = await publishOf(s);
    assert.equal(got.payload.toString(), 'from a string');
    assert.equal(got.qos, 0);
    p.publish('b', 'original', 1, 2);
    got = await publishOf(s);
    assert.deepEqual([...got.payload], [1, 2, 3]);
    assert.equal(got.qos, 1);
    assert.deepEqual(got.properties?.userProperties, [['k', 'v']]);
    await broker.closeConnections();
  });

  test('a rewritten retain flag and topic: the retained store follows the rewrite [MQTT-3.3.1-5]', async () => {
    const broker = new BrokerCore({ authorizePublish: (ctx) => ({ topic: `kept/${ctx.topic}`, retain: ctx.topic === 'r' }) });
    const p = await client(broker, 'p', 4);
    p.publish('r', 'R', 1, 1);
    await p.expect(PacketType.Puback);
    p.publish('n', 'N', 1, 2, true);
    await p.expect(PacketType.Puback);
    assert.deepEqual(broker.retained().map((m) => m.topic), ['kept/r']);
    await broker.closeConnections();
  });

  test('a rewrite to retain is not stored when Retain Available is 0 [MQTT-3.2.2-14]', async () => {
    const broker = new BrokerCore({ retainAvailable: false, authorizePublish: () => ({ retain: true }) });
    broker.intercept('publish', (m) => ({ ...m, retain: true }));
    const p = await client(broker, 'p', 4);
    p.publish('r', 'R', 1, 1);
    await p.expect(PacketType.Puback);
    assert.deepEqual(broker.retained(), []);
    await broker.closeConnections();
  });

  test('an invalid rewritten topic (a wildcard) refuses with 0x80 and reports an error event', async () => {
    const broker = new BrokerCore({ authorizePublish: () => ({ topic: 'a/+' }) });
    const errors = failures(broker);
    const s = await subscriber(broker, 's', '#', 0);
    const p = await client(broker, 'p', 5);
    p.publish('a/b', 'x', 1, 4);
    const ack = await p.expect(PacketType.Puback);
    assert.equal(ack.reasonCode, ReasonCode.UnspecifiedError);
    assert.deepEqual(errors.map((e) => e.source), ['authorizePublish']);
    await s.expectNothing();
    await broker.closeConnections();
  });

  test('a number is the 5.0 acknowledgement\'s reason code (PUBACK and PUBREC)', async () => {
    const broker = new BrokerCore({ authorizePublish: () => ReasonCode.QuotaExceeded });
    const p = await client(broker, 'p', 5);
    p.publish('t', 'x', 1, 1);
    assert.equal((await p.expect(PacketType.Puback)).reasonCode, ReasonCode.QuotaExceeded);
    p.publish('t', 'x', 2, 2);
    assert.equal((await p.expect(PacketType.Pubrec)).reasonCode, ReasonCode.QuotaExceeded);
    await broker.closeConnections();
  });

  test('async answers rewrite too', async () => {
    const broker = new BrokerCore({
      authorizePublish: async (ctx) => {
        await turn();
        return { payload: `${ctx.payload.toString()}!` };
      },
    });
    const s = await subscriber(broker, 's', 't', 0);
    const p = await client(broker, 'p', 5);
    p.publish('t', 'hey', 1, 1);
    assert.equal((await p.expect(PacketType.Puback)).reasonCode ?? 0, 0);
    assert.equal((await publishOf(s)).payload.toString(), 'hey!');
    await broker.closeConnections();
  });

  test('wills go through it with will: true and may be rewritten [MQTT-3.1.2-8]', async () => {
    const contexts: PublishContext[] = [];
    const broker = new BrokerCore({
      authorizePublish: (ctx) => (contexts.push(ctx), ctx.will ? { topic: 'wills/rewritten', payload: 'bye' } : true),
    });
    const s = await subscriber(broker, 's', 'wills/#', 1);
    const dying = await client(broker, 'dying', 4, { will: { topic: 'wills/dying', payload: Buffer.from('x'), qos: 1, retain: false } });
    dying.drop();
    const got = await publishOf(s);
    assert.equal(got.topic, 'wills/rewritten');
    assert.equal(got.payload.toString(), 'bye');
    assert.equal(contexts.length, 1);
    assert.equal(contexts[0]?.will, true);
    assert.equal(contexts[0]?.topic, 'wills/dying');
    assert.equal(contexts[0]?.clientId, 'dying');
    assert.equal(contexts[0]?.client?.clientId, 'dying');
    assert.equal(contexts[0]?.protocolVersion, 4);
    await broker.closeConnections();
  });

  test('a will outside the client\'s acl.publish is not published', async () => {
    const broker = new BrokerCore({ authenticate: (ctx) => (ctx.clientId === 'dying' ? { acl: { publish: ['mine/#'] } } : true) });
    const s = await subscriber(broker, 's', '#', 1);
    const will = { topic: 'theirs/x', payload: Buffer.from('x'), qos: 1 as const, retain: false };
    const dying = await client(broker, 'dying', 4, { will });
    const lost = new Promise((resolve) => broker.once('connectionLost', resolve));
    dying.drop();
    await within(lost);
    await s.expectNothing();
    const allowed = await client(broker, 'dying', 4, { will: { ...will, topic: 'mine/x' } });
    allowed.drop();
    assert.equal((await publishOf(s)).topic, 'mine/x');
    await broker.closeConnections();
  });
});

// ---- authorizeDelivery -----------------------------------------------------------------------

describe('authorizeDelivery, per receiver', () => {
  test('one of two subscribers refused gets nothing, the other gets the message', async () => {
    const broker = new BrokerCore({ authorizeDelivery: (clientId) => clientId !== 'b' });
    const a = await subscriber(broker, 'a', 't', 0);
    const b = await subscriber(broker, 'b', 't', 0, 4);
    assert.equal(await broker.publish({ topic: 't', payload: 'x' }), 1);
    assert.equal((await publishOf(a)).payload.toString(), 'x');
    await b.expectNothing();
    await broker.closeConnections();
  });

  test('sync only: a promise answer skips the receiver and reports an error; a throw does not stop others', async () => {
    const broker = new BrokerCore({
      authorizeDelivery: (clientId) => {
        if (clientId === 'async') return Promise.resolve(true) as unknown as boolean;
        if (clientId === 'throws') throw new Error('nope');
        return true;
      },
    });
    const errors = failures(broker);
    const ok = await subscriber(broker, 'ok', 't', 0);
    const asyncOne = await subscriber(broker, 'async', 't', 0);
    const throws = await subscriber(broker, 'throws', 't', 0);
    assert.equal(await broker.publish({ topic: 't', payload: 'x' }), 1);
    assert.equal((await publishOf(ok)).payload.toString(), 'x');
    await asyncOne.expectNothing();
    await throws.expectNothing();
    assert.deepEqual(errors.map((e) => `${e.source}:${e.clientId}`).sort(), ['authorizeDelivery:async', 'authorizeDelivery:throws']);
    await broker.closeConnections();
  });

  test('applies to retained messages sent on subscribe [MQTT-3.3.1-8] and to shared-subscription members', async () => {
    const broker = new BrokerCore({ authorizeDelivery: (clientId) => !clientId.startsWith('no') });
    await broker.publish({ topic: 'r', payload: 'kept', retain: true });
    const no = await subscriber(broker, 'no', 'r', 0);
    await no.expectNothing();
    const yes = await subscriber(broker, 'yes', 'r', 0);
    const got = await publishOf(yes);
    assert.equal(got.payload.toString(), 'kept');
    assert.equal(got.retain, true);
    const member = await client(broker, 'no-member', 5);
    assert.deepEqual(await member.subscribe('$share/g/s', 0), [0]);
    const other = await client(broker, 'member', 5);
    assert.deepEqual(await other.subscribe('$share/h/s', 0), [0]);
    assert.equal(await broker.publish({ topic: 's', payload: 'shared' }), 1);
    assert.equal((await publishOf(other)).payload.toString(), 'shared');
    await member.expectNothing();
    await broker.closeConnections();
  });

  test('an offline persistent session is asked about with client undefined; an online one with its ClientInfo', async () => {
    const asked: [string, ClientInfo | undefined][] = [];
    const broker = new BrokerCore({ authorizeDelivery: (clientId, _m, info) => (asked.push([clientId, info]), true) });
    const off = await client(broker, 'off', 5, { clean: false, properties: { sessionExpiryInterval: 600 } });
    await off.subscribe('t', 1);
    const gone = new Promise((resolve) => broker.once('clientDisconnected', resolve));
    off.disconnect();
    await within(gone);
    const on = await subscriber(broker, 'on', 't', 1);
    await broker.publish({ topic: 't', payload: 'x', qos: 1 });
    await publishOf(on);
    assert.deepEqual(asked.map(([id, info]) => [id, info?.clientId]).sort(), [['off', undefined], ['on', 'on']]);
    await broker.closeConnections();
  });
});

// ---- interceptors ----------------------------------------------------------------------------

describe('interceptors', () => {
  test('the publish pipeline runs by order, then insertion; each transforms what the last returned', async () => {
    const broker = new BrokerCore();
    const ran: string[] = [];
    const step = (name: string) => (m: { payload: Buffer; topic: string; qos: 0 | 1 | 2; retain: boolean; properties: undefined | object }) => {
      ran.push(name);
      return { ...m, payload: Buffer.concat([m.payload, Buffer.from(`-${name}`)]) } as never;
    };
    broker.intercept('publish', step('late'), { order: 10 });
    broker.intercept('publish', step('first'));
    broker.intercept('publish', step('second'));
    broker.intercept('publish', step('early'), { order: -5 });
    const s = await subscriber(broker, 's', 't', 0);
    const p = await client(broker, 'p', 5);
    p.publish('t', 'x', 0);
    assert.equal((await publishOf(s)).payload.toString(), 'x-early-first-second-late');
    assert.deepEqual(ran, ['early', 'first', 'second', 'late']);
    await broker.closeConnections();
  });

  test('re-route to a new topic; async interceptors', async () => {
    const broker = new BrokerCore();
    broker.intercept('publish', async (m) => {
      await turn();
      return { ...m, topic: `routed/${m.topic}` };
    });
    const old = await subscriber(broker, 'old', 't', 0);
    const s = await subscriber(broker, 's', 'routed/#', 0);
    const p = await client(broker, 'p', 4);
    p.publish('t', 'x', 1, 1);
    await p.expect(PacketType.Puback);
    assert.equal((await publishOf(s)).topic, 'routed/t');
    await old.expectNothing();
    await broker.closeConnections();
  });

  test('null drops: the publisher still gets PUBACK, and PUBREC then PUBCOMP for QoS 2 [MQTT-4.3.3-9]', async () => {
    const broker = new BrokerCore();
    broker.intercept('publish', (m) => (m.topic === 'drop' ? null : m));
    const s = await subscriber(broker, 's', 'drop', 0);
    for (const version of [5, 4] as const) {
      const p = await client(broker, `p${version}`, version);
      p.publish('drop', 'x', 1, 1);
      assert.equal((await p.expect(PacketType.Puback)).reasonCode ?? 0, 0);
      p.publish('drop', 'x', 2, 2);
      assert.equal((await p.expect(PacketType.Pubrec)).reasonCode ?? 0, 0);
      p.send({ type: PacketType.Pubrel, packetId: 2 });
      const comp = await p.expect(PacketType.Pubcomp);
      assert.equal(comp.packetId, 2);
      assert.equal(comp.reasonCode ?? 0, 0);
    }
    await s.expectNothing();
    await broker.closeConnections();
  });

  test('a throwing interceptor drops the message and reports an error under its name', async () => {
    const broker = new BrokerCore();
    const errors = failures(broker);
    broker.intercept('publish', () => {
      throw new Error('bad');
    }, { name: 'breaks' });
    const s = await subscriber(broker, 's', 't', 0);
    const p = await client(broker, 'p', 5);
    p.publish('t', 'x', 1, 1);
    assert.equal((await p.expect(PacketType.Puback)).reasonCode ?? 0, 0);
    await s.expectNothing();
    assert.deepEqual(errors.map((e) => e.source), ['breaks']);
    await broker.closeConnections();
  });

  test('the remover removes; an emptied pipeline behaves as none', async () => {
    const broker = new BrokerCore();
    const removeA = broker.intercept('publish', (m) => ({ ...m, payload: Buffer.from('A') }));
    const removeB = broker.intercept('publish', (m) => ({ ...m, payload: Buffer.concat([m.payload, Buffer.from('B')]) }));
    const s = await subscriber(broker, 's', 't', 0);
    const p = await client(broker, 'p', 5);
    p.publish('t', 'x', 0);
    assert.equal((await publishOf(s)).payload.toString(), 'AB');
    removeA();
    p.publish('t', 'x', 0);
    assert.equal((await publishOf(s)).payload.toString(), 'xB');
    removeB();
    removeB();
    p.publish('t', 'x', 1, 1);
    assert.equal((await p.expect(PacketType.Puback)).reasonCode ?? 0, 0);
    assert.equal((await publishOf(s)).payload.toString(), 'x');
    p.publish('nobody', 'x', 1, 2);
    assert.equal((await p.expect(PacketType.Puback)).reasonCode, ReasonCode.NoMatchingSubscribers);
    await broker.closeConnections();
  });

  test('a delivery interceptor changes the payload for one receiver only; null skips a receiver', async () => {
    const broker = new BrokerCore();
    broker.intercept('delivery', (m: DeliveredMessage, clientId: string) => {
      if (clientId === 'changed') return { ...m, payload: Buffer.from('for you') };
      return clientId === 'skipped' ? null : m;
    });
    const plain = await subscriber(broker, 'plain', 't', 1);
    const changed = await subscriber(broker, 'changed', 't', 1, 4);
    const skipped = await subscriber(broker, 'skipped', 't', 1);
    assert.equal(await broker.publish({ topic: 't', payload: 'original', qos: 1 }), 2);
    assert.equal((await publishOf(plain)).payload.toString(), 'original');
    const got = await publishOf(changed);
    assert.equal(got.payload.toString(), 'for you');
    assert.equal(got.qos, 1);
    await skipped.expectNothing();
    await broker.closeConnections();
  });

  test('a will interceptor transforms and drops wills', async () => {
    const broker = new BrokerCore();
    broker.intercept('will', (m, who) => (m.topic === 'wills/drop' ? null : { ...m, payload: Buffer.from(`${who?.clientId ?? '?'} left`) }));
    const s = await subscriber(broker, 's', 'wills/#', 0);
    const w = (topic: string): ConnectOptions => ({ will: { topic, payload: Buffer.from('x'), qos: 0, retain: false } });
    const dropped = await client(broker, 'd', 4, w('wills/drop'));
    let lost = new Promise((resolve) => broker.once('connectionLost', resolve));
    dropped.drop();
    await within(lost);
    await s.expectNothing();
    const kept = await client(broker, 'k', 5, w('wills/keep'));
    lost = new Promise((resolve) => broker.once('connectionLost', resolve));
    kept.drop();
    await within(lost);
    const got = await publishOf(s);
    assert.equal(got.topic, 'wills/keep');
    assert.equal(got.payload.toString(), 'k left');
    await broker.closeConnections();
  });
});

// ---- run-time hooks and plugins --------------------------------------------------------------

describe('setHook, getHook and plugins', () => {
  test('setHook replaces at run time; getHook lets a replacement chain to the previous one', async () => {
    const broker = new BrokerCore({ authorizeSubscribe: (ctx) => ctx.topicFilter !== 'base-refused' });
    const c = await client(broker, 'c', 5);
    assert.deepEqual(await c.subscribe('x', 0, 1), [0]);
    const previous = broker.getHook('authorizeSubscribe');
    assert.equal(typeof previous, 'function');
    broker.setHook('authorizeSubscribe', (ctx) => (ctx.topicFilter === 'x' ? false : previous?.(ctx) ?? true));
    assert.deepEqual(await c.subscribe('x', 0, 2), [ReasonCode.NotAuthorized]);
    assert.deepEqual(await c.subscribe('base-refused', 0, 3), [ReasonCode.NotAuthorized]);
    assert.deepEqual(await c.subscribe('y', 0, 4), [0]);
    broker.setHook('authorizeSubscribe', undefined);
    assert.deepEqual(await c.subscribe('x', 0, 5), [0]);
    assert.equal(broker.getHook('authorizeSubscribe'), undefined);
    await broker.closeConnections();
  });

  test('setHook with an unknown name and intercept with an unknown kind throw', () => {
    const broker = new BrokerCore();
    assert.throws(() => broker.setHook('bogus' as never, (() => true) as never), OptionsError);
    assert.throws(() => broker.intercept('bogus' as never, (() => null) as never), OptionsError);
    void broker.closeConnections();
  });

  test('use() runs setup with its options; hooks it sets work; handles close newest first, a failing close is reported', async () => {
    const broker = new BrokerCore();
    const errors = failures(broker);
    const closed: string[] = [];
    let got: { broker: BrokerCore; options: unknown } | undefined;
    await broker.use({
      name: 'first',
      setup: (b, options: { deny: string }) => {
        got = { broker: b, options };
        b.setHook('authorizePublish', (ctx) => ctx.topic !== options.deny);
        return { close: () => void closed.push('first') };
      },
    }, { deny: 'secret' });
    await broker.use({ name: 'breaks', setup: () => ({ close: () => { throw new Error('close failed'); } }) }, undefined);
    await broker.use({ name: 'third', setup: async () => ({ close: async () => void closed.push('third') }) }, undefined);
    assert.equal(got?.broker, broker);
    assert.deepEqual(got?.options, { deny: 'secret' });
    const p = await client(broker, 'p', 5);
    p.publish('secret', 'x', 1, 1);
    assert.equal((await p.expect(PacketType.Puback)).reasonCode, ReasonCode.NotAuthorized);
    await broker.closeConnections();
    assert.deepEqual(closed, ['third', 'first']);
    assert.deepEqual(errors.map((e) => e.source), ['plugin:breaks']);
  });

  test('use() refuses what is not a plugin', async () => {
    const broker = new BrokerCore();
    await assert.rejects(broker.use({} as never, undefined), OptionsError);
    await assert.rejects(broker.use({ name: 'x', setup: 1 } as never, undefined), OptionsError);
    await broker.closeConnections();
  });
});

// ---- inspection and targeted publish ---------------------------------------------------------

describe('sessions(), retained(filter), publish({ clientId }) and session events', () => {
  test('sessions(): connected flag; an offline persistent session counts its queued QoS 1 deliveries', async () => {
    const broker = new BrokerCore();
    const off = await client(broker, 'off', 4, { clean: false });
    await off.subscribe('t', 1);
    const gone = new Promise((resolve) => broker.once('clientDisconnected', resolve));
    off.disconnect();
    await within(gone);
    await client(broker, 'on', 5);
    for (let i = 0; i < 3; i++) await broker.publish({ topic: 't', payload: `m${i}`, qos: 1 });
    const byId = new Map(broker.sessions().map((s) => [s.clientId, s]));
    assert.equal(byId.get('on')?.connected, true);
    assert.equal(byId.get('off')?.connected, false);
    assert.equal(byId.get('off')?.queued, 3);
    assert.equal(byId.get('off')?.inflight, 0);
    assert.equal(byId.get('off')?.subscriptions, 1);
    // Back online without acknowledging: the three are in flight [MQTT-4.4.0-1].
    const back = await client(broker, 'off', 4, { clean: false });
    for (let i = 0; i < 3; i++) assert.equal((await publishOf(back)).payload.toString(), `m${i}`);
    const again = broker.sessions().find((s) => s.clientId === 'off');
    assert.equal(again?.queued, 0);
    assert.equal(again?.inflight, 3);
    await broker.closeConnections();
  });

  test('retained(filter) matches the filter; an invalid filter throws OptionsError', async () => {
    const broker = new BrokerCore();
    await broker.publish({ topic: 'a/1', payload: 'one', retain: true });
    await broker.publish({ topic: 'a/2/x', payload: 'two', retain: true, qos: 1 });
    await broker.publish({ topic: 'b/1', payload: 'three', retain: true });
    assert.deepEqual(broker.retained('a/#').map((m) => m.topic).sort(), ['a/1', 'a/2/x']);
    assert.deepEqual(broker.retained('a/+').map((m) => m.payload.toString()), ['one']);
    assert.equal(broker.retained().length, 3);
    assert.throws(() => broker.retained('a/#/b'), OptionsError);
    assert.throws(() => broker.retained('a+'), OptionsError);
    await broker.closeConnections();
  });

  test('publish({ clientId }) reaches only that client, only through a matching subscription, never retained', async () => {
    const broker = new BrokerCore();
    const a = await subscriber(broker, 'a', 't/+', 1);
    const b = await subscriber(broker, 'b', 't/+', 1);
    assert.equal(await broker.publish({ topic: 't/1', payload: 'just a', qos: 1, retain: true, clientId: 'a' }), 1);
    const got = await publishOf(a);
    assert.equal(got.payload.toString(), 'just a');
    assert.equal(got.retain, false);
    assert.equal(got.qos, 1);
    await b.expectNothing();
    assert.equal(broker.retained().length, 0);
    assert.equal(await broker.publish({ topic: 'other', payload: 'x', clientId: 'a' }), 0);
    assert.equal(await broker.publish({ topic: 't/1', payload: 'x', clientId: 'nobody' }), 0);
    a.send({ type: PacketType.Puback, packetId: got.packetId as number });
    await a.expectNothing();
    await broker.closeConnections();
  });

  test('sessionCreated for a new session, sessionResumed for Clean Start 0 with a session [MQTT-3.1.2-4] [MQTT-3.1.2-5]', async () => {
    const broker = new BrokerCore();
    const events: string[] = [];
    broker.on('sessionCreated', (id) => events.push(`created:${id}`));
    broker.on('sessionResumed', (id) => events.push(`resumed:${id}`));
    const first = await TestClient.connect(broker, { clientId: 'c', version: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(first.connack.sessionPresent, false);
    first.client.disconnect();
    await until(() => broker.clients().length === 0, 'disconnect');
    const second = await TestClient.connect(broker, { clientId: 'c', version: 5, clean: false, properties: { sessionExpiryInterval: 60 } });
    assert.equal(second.connack.sessionPresent, true);
    second.client.disconnect();
    await until(() => broker.clients().length === 0, 'disconnect');
    const third = await TestClient.connect(broker, { clientId: 'c', version: 4, clean: true });
    assert.equal(third.connack.sessionPresent, false);
    assert.deepEqual(events, ['created:c', 'resumed:c', 'created:c']);
    await broker.closeConnections();
  });
});
