import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { encode, PacketType, ReasonCode } from '../../src/protocol/index.js';
import { TestClient, waitClosed } from '../helpers/duplex-client.js';

describe('CONNECT and CONNACK', () => {
  test('[MQTT-3.1.0-1] a first packet other than CONNECT closes the connection', async () => {
    const broker = new BrokerCore();
    const c = new TestClient(broker);
    c.send({ type: PacketType.Pingreq });
    await waitClosed(c);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.0-2] a second CONNECT is a protocol violation and closes the connection', async () => {
    const broker = new BrokerCore();
    const { client } = await TestClient.connect(broker, { clientId: 'twice' });
    client.send({ type: PacketType.Connect, protocolVersion: 4, protocolName: 'MQTT', clientId: 'twice', clean: true, keepalive: 0 });
    await waitClosed(client);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.2-2] an unsupported protocol level is answered with CONNACK 0x01 and closed', async () => {
    const broker = new BrokerCore();
    const c = new TestClient(broker);
    // CONNECT, "MQTT" level 6, clean session, keepalive 0, client id "x"
    c.sendRaw([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x06, 0x02, 0x00, 0x00, 0x00, 0x01, 0x78]);
    await waitClosed(c);
    assert.deepEqual([...Buffer.concat(c.raw)], [0x20, 0x02, 0x00, 0x01]);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.3-8] a zero-length client id with clean session 0 is rejected with 0x02 (3.1.1)', async () => {
    const broker = new BrokerCore();
    const { client, connack } = await TestClient.connect(broker, { clientId: '', clean: false });
    assert.equal(connack.reasonCode, ReasonCode.ClientIdentifierNotValid);
    assert.deepEqual([...Buffer.concat(client.raw)], [0x20, 0x02, 0x00, 0x02]);
    await waitClosed(client);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.3-6] a zero-length client id with clean session 1 gets an assigned id', async () => {
    const broker = new BrokerCore();
    const { client, connack } = await TestClient.connect(broker, { clientId: '', clean: true });
    assert.equal(connack.reasonCode, 0);
    assert.equal(broker.clients().length, 1);
    assert.match(broker.clients()[0]?.clientId ?? '', /^petrel-/);
    client.disconnect();
    await broker.closeConnections();
  });

  test('MQTT 3.1 (MQIsdp) clients connect', async () => {
    const broker = new BrokerCore();
    const { client, connack } = await TestClient.connect(broker, { clientId: 'old', version: 3 });
    assert.equal(connack.reasonCode, 0);
    client.disconnect();
    await broker.closeConnections();
  });

  test('[MQTT-3.1.4-2] a second connection with the same client id takes over and closes the first', async () => {
    const broker = new BrokerCore();
    const lost: string[] = [];
    broker.on('connectionLost', (c) => lost.push(c.clientId));
    const first = await TestClient.connect(broker, { clientId: 'same' });
    const second = await TestClient.connect(broker, { clientId: 'same' });
    assert.equal(second.connack.reasonCode, 0);
    await waitClosed(first.client);
    assert.deepEqual(lost, ['same']);
    assert.equal(broker.clients().length, 1);
    await second.client.expectNothing();
    second.client.disconnect();
    await broker.closeConnections();
  });

  test('[MQTT-3.2.2-2] [MQTT-3.2.2-3] session present reflects a resumed session', async () => {
    const broker = new BrokerCore();
    const a = await TestClient.connect(broker, { clientId: 'p', clean: false });
    assert.equal(a.connack.sessionPresent, false);
    a.client.disconnect();
    await waitClosed(a.client);
    const b = await TestClient.connect(broker, { clientId: 'p', clean: false });
    assert.equal(b.connack.sessionPresent, true);
    b.client.disconnect();
    await waitClosed(b.client);
    const c = await TestClient.connect(broker, { clientId: 'p', clean: true });
    assert.equal(c.connack.sessionPresent, false);
    c.client.disconnect();
    await broker.closeConnections();
  });

  test('authenticate hook refuses with 0x04 (3.1.1) and accepts good credentials', async () => {
    const broker = new BrokerCore({
      authenticate: async (ctx) => ctx.username === 'u' && ctx.password?.toString() === 'p',
    });
    const bad = await TestClient.connect(broker, { clientId: 'a', username: 'u', password: Buffer.from('x') });
    assert.equal(bad.connack.reasonCode, ReasonCode.BadUserNameOrPassword);
    assert.deepEqual([...Buffer.concat(bad.client.raw)], [0x20, 0x02, 0x00, 0x04]);
    await waitClosed(bad.client);
    const good = await TestClient.connect(broker, { clientId: 'a', username: 'u', password: Buffer.from('p') });
    assert.equal(good.connack.reasonCode, 0);
    good.client.disconnect();
    await broker.closeConnections();
  });

  test('packets sent behind a CONNECT that waits for an async hook are handled after it, in order', async () => {
    const broker = new BrokerCore({ authenticate: () => new Promise((resolve) => setTimeout(() => resolve(true), 20)) });
    const c = new TestClient(broker);
    const bytes = Buffer.concat([
      encode({ type: PacketType.Connect, protocolVersion: 4, protocolName: 'MQTT', clientId: 'early', clean: true, keepalive: 0 }, 4),
      encode({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: 'self', qos: 0 }] }, 4),
      encode({ type: PacketType.Publish, topic: 'self', payload: Buffer.from('me'), qos: 0, retain: false, dup: false }, 4),
      encode({ type: PacketType.Pingreq }, 4),
    ]);
    c.sendRaw(bytes);
    assert.deepEqual(
      [(await c.next()).type, (await c.next()).type, (await c.next()).type, (await c.next()).type],
      [PacketType.Connack, PacketType.Suback, PacketType.Publish, PacketType.Pingresp],
    );
    await broker.closeConnections();
  });

  test('a connection that sends no CONNECT within connectTimeout is closed; a connected one without keep alive stays', async () => {
    const { ManualClock } = await import('../../src/session/clock.js');
    const clock = new ManualClock(0);
    const broker = new BrokerCore({ clock, connectTimeout: 10 });
    const silent = new TestClient(broker);
    const { client: quiet } = await TestClient.connect(broker, { clientId: 'quiet', keepalive: 0 });
    clock.advance(9_000);
    await quiet.expectNothing();
    assert.equal(silent.ended, false);
    clock.advance(1_200);
    await waitClosed(silent);
    // Well past the connect deadline and with keep alive 0, the connected client is still served.
    clock.advance(60_000);
    await new Promise((resolve) => setTimeout(resolve, 250));
    await quiet.expectNothing();
    await broker.closeConnections();
  });

  test('[MQTT-3.12.4-1] PINGREQ is answered with PINGRESP', async () => {
    const broker = new BrokerCore();
    const { client } = await TestClient.connect(broker, { clientId: 'ping' });
    client.send({ type: PacketType.Pingreq });
    await client.expect(PacketType.Pingresp);
    client.disconnect();
    await broker.closeConnections();
  });

  test('[MQTT-3.1.2-24] keep alive: no packet within 1.5 x the interval closes the connection', async () => {
    const { ManualClock } = await import('../../src/session/clock.js');
    const clock = new ManualClock(1000);
    const broker = new BrokerCore({ clock });
    const lost: string[] = [];
    broker.on('connectionLost', (c) => lost.push(c.clientId));
    const { client } = await TestClient.connect(broker, { clientId: 'ka', keepalive: 10 });
    clock.advance(14_000);
    await client.expectNothing(); // still open at 1.4 x; the ping also refreshes the deadline
    clock.advance(15_100);
    await waitClosed(client);
    assert.deepEqual(lost, ['ka']);
    await broker.closeConnections();
  });
});
