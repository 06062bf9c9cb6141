/**
 * The client's Maximum Packet Size is never exceeded, whatever the packet [MQTT-3.1.2-24]:
 * reason strings and user properties are left out where they would exceed it [MQTT-3.4.2-2]
 * (and the same rule for SUBACK, DISCONNECT, CONNACK…); a packet that cannot fit even without
 * them is not sent and the connection closes.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { PacketType, ReasonCode } from '../../src/protocol/index.js';
import { TestClient, waitClosed } from '../helpers/duplex-client.js';

/** Sizes of the whole packets the client received, from the raw bytes (fixed header included). */
function packetSizes(c: TestClient): number[] {
  const all = Buffer.concat(c.raw);
  const sizes: number[] = [];
  let pos = 0;
  while (pos < all.length) {
    let remaining = 0;
    let mul = 1;
    let i = pos + 1;
    for (;;) {
      const b = all[i++] as number;
      remaining += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) break;
      mul *= 128;
    }
    sizes.push(i - pos + remaining);
    pos = i + remaining;
  }
  return sizes;
}

describe('MQTT 5.0 Maximum Packet Size of the client, for every packet', () => {
  test('[MQTT-3.1.2-24] [MQTT-3.4.2-2] PUBACK, SUBACK and DISCONNECT leave out their reason strings to fit 16 bytes', async () => {
    const broker = new BrokerCore({ authorizePublish: () => false, authorizeSubscribe: () => false });
    const { client: c, connack } = await TestClient.connect(broker, { version: 5, clientId: 'mps16', properties: { maximumPacketSize: 16 } });
    assert.equal(connack.reasonCode, ReasonCode.Success);
    c.publish('t', 'x', 1, 1);
    const puback = await c.expect(PacketType.Puback);
    assert.equal(puback.reasonCode, ReasonCode.NotAuthorized);
    assert.equal(puback.properties?.reasonString, undefined);
    assert.deepEqual(await c.subscribe('t', 1), [ReasonCode.NotAuthorized]);
    // A protocol error: the DISCONNECT keeps its reason code, without the reason string.
    c.publish('t', 'x', 0, undefined, false, { subscriptionIdentifiers: [1] });
    const d = await c.expect(PacketType.Disconnect);
    assert.equal(d.reasonCode, ReasonCode.ProtocolError);
    assert.equal(d.properties?.reasonString, undefined);
    await waitClosed(c);
    const sizes = packetSizes(c);
    assert.equal(sizes.length, 4);
    for (const size of sizes) assert.ok(size <= 16, `a ${size}-byte packet went to a client that allows 16: ${sizes.join(', ')}`);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.2-24] a refusing CONNACK leaves out its reason string to fit', async () => {
    const broker = new BrokerCore({ authenticate: () => false });
    const { client: c, connack } = await TestClient.connect(broker, { version: 5, clientId: 'mps8', properties: { maximumPacketSize: 8 } });
    assert.equal(connack.reasonCode, ReasonCode.BadUserNameOrPassword);
    assert.equal(connack.properties?.reasonString, undefined);
    await waitClosed(c);
    assert.deepEqual(packetSizes(c).filter((n) => n > 8), []);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.2-24] a DISCONNECT for a takeover leaves out its reason string to fit', async () => {
    const broker = new BrokerCore();
    const first = (await TestClient.connect(broker, { version: 5, clientId: 'mps-take', properties: { maximumPacketSize: 16 } })).client;
    await TestClient.connect(broker, { version: 5, clientId: 'mps-take' });
    const d = await first.expect(PacketType.Disconnect);
    assert.equal(d.reasonCode, ReasonCode.SessionTakenOver);
    assert.equal(d.properties?.reasonString, undefined);
    await waitClosed(first);
    assert.deepEqual(packetSizes(first).filter((n) => n > 16), []);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.2-24] a client that cannot receive even a bare CONNACK is closed without one', async () => {
    const broker = new BrokerCore();
    const c = new TestClient(broker, 5);
    c.send({
      type: PacketType.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: 'mps2', clean: true, keepalive: 0,
      properties: { maximumPacketSize: 2 },
    });
    await waitClosed(c);
    assert.deepEqual(c.raw, [], 'nothing was written to the client');
    assert.equal(broker.clients().length, 0);
    await broker.closeConnections();
  });

  test('[MQTT-3.1.2-24] a refusal the client cannot receive closes the connection without it', async () => {
    const broker = new BrokerCore({ authenticate: () => false });
    const c = new TestClient(broker, 5);
    c.send({
      type: PacketType.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: 'mps3', clean: true, keepalive: 0,
      properties: { maximumPacketSize: 3 },
    });
    await waitClosed(c);
    assert.deepEqual(c.raw, []);
    await broker.closeConnections();
  });
});
