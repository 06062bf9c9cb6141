/**
 * Differential test against mqtt-packet: random valid packets (seeded) for each protocol level,
 * encoded by Petrel and parsed by mqtt-packet, and encoded by mqtt-packet and decoded by Petrel.
 * Both results must equal the original once mapped to Petrel's model. The generator's
 * restrictions for mqtt-packet are in test/helpers/codec-gen.ts, each with its reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Decoder, encode, type Packet, PacketTypeName } from '../../../src/protocol/index.js';
import { normalize, randomPacket } from '../../helpers/codec-gen.js';
import { toHex } from '../../helpers/codec-hex.js';
import { fromMqttPacket, MqttPacketReader, mqttPacketGenerate } from '../../helpers/codec-mqtt-packet.js';
import { Rng } from '../../helpers/codec-prng.js';

const SEED = 0x5eed_c0de;
const PACKETS_PER_VERSION = 10_000;

function check(i: number, what: string, bytes: Buffer, run: () => void): void {
  try {
    run();
  } catch (err) {
    const shown = bytes.length > 120 ? `${toHex(bytes.subarray(0, 120))} ...` : toHex(bytes);
    throw new Error(`packet #${i}, ${what}, bytes: ${shown}`, { cause: err });
  }
}

describe('differential test against mqtt-packet', () => {
  for (const version of [3, 4, 5] as const) {
    it(`level ${version}: ${PACKETS_PER_VERSION} random packets agree both ways`, () => {
      const rng = new Rng(SEED + version);
      const reader = new MqttPacketReader(version);
      const seen = new Map<string, number>();
      for (let i = 0; i < PACKETS_PER_VERSION; i++) {
        const packet = randomPacket(rng, version, { forMqttPacket: true });
        const name = PacketTypeName[packet.type] as string;
        seen.set(name, (seen.get(name) ?? 0) + 1);
        const expected = normalize(packet, version);

        const ours = encode(packet, version);
        check(i, `Petrel encode -> mqtt-packet parse (${name})`, ours, () => {
          assert.deepEqual(normalize(fromMqttPacket(reader.parseOne(ours), version), version), expected);
        });

        const theirs = mqttPacketGenerate(packet, version);
        check(i, `mqtt-packet generate -> Petrel decode (${name})`, theirs, () => {
          const decoded: Packet[] = new Decoder({ protocolVersion: version }).push(theirs);
          assert.equal(decoded.length, 1);
          assert.deepEqual(normalize(decoded[0] as Packet, version), expected);
        });
      }
      const types = version === 5 ? 15 : 14;
      assert.equal(seen.size, types, `every packet type generated: ${[...seen.keys()].join(', ')}`);
    });
  }
});
