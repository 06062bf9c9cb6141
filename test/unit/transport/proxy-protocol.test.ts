/**
 * PROXY protocol header parser (HAProxy proxy-protocol.txt, v1 text and v2 binary): every header
 * kind, byte-at-a-time arrival, bytes after the header left alone, early refusal of garbage, and a
 * seeded fuzz run checking that the parser never throws and that its answers are final.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { parseProxyHeader, PROXY_HEADER_MAX, type ProxyHeader, type ProxyParse } from '../../../src/transport/proxy-protocol.js';
import { Rng, subSeed } from '../../helpers/codec-prng.js';

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
// An MQTT 3.1.1 CONNECT: what a client sends first when no proxy is in front.
const MQTT_CONNECT = Buffer.from([0x10, 0x0d, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 0x63]);

const v1 = (line: string): Buffer => Buffer.from(line, 'latin1');

/** A v2 header: signature, version/command byte, family byte, then `block` (length declared as given or its own). */
function v2(verCmd: number, fam: number, block: Buffer, declared = block.length): Buffer {
  const fixed = Buffer.alloc(4);
  fixed[0] = verCmd;
  fixed[1] = fam;
  fixed.writeUInt16BE(declared, 2);
  return Buffer.concat([SIG, fixed, block]);
}

function ipv4Block(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from(dst).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}

function ipv6Block(src: string, dst: string, sport: number, dport: number): Buffer {
  const b = Buffer.alloc(36);
  Buffer.from(src, 'hex').copy(b, 0);
  Buffer.from(dst, 'hex').copy(b, 16);
  b.writeUInt16BE(sport, 32);
  b.writeUInt16BE(dport, 34);
  return b;
}

function unixBlock(src: string, dst: string): Buffer {
  const b = Buffer.alloc(216);
  b.write(src, 0, 'utf8');
  b.write(dst, 108, 'utf8');
  return b;
}

function tlv(type: number, value: Buffer): Buffer {
  const b = Buffer.alloc(3);
  b[0] = type;
  b.writeUInt16BE(value.length, 1);
  return Buffer.concat([b, value]);
}

function done(r: ProxyParse): { header: ProxyHeader; length: number } {
  assert.equal(r.status, 'done', r.status === 'invalid' ? r.reason : 'incomplete');
  if (r.status !== 'done') throw new Error('unreachable');
  return r;
}

function assertInvalid(data: Buffer, pattern?: RegExp): void {
  const r = parseProxyHeader(data);
  assert.equal(r.status, 'invalid', `expected invalid for ${JSON.stringify(data.toString('latin1'))}`);
  if (pattern !== undefined && r.status === 'invalid') assert.match(r.reason, pattern);
}

const V1_TCP4 = v1('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n');
const V1_TCP6 = v1('PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 65535 0\r\n');
const V1_UNKNOWN = v1('PROXY UNKNOWN\r\n');
// The longest v1 line the specification allows: exactly 107 bytes.
const V1_LONGEST = v1('PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n');
const V2_IPV4 = v2(0x21, 0x11, ipv4Block([203, 0, 113, 7], [10, 0, 0, 1], 51234, 1883));
const V2_IPV6 = v2(0x21, 0x21, ipv6Block('20010db8000000000000000000000001', '00000000000000000000000000000001', 40000, 8883));
const V2_LOCAL = v2(0x20, 0x00, Buffer.alloc(0));
const V2_TLVS = v2(
  0x21,
  0x11,
  Buffer.concat([ipv4Block([192, 0, 2, 1], [192, 0, 2, 2], 1, 2), tlv(0x02, Buffer.from('broker.example')), tlv(0x04, Buffer.alloc(0)), tlv(0xea, Buffer.from([1, 2, 3]))]),
);
const V2_UNIX = v2(0x21, 0x31, unixBlock('/run/lb.sock', '/run/petrel.sock'));

const VALID: readonly [string, Buffer][] = [
  ['v1 TCP4', V1_TCP4],
  ['v1 TCP6', V1_TCP6],
  ['v1 UNKNOWN', V1_UNKNOWN],
  ['v1 longest', V1_LONGEST],
  ['v2 IPv4', V2_IPV4],
  ['v2 IPv6', V2_IPV6],
  ['v2 LOCAL', V2_LOCAL],
  ['v2 TLVs', V2_TLVS],
  ['v2 UNIX', V2_UNIX],
];

describe('PROXY protocol v1', () => {
  test('TCP4: addresses and ports, length up to the CRLF', () => {
    const { header, length } = done(parseProxyHeader(V1_TCP4));
    assert.equal(length, V1_TCP4.length);
    assert.deepEqual(header, {
      version: 1,
      command: 'proxy',
      family: 'tcp4',
      sourceAddress: '192.168.0.1',
      sourcePort: 56324,
      destinationAddress: '192.168.0.11',
      destinationPort: 443,
    });
  });

  test('TCP6: addresses in the canonical form Node prints', () => {
    const { header, length } = done(parseProxyHeader(V1_TCP6));
    assert.equal(length, V1_TCP6.length);
    assert.equal(header.family, 'tcp6');
    assert.equal(header.command, 'proxy');
    assert.equal(header.sourceAddress, '2001:db8::1');
    assert.equal(header.destinationAddress, '::1');
    assert.equal(header.sourcePort, 65535);
    assert.equal(header.destinationPort, 0);
    const mapped = done(parseProxyHeader(v1('PROXY TCP6 ::FFFF:192.0.2.1 0:0:0:0:0:0:0:0 1 2\r\n'))).header;
    assert.equal(mapped.sourceAddress, '::ffff:192.0.2.1');
    assert.equal(mapped.destinationAddress, '::');
  });

  test('UNKNOWN: command local, no addresses; anything before the CRLF is ignored', () => {
    const { header, length } = done(parseProxyHeader(V1_UNKNOWN));
    assert.equal(length, 15);
    assert.deepEqual(header, {
      version: 1,
      command: 'local',
      family: 'unknown',
      sourceAddress: undefined,
      sourcePort: undefined,
      destinationAddress: undefined,
      destinationPort: undefined,
    });
    const longest = done(parseProxyHeader(V1_LONGEST));
    assert.equal(V1_LONGEST.length, 107);
    assert.equal(longest.length, 107);
    assert.equal(longest.header.command, 'local');
    assert.equal(longest.header.sourceAddress, undefined);
  });
});

describe('PROXY protocol v2', () => {
  test('PROXY over IPv4', () => {
    const { header, length } = done(parseProxyHeader(V2_IPV4));
    assert.equal(length, 28);
    assert.deepEqual(header, {
      version: 2,
      command: 'proxy',
      family: 'tcp4',
      sourceAddress: '203.0.113.7',
      sourcePort: 51234,
      destinationAddress: '10.0.0.1',
      destinationPort: 1883,
    });
    assert.equal(header.tlvs, undefined);
  });

  test('PROXY over IPv6: addresses in the canonical form Node prints', () => {
    const { header, length } = done(parseProxyHeader(V2_IPV6));
    assert.equal(length, 52);
    assert.equal(header.family, 'tcp6');
    assert.equal(header.sourceAddress, '2001:db8::1');
    assert.equal(header.destinationAddress, '::1');
    assert.equal(header.sourcePort, 40000);
    assert.equal(header.destinationPort, 8883);
    const mapped = done(parseProxyHeader(v2(0x21, 0x21, ipv6Block('00000000000000000000ffffc0000201', '00010000000000000000000000000000', 1, 2)))).header;
    assert.equal(mapped.sourceAddress, '::ffff:192.0.2.1');
    assert.equal(mapped.destinationAddress, '1::');
  });

  test('LOCAL: command local, no addresses, the block is skipped', () => {
    const { header, length } = done(parseProxyHeader(V2_LOCAL));
    assert.equal(length, 16);
    assert.equal(header.command, 'local');
    assert.equal(header.family, 'unknown');
    assert.equal(header.sourceAddress, undefined);
    assert.equal(header.destinationPort, undefined);
    // A LOCAL header may still carry a block (addresses of a health-check connection): skipped whole.
    const withBlock = v2(0x20, 0x11, ipv4Block([127, 0, 0, 1], [127, 0, 0, 1], 1, 2));
    const r = done(parseProxyHeader(withBlock));
    assert.equal(r.length, 28);
    assert.equal(r.header.command, 'local');
    assert.equal(r.header.sourceAddress, undefined);
  });

  test('PROXY with the UNSPEC family carries no address: reported as local', () => {
    const r = done(parseProxyHeader(v2(0x21, 0x00, Buffer.alloc(0))));
    assert.equal(r.header.command, 'local');
    assert.equal(r.header.family, 'unknown');
    assert.equal(r.header.sourceAddress, undefined);
  });

  test('TLVs after the addresses, by type, as copies of their bytes', () => {
    const { header, length } = done(parseProxyHeader(V2_TLVS));
    assert.equal(length, V2_TLVS.length);
    assert.equal(header.sourceAddress, '192.0.2.1');
    assert.ok(header.tlvs);
    assert.deepEqual([...header.tlvs.keys()], [0x02, 0x04, 0xea]);
    assert.equal(header.tlvs.get(0x02)?.toString(), 'broker.example');
    assert.equal(header.tlvs.get(0x04)?.length, 0);
    assert.deepEqual(header.tlvs.get(0xea), Buffer.from([1, 2, 3]));
    // A copy: reusing the connection's chunk afterwards leaves the value as it was.
    const chunk = Buffer.from(V2_TLVS);
    const value = done(parseProxyHeader(chunk)).header.tlvs?.get(0xea);
    chunk.fill(0);
    assert.deepEqual(value, Buffer.from([1, 2, 3]));
  });

  test('UNIX: the socket paths up to their NUL padding, no ports', () => {
    const { header, length } = done(parseProxyHeader(V2_UNIX));
    assert.equal(length, 16 + 216);
    assert.equal(header.family, 'unix');
    assert.equal(header.sourceAddress, '/run/lb.sock');
    assert.equal(header.destinationAddress, '/run/petrel.sock');
    assert.equal(header.sourcePort, undefined);
  });

  test('PROXY_HEADER_MAX covers the largest accepted v2 header and any v1 line', () => {
    assert.equal(PROXY_HEADER_MAX, 16 + 2048);
    const largest = v2(0x21, 0x11, Buffer.concat([ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 9, 10), tlv(0xe0, Buffer.alloc(2048 - 12 - 3))]));
    assert.equal(done(parseProxyHeader(largest)).length, PROXY_HEADER_MAX);
  });
});

describe('PROXY protocol framing', () => {
  for (const [name, header] of VALID) {
    test(`${name}: split at every byte offset is 'more' until the last byte, then 'done'`, () => {
      for (let k = 0; k < header.length; k++) {
        const r = parseProxyHeader(header.subarray(0, k));
        assert.equal(r.status, 'more', `offset ${k}: ${r.status === 'invalid' ? r.reason : r.status}`);
      }
      assert.equal(done(parseProxyHeader(header)).length, header.length);
    });

    test(`${name}: bytes after the header are not consumed`, () => {
      const data = Buffer.concat([header, MQTT_CONNECT]);
      const { length } = done(parseProxyHeader(data));
      assert.equal(length, header.length);
      assert.deepEqual(data.subarray(length), MQTT_CONNECT);
      // Even when the bytes after it contain another line end or a signature.
      const twice = Buffer.concat([header, header]);
      assert.equal(done(parseProxyHeader(twice)).length, header.length);
    });
  }
});

describe('PROXY protocol: invalid headers', () => {
  test('an MQTT CONNECT is refused from its first byte', () => {
    assertInvalid(MQTT_CONNECT.subarray(0, 1), /signature/);
    assertInvalid(MQTT_CONNECT, /signature/);
  });

  test('bad signatures are refused at the first wrong byte', () => {
    assertInvalid(v1('G'));
    assertInvalid(v1('GET / HTTP/1.1\r\n'));
    assertInvalid(v1('PROXX'));
    assertInvalid(v1('proxy TCP4'));
    assertInvalid(v1('PROXY\r\n'));
    assertInvalid(Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x01]));
    assertInvalid(Buffer.concat([SIG.subarray(0, 11), Buffer.from([0x0b])]));
    assert.equal(parseProxyHeader(Buffer.alloc(0)).status, 'more');
  });

  test('v1 without CRLF within 107 bytes', () => {
    const line = `PROXY UNKNOWN ${'a'.repeat(93)}`;
    assert.equal(line.length, 107);
    assert.equal(parseProxyHeader(v1(line.slice(0, 106))).status, 'more');
    assertInvalid(v1(line), /107/);
    assertInvalid(v1(`${line}\r\n`), /107/);
    // CR as the 107th byte: its LF would be the 108th.
    assertInvalid(v1(`${line.slice(0, 106)}\r\n`), /107/);
  });

  test('v1 line end: LF without CR, CR without LF', () => {
    assertInvalid(v1('PROXY UNKNOWN\n'), /LF/);
    assertInvalid(v1('PROXY UNKNOWN\rX'), /CR/);
    assertInvalid(v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n'), /LF/);
  });

  test('v1 protocol: TCP4, TCP6 or UNKNOWN in capitals', () => {
    assertInvalid(v1('PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n'), /protocol/);
    assertInvalid(v1('PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n'), /protocol/);
    assertInvalid(v1('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n'), /protocol/);
    assertInvalid(v1('PROXY UNKNOWNX\r\n'), /protocol/);
    assertInvalid(v1('PROXY \r\n'), /protocol/);
    assertInvalid(v1('PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), /protocol/);
    // Decided before the line ends.
    assertInvalid(v1('PROXY X'), /protocol/);
    assertInvalid(v1('PROXY TCP44'), /protocol/);
  });

  test('v1 addresses must be valid for their family', () => {
    for (const bad of ['256.1.1.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '::1', 'a.b.c.d', '1.2.3.4/8']) {
      assertInvalid(v1(`PROXY TCP4 ${bad} 5.6.7.8 1 2\r\n`), /address|character/);
      assertInvalid(v1(`PROXY TCP4 5.6.7.8 ${bad} 1 2\r\n`), /address|character/);
    }
    for (const bad of ['1.2.3.4', '1:2:3', ':::1', 'fe80::1%eth0', '1::2::3', 'g::1', '12345::1']) {
      assertInvalid(v1(`PROXY TCP6 ${bad} ::1 1 2\r\n`), /address|character/);
      assertInvalid(v1(`PROXY TCP6 ::1 ${bad} 1 2\r\n`), /address|character/);
    }
    // A character that can never belong to the address is refused before the line ends.
    assertInvalid(v1('PROXY TCP4 1.2.3.a'), /character/);
    assertInvalid(v1('PROXY TCP6 fe80::1%'), /character/);
    assertInvalid(v1(`PROXY TCP4 ${'1'.repeat(16)}`), /too long/);
  });

  test('v1 ports: decimal 0..65535 without leading zeros', () => {
    for (const bad of ['65536', '01', '00', '-1', '+1', '80a', '0x50', '100000', '1.5']) {
      assertInvalid(v1(`PROXY TCP4 1.2.3.4 5.6.7.8 ${bad} 2\r\n`), /port/);
      assertInvalid(v1(`PROXY TCP4 1.2.3.4 5.6.7.8 2 ${bad}\r\n`), /port/);
    }
    assertInvalid(v1('PROXY TCP4 1.2.3.4 5.6.7.8 01'), /port/); // before the line ends
    assertInvalid(v1('PROXY TCP4 1.2.3.4 5.6.7.8 65536'), /port/);
  });

  test('v1 fields: single spaces, exactly four after the protocol', () => {
    assertInvalid(v1('PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n'), /empty/);
    assertInvalid(v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n'), /extra/);
    assertInvalid(v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n'), /extra/);
    assertInvalid(v1('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n'), /missing/);
    assertInvalid(v1('PROXY TCP4\r\n'), /missing/);
    assertInvalid(v1('PROXY TCP4 \r\n'), /empty/);
    assertInvalid(v1('PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n'));
  });

  test('v2 version nibble must be 2, command LOCAL or PROXY', () => {
    assertInvalid(v2(0x11, 0x11, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /version/);
    assertInvalid(v2(0x31, 0x11, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /version/);
    assertInvalid(v2(0x22, 0x11, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /command/);
    assertInvalid(v2(0x2f, 0x11, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /command/);
    assertInvalid(Buffer.concat([SIG, Buffer.from([0x11])]), /version/); // from its 13th byte
  });

  test('v2 family and transport', () => {
    assertInvalid(v2(0x21, 0x41, Buffer.alloc(12)), /family/);
    assertInvalid(v2(0x21, 0xf1, Buffer.alloc(12)), /family/);
    assertInvalid(v2(0x21, 0x12, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /transport/); // DGRAM
    assertInvalid(v2(0x21, 0x13, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /transport/);
    assertInvalid(Buffer.concat([SIG, Buffer.from([0x21, 0x41])]), /family/); // from its 14th byte
  });

  test('v2 declared length over the cap is refused from the fixed part', () => {
    assertInvalid(v2(0x21, 0x11, Buffer.alloc(0), 2049), /2049/);
    assertInvalid(v2(0x21, 0x11, Buffer.alloc(0), 65535), /65535/);
    assertInvalid(v2(0x20, 0x00, Buffer.alloc(0), 2049), /2049/);
  });

  test('v2 address block must fit the family', () => {
    assertInvalid(v2(0x21, 0x11, Buffer.alloc(11)), /too short/);
    assertInvalid(v2(0x21, 0x21, Buffer.alloc(35)), /too short/);
    assertInvalid(v2(0x21, 0x31, Buffer.alloc(215)), /too short/);
    assertInvalid(v2(0x21, 0x11, Buffer.alloc(0), 11), /too short/); // decided from the fixed part
  });

  test('v2 TLVs: an overrun or a truncated TLV is refused', () => {
    const addresses = ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
    const overrun = Buffer.concat([addresses, tlv(0x01, Buffer.from('h2')).subarray(0, 4)]);
    assertInvalid(v2(0x21, 0x11, overrun), /overruns/);
    const longValue = Buffer.from([0x01, 0x00, 0x05, 0x61]);
    assertInvalid(v2(0x21, 0x11, Buffer.concat([addresses, longValue])), /overruns/);
    assertInvalid(v2(0x21, 0x11, Buffer.concat([addresses, Buffer.from([0x01, 0x00])])), /truncated/);
    assertInvalid(v2(0x21, 0x11, Buffer.concat([addresses, Buffer.from([0x01])])), /truncated/);
    // A TLV whose length reaches past the block into the bytes after it is still an overrun.
    const block = Buffer.concat([addresses, Buffer.from([0x01, 0x00, 0x04])]);
    assertInvalid(Buffer.concat([v2(0x21, 0x11, block), Buffer.from('abcd')]), /overruns/);
  });
});

describe('PROXY protocol fuzz', () => {
  const SEED = 0x5eed_9a11;
  const answers = new Set(['more', 'done', 'invalid']);

  /** Parses every prefix of `data`: never throws, and 'invalid' or 'done' (with its length) stays final. */
  function checkPrefixes(data: Buffer, label: string): void {
    let decided: ProxyParse | undefined;
    for (let k = 0; k <= data.length; k++) {
      let r: ProxyParse;
      try {
        r = parseProxyHeader(data.subarray(0, k));
      } catch (err) {
        assert.fail(`${label}: threw at prefix ${k}: ${String(err)}`);
      }
      assert.ok(answers.has(r.status), label);
      if (r.status === 'done') {
        assert.ok(r.length > 0 && r.length <= k && r.length <= PROXY_HEADER_MAX, `${label}: length ${r.length} at prefix ${k}`);
      }
      if (decided !== undefined) {
        assert.equal(r.status, decided.status, `${label}: answer changed at prefix ${k}`);
        if (r.status === 'done' && decided.status === 'done') assert.equal(r.length, decided.length, label);
      } else if (r.status !== 'more') {
        decided = r;
      }
    }
  }

  test('random buffers, with and without a signature in front', () => {
    for (let i = 0; i < 400; i++) {
      const rng = new Rng(subSeed(SEED, i));
      const prefix = rng.pick([Buffer.alloc(0), v1('PROXY '), v1('PROXY TCP4 '), v1('PROXY TCP6 '), v1('PROXY UNKNOWN'), SIG, Buffer.concat([SIG, Buffer.from([0x21])])]);
      const data = Buffer.concat([prefix, rng.bytes(rng.int(0, 140))]);
      checkPrefixes(data, `random case ${i} (seed ${subSeed(SEED, i)})`);
    }
  });

  test('random truncations and byte changes of valid headers', () => {
    const textAlphabet = Buffer.from('0123456789abcdefABCDEF.: \r\nPROXYTCPUNKW46', 'latin1');
    for (let i = 0; i < 600; i++) {
      const rng = new Rng(subSeed(SEED ^ 0xa5a5, i));
      const [name, header] = rng.pick(VALID);
      const data = Buffer.from(Buffer.concat([header, MQTT_CONNECT]));
      const edits = rng.int(0, 3);
      for (let e = 0; e < edits; e++) {
        const at = rng.int(0, header.length - 1);
        data[at] = header[0] === 0x50 && rng.chance(0.7) ? rng.pick([...textAlphabet]) : rng.int(0, 255);
      }
      const cut = rng.chance(0.5) ? rng.int(0, data.length) : data.length;
      checkPrefixes(data.subarray(0, cut), `${name} case ${i} (seed ${subSeed(SEED ^ 0xa5a5, i)})`);
    }
  });

  test('random valid v1 and v2 headers parse back to their addresses', () => {
    for (let i = 0; i < 300; i++) {
      const rng = new Rng(subSeed(SEED ^ 0x3c3c, i));
      const src = [rng.int(0, 255), rng.int(0, 255), rng.int(0, 255), rng.int(0, 255)];
      const dst = [rng.int(0, 255), rng.int(0, 255), rng.int(0, 255), rng.int(0, 255)];
      const sport = rng.int(0, 65535);
      const dport = rng.int(0, 65535);
      const text = v1(`PROXY TCP4 ${src.join('.')} ${dst.join('.')} ${sport} ${dport}\r\n`);
      const binary = v2(0x21, 0x11, ipv4Block(src, dst, sport, dport));
      for (const data of [text, binary]) {
        const { header, length } = done(parseProxyHeader(data));
        assert.equal(length, data.length);
        assert.equal(header.sourceAddress, src.join('.'));
        assert.equal(header.destinationAddress, dst.join('.'));
        assert.equal(header.sourcePort, sport);
        assert.equal(header.destinationPort, dport);
      }
    }
  });
});
