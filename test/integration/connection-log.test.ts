/**
 * What the default log level (info) shows: one line per connect and per disconnect with stable
 * keys, one per refused connection, and nothing per message. A recording logger is injected.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import type { Logger } from '../../src/observability/logger.js';
import { encode, PacketType, ReasonCode } from '../../src/protocol/index.js';
import { TestClient, waitClosed, within } from '../helpers/duplex-client.js';

interface Line {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps every line; `waitFor` resolves when a line with `msg` arrives. */
class RecordingLogger implements Logger {
  readonly lines: Line[] = [];
  #waiters: { msg: string; resolve: (l: Line) => void }[] = [];
  readonly error = this.#at('error');
  readonly warn = this.#at('warn');
  readonly info = this.#at('info');
  readonly debug = this.#at('debug');
  readonly trace = this.#at('trace');

  #at(level: string): Logger['info'] {
    return ((a: object | string, b?: string) => {
      const line = typeof a === 'string' ? { level, msg: a, fields: {} } : { level, msg: b ?? '', fields: a as Record<string, unknown> };
      this.lines.push(line);
      const [hit, rest] = [this.#waiters.filter((w) => w.msg === line.msg), this.#waiters.filter((w) => w.msg !== line.msg)];
      this.#waiters = rest;
      for (const w of hit) w.resolve(line);
    }) as Logger['info'];
  }

  child(): Logger {
    return this;
  }

  /** Info-level lines (what the default level shows; warn and above show too). */
  get visible(): Line[] {
    return this.lines.filter((l) => l.level === 'info' || l.level === 'warn' || l.level === 'error');
  }

  waitFor(msg: string): Promise<Line> {
    return within(new Promise((resolve) => this.#waiters.push({ msg, resolve })), 3000, `log line "${msg}"`);
  }
}

function open(extra: BrokerOptions = {}): { broker: BrokerCore; log: RecordingLogger } {
  const log = new RecordingLogger();
  return { broker: new BrokerCore({ ...extra, logger: log }), log };
}

describe('connection log lines at the default level', () => {
  test('a 3.1.1 connect and DISCONNECT: one info line each, with clientId, remote, protocolVersion, reasonCode and reason; none per message', async () => {
    const { broker, log } = open();
    const { client } = await TestClient.connect(broker, { clientId: 'alpha', version: 4 });
    assert.deepEqual(log.visible.map((l) => l.msg), ['client connected']);
    const connected = log.visible[0] as Line;
    assert.equal(connected.level, 'info');
    assert.equal(connected.fields.clientId, 'alpha');
    assert.equal(connected.fields.remote, 'test');
    assert.equal(connected.fields.protocolVersion, 4);
    // No info line per message: 200 QoS 1 publishes and their deliveries add nothing at info.
    const sub = (await TestClient.connect(broker, { clientId: 'sub' })).client;
    await sub.subscribe('load/#', 1);
    const before = log.visible.length;
    for (let i = 1; i <= 200; i++) {
      client.publish('load/x', `m${i}`, 1, i);
      await client.expect(PacketType.Puback);
      const p = await sub.expect(PacketType.Publish);
      sub.send({ type: PacketType.Puback, packetId: p.packetId as number });
    }
    await sub.expectNothing();
    assert.equal(log.visible.length, before);
    const gone = log.waitFor('client disconnected');
    client.disconnect();
    const line = await gone;
    assert.equal(line.level, 'info');
    assert.deepEqual(
      [line.fields.clientId, line.fields.remote, line.fields.protocolVersion, line.fields.reasonCode, typeof line.fields.reason],
      ['alpha', 'test', 4, 0, 'string'],
    );
    assert.deepEqual(log.visible.map((l) => [l.msg, l.fields.clientId]), [
      ['client connected', 'alpha'], ['client connected', 'sub'], ['client disconnected', 'alpha'],
    ]);
    await broker.closeConnections();
  });

  test('a 5.0 client lost without DISCONNECT, and a takeover [MQTT-3.1.4-2]: the disconnect line gives the reason', async () => {
    const { broker, log } = open();
    const first = (await TestClient.connect(broker, { clientId: 'beta', version: 5 })).client;
    const takeover = log.waitFor('client disconnected');
    const second = (await TestClient.connect(broker, { clientId: 'beta', version: 5 })).client;
    const taken = await takeover;
    assert.equal(taken.fields.clientId, 'beta');
    assert.equal(taken.fields.protocolVersion, 5);
    assert.equal(taken.fields.reasonCode, ReasonCode.SessionTakenOver);
    await waitClosed(first);
    const lost = log.waitFor('client disconnected');
    second.drop();
    const line = await lost;
    assert.equal(line.fields.reasonCode, undefined);
    assert.equal(typeof line.fields.reason, 'string');
    // connect, takeover, connect, loss: one line each, no protocol-error line beside them.
    assert.deepEqual(log.visible.map((l) => l.msg), ['client connected', 'client disconnected', 'client connected', 'client disconnected']);
    await broker.closeConnections();
  });

  test('bad credentials: one info line naming client, address and reason code 0x86', async () => {
    const { broker, log } = open({ authenticate: ({ password }) => password?.toString() === 'right' });
    const { connack } = await TestClient.connect(broker, { clientId: 'gamma', version: 5, username: 'u', password: Buffer.from('wrong') });
    assert.equal(connack.reasonCode, ReasonCode.BadUserNameOrPassword);
    const refused = log.visible.filter((l) => l.msg === 'connection refused');
    assert.equal(refused.length, 1);
    assert.deepEqual(
      [refused[0]?.fields.clientId, refused[0]?.fields.remote, refused[0]?.fields.reasonCode, refused[0]?.fields.username],
      ['gamma', 'test', ReasonCode.BadUserNameOrPassword, 'u'],
    );
    assert.equal(log.visible.length, 1, 'no connect or disconnect line for a refused client');
    await broker.closeConnections();
  });

  test('[MQTT-3.1.3-8] a refusal by the broker itself (empty client id, Clean Session 0) is one info line too', async () => {
    const { broker, log } = open({});
    const { connack } = await TestClient.connect(broker, { clientId: '', clean: false, version: 4 });
    assert.equal(connack.reasonCode, ReasonCode.ClientIdentifierNotValid);
    const refused = log.visible.filter((l) => l.msg === 'connection refused');
    assert.equal(refused.length, 1);
    assert.equal(refused[0]?.level, 'info');
    assert.equal(refused[0]?.fields.reasonCode, ReasonCode.ClientIdentifierNotValid);
    await broker.closeConnections();
  });

  test('a packet larger than maxPacketSize before CONNACK, and a first packet that is not CONNECT [MQTT-3.1.0-1]: refused at info', async () => {
    const { broker, log } = open({ maxPacketSize: 64 });
    const big = new TestClient(broker, 5);
    const tooLarge = log.waitFor('connection closed on error');
    big.send({ type: PacketType.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: 'x'.repeat(100), clean: true, keepalive: 0 });
    const line = await tooLarge;
    assert.equal(line.level, 'info');
    assert.equal(line.fields.reasonCode, ReasonCode.PacketTooLarge);
    assert.equal(line.fields.remote, 'test');
    const early = new TestClient(broker, 4);
    const protocol = log.waitFor('connection closed on error');
    early.sendRaw(encode({ type: PacketType.Pingreq }, 4));
    assert.equal((await protocol).fields.reasonCode, ReasonCode.ProtocolError);
    await broker.closeConnections();
  });
});
