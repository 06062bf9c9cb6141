/**
 * MQTT.js 5.0 against Petrel over TCP: enhanced authentication (SCRAM-SHA-256 through MQTT.js's
 * handleAuth) and the authenticate hook's CONNACK reason codes.
 */
import assert from 'node:assert/strict';
import type { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import mqtt, { type IConnackPacket, type MqttClient } from 'mqtt';
import { createScramSha256, ScramClient, scramCredential } from '../../src/auth/index.js';
import { ReasonCode } from '../../src/protocol/index.js';
import { type Env, setup, v5Options, WAIT_MS, waitFor, withTimeout } from '../helpers/mqttjs-v5.js';

const METHOD = 'SCRAM-SHA-256';
const users = new Map([['alice', scramCredential('wonderland', { iterations: 4096 })]]);
type AuthPacket = Parameters<MqttClient['handleAuth']>[0];

interface ScramRun {
  client: MqttClient;
  scram: ScramClient;
  challenges: AuthPacket[];
  /** The CONNACK, or the error that refused the connection. */
  outcome: Promise<{ connack?: IConnackPacket; error?: Error & { code?: number } }>;
}

/** CONNECT with SCRAM's first message; MQTT.js answers the AUTH 0x18 challenge through handleAuth. */
function scramConnect(env: Env, username: string, password: string): ScramRun {
  const scram = new ScramClient(username, password);
  const client = env.track(mqtt.connect(env.url, v5Options({
    clientId: `scram-${username}-${password}`, manualConnect: true,
    properties: { authenticationMethod: METHOD, authenticationData: scram.firstMessage() },
  })));
  const challenges: AuthPacket[] = [];
  client.handleAuth = (packet, callback) => {
    challenges.push(packet);
    const serverFirst = packet.properties?.authenticationData as Buffer;
    callback(undefined, {
      cmd: 'auth', reasonCode: ReasonCode.ContinueAuthentication,
      properties: { authenticationMethod: METHOD, authenticationData: scram.finalMessage(serverFirst) },
    });
  };
  const outcome = withTimeout(new Promise<{ connack?: IConnackPacket; error?: Error & { code?: number } }>((resolve) => {
    client.once('connect', (connack) => resolve({ connack }));
    client.once('error', (error) => resolve({ error }));
  }), WAIT_MS, 'CONNACK or error');
  client.connect();
  return { client, scram, challenges, outcome };
}

describe('MQTT 5.0 (MQTT.js): enhanced authentication', () => {
  test('[MQTT-4.12.0-1] SCRAM-SHA-256: CONNECT, AUTH 0x18 challenge, AUTH 0x18 response, CONNACK with the server signature', async (t) => {
    const env = await setup(t, { authMechanisms: [createScramSha256({ lookup: (u) => users.get(u) })] });
    const run = scramConnect(env, 'alice', 'wonderland');
    const { connack, error } = await run.outcome;
    assert.equal(error, undefined);
    assert.equal(connack?.reasonCode, ReasonCode.Success);
    assert.equal(run.challenges.length, 1);
    assert.equal(run.challenges[0]?.reasonCode, ReasonCode.ContinueAuthentication);
    assert.equal(run.challenges[0]?.properties?.authenticationMethod, METHOD);
    assert.equal(connack?.properties?.authenticationMethod, METHOD);
    assert.equal(run.scram.verifyServerFinal(connack?.properties?.authenticationData as Buffer), true);
    // The authenticated connection works.
    await run.client.subscribeAsync('scram/t', { qos: 1 });
    const got = waitFor(run.client, 'message');
    await run.client.publishAsync('scram/t', 'hi', { qos: 1 });
    assert.equal((await got)[1].toString(), 'hi');
  });

  test('SCRAM-SHA-256 with a wrong password or unknown user: CONNACK 0x87', async (t) => {
    const env = await setup(t, { authMechanisms: [createScramSha256({ lookup: (u) => users.get(u) })] });
    for (const [user, password] of [['alice', 'guess'], ['mallory', 'wonderland']] as const) {
      const { error, connack } = await scramConnect(env, user, password).outcome;
      assert.equal(connack, undefined);
      assert.equal(error?.code, ReasonCode.NotAuthorized, `${user}/${password}`);
    }
  });

  test('an unknown Authentication Method: CONNACK 0x8C', async (t) => {
    const env = await setup(t, { authMechanisms: [createScramSha256({ lookup: (u) => users.get(u) })] });
    await assert.rejects(
      mqtt.connectAsync(env.url, v5Options({ clientId: 'kerberos', properties: { authenticationMethod: 'KERBEROS' } })),
      (err: Error & { code?: number }) => err.code === ReasonCode.BadAuthenticationMethod,
    );
  });
});

describe('MQTT 5.0 (MQTT.js): authenticate hook', () => {
  test('false refuses with 0x86 Bad User Name or Password; a number is the CONNACK reason code; true accepts', async (t) => {
    const env = await setup(t, {
      authenticate: (ctx) => {
        if (ctx.username === 'banned') return ReasonCode.Banned;
        return ctx.username === 'bob' && ctx.password?.toString() === 'secret';
      },
    });
    const refused = async (username: string, password: string): Promise<number | undefined> => {
      try {
        env.track(await mqtt.connectAsync(env.url, v5Options({ clientId: `hook-${username}`, username, password })));
        return 0;
      } catch (err) {
        return (err as { code?: number }).code;
      }
    };
    assert.equal(await refused('bob', 'wrong'), ReasonCode.BadUserNameOrPassword);
    assert.equal(await refused('banned', 'x'), ReasonCode.Banned);
    assert.equal(await refused('bob', 'secret'), 0);
  });
});
