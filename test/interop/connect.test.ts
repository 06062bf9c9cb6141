/**
 * MQTT.js against Petrel over TCP: CONNECT / CONNACK, client identifiers, session takeover,
 * PINGREQ and keep alive, for MQTT 3.1, 3.1.1 and (where the behaviour is the same) 5.0.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import mqtt, { type IConnackPacket, type MqttClient } from 'mqtt';
import { PacketType, ReasonCode } from '../../src/protocol/index.js';
import {
  clientOptions, connectClient, endAll, RawClient, startBroker, V3_V4, versionName, VERSIONS, waitFor, WAIT_MS,
} from '../helpers/mqttjs.js';

for (const v of VERSIONS) {
  describe(`${versionName(v)}: connect`, () => {
    test('CONNACK accepts a well-formed CONNECT and the client is listed [MQTT-3.2.0-1]', async (t) => {
      const { broker, url } = await startBroker();
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      const connected = waitFor(broker, 'clientConnected');
      const client = mqtt.connect(url, clientOptions(v, { clientId: `c-${v}` }));
      clients.push(client);
      const [connack] = (await waitFor(client, 'connect')) as [IConnackPacket];
      assert.equal(connack.sessionPresent, false);
      if (v === 5) assert.equal(connack.reasonCode, 0);
      else assert.equal(connack.returnCode, 0);
      const [info] = await connected;
      assert.equal(info.clientId, `c-${v}`);
      assert.equal(info.protocolVersion, v);
      assert.deepEqual(broker.clients().map((c) => c.clientId), [`c-${v}`]);
    });

    test('session takeover: a second client with the same id closes the first [MQTT-3.1.4-2]', async (t) => {
      const { broker, url } = await startBroker();
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      const first = await connectClient(url, v, { clientId: 'same' });
      clients.push(first);
      const firstClosed = waitFor(first, 'close');
      const firstDisconnect = v === 5 ? waitFor(first, 'disconnect') : undefined;
      const lost = waitFor(broker, 'connectionLost');
      const second = await connectClient(url, v, { clientId: 'same' });
      clients.push(second);
      await firstClosed;
      if (firstDisconnect !== undefined) {
        // 5.0: the server tells the old connection why: 0x8E Session taken over.
        const [packet] = await firstDisconnect;
        assert.equal(packet.reasonCode, ReasonCode.SessionTakenOver);
      }
      const [info] = await lost;
      assert.equal(info.clientId, 'same');
      assert.equal(second.connected, true);
      assert.deepEqual(broker.clients().map((c) => c.clientId), ['same']);
      // The new connection works.
      await second.subscribeAsync('takeover/t', { qos: 1 });
      const got = waitFor(second, 'message');
      await second.publishAsync('takeover/t', 'still here', { qos: 1 });
      const [topic, payload] = await got;
      assert.equal(topic, 'takeover/t');
      assert.equal(payload.toString(), 'still here');
    });

    test('PINGREQ is answered with PINGRESP; keep alive pings keep the connection open [MQTT-3.12.4-1]', async (t) => {
      const { broker, url } = await startBroker();
      const clients: MqttClient[] = [];
      t.after(async () => {
        await endAll(clients);
        await broker.close();
      });
      // Keep alive 1 s: MQTT.js sends PINGREQ after 1 s of silence; two answered pings prove it.
      const client = await connectClient(url, v, { clientId: `ping-${v}`, keepalive: 1 });
      clients.push(client);
      const isPingresp = (p: { cmd: string }): boolean => p.cmd === 'pingresp';
      await waitFor(client, 'packetreceive', WAIT_MS, isPingresp);
      await waitFor(client, 'packetreceive', WAIT_MS, isPingresp);
      assert.equal(client.connected, true);
      assert.deepEqual(broker.clients().map((c) => c.clientId), [`ping-${v}`]);
    });

    test('keep alive is enforced: silence past 1.5 × keep alive closes the connection [MQTT-3.1.2-24]', async (t) => {
      const { broker, port } = await startBroker();
      const raw = await RawClient.connect(port, v);
      t.after(async () => {
        raw.destroy();
        await broker.close();
      });
      const lost = waitFor(broker, 'connectionLost');
      raw.sendConnect({ clientId: `ka-${v}`, keepalive: 1 });
      const connack = await raw.take(PacketType.Connack);
      assert.equal(connack.reasonCode, ReasonCode.Success);
      // Say nothing more. The broker must close within 1.5 s (plus timer granularity); bounded wait.
      await raw.waitClosed(WAIT_MS);
      const [info, err] = await lost;
      assert.equal(info.clientId, `ka-${v}`);
      assert.ok(err !== undefined, 'the loss carries the keep alive error');
      if (v === 5) {
        // 5.0: DISCONNECT 0x8D Keep Alive timeout precedes the close.
        const disconnect = await raw.take(PacketType.Disconnect, 0).catch(() => undefined);
        assert.equal(disconnect?.reasonCode, ReasonCode.KeepAliveTimeout);
      }
    });

    test('a client without keep alive is not disconnected by a PINGREQ exchange (raw codec)', async (t) => {
      const { broker, port } = await startBroker();
      const raw = await RawClient.connect(port, v);
      t.after(async () => {
        raw.destroy();
        await broker.close();
      });
      raw.sendConnect({ clientId: `rawping-${v}` });
      await raw.take(PacketType.Connack);
      raw.send({ type: PacketType.Pingreq });
      await raw.take(PacketType.Pingresp);
      raw.send({ type: PacketType.Pingreq });
      await raw.take(PacketType.Pingresp);
      assert.equal(raw.socket.destroyed, false);
    });
  });
}

describe('zero-length client identifiers', () => {
  test('MQTT 3.1.1: zero-length id with Clean Session 0 is refused with CONNACK 0x02 and closed [MQTT-3.1.3-8]', async (t) => {
    const { broker, port } = await startBroker();
    const raw = await RawClient.connect(port, 4);
    t.after(async () => {
      raw.destroy();
      await broker.close();
    });
    // MQTT.js refuses to send this CONNECT, so the raw codec does.
    raw.sendConnect({ clientId: '', clean: false });
    await raw.waitClosed();
    // The exact bytes: CONNACK, remaining length 2, session present 0, return code 2 (identifier rejected).
    assert.deepEqual([...Buffer.concat(raw.chunks)], [0x20, 0x02, 0x00, 0x02]);
    assert.deepEqual(broker.clients(), []);
  });

  test('MQTT 3.1: a zero-length id is refused with return code 2 (3.1 requires 1 to 23 characters)', async (t) => {
    const { broker, port } = await startBroker();
    const raw = await RawClient.connect(port, 3);
    t.after(async () => {
      raw.destroy();
      await broker.close();
    });
    raw.sendConnect({ clientId: '', clean: true });
    await raw.waitClosed();
    assert.deepEqual([...Buffer.concat(raw.chunks)], [0x20, 0x02, 0x00, 0x02]);
  });

  test('MQTT 3.1.1: zero-length id with Clean Session 1 is accepted with a server-assigned id [MQTT-3.1.3-6] [MQTT-3.1.3-7]', async (t) => {
    const { broker, url } = await startBroker();
    const clients: MqttClient[] = [];
    t.after(async () => {
      await endAll(clients);
      await broker.close();
    });
    const connected = waitFor(broker, 'clientConnected');
    const client = await connectClient(url, 4, { clientId: '', clean: true });
    clients.push(client);
    const [info] = await connected;
    assert.ok(info.clientId.length > 0, 'the broker assigned an identifier');
    // Two such clients get distinct ids and do not take each other over.
    const connected2 = waitFor(broker, 'clientConnected');
    const client2 = await connectClient(url, 4, { clientId: '', clean: true });
    clients.push(client2);
    const [info2] = await connected2;
    assert.notEqual(info2.clientId, info.clientId);
    assert.equal(client.connected, true);
    assert.equal(broker.clients().length, 2);
  });

  test('MQTT 5.0: zero-length id is accepted and the Assigned Client Identifier is returned [MQTT-3.2.2-16]', async (t) => {
    const { broker, url } = await startBroker();
    const clients: MqttClient[] = [];
    t.after(async () => {
      await endAll(clients);
      await broker.close();
    });
    const client = mqtt.connect(url, clientOptions(5, { clientId: '' }));
    clients.push(client);
    const [connack] = (await waitFor(client, 'connect')) as [IConnackPacket];
    const assigned = connack.properties?.assignedClientIdentifier;
    assert.equal(typeof assigned, 'string');
    assert.deepEqual(broker.clients().map((c) => c.clientId), [assigned]);
  });
});

for (const v of V3_V4) {
  test(`${versionName(v)}: CONNACK Session Present reflects a stored session [MQTT-3.2.2-1] [MQTT-3.2.2-2] [MQTT-3.2.2-3]`, async (t) => {
    const { broker, url } = await startBroker();
    const clients: MqttClient[] = [];
    t.after(async () => {
      await endAll(clients);
      await broker.close();
    });
    const open = async (clean: boolean): Promise<IConnackPacket> => {
      const c = mqtt.connect(url, clientOptions(v, { clientId: `sp-${v}`, clean }));
      clients.push(c);
      const [connack] = (await waitFor(c, 'connect')) as [IConnackPacket];
      await c.endAsync();
      return connack;
    };
    assert.equal((await open(false)).sessionPresent, false, 'no session yet');
    assert.equal((await open(false)).sessionPresent, true, 'the stored session is resumed');
    assert.equal((await open(true)).sessionPresent, false, 'clean session discards it');
  });
}
