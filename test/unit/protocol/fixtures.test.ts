/**
 * Byte fixtures for every packet type and protocol level: decode, exact encode, round trip,
 * every split into two chunks, one byte at a time, and followed by another packet.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import { Decoder, encode, type Packet, PacketType, type Properties, PropertyTable } from '../../../src/protocol/index.js';
import { type CodecFixture, fixtures } from '../../helpers/codec-fixtures.js';
import { toHex } from '../../helpers/codec-hex.js';

const PINGREQ = Buffer.from([0xc0, 0x00]);

function decoderFor(f: CodecFixture): Decoder {
  return new Decoder({ protocolVersion: f.version });
}

function decodeChunks(f: CodecFixture, chunks: Buffer[]): Packet[] {
  const d = decoderFor(f);
  const out: Packet[] = [];
  for (const c of chunks) out.push(...d.push(c));
  assert.equal(d.bufferedBytes, 0, 'nothing left buffered');
  return out;
}

describe('codec fixtures', () => {
  it('cover every packet type at every protocol level it exists in', () => {
    for (const version of [3, 4, 5]) {
      for (let type = 1; type <= 15; type++) {
        const present = fixtures.some((f) => f.version === version && f.packet.type === type);
        assert.equal(present, type !== PacketType.Auth || version === 5, `type ${type} at level ${version}`);
      }
    }
  });

  it('use every 5.0 property at least once, including every will property', () => {
    const seen = new Set<string>();
    const note = (props: Properties | undefined, prefix: string): void => {
      for (const key of Object.keys(props ?? {})) seen.add(prefix + key);
    };
    for (const f of fixtures) {
      const p = f.packet;
      if ('properties' in p) note(p.properties, '');
      if (p.type === PacketType.Connect) note(p.will?.properties, 'will.');
    }
    for (const def of PropertyTable) assert.ok(seen.has(def.name) || seen.has(`will.${def.name}`), `property ${def.name} is in no fixture`);
    for (const name of ['payloadFormatIndicator', 'messageExpiryInterval', 'contentType', 'responseTopic', 'correlationData', 'willDelayInterval', 'userProperties']) {
      assert.ok(seen.has(`will.${name}`), `will property ${name} is in no fixture`);
    }
  });

  for (const f of fixtures) {
    describe(`${f.name} [level ${f.version}]`, () => {
      it('decodes', () => {
        assert.deepEqual(decodeChunks(f, [f.bytes]), [f.packet]);
      });

      it('encodes to the exact bytes', () => {
        assert.equal(toHex(encode(f.packet, f.version)), toHex(f.bytes));
      });

      it('round trips', () => {
        const again = decodeChunks(f, [encode(f.packet, f.version)]);
        assert.deepEqual(again, [f.packet]);
        assert.equal(toHex(encode(again[0] as Packet, f.version)), toHex(f.bytes));
      });

      it('decodes when split in two at every byte boundary', () => {
        for (let i = 1; i < f.bytes.length; i++) {
          const chunks = [f.bytes.subarray(0, i), f.bytes.subarray(i)];
          assert.deepEqual(decodeChunks(f, chunks), [f.packet], `split at ${i}`);
        }
      });

      it('decodes when fed one byte at a time', () => {
        const chunks = [...f.bytes].map((x) => Buffer.from([x]));
        assert.deepEqual(decodeChunks(f, chunks), [f.packet]);
      });

      it('decodes when followed by a PINGREQ, in one chunk and split anywhere', () => {
        const both = Buffer.concat([f.bytes, PINGREQ]);
        const expected = [f.packet, { type: PacketType.Pingreq }];
        assert.deepEqual(decodeChunks(f, [both]), expected);
        for (let i = 1; i < both.length; i++) {
          assert.deepEqual(decodeChunks(f, [both.subarray(0, i), both.subarray(i)]), expected, `split at ${i}`);
        }
        assert.deepEqual(decodeChunks(f, [...both].map((x) => Buffer.from([x]))), expected);
      });

      it('decodes twice in a row in one chunk', () => {
        assert.deepEqual(decodeChunks(f, [Buffer.concat([f.bytes, f.bytes])]), [f.packet, f.packet]);
      });
    });
  }
});
