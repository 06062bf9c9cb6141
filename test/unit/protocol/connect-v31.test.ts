/**
 * MQTT 3.1 (`MQIsdp`, level 3) defines no check of the CONNECT fixed-header flags or of the
 * reserved connect flag, and 3.1 clients that set them exist: the decoder accepts them there.
 * 3.1.1 and 5.0 keep refusing both [MQTT-2.2.2-2] [MQTT-3.1.2-3] (see errors.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Decoder, MalformedPacketError, PacketType } from '../../../src/protocol/index.js';
import { hex } from '../../helpers/codec-hex.js';

// CONNECT, remaining length 16: "MQIsdp" level 3, flags, keep alive 60, client id "c".
const v31 = (first: string, flags: string): string => `${first} 0f  00 06 "MQIsdp" 03 ${flags} 00 3c 00 01 "c"`;
const v311 = (first: string, flags: string): string => `${first} 0d  00 04 "MQTT" 04 ${flags} 00 3c 00 01 "c"`;

describe('MQTT 3.1 CONNECT flags', () => {
  test('3.1: the reserved connect flag is ignored', () => {
    const [p] = new Decoder().push(hex(v31('10', '03')));
    assert.equal(p?.type, PacketType.Connect);
    assert.equal(p.type === PacketType.Connect && p.protocolVersion, 3);
    assert.equal(p.type === PacketType.Connect && p.clean, true);
  });

  test('3.1: fixed-header flags on CONNECT are ignored', () => {
    for (const first of ['11', '12', '18', '1f']) {
      const [p] = new Decoder().push(hex(v31(first, '02')));
      assert.equal(p?.type, PacketType.Connect, `first byte ${first}`);
    }
    // [MQTT-2.2.2-2] [MQTT-3.1.2-3]: 3.1.1 still refuses both.
    assert.throws(() => new Decoder().push(hex(v311('10', '03'))), MalformedPacketError);
    assert.throws(() => new Decoder().push(hex(v311('12', '02'))), MalformedPacketError);
  });
});
