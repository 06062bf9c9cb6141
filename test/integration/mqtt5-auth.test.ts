import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createScramSha256, ScramClient, scramCredential } from '../../src/auth/index.js';
import { BrokerCore } from '../../src/broker/broker.js';
import { PacketType, ReasonCode } from '../../src/protocol/index.js';
import { TestClient, waitClosed } from '../helpers/duplex-client.js';

const users = new Map([['alice', scramCredential('wonderland', { iterations: 4096 })]]);

function scramBroker(): BrokerCore {
  return new BrokerCore({ authMechanisms: [createScramSha256({ lookup: (u) => users.get(u) })] });
}

/** Runs CONNECT → AUTH 0x18 → AUTH 0x18 → CONNACK; returns the client, the CONNACK and the SCRAM client. */
async function scramConnect(broker: BrokerCore, username: string, password: string) {
  const scram = new ScramClient(username, password);
  const client = new TestClient(broker, 5);
  client.send({
    type: PacketType.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: `scram-${username}`, clean: true, keepalive: 0,
    properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.firstMessage() },
  });
  const challenge = await client.expect(PacketType.Auth);
  assert.equal(challenge.reasonCode, ReasonCode.ContinueAuthentication);
  assert.equal(challenge.properties?.authenticationMethod, 'SCRAM-SHA-256');
  client.send({
    type: PacketType.Auth, reasonCode: ReasonCode.ContinueAuthentication,
    properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: scram.finalMessage(challenge.properties?.authenticationData as Buffer) },
  });
  const connack = await client.expect(PacketType.Connack);
  return { client, connack, scram };
}

describe('MQTT 5.0 enhanced authentication (SCRAM-SHA-256)', () => {
  test('[MQTT-4.12.0-1] CONNECT, AUTH 0x18 challenge, AUTH 0x18 response, CONNACK with the server signature', async () => {
    const broker = scramBroker();
    const { client, connack, scram } = await scramConnect(broker, 'alice', 'wonderland');
    assert.equal(connack.reasonCode, ReasonCode.Success);
    assert.equal(connack.properties?.authenticationMethod, 'SCRAM-SHA-256');
    assert.equal(scram.verifyServerFinal(connack.properties?.authenticationData as Buffer), true);
    await client.expectNothing();
    await broker.closeConnections();
  });

  test('a wrong password is refused with CONNACK 0x87 and the connection closed', async () => {
    const broker = scramBroker();
    const { client, connack } = await scramConnect(broker, 'alice', 'guess');
    assert.equal(connack.reasonCode, ReasonCode.NotAuthorized);
    await waitClosed(client);
    await broker.closeConnections();
  });

  test('an unknown authentication method is refused with CONNACK 0x8C', async () => {
    const broker = scramBroker();
    const { connack } = await TestClient.connect(broker, { version: 5, clientId: 'm', properties: { authenticationMethod: 'KERBEROS' } });
    assert.equal(connack.reasonCode, ReasonCode.BadAuthenticationMethod);
    await broker.closeConnections();
  });

  test('[MQTT-4.12.1-1] re-authentication with AUTH 0x19 on a live connection ends with AUTH 0x00', async () => {
    const broker = scramBroker();
    const { client } = await scramConnect(broker, 'alice', 'wonderland');
    const again = new ScramClient('alice', 'wonderland');
    client.send({ type: PacketType.Auth, reasonCode: ReasonCode.ReAuthenticate, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: again.firstMessage() } });
    const challenge = await client.expect(PacketType.Auth);
    assert.equal(challenge.reasonCode, ReasonCode.ContinueAuthentication);
    client.send({
      type: PacketType.Auth, reasonCode: ReasonCode.ContinueAuthentication,
      properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: again.finalMessage(challenge.properties?.authenticationData as Buffer) },
    });
    const done = await client.expect(PacketType.Auth);
    assert.equal(done.reasonCode ?? 0, ReasonCode.Success);
    assert.equal(again.verifyServerFinal(done.properties?.authenticationData as Buffer), true);
    // The connection keeps working.
    assert.deepEqual(await client.subscribe('after/reauth', 0), [0]);
    await broker.closeConnections();
  });

  test('a failed re-authentication disconnects with 0x87', async () => {
    const broker = scramBroker();
    const { client } = await scramConnect(broker, 'alice', 'wonderland');
    const wrong = new ScramClient('alice', 'nope');
    client.send({ type: PacketType.Auth, reasonCode: ReasonCode.ReAuthenticate, properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: wrong.firstMessage() } });
    const challenge = await client.expect(PacketType.Auth);
    client.send({
      type: PacketType.Auth, reasonCode: ReasonCode.ContinueAuthentication,
      properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: wrong.finalMessage(challenge.properties?.authenticationData as Buffer) },
    });
    assert.equal((await client.expect(PacketType.Disconnect)).reasonCode, ReasonCode.NotAuthorized);
    await broker.closeConnections();
  });

  test('AUTH without an authentication method in CONNECT is a protocol error (0x82)', async () => {
    const broker = scramBroker();
    const { client } = await TestClient.connect(broker, { version: 5, clientId: 'plain' });
    client.send({ type: PacketType.Auth, reasonCode: ReasonCode.ReAuthenticate, properties: { authenticationMethod: 'SCRAM-SHA-256' } });
    assert.equal((await client.expect(PacketType.Disconnect)).reasonCode, ReasonCode.ProtocolError);
    await broker.closeConnections();
  });
});
