/**
 * Protocol rules enforced at the edges: Retain Available for every protocol version, the wrong
 * acknowledgement for a delivery, properties a client may not send, malformed names and
 * filters, which DISCONNECT deletes the will, DISCONNECT during enhanced authentication, MQTT 3.1
 * CONNECT flags, and what a DISCONNECT's reason string may say.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { createScramSha256, ScramClient, scramCredential } from '../../src/auth/index.js';
import { BrokerCore } from '../../src/broker/broker.js';
import { PacketType, ReasonCode } from '../../src/protocol/index.js';
import { hex } from '../helpers/codec-hex.js';
import { TestClient, waitClosed } from '../helpers/duplex-client.js';

async function disconnectOf(c: TestClient): Promise<number | undefined> {
  const d = await c.expect(PacketType.Disconnect);
  await waitClosed(c);
  return d.reasonCode;
}

/** A 5.0 subscriber with Retain As Published, so a RETAIN flag would show on live copies. */
async function rapSubscriber(broker: BrokerCore, clientId: string, filter: string): Promise<TestClient> {
  const { client } = await TestClient.connect(broker, { version: 5, clientId });
  client.send({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: filter, qos: 1, retainAsPublished: true }] });
  await client.expect(PacketType.Suback);
  return client;
}

describe('Retain Available 0 for every protocol version [MQTT-3.2.2-14]', () => {
  for (const version of [3, 4] as const) {
    test(`level ${version}: a retained PUBLISH is delivered without RETAIN and not stored`, async () => {
      const broker = new BrokerCore({ retainAvailable: false });
      const sub = await rapSubscriber(broker, `ra-sub-${version}`, 'ra/#');
      const pub = (await TestClient.connect(broker, { version, clientId: `ra-pub-${version}` })).client;
      pub.publish('ra/t', 'kept?', 1, 7, true);
      assert.equal((await pub.expect(PacketType.Puback)).packetId, 7);
      const live = await sub.expect(PacketType.Publish);
      assert.equal(live.retain, false);
      const late = (await TestClient.connect(broker, { version: 5, clientId: `ra-late-${version}` })).client;
      assert.deepEqual(await late.subscribe('ra/#', 1), [1]);
      await late.expectNothing();
      await broker.closeConnections();
    });

    test(`level ${version}: a retained will is published without RETAIN and not stored`, async () => {
      const broker = new BrokerCore({ retainAvailable: false });
      const sub = await rapSubscriber(broker, `raw-sub-${version}`, 'raw/#');
      const will = { topic: 'raw/gone', payload: Buffer.from('bye'), qos: 0 as const, retain: true };
      const a = (await TestClient.connect(broker, { version, clientId: `raw-a-${version}`, will })).client;
      a.drop();
      const msg = await sub.expect(PacketType.Publish);
      assert.equal(msg.topic, 'raw/gone');
      assert.equal(msg.retain, false);
      const late = (await TestClient.connect(broker, { version: 5, clientId: `raw-late-${version}` })).client;
      assert.deepEqual(await late.subscribe('raw/#', 1), [1]);
      await late.expectNothing();
      await broker.closeConnections();
    });
  }
});

describe('the wrong acknowledgement for a delivery in flight is a protocol error', () => {
  /** A subscriber at `qos` that has just received one PUBLISH; returns it and the packet identifier. */
  async function delivered(version: 4 | 5, qos: 1 | 2, id: string): Promise<{ broker: BrokerCore; sub: TestClient; packetId: number }> {
    const broker = new BrokerCore();
    const { client: sub } = await TestClient.connect(broker, { version, clientId: id });
    await sub.subscribe('ack/t', qos);
    const pub = (await TestClient.connect(broker, { version: 4, clientId: `${id}-pub` })).client;
    pub.publish('ack/t', 'm', qos, 1);
    const msg = await sub.expect(PacketType.Publish);
    return { broker, sub, packetId: msg.packetId as number };
  }

  const cases: { name: string; qos: 1 | 2; before?: 'pubrec'; answer: typeof PacketType.Puback | typeof PacketType.Pubrec | typeof PacketType.Pubcomp }[] = [
    { name: 'PUBREC for a QoS 1 PUBLISH', qos: 1, answer: PacketType.Pubrec },
    { name: 'PUBCOMP for a QoS 1 PUBLISH', qos: 1, answer: PacketType.Pubcomp },
    { name: 'PUBACK for a QoS 2 PUBLISH', qos: 2, answer: PacketType.Puback },
    { name: 'PUBCOMP for a QoS 2 PUBLISH before PUBREC', qos: 2, answer: PacketType.Pubcomp },
    { name: 'PUBACK for a QoS 2 PUBLISH after PUBREL', qos: 2, before: 'pubrec', answer: PacketType.Puback },
  ];
  for (const k of cases) {
    test(`${k.name}: 3.1.1 closes the connection, 5.0 sends DISCONNECT 0x82`, async () => {
      for (const version of [4, 5] as const) {
        const { broker, sub, packetId } = await delivered(version, k.qos, `ack-${version}-${k.answer}-${k.qos}`);
        // An unknown identifier is still ignored: it may answer a message resent before a reconnect.
        sub.send({ type: PacketType.Puback, packetId: packetId + 100 });
        sub.send({ type: PacketType.Pubcomp, packetId: packetId + 100 });
        await sub.expectNothing();
        if (k.before === 'pubrec') {
          sub.send({ type: PacketType.Pubrec, packetId });
          await sub.expect(PacketType.Pubrel);
        }
        sub.send({ type: k.answer, packetId });
        if (version === 5) assert.equal(await disconnectOf(sub), ReasonCode.ProtocolError);
        else {
          await waitClosed(sub);
          await assert.rejects(sub.next(50), /stream ended/);
        }
        await broker.closeConnections();
      }
    });
  }

  test('5.0: PUBREC for an unknown identifier is still answered with PUBREL 0x92', async () => {
    const { broker, sub, packetId } = await delivered(5, 1, 'ack-unknown');
    sub.send({ type: PacketType.Puback, packetId });
    sub.send({ type: PacketType.Pubrec, packetId: packetId + 1 });
    const rel = await sub.expect(PacketType.Pubrel);
    assert.equal(rel.reasonCode, ReasonCode.PacketIdentifierNotFound);
    // and PUBREC for the QoS 1 delivery it already acknowledged is now unknown, not a mismatch
    sub.send({ type: PacketType.Pubrec, packetId });
    assert.equal((await sub.expect(PacketType.Pubrel)).reasonCode, ReasonCode.PacketIdentifierNotFound);
    // while PUBREC for a QoS 1 delivery still in flight is not
    const pub = (await TestClient.connect(broker, { version: 4, clientId: 'ack-unknown-pub2' })).client;
    pub.publish('ack/t', 'm2', 1, 2);
    const next = await sub.expect(PacketType.Publish);
    sub.send({ type: PacketType.Pubrec, packetId: next.packetId as number });
    assert.equal(await disconnectOf(sub), ReasonCode.ProtocolError);
    await broker.closeConnections();
  });
});

describe('MQTT 5.0 properties a client may not send, or not so', () => {
  test('[MQTT-3.3.4-6] a PUBLISH from a client with a Subscription Identifier: DISCONNECT 0x82', async () => {
    const broker = new BrokerCore();
    const { client: c } = await TestClient.connect(broker, { version: 5, clientId: 'subid' });
    c.publish('t', 'x', 1, 1, false, { subscriptionIdentifiers: [3] });
    assert.equal(await disconnectOf(c), ReasonCode.ProtocolError);
    await broker.closeConnections();
  });

  test('§3.1.2.11.10 CONNECT with Authentication Data but no Authentication Method: CONNACK 0x82', async () => {
    const broker = new BrokerCore();
    const { client: c, connack } = await TestClient.connect(broker, { version: 5, clientId: 'adata', properties: { authenticationData: Buffer.from('x') } });
    assert.equal(connack.reasonCode, ReasonCode.ProtocolError);
    await waitClosed(c);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.3-11] a will Response Topic that is empty or holds wildcards: CONNACK 0x82', async () => {
    const broker = new BrokerCore();
    for (const responseTopic of ['', 'reply/+', 'reply/#']) {
      const will = { topic: 'w', payload: Buffer.from('x'), qos: 0 as const, retain: false, properties: { responseTopic } };
      const { client: c, connack } = await TestClient.connect(broker, { version: 5, clientId: `wrt-${responseTopic.length}`, will });
      assert.equal(connack.reasonCode, ReasonCode.ProtocolError, `response topic '${responseTopic}'`);
      await waitClosed(c);
    }
    assert.equal(broker.clients().length, 0);
    await broker.closeConnections();
  });

  test('[MQTT-3.3.2-14] a PUBLISH Response Topic that is empty or holds wildcards: DISCONNECT 0x82', async () => {
    const broker = new BrokerCore();
    for (const responseTopic of ['', 'reply/+', '#']) {
      const { client: c } = await TestClient.connect(broker, { version: 5, clientId: `prt-${responseTopic.length}` });
      c.publish('t', 'x', 0, undefined, false, { responseTopic });
      assert.equal(await disconnectOf(c), ReasonCode.ProtocolError, `response topic '${responseTopic}'`);
    }
    await broker.closeConnections();
  });
});

describe('MQTT 5.0 malformed names and filters: DISCONNECT 0x81', () => {
  test('[MQTT-4.7.3-1] an empty topic filter in SUBSCRIBE', async () => {
    const broker = new BrokerCore();
    const { client: c } = await TestClient.connect(broker, { version: 5, clientId: 'emptysub' });
    // SUBSCRIBE, packet id 1, no properties, filter "" with options 0
    c.sendRaw(hex('82 06  00 01  00  00 00  00'));
    assert.equal(await disconnectOf(c), ReasonCode.MalformedPacket);
    await broker.closeConnections();
  });

  test('[MQTT-4.7.3-1] an empty topic filter in UNSUBSCRIBE', async () => {
    const broker = new BrokerCore();
    const { client: c } = await TestClient.connect(broker, { version: 5, clientId: 'emptyunsub' });
    c.sendRaw(hex('a2 05  00 01  00  00 00'));
    assert.equal(await disconnectOf(c), ReasonCode.MalformedPacket);
    await broker.closeConnections();
  });

  test('[MQTT-4.7.1-2] a misplaced "#" in SUBSCRIBE', async () => {
    const broker = new BrokerCore();
    const { client: c } = await TestClient.connect(broker, { version: 5, clientId: 'badsub' });
    c.sendRaw(hex('82 09  00 01  00  00 03 "a#b"  00'));
    assert.equal(await disconnectOf(c), ReasonCode.MalformedPacket);
    await broker.closeConnections();
  });
});

describe('MQTT 5.0 wills and DISCONNECT', () => {
  test('[MQTT-3.1.2-8] only DISCONNECT 0x00 deletes the will: an error code publishes it', async () => {
    const broker = new BrokerCore();
    const { client: sub } = await TestClient.connect(broker, { version: 5, clientId: 'dw-sub' });
    await sub.subscribe('dw/#', 0);
    const will = { topic: 'dw/gone', payload: Buffer.from('bye'), qos: 0 as const, retain: false };
    const a = (await TestClient.connect(broker, { version: 5, clientId: 'dw-a', will })).client;
    a.send({ type: PacketType.Disconnect, reasonCode: ReasonCode.UnspecifiedError });
    await waitClosed(a);
    assert.equal((await sub.expect(PacketType.Publish)).topic, 'dw/gone');
    const b = (await TestClient.connect(broker, { version: 5, clientId: 'dw-b', will: { ...will, topic: 'dw/normal' } })).client;
    b.send({ type: PacketType.Disconnect, reasonCode: ReasonCode.NormalDisconnection });
    await waitClosed(b);
    await sub.expectNothing();
    await broker.closeConnections();
  });

  for (const version of [4, 5] as const) {
    test(`[MQTT-3.1.2-8] v${version}: a takeover that continues the session (Clean Start 0) does not publish the old will; Clean Start 1 does`, async () => {
      const broker = new BrokerCore();
      const { client: sub } = await TestClient.connect(broker, { version, clientId: `tw-sub-${version}` });
      await sub.subscribe('tw/#', 0);
      const will = { topic: 'tw/gone', payload: Buffer.from('bye'), qos: 0 as const, retain: false };
      const persistent = version === 5 ? { properties: { sessionExpiryInterval: 300 } } : {};
      const first = (await TestClient.connect(broker, { version, clientId: `tw-${version}`, clean: false, will, ...persistent })).client;
      const second = await TestClient.connect(broker, { version, clientId: `tw-${version}`, clean: false, ...persistent });
      assert.equal(second.connack.sessionPresent, true);
      await waitClosed(first);
      await sub.expectNothing(); // the session goes on: no will
      // A takeover with Clean Start 1 ends the session: the will of the connection taken over is published.
      const third = (await TestClient.connect(broker, { version, clientId: `tw-${version}`, clean: false, will: { ...will, topic: 'tw/ended' }, ...persistent })).client;
      await waitClosed(second.client);
      const fourth = (await TestClient.connect(broker, { version, clientId: `tw-${version}`, clean: true })).client;
      await waitClosed(third);
      assert.equal((await sub.expect(PacketType.Publish)).topic, 'tw/ended');
      await fourth.expectNothing();
      await broker.closeConnections();
    });
  }

  test('a DISCONNECT during enhanced authentication closes the connection quietly, without CONNACK', async () => {
    const users = new Map([['alice', scramCredential('wonderland', { iterations: 4096 })]]);
    const broker = new BrokerCore({ authMechanisms: [createScramSha256({ lookup: (u) => users.get(u) })] });
    const c = new TestClient(broker, 5);
    c.send({
      type: PacketType.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: 'scram-quit', clean: true, keepalive: 0,
      properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: new ScramClient('alice', 'wonderland').firstMessage() },
    });
    assert.equal((await c.expect(PacketType.Auth)).reasonCode, ReasonCode.ContinueAuthentication);
    c.send({ type: PacketType.Disconnect });
    await waitClosed(c);
    await assert.rejects(c.next(50), /stream ended/);
    assert.equal(broker.clients().length, 0);
    await broker.closeConnections();
  });
});

describe('MQTT 3.1 CONNECT flags', () => {
  test('a 3.1 CONNECT with the reserved connect flag or fixed-header flags set is accepted; 3.1.1 still refuses it', async () => {
    const broker = new BrokerCore();
    for (const [first, flags] of [['10', '03'], ['12', '02'], ['1f', '03']] as const) {
      const c = new TestClient(broker, 3);
      c.sendRaw(hex(`${first} 0f  00 06 "MQIsdp" 03 ${flags} 00 00 00 01 "c"`));
      const connack = await c.expect(PacketType.Connack);
      assert.equal(connack.reasonCode, 0, `first byte ${first}, connect flags ${flags}`);
      await c.expectNothing();
    }
    // [MQTT-3.1.2-3]: 3.1.1 still closes a CONNECT with the reserved flag.
    const c = new TestClient(broker, 4);
    c.sendRaw(hex('10 0d  00 04 "MQTT" 04 03 00 00 00 01 "c"'));
    await waitClosed(c);
    assert.deepEqual(c.raw, []);
    await broker.closeConnections();
  });
});

describe('DISCONNECT reason strings', () => {
  test('a failing hook gives 0x80 without its text and keeps the connection', async () => {
    const broker = new BrokerCore({
      authorizePublish: () => {
        throw new Error('database password is hunter2');
      },
    });
    const { client: c } = await TestClient.connect(broker, { version: 5, clientId: 'leak' });
    c.publish('t', 'x', 1, 1);
    const ack = await c.expect(PacketType.Puback);
    assert.equal(ack.reasonCode, ReasonCode.UnspecifiedError);
    assert.doesNotMatch(ack.properties?.reasonString ?? '', /hunter2/);
    await c.expectNothing();
    await broker.closeConnections();
  });
});
