/** String helpers used on the encode hot path agree with node:buffer. */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { it } from 'node:test';
import { utf8Length, writeString } from '../../../src/protocol/primitives.js';
import { randomString } from '../../helpers/codec-gen.js';
import { Rng } from '../../helpers/codec-prng.js';

const EDGE = ['', 'a', 'é', '€', '😀', '\ud800', '\udc00', 'a\ud800', '\ud800a', '\udc00\ud800', 'x'.repeat(64), 'x'.repeat(65), 'é'.repeat(40)];

it('utf8Length equals Buffer.byteLength, lone surrogates included', () => {
  const rng = new Rng(42);
  const samples = [...EDGE, ...Array.from({ length: 2000 }, () => randomString(rng, 80))];
  for (const s of samples) assert.equal(utf8Length(s), Buffer.byteLength(s, 'utf8'), JSON.stringify(s));
});

it('writeString writes what Buffer.from writes', () => {
  const rng = new Rng(43);
  for (const s of [...EDGE, ...Array.from({ length: 2000 }, () => randomString(rng, 80))]) {
    const len = utf8Length(s);
    const out = Buffer.alloc(len + 2, 0xee);
    assert.equal(writeString(out, 1, s, len), 1 + len);
    assert.deepEqual(out.subarray(1, 1 + len), Buffer.from(s, 'utf8'));
    assert.equal(out[0], 0xee);
    assert.equal(out[len + 1], 0xee);
  }
});
