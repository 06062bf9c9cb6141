import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { PacketType, ReasonCode } from '../../src/protocol/index.js';
import { ManualClock } from '../../src/session/clock.js';
import { TestClient, waitClosed, within } from '../helpers/duplex-client.js';

const v5 = { version: 5 } as const;

async function disconnectOf(c: TestClient): Promise<number | undefined> {
  const d = await c.expect(PacketType.Disconnect);
  await waitClosed(c);
  return d.reasonCode;
}

describe('MQTT 5.0 CONNECT / CONNACK', () => {
  test('[MQTT-3.1.2-23] Session Expiry Interval 0 ends the session at disconnect', async () => {
    const broker = new BrokerCore();
    const a = (await TestClient.connect(broker, { ...v5, clientId: 's0', clean: false })).client;
    await a.subscribe('x', 1);
    a.disconnect();
    await waitClosed(a);
    assert.equal(broker.subscriptions('s0'), undefined);
    const b = await TestClient.connect(broker, { ...v5, clientId: 's0', clean: false });
    assert.equal(b.connack.sessionPresent, false);
    await broker.closeConnections();
  });

  test('a session with Session Expiry Interval > 0 outlives the connection, then expires', async () => {
    const clock = new ManualClock(0);
    const broker = new BrokerCore({ clock });
    const expired = new Promise<string>((resolve) => broker.once('sessionExpired', resolve));
    const a = (await TestClient.connect(broker, { ...v5, clientId: 's10', clean: false, properties: { sessionExpiryInterval: 10 } })).client;
    await a.subscribe('x', 1);
    a.disconnect();
    await waitClosed(a);
    assert.equal(broker.subscriptions('s10')?.length, 1);
    clock.advance(10_100);
    assert.equal(await within(expired), 's10');
    assert.equal(broker.subscriptions('s10'), undefined);
    await broker.closeConnections();
  });

  test('[MQTT-3.14.2-2] DISCONNECT may change the Session Expiry Interval, but not from 0', async () => {
    const broker = new BrokerCore();
    const a = (await TestClient.connect(broker, { ...v5, clientId: 'd1', clean: false, properties: { sessionExpiryInterval: 5 } })).client;
    a.send({ type: PacketType.Disconnect, properties: { sessionExpiryInterval: 0 } });
    await waitClosed(a);
    assert.equal(broker.subscriptions('d1'), undefined, 'expiry lowered to 0: session ended');
    const b = (await TestClient.connect(broker, { ...v5, clientId: 'd2', clean: false })).client;
    b.send({ type: PacketType.Disconnect, properties: { sessionExpiryInterval: 30 } });
    assert.equal(await disconnectOf(b), ReasonCode.ProtocolError);
    await broker.closeConnections();
  });

  test('[MQTT-3.2.2-16] [MQTT-3.2.2-15] Assigned Client Identifier and Maximum Packet Size in CONNACK', async () => {
    const broker = new BrokerCore({ maxPacketSize: 4096 });
    const { connack } = await TestClient.connect(broker, { ...v5, clientId: '' });
    assert.match(connack.properties?.assignedClientIdentifier ?? '', /^petrel-/);
    assert.equal(connack.properties?.maximumPacketSize, 4096);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.2-21] Server Keep Alive lowers the keep alive to the configured maximum', async () => {
    const broker = new BrokerCore({ maxKeepalive: 10 });
    const { connack } = await TestClient.connect(broker, { ...v5, clientId: 'ka', keepalive: 60 });
    assert.equal(connack.properties?.serverKeepAlive, 10);
    assert.equal(broker.clients()[0]?.keepalive, 10);
    await broker.closeConnections();
  });

  test('Response Information is returned when requested and configured', async () => {
    const broker = new BrokerCore({ responseInformation: 'reply/' });
    const asked = await TestClient.connect(broker, { ...v5, clientId: 'r1', properties: { requestResponseInformation: true } });
    assert.equal(asked.connack.properties?.responseInformation, 'reply/');
    const notAsked = await TestClient.connect(broker, { ...v5, clientId: 'r2' });
    assert.equal(notAsked.connack.properties?.responseInformation, undefined);
    await broker.closeConnections();
  });

  test('capabilities in CONNACK: Maximum QoS, Retain, Wildcard, Subscription Identifier and Shared Subscription Available', async () => {
    const broker = new BrokerCore({
      maximumQoS: 1, retainAvailable: false, wildcardSubscriptionAvailable: false,
      subscriptionIdentifiersAvailable: false, sharedSubscriptionsAvailable: false, receiveMaximum: 10,
    });
    const { connack } = await TestClient.connect(broker, { ...v5, clientId: 'caps' });
    const p = connack.properties;
    assert.deepEqual(
      [p?.maximumQoS, p?.retainAvailable, p?.wildcardSubscriptionAvailable, p?.subscriptionIdentifierAvailable, p?.sharedSubscriptionAvailable, p?.receiveMaximum],
      [1, false, false, false, false, 10],
    );
    await broker.closeConnections();
  });

  test('[MQTT-3.2.2-11] [MQTT-3.2.2-14] QoS above Maximum QoS gives 0x9B, RETAIN when unavailable gives 0x9A', async () => {
    const broker = new BrokerCore({ maximumQoS: 1, retainAvailable: false });
    const a = (await TestClient.connect(broker, { ...v5, clientId: 'q2' })).client;
    a.publish('t', 'x', 2, 1);
    assert.equal(await disconnectOf(a), ReasonCode.QoSNotSupported);
    const b = (await TestClient.connect(broker, { ...v5, clientId: 'rt' })).client;
    b.publish('t', 'x', 0, undefined, true);
    assert.equal(await disconnectOf(b), ReasonCode.RetainNotSupported);
    await broker.closeConnections();
  });

  test('[MQTT-3.2.2-12] [MQTT-3.2.2-13] a will above Maximum QoS gets CONNACK 0x9B; a retained will without Retain Available 0x9A', async () => {
    const broker = new BrokerCore({ maximumQoS: 1, retainAvailable: false });
    const payload = Buffer.from('w');
    const q = await TestClient.connect(broker, { ...v5, clientId: 'wq', will: { topic: 'w', payload, qos: 2, retain: false } });
    assert.equal(q.connack.reasonCode, ReasonCode.QoSNotSupported);
    const r = await TestClient.connect(broker, { ...v5, clientId: 'wr', will: { topic: 'w', payload, qos: 0, retain: true } });
    assert.equal(r.connack.reasonCode, ReasonCode.RetainNotSupported);
    const ok = await TestClient.connect(broker, { ...v5, clientId: 'wok', will: { topic: 'w', payload, qos: 1, retain: false } });
    assert.equal(ok.connack.reasonCode, ReasonCode.Success);
    await broker.closeConnections();
  });

  test('Server Reference: CONNACK 0x9C (use another server) and 0x9D (server moved)', async () => {
    const temp = new BrokerCore({ serverReference: 'other:1883' });
    const a = await TestClient.connect(temp, { ...v5, clientId: 'redir' });
    assert.equal(a.connack.reasonCode, ReasonCode.UseAnotherServer);
    assert.equal(a.connack.properties?.serverReference, 'other:1883');
    await waitClosed(a.client);
    const moved = new BrokerCore({ serverReference: 'new:1883', serverMoved: true });
    const b = await TestClient.connect(moved, { ...v5, clientId: 'redir' });
    assert.equal(b.connack.reasonCode, ReasonCode.ServerMoved);
    await temp.closeConnections();
    await moved.closeConnections();
  });

  test('Receive Maximum (client): never more unacknowledged QoS 1 messages in flight than the client allows [MQTT-3.3.4-9]', async () => {
    const broker = new BrokerCore();
    const sub = (await TestClient.connect(broker, { ...v5, clientId: 'rm', properties: { receiveMaximum: 2 } })).client;
    await sub.subscribe('rm', 1);
    for (let i = 0; i < 3; i++) await broker.publish({ topic: 'rm', payload: `${i}`, qos: 1 });
    const a = await sub.expect(PacketType.Publish);
    await sub.expect(PacketType.Publish);
    await sub.expectNothing();
    sub.send({ type: PacketType.Puback, packetId: a.packetId as number });
    assert.equal((await sub.expect(PacketType.Publish)).payload.toString(), '2');
    await broker.closeConnections();
  });

  test('[MQTT-3.3.4-7] Receive Maximum (broker): a client exceeding it is disconnected with 0x93', async () => {
    const broker = new BrokerCore({ receiveMaximum: 2 });
    const pub = (await TestClient.connect(broker, { ...v5, clientId: 'rx' })).client;
    for (let id = 1; id <= 3; id++) pub.publish('rx', 'x', 2, id);
    await pub.expect(PacketType.Pubrec);
    await pub.expect(PacketType.Pubrec);
    assert.equal(await disconnectOf(pub), ReasonCode.ReceiveMaximumExceeded);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.2-25] Maximum Packet Size (client): a larger message is not sent to that client', async () => {
    const broker = new BrokerCore();
    const reasons: string[] = [];
    broker.on('messageDropped', (_c, _t, reason) => reasons.push(reason));
    const sub = (await TestClient.connect(broker, { ...v5, clientId: 'mps', properties: { maximumPacketSize: 64 } })).client;
    await sub.subscribe('m', 0);
    await broker.publish({ topic: 'm', payload: Buffer.alloc(100) });
    await broker.publish({ topic: 'm', payload: 'small' });
    assert.equal((await sub.expect(PacketType.Publish)).payload.toString(), 'small');
    assert.deepEqual(reasons, ['too-large']);
    await broker.closeConnections();
  });

  test('Maximum Packet Size (broker): a larger inbound packet gets DISCONNECT 0x95', async () => {
    const broker = new BrokerCore({ maxPacketSize: 128 });
    const c = (await TestClient.connect(broker, { ...v5, clientId: 'big' })).client;
    c.publish('t', Buffer.alloc(200), 0);
    assert.equal(await disconnectOf(c), ReasonCode.PacketTooLarge);
    await broker.closeConnections();
  });

  test('Request Problem Information 0: no reason string on DISCONNECT; 1: reason string present', async () => {
    const broker = new BrokerCore({ maximumQoS: 0 });
    const quiet = (await TestClient.connect(broker, { ...v5, clientId: 'quiet', properties: { requestProblemInformation: false } })).client;
    quiet.publish('t', 'x', 1, 1);
    const d1 = await quiet.expect(PacketType.Disconnect);
    assert.equal(d1.properties?.reasonString, undefined);
    const loud = (await TestClient.connect(broker, { ...v5, clientId: 'loud' })).client;
    loud.publish('t', 'x', 1, 1);
    const d2 = await loud.expect(PacketType.Disconnect);
    assert.equal(typeof d2.properties?.reasonString, 'string');
    await broker.closeConnections();
  });

  test('broker-initiated DISCONNECT: 0x8E session taken over, 0x8D keep alive timeout, 0x98 administrative action, 0x8B shutting down', async () => {
    const clock = new ManualClock(0);
    const broker = new BrokerCore({ clock });
    const first = (await TestClient.connect(broker, { ...v5, clientId: 'same' })).client;
    await TestClient.connect(broker, { ...v5, clientId: 'same' });
    assert.equal(await disconnectOf(first), ReasonCode.SessionTakenOver);
    const idle = (await TestClient.connect(broker, { ...v5, clientId: 'idle', keepalive: 2 })).client;
    clock.advance(3_100);
    assert.equal(await disconnectOf(idle), ReasonCode.KeepAliveTimeout);
    const kicked = (await TestClient.connect(broker, { ...v5, clientId: 'kicked' })).client;
    assert.equal(broker.disconnect('kicked'), true);
    assert.equal(await disconnectOf(kicked), ReasonCode.AdministrativeAction);
    const moved = (await TestClient.connect(broker, { ...v5, clientId: 'moved' })).client;
    broker.disconnect('moved', ReasonCode.UseAnotherServer, 'other:1883');
    const dm = await moved.expect(PacketType.Disconnect);
    assert.deepEqual([dm.reasonCode, dm.properties?.serverReference], [ReasonCode.UseAnotherServer, 'other:1883']);
    const last = (await TestClient.connect(broker, { ...v5, clientId: 'last' })).client;
    const closing = broker.closeConnections();
    assert.equal(await disconnectOf(last), ReasonCode.ServerShuttingDown);
    await closing;
  });
});
