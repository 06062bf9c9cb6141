/**
 * Every validation the decoder does, each asserting the error class and reason code (never the
 * message). Titles cite the normative statement of MQTT 3.1.1 or 5.0 where there is one.
 * Each bad input is decoded whole and one byte at a time; after the error the decoder is dead.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import {
  Decoder, encode, MalformedPacketError, MqttError, type Packet, PacketTooLargeError, PacketType, ProtocolError,
  TopicNameInvalidError, UnsupportedProtocolVersionError,
} from '../../../src/protocol/index.js';
import { fixtures } from '../../helpers/codec-fixtures.js';
import { hex } from '../../helpers/codec-hex.js';

type ErrorClass = abstract new (...args: never[]) => MqttError;
interface Expected { cls: ErrorClass; code: number }
const MALFORMED: Expected = { cls: MalformedPacketError, code: 0x81 };
const PROTOCOL: Expected = { cls: ProtocolError, code: 0x82 };
const UNSUPPORTED: Expected = { cls: UnsupportedProtocolVersionError, code: 0x84 };
const NAME: Expected = { cls: TopicNameInvalidError, code: 0x90 };
const TOO_LARGE: Expected = { cls: PacketTooLargeError, code: 0x95 };

const PINGREQ = Buffer.from([0xc0, 0x00]);

/** A packet with the given first byte and annotated body; the remaining length is computed. */
function frame(first: number, body: string): Buffer {
  const b = hex(body);
  const len: number[] = [];
  let n = b.length;
  do {
    let x = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) x |= 0x80;
    len.push(x);
  } while (n > 0);
  return Buffer.concat([Buffer.from([first, ...len]), b]);
}

/** Property length (one byte) followed by the annotated properties. */
function props(body: string): string {
  const n = hex(body).length;
  assert.ok(n < 128);
  return `${n.toString(16).padStart(2, '0')} ${body}`;
}

/** CONNECT body: protocol name and level, flags, keep alive 60, then `rest`. */
function connect(level: 3 | 4 | 5, flags: string, rest: string): Buffer {
  const name = level === 3 ? '00 06 "MQIsdp"' : '00 04 "MQTT"';
  return frame(0x10, `${name} 0${level} ${flags} 00 3c ${rest}`);
}

function matches(expected: Expected): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof MqttError, `not an MqttError: ${String(err)}`);
    assert.ok(err instanceof expected.cls, `expected ${expected.cls.name}, got ${err.constructor.name}`);
    assert.equal(err.reasonCode, expected.code);
    return true;
  };
}

function expectError(version: number, bytes: Buffer, expected: Expected, maxPacketSize?: number): void {
  const options = maxPacketSize === undefined ? { protocolVersion: version as 3 | 4 | 5 } : { protocolVersion: version as 3 | 4 | 5, maxPacketSize };
  // Whole, then the dead decoder refuses even a valid PINGREQ with the same error.
  const whole = new Decoder(options);
  let first: unknown;
  assert.throws(() => whole.push(bytes), (e) => { first = e; return matches(expected)(e); });
  assert.throws(() => whole.push(PINGREQ), (e) => e === first);
  // One byte at a time: the same error, at some byte.
  const bytewise = new Decoder(options);
  assert.throws(() => { for (const x of bytes) bytewise.push(Buffer.from([x])); }, matches(expected));
}

interface Case { title: string; version: 3 | 4 | 5; bytes: Buffer; expected: Expected }
const cases: Case[] = [];
function bad(title: string, version: 3 | 4 | 5, bytes: Buffer, expected: Expected): void {
  cases.push({ title, version, bytes, expected });
}

// --- Fixed header ---------------------------------------------------------------------------------
const typeNames: Record<number, string> = {
  1: 'CONNECT', 2: 'CONNACK', 4: 'PUBACK', 5: 'PUBREC', 6: 'PUBREL', 7: 'PUBCOMP', 8: 'SUBSCRIBE', 9: 'SUBACK',
  10: 'UNSUBSCRIBE', 11: 'UNSUBACK', 12: 'PINGREQ', 13: 'PINGRESP', 14: 'DISCONNECT', 15: 'AUTH',
};
for (const [typeText, name] of Object.entries(typeNames)) {
  const type = Number(typeText);
  const version = type === PacketType.Auth ? 5 : 4;
  const valid = fixtures.find((f) => f.packet.type === type && f.version === version);
  assert.ok(valid !== undefined);
  const required = (valid.bytes[0] as number) & 0x0f;
  const requiredBits = required.toString(2).padStart(4, '0');
  for (const flags of [0x0, 0x1, 0x2, 0x4, 0x8, 0xf]) {
    if (flags === required) continue;
    const bytes = Buffer.from(valid.bytes);
    bytes[0] = (type << 4) | flags;
    bad(`[MQTT-2.2.2-2] reserved flags of ${name} must be ${requiredBits} (got ${flags.toString(2).padStart(4, '0')})`, version, bytes, MALFORMED);
  }
}
bad('reserved packet type 0 is refused (§2.1.2 table 2-1)', 4, hex('00 00'), MALFORMED);
bad('[MQTT-1.5.5-1] remaining length longer than 4 bytes', 4, hex('30 ff ff ff ff 01'), MALFORMED);
bad('[MQTT-1.5.5-1] remaining length longer than 4 bytes is detected from the first 5 bytes', 5, hex('30 80 80 80 80'), MALFORMED);

// --- Strings [MQTT-1.5.4-1] [MQTT-1.5.4-2] -----------------------------------------------------
bad('[MQTT-1.5.4-1] invalid UTF-8 (lone continuation byte) in a PUBLISH topic', 4, frame(0x30, '00 03 "a/" 80 "x"'), MALFORMED);
bad('[MQTT-1.5.4-1] invalid UTF-8 (truncated sequence) in a PUBLISH topic', 4, frame(0x30, '00 02 c3 28'), MALFORMED);
bad('[MQTT-1.5.4-1] overlong UTF-8 encoding of "/" in a PUBLISH topic', 5, frame(0x30, '00 02 c0 af 00'), MALFORMED);
bad('[MQTT-1.5.4-1] UTF-8 encoded surrogate U+D800 in a PUBLISH topic', 4, frame(0x30, '00 03 ed a0 80'), MALFORMED);
bad('[MQTT-1.5.4-2] U+0000 in a PUBLISH topic', 4, frame(0x30, '00 03 "a" 00 "b"'), MALFORMED);
bad('[MQTT-1.5.4-2] U+0000 in a client identifier', 4, connect(4, '02', '00 02 "a" 00'), MALFORMED);
bad('[MQTT-1.5.4-1] invalid UTF-8 in a client identifier', 5, connect(5, '02', '00 00 02 ff fe'), MALFORMED);
bad('[MQTT-1.5.4-1] invalid UTF-8 in a user name', 4, connect(4, '82', '00 01 "c" 00 01 ff'), MALFORMED);
bad('[MQTT-1.5.4-2] U+0000 in a SUBSCRIBE topic filter', 4, frame(0x82, '00 01 00 02 "a" 00 00'), MALFORMED);
bad('[MQTT-1.5.4-1] invalid UTF-8 in an UNSUBSCRIBE topic filter', 4, frame(0xa2, '00 01 00 01 fe'), MALFORMED);
bad('[MQTT-1.5.4-1] invalid UTF-8 in a user property name', 5, frame(0x30, `00 01 "t" ${props('26 00 01 ff 00 01 "v"')}`), MALFORMED);
bad('[MQTT-1.5.4-2] U+0000 in a user property value', 5, frame(0x30, `00 01 "t" ${props('26 00 01 "k" 00 01 00')}`), MALFORMED);
bad('[MQTT-1.5.4-1] invalid UTF-8 in the content type property', 5, frame(0x30, `00 01 "t" ${props('03 00 01 c3')}`), MALFORMED);

// --- Packet identifier 0 ------------------------------------------------------------------------
bad('[MQTT-2.3.1-1] packet identifier 0 in a QoS 1 PUBLISH', 4, frame(0x32, '00 01 "t" 00 00 "x"'), MALFORMED);
bad('[MQTT-2.2.1-3] packet identifier 0 in a QoS 2 PUBLISH (5.0)', 5, frame(0x34, '00 01 "t" 00 00 00'), MALFORMED);
for (const [first, name] of [[0x40, 'PUBACK'], [0x50, 'PUBREC'], [0x62, 'PUBREL'], [0x70, 'PUBCOMP'], [0xb0, 'UNSUBACK']] as const) {
  bad(`[MQTT-2.3.1-1] packet identifier 0 in ${name}`, 4, frame(first, '00 00'), MALFORMED);
}
bad('[MQTT-2.3.1-1] packet identifier 0 in SUBSCRIBE', 4, frame(0x82, '00 00 00 01 "a" 00'), MALFORMED);
bad('[MQTT-2.3.1-1] packet identifier 0 in UNSUBSCRIBE', 4, frame(0xa2, '00 00 00 01 "a"'), MALFORMED);
bad('[MQTT-2.3.1-1] packet identifier 0 in SUBACK', 4, frame(0x90, '00 00 00'), MALFORMED);

// --- Properties (5.0 §2.2.2) ----------------------------------------------------------------------
bad('§3.3.2.3.3 message expiry interval twice is a Protocol Error', 5,
  frame(0x30, `00 01 "t" ${props('02 00 00 00 01 02 00 00 00 02')}`), PROTOCOL);
bad('§3.1.2.11.3 receive maximum twice in CONNECT is a Protocol Error', 5,
  connect(5, '02', `${props('21 00 01 21 00 02')} 00 00`), PROTOCOL);
bad('§3.8.2.1.2 subscription identifier twice in SUBSCRIBE is a Protocol Error', 5,
  frame(0x82, `00 01 ${props('0b 01 0b 02')} 00 01 "a" 00`), PROTOCOL);
bad('§3.3.2.3.4 topic alias twice is a Protocol Error', 5, frame(0x30, `00 01 "t" ${props('23 00 01 23 00 02')}`), PROTOCOL);
bad('§3.2.2.3.1 session expiry interval twice in CONNACK is a Protocol Error', 5,
  frame(0x20, `00 00 ${props('11 00 00 00 01 11 00 00 00 01')}`), PROTOCOL);
bad('§3.15.2.2.2 authentication method twice in AUTH is a Protocol Error', 5, frame(0xf0, `18 ${props('15 00 01 "a" 15 00 01 "b"')}`), PROTOCOL);
bad('§2.2.2.2 topic alias is not allowed in CONNECT', 5, connect(5, '02', `${props('23 00 01')} 00 00`), PROTOCOL);
bad('§2.2.2.2 will delay interval is not allowed in PUBLISH', 5, frame(0x30, `00 01 "t" ${props('18 00 00 00 01')}`), PROTOCOL);
bad('§2.2.2.2 session expiry interval is not allowed in PUBLISH', 5, frame(0x30, `00 01 "t" ${props('11 00 00 00 01')}`), PROTOCOL);
bad('§2.2.2.2 reason string is not allowed in PUBLISH', 5, frame(0x30, `00 01 "t" ${props('1f 00 01 "r"')}`), PROTOCOL);
bad('§2.2.2.2 subscription identifier is not allowed in will properties', 5,
  connect(5, '06', `00 00 01 "c" ${props('0b 01')} 00 01 "w" 00 00`), PROTOCOL);
bad('§2.2.2.2 maximum QoS is not allowed in PUBACK', 5, frame(0x40, `00 01 00 ${props('24 01')}`), PROTOCOL);
bad('§2.2.2.2 message expiry interval is not allowed in SUBSCRIBE', 5, frame(0x82, `00 01 ${props('02 00 00 00 01')} 00 01 "a" 00`), PROTOCOL);
bad('§2.2.2.2 reason string is not allowed in UNSUBSCRIBE', 5, frame(0xa2, `00 01 ${props('1f 00 01 "r"')} 00 01 "a"`), PROTOCOL);
bad('§2.2.2.2 server keep alive is not allowed in DISCONNECT', 5, frame(0xe0, `00 ${props('13 00 01')}`), PROTOCOL);
bad('§2.2.2.2 unknown property identifier 0x07 is malformed', 5, frame(0x30, `00 01 "t" ${props('07 00')}`), MALFORMED);
bad('§2.2.2.2 property identifier 0x00 is malformed', 5, frame(0x30, `00 01 "t" ${props('00 00')}`), MALFORMED);
bad('§2.2.2.2 unknown two-byte property identifier 128 is malformed', 5, frame(0x30, `00 01 "t" ${props('80 01 00')}`), MALFORMED);
bad('§2.2.2.1 property length beyond the packet is malformed', 5, frame(0x30, '00 01 "t" 10 02 00 00 00 01'), MALFORMED);
bad('§2.2.2.1 a property value crossing the property length is malformed', 5, frame(0x30, '00 01 "t" 03 02 00 00 00 01'), MALFORMED);
bad('[MQTT-1.5.5-1] property length longer than 4 bytes is malformed', 5, frame(0x30, '00 01 "t" 80 80 80 80 01'), MALFORMED);
bad('§3.1.2.11.3 receive maximum 0 is a Protocol Error', 5, connect(5, '02', `${props('21 00 00')} 00 00`), PROTOCOL);
bad('§3.1.2.11.4 maximum packet size 0 is a Protocol Error', 5, connect(5, '02', `${props('27 00 00 00 00')} 00 00`), PROTOCOL);
bad('§3.2.2.3.4 maximum QoS 2 is a Protocol Error', 5, frame(0x20, `00 00 ${props('24 02')}`), PROTOCOL);
bad('§3.3.2.3.2 payload format indicator 2 is a Protocol Error', 5, frame(0x30, `00 01 "t" ${props('01 02')}`), PROTOCOL);
bad('§3.1.2.11.6 request problem information 2 is a Protocol Error', 5, connect(5, '02', `${props('17 02')} 00 00`), PROTOCOL);
bad('§3.3.2.3.8 subscription identifier 0 is a Protocol Error', 5, frame(0x30, `00 01 "t" ${props('0b 00')}`), PROTOCOL);

// --- Topic names and filters (§4.7) ------------------------------------------------------------
// A wildcard in a topic name and a filter that breaks §4.7 are malformed packets (0x81): 0x90 and
// 0x8F are for names and filters that are well formed but refused (5.0 reason code table).
bad('[MQTT-3.3.2-2] "+" in a PUBLISH topic name', 4, frame(0x30, '00 03 "a/+"'), MALFORMED);
bad('[MQTT-3.3.2-2] "#" in a PUBLISH topic name', 5, frame(0x30, '00 03 "a/#" 00'), MALFORMED);
bad('[MQTT-3.3.2-2] wildcard inside a level of a PUBLISH topic name', 3, frame(0x30, '00 03 "a+b"'), MALFORMED);
bad('[MQTT-3.1.3-11] will topic with a wildcard', 4, connect(4, '06', '00 01 "c" 00 03 "w/#" 00 00'), NAME);
bad('[MQTT-4.7.3-1] empty PUBLISH topic name (3.1.1)', 4, frame(0x30, '00 00 "x"'), NAME);
bad('[MQTT-4.7.3-1] empty will topic', 5, connect(5, '06', '00 00 01 "c" 00 00 00 00 00'), NAME);
bad('[MQTT-3.3.2-1] empty PUBLISH topic name without a topic alias (5.0)', 5, frame(0x30, '00 00 00 "x"'), PROTOCOL);
bad('[MQTT-4.7.1-2] "#" not last in a filter', 4, frame(0x82, '00 01 00 05 "a/#/b" 00'), MALFORMED);
bad('[MQTT-4.7.1-2] "#" not alone in its level', 4, frame(0x82, '00 01 00 04 "a/b#" 00'), MALFORMED);
bad('[MQTT-4.7.1-3] "+" not alone in its level (after text)', 4, frame(0x82, '00 01 00 04 "a+/b" 00'), MALFORMED);
bad('[MQTT-4.7.1-3] "+" not alone in its level (before text)', 5, frame(0x82, '00 01 00 00 04 "a/+b" 00'), MALFORMED);
bad('[MQTT-4.7.3-1] empty topic filter in SUBSCRIBE', 4, frame(0x82, '00 01 00 00 00'), MALFORMED);
bad('[MQTT-4.7.1-2] misplaced "#" in an UNSUBSCRIBE filter', 4, frame(0xa2, '00 01 00 02 "#a"'), MALFORMED);
bad('[MQTT-4.7.3-1] empty topic filter in UNSUBSCRIBE (5.0)', 5, frame(0xa2, '00 01 00 00 00'), MALFORMED);
bad('[MQTT-4.7.1-3] misplaced "+" in an UNSUBSCRIBE filter', 5, frame(0xa2, '00 01 00 00 02 "++"'), MALFORMED);
bad('[MQTT-4.8.2-1] shared subscription without a share name', 5, frame(0x82, '00 01 00 00 09 "$share//a" 00'), MALFORMED);
bad('[MQTT-4.8.2-2] shared subscription with a wildcard in the share name', 5, frame(0x82, '00 01 00 00 0b "$share/g+/a" 00'), MALFORMED);
bad('[MQTT-4.8.2-1] shared subscription without a filter', 5, frame(0x82, '00 01 00 00 08 "$share/g" 00'), MALFORMED);

// --- PUBLISH flags ----------------------------------------------------------------------------
bad('[MQTT-3.3.1-4] PUBLISH with QoS 3', 4, frame(0x36, '00 01 "t" 00 01'), MALFORMED);
bad('[MQTT-3.3.1-4] PUBLISH with QoS 3 (5.0)', 5, frame(0x37, '00 01 "t" 00 01 00'), MALFORMED);
bad('[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH', 4, frame(0x38, '00 01 "t" "x"'), MALFORMED);
bad('[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH (5.0)', 5, frame(0x39, '00 01 "t" 00'), MALFORMED);

// --- CONNECT ------------------------------------------------------------------------------------
bad('[MQTT-3.1.2-3] reserved CONNECT flag set', 4, connect(4, '03', '00 01 "c"'), MALFORMED);
bad('[MQTT-3.1.2-3] reserved CONNECT flag set (5.0)', 5, connect(5, '03', '00 00 01 "c"'), MALFORMED);
bad('[MQTT-3.1.2-11] will QoS set without the will flag', 4, connect(4, '0a', '00 01 "c"'), MALFORMED);
bad('[MQTT-3.1.2-11] will QoS 2 set without the will flag (5.0)', 5, connect(5, '12', '00 00 01 "c"'), MALFORMED);
bad('[MQTT-3.1.2-13] will retain set without the will flag', 5, connect(5, '22', '00 00 01 "c"'), MALFORMED);
bad('[MQTT-3.1.2-13] will retain set without the will flag (3.1.1)', 4, connect(4, '22', '00 01 "c"'), MALFORMED);
bad('[MQTT-3.1.2-12] will QoS 3', 5, connect(5, '1e', '00 00 01 "c" 00 00 01 "w" 00 00'), MALFORMED);
bad('[MQTT-3.1.2-14] will QoS 3 (3.1.1)', 4, connect(4, '1e', '00 01 "c" 00 01 "w" 00 00'), MALFORMED);
bad('[MQTT-3.1.2-22] password without user name (3.1.1)', 4, connect(4, '42', '00 01 "c" 00 01 "p"'), MALFORMED);
bad('[MQTT-3.1.2-22] password without user name (3.1)', 3, connect(3, '42', '00 01 "c" 00 01 "p"'), MALFORMED);
bad('[MQTT-3.1.2-2] unsupported protocol level 6', 4, frame(0x10, '00 04 "MQTT" 06 02 00 3c 00 01 "c"'), UNSUPPORTED);
bad('[MQTT-3.1.2-2] protocol level 3 with the name "MQTT"', 4, frame(0x10, '00 04 "MQTT" 03 02 00 3c 00 01 "c"'), UNSUPPORTED);
bad('[MQTT-3.1.2-2] protocol level 4 with the name "MQIsdp"', 4, frame(0x10, '00 06 "MQIsdp" 04 02 00 3c 00 01 "c"'), UNSUPPORTED);
bad('[MQTT-3.1.2-1] unknown protocol name', 4, frame(0x10, '00 04 "MQTX" 04 02 00 3c 00 01 "c"'), UNSUPPORTED);
bad('CONNECT cut inside the keep alive is malformed', 4, frame(0x10, '00 04 "MQTT" 04 02 00'), MALFORMED);
bad('CONNECT with the user name flag but no user name is malformed', 4, connect(4, '82', '00 01 "c"'), MALFORMED);
bad('CONNECT with the will flag but no will payload is malformed', 4, connect(4, '06', '00 01 "c" 00 01 "w"'), MALFORMED);
bad('CONNECT with bytes after the payload is malformed', 4, connect(4, '02', '00 01 "c" 00'), MALFORMED);

// --- CONNACK ------------------------------------------------------------------------------------
bad('[MQTT-3.2.2-1] reserved CONNACK acknowledge flags set', 4, frame(0x20, '02 00'), MALFORMED);
bad('[MQTT-3.2.2-1] reserved CONNACK acknowledge flags set (5.0)', 5, frame(0x20, '80 00 00'), MALFORMED);
bad('§3.2.2.3 CONNACK return code 6 is not defined (3.1.1)', 4, frame(0x20, '00 06'), MALFORMED);
bad('§3.2.2.2 CONNACK reason code 0x01 is not a CONNACK reason (5.0)', 5, frame(0x20, '00 01 00'), PROTOCOL);
bad('[MQTT-3.2.2-4] session present with a non-zero return code (3.1.1)', 4, frame(0x20, '01 04'), PROTOCOL);
bad('[MQTT-3.2.2-6] session present with a non-zero reason code (5.0)', 5, frame(0x20, '01 87 00'), PROTOCOL);
bad('CONNACK with bytes after it is malformed (3.1.1)', 4, frame(0x20, '00 00 00'), MALFORMED);
bad('CONNACK without its return code is malformed', 4, frame(0x20, '00'), MALFORMED);

// --- Acknowledgements ---------------------------------------------------------------------------
bad('§3.4.2.1 PUBACK reason code 0x92 is not a PUBACK reason', 5, frame(0x40, '00 01 92'), PROTOCOL);
bad('§3.5.2.1 PUBREC reason code 0x04 is not a PUBREC reason', 5, frame(0x50, '00 01 04'), PROTOCOL);
bad('§3.6.2.1 PUBREL reason code 0x10 is not a PUBREL reason', 5, frame(0x62, '00 01 10'), PROTOCOL);
bad('§3.7.2.1 PUBCOMP reason code 0x80 is not a PUBCOMP reason', 5, frame(0x70, '00 01 80'), PROTOCOL);
bad('PUBACK with bytes after the packet identifier is malformed (3.1.1)', 4, frame(0x40, '00 01 00'), MALFORMED);
bad('PUBACK cut inside the packet identifier is malformed', 4, frame(0x40, '00'), MALFORMED);

// --- SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK -------------------------------------------------
bad('[MQTT-3.8.3-3] SUBSCRIBE without a topic filter (3.1.1)', 4, frame(0x82, '00 01'), PROTOCOL);
bad('[MQTT-3.8.3-2] SUBSCRIBE without a topic filter (5.0)', 5, frame(0x82, '00 01 00'), PROTOCOL);
bad('[MQTT-3.10.3-2] UNSUBSCRIBE without a topic filter (3.1.1)', 4, frame(0xa2, '00 01'), PROTOCOL);
bad('[MQTT-3.10.3-2] UNSUBSCRIBE without a topic filter (5.0)', 5, frame(0xa2, '00 01 00'), PROTOCOL);
bad('[MQTT-3-8.3-4] SUBSCRIBE requesting QoS 3 (3.1.1)', 4, frame(0x82, '00 01 00 01 "a" 03'), MALFORMED);
bad('§3.8.3.1 SUBSCRIBE Maximum QoS 3 is a Protocol Error (5.0)', 5, frame(0x82, '00 01 00 00 01 "a" 03'), PROTOCOL);
bad('[MQTT-3-8.3-4] reserved subscription option bits set (3.1.1)', 4, frame(0x82, '00 01 00 01 "a" 04'), MALFORMED);
bad('[MQTT-3.8.3-5] reserved subscription option bits set (5.0)', 5, frame(0x82, '00 01 00 00 01 "a" 40'), MALFORMED);
bad('§3.8.3.1 retain handling 3 is a Protocol Error', 5, frame(0x82, '00 01 00 00 01 "a" 30'), PROTOCOL);
bad('[MQTT-3.8.3-4] No Local on a shared subscription', 5, frame(0x82, '00 01 00 00 0a "$share/g/a" 04'), PROTOCOL);
bad('SUBSCRIBE cut before the subscription options is malformed', 4, frame(0x82, '00 01 00 01 "a"'), MALFORMED);
bad('[MQTT-3.9.3-2] SUBACK return code 3 (3.1.1)', 4, frame(0x90, '00 01 03'), PROTOCOL);
bad('§3.9.3 SUBACK reason code 0x11 is not a SUBACK reason (5.0)', 5, frame(0x90, '00 01 00 11'), PROTOCOL);
bad('§3.9.3 SUBACK without return codes', 4, frame(0x90, '00 01'), PROTOCOL);
bad('§3.11.3 UNSUBACK reason code 0x01 is not an UNSUBACK reason (5.0)', 5, frame(0xb0, '00 01 00 01'), PROTOCOL);
bad('§3.11.3 UNSUBACK without reason codes (5.0)', 5, frame(0xb0, '00 01 00'), PROTOCOL);
bad('UNSUBACK with bytes after the packet identifier is malformed (3.1.1)', 4, frame(0xb0, '00 01 00'), MALFORMED);

// --- PINGREQ / PINGRESP / DISCONNECT / AUTH ------------------------------------------------------
bad('§3.12 PINGREQ with a body is malformed', 4, frame(0xc0, '00'), MALFORMED);
bad('§3.13 PINGRESP with a body is malformed', 5, frame(0xd0, '00'), MALFORMED);
bad('[MQTT-3.14.1-1] DISCONNECT with a body (3.1.1)', 4, frame(0xe0, '00'), MALFORMED);
bad('§3.14.2.1 DISCONNECT reason code 0x01 is not a DISCONNECT reason', 5, frame(0xe0, '01'), PROTOCOL);
bad('DISCONNECT with bytes after its properties is malformed', 5, frame(0xe0, '00 00 00'), MALFORMED);
bad('§3.15.2.1 AUTH reason code 0x00 is allowed, 0x01 is not', 5, frame(0xf0, '01'), PROTOCOL);
bad('AUTH does not exist in 3.1.1 (packet type 15 is reserved)', 4, hex('f0 00'), MALFORMED);
bad('AUTH does not exist in 3.1 (packet type 15 is reserved)', 3, frame(0xf0, '18 00'), MALFORMED);

describe('codec errors', () => {
  for (const c of cases) {
    it(`${c.title} [level ${c.version}]`, () => expectError(c.version, c.bytes, c.expected));
  }

  describe('§3.1.2.11.4 maximum packet size (0x95)', () => {
    it('a packet larger than maxPacketSize is refused from its fixed header, before the body arrives', () => {
      // PUBLISH of 1000 bytes: remaining length 997 = e5 07. Only the first 5 bytes are fed.
      const d = new Decoder({ protocolVersion: 4, maxPacketSize: 100 });
      assert.throws(() => d.push(hex('30 e5 07 00 01')), matches(TOO_LARGE));
      assert.equal(d.bufferedBytes, 0);
      assert.throws(() => d.push(PINGREQ), matches(TOO_LARGE));
    });

    it('is detected when the fixed header arrives in pieces', () => {
      const d = new Decoder({ protocolVersion: 4, maxPacketSize: 100 });
      assert.deepEqual(d.push(hex('30')), []);
      assert.deepEqual(d.push(hex('e5')), []);
      assert.throws(() => d.push(hex('07')), matches(TOO_LARGE));
    });

    it('is detected after a complete packet in the same chunk, which is still delivered', () => {
      const d = new Decoder({ protocolVersion: 4, maxPacketSize: 100 });
      const seen: Packet[] = [];
      assert.throws(() => d.feed(Buffer.concat([PINGREQ, hex('30 e5 07')]), (p) => seen.push(p)), matches(TOO_LARGE));
      assert.deepEqual(seen, [{ type: PacketType.Pingreq }]);
    });

    it('a packet of exactly maxPacketSize bytes is accepted, one byte more is refused', () => {
      const at = encode({ type: PacketType.Publish, topic: 't', payload: Buffer.alloc(95), qos: 0, retain: false, dup: false }, 4);
      assert.equal(at.length, 100);
      assert.equal(new Decoder({ protocolVersion: 4, maxPacketSize: 100 }).push(at).length, 1);
      expectError(4, at, TOO_LARGE, 99);
    });
  });

  describe('decoder state after an error', () => {
    it('packets before the bad one are delivered, then the error is thrown', () => {
      const d = new Decoder({ protocolVersion: 4 });
      const seen: Packet[] = [];
      assert.throws(() => d.feed(Buffer.concat([PINGREQ, PINGREQ, hex('38 03 00 01 74')]), (p) => seen.push(p)), matches(MALFORMED));
      assert.equal(seen.length, 2);
    });

    it('is dead: every later push throws the same error, even for valid input', () => {
      const d = new Decoder({ protocolVersion: 4 });
      let first: unknown;
      assert.throws(() => d.push(hex('00 00')), (e) => { first = e; return true; });
      for (let i = 0; i < 3; i++) assert.throws(() => d.push(PINGREQ), (e) => e === first);
      assert.equal(d.bufferedBytes, 0);
    });
  });

  describe('things that are not errors', () => {
    it('a password without a user name is allowed in 5.0 (§3.1.2.9)', () => {
      const [p] = new Decoder().push(connect(5, '42', '00 00 01 "c" 00 01 "p"'));
      assert.deepEqual(p, { type: PacketType.Connect, protocolVersion: 5, protocolName: 'MQTT', clientId: 'c', clean: true, keepalive: 60, password: Buffer.from('p') });
    });

    it('repeated user properties and subscription identifiers in PUBLISH are allowed', () => {
      const [p] = new Decoder({ protocolVersion: 5 }).push(frame(0x30, `00 01 "t" ${props('0b 01 0b 02 26 00 01 "k" 00 01 "a" 26 00 01 "k" 00 01 "b"')}`));
      assert.ok(p !== undefined && p.type === PacketType.Publish);
      assert.deepEqual(p.properties, { subscriptionIdentifiers: [1, 2], userProperties: [['k', 'a'], ['k', 'b']] });
    });

    it('a non-minimal remaining length encoding is accepted', () => {
      assert.deepEqual(new Decoder({ protocolVersion: 4 }).push(hex('c0 80 00')), [{ type: PacketType.Pingreq }]);
    });
  });
});
