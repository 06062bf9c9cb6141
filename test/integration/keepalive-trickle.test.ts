/**
 * Keep alive counts whole control packets [MQTT-3.1.2-24]: a client that trickles the bytes of a
 * packet it never completes is closed like a silent one, while a client whose large packet spans
 * many chunks is kept as long as packets do complete.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { BrokerCore } from '../../src/broker/broker.js';
import { encode, PacketType } from '../../src/protocol/index.js';
import { ManualClock, ManualTicker } from '../../src/session/clock.js';
import { TestClient, waitClosed } from '../helpers/duplex-client.js';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('keep alive and partial packets [MQTT-3.1.2-24]', () => {
  test('bytes of a packet that never completes do not keep the connection alive', async () => {
    const clock = new ManualClock(0);
    const ticker = new ManualTicker();
    const broker = new BrokerCore({ clock, ticker, connectTimeout: 0 });
    const { client } = await TestClient.connect(broker, { clientId: 'trickler', keepalive: 2 });
    const publish = encode({ type: PacketType.Publish, topic: 't', payload: Buffer.alloc(200), qos: 0, retain: false, dup: false }, 4);
    let closed = false;
    void waitClosed(client, 60_000).then(() => { closed = true; });
    // One byte every 500 ms of clock time: 12 bytes in 6 s, far from the 205 the packet needs.
    for (let i = 0; i < 12 && !closed; i++) {
      client.sendRaw(publish.subarray(i, i + 1));
      await turn();
      clock.advance(500);
      ticker.tick();
      await turn();
    }
    assert.equal(closed, true, 'closed by keep alive (1.5 × 2 s) although bytes kept arriving');
    await broker.closeConnections();
  });

  test('a packet completed in many chunks keeps the connection alive', async () => {
    const clock = new ManualClock(0);
    const ticker = new ManualTicker();
    const broker = new BrokerCore({ clock, ticker, connectTimeout: 0 });
    const { client } = await TestClient.connect(broker, { clientId: 'slow-but-fine', keepalive: 2 });
    const ping = encode({ type: PacketType.Pingreq }, 4);
    let closed = false;
    void waitClosed(client, 60_000).then(() => { closed = true; });
    // A PINGREQ (2 bytes) sent one byte at a time, every 500 ms: a whole packet each second.
    for (let i = 0; i < 12; i++) {
      client.sendRaw(ping.subarray(i % 2, (i % 2) + 1));
      await turn();
      clock.advance(500);
      ticker.tick();
      await turn();
    }
    assert.equal(closed, false);
    await broker.closeConnections();
  });
});
