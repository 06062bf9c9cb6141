/**
 * The browser build's Buffer (src/shims/buffer.ts) against Node's own, for every method the
 * codec and the client call: the same bytes, lengths and strings for ASCII, Latin-1, multi-byte,
 * astral and lone-surrogate text, and the same views and copies.
 */
import assert from 'node:assert/strict';
import { Buffer as NodeBuffer, isUtf8 as nodeIsUtf8 } from 'node:buffer';
import { describe, test } from 'node:test';
import { Buffer as ShimBuffer, isUtf8 } from '../../../src/shims/buffer.js';
import { EventEmitter } from '../../../src/shims/events.js';
import { randomBytes } from '../../../src/shims/crypto.js';

const STRINGS = ['', 'a/b/c', 'caf\u00e9', '\u6f22\u5b57/\u00ff', 'bird \u{1f426}', 'lone \ud800 high', 'lone \udc00 low', 'x'.repeat(70) + '\u00e9'];
const bytes = (b: Uint8Array): number[] => [...b];

describe('browser Buffer shim', () => {
  test('byteLength, from and toString agree with Node for utf8, latin1, hex and base64', () => {
    for (const s of STRINGS) {
      assert.equal(ShimBuffer.byteLength(s, 'utf8'), NodeBuffer.byteLength(s, 'utf8'), s);
      assert.deepEqual(bytes(ShimBuffer.from(s, 'utf8')), bytes(NodeBuffer.from(s, 'utf8')), s);
      assert.deepEqual(bytes(ShimBuffer.from(s, 'latin1')), bytes(NodeBuffer.from(s, 'latin1')), s);
      const node = NodeBuffer.from(s, 'utf8');
      const shim = ShimBuffer.from(node);
      for (const enc of ['utf8', 'latin1', 'hex', 'base64'] as const) {
        assert.equal(shim.toString(enc), node.toString(enc), `${enc} ${s}`);
        assert.equal(shim.toString(enc, 1, 5), node.toString(enc, 1, 5), `${enc} slice ${s}`);
        assert.deepEqual(bytes(ShimBuffer.from(node.toString(enc), enc)), bytes(NodeBuffer.from(node.toString(enc), enc)), `${enc} back ${s}`);
      }
      assert.equal(isUtf8(shim), nodeIsUtf8(node), s);
    }
    assert.equal(isUtf8(Uint8Array.from([0xc3, 0x28])), false);
  });

  test('write stops at whole characters within the room given, as Node does', () => {
    for (const s of STRINGS) {
      for (const room of [0, 3, 7, 64]) {
        const a = NodeBuffer.alloc(80, 0xee);
        const b = ShimBuffer.alloc(80, 0xee);
        const len = Math.min(room, NodeBuffer.byteLength(s));
        assert.equal(b.write(s, 2, len, 'utf8'), a.write(s, 2, len, 'utf8'), `${room} ${s}`);
        assert.deepEqual(bytes(b), bytes(a), `${room} ${s}`);
      }
    }
    const a = NodeBuffer.alloc(8);
    const b = ShimBuffer.alloc(8);
    assert.equal(b.write('abc\u00e9', 1, 4, 'latin1'), a.write('abc\u00e9', 1, 4, 'latin1'));
    assert.deepEqual(bytes(b), bytes(a));
  });

  test('subarray is a view; copy (also overlapping), concat and the integer accessors match Node', () => {
    const shim = ShimBuffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const node = NodeBuffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const view = shim.subarray(2, 4);
    assert.ok(view instanceof ShimBuffer);
    view[0] = 99;
    assert.equal(shim[2], 99);
    node[2] = 99;
    assert.equal(shim.copy(shim, 1, 0, 6), node.copy(node, 1, 0, 6));
    assert.deepEqual(bytes(shim), bytes(node));
    const small = ShimBuffer.alloc(3);
    assert.equal(shim.copy(small, 1), node.copy(NodeBuffer.alloc(3), 1));
    assert.deepEqual(bytes(ShimBuffer.concat([shim, view], 9)), bytes(NodeBuffer.concat([node, node.subarray(2, 4)], 9)));
    shim.writeUInt32BE(0xfedcba98, 2);
    node.writeUInt32BE(0xfedcba98, 2);
    shim.writeUInt16BE(0xabcd, 0);
    node.writeUInt16BE(0xabcd, 0);
    assert.deepEqual(bytes(shim), bytes(node));
    assert.equal(shim.readUInt32BE(2), node.readUInt32BE(2));
    assert.equal(shim.readUInt16BE(0), node.readUInt16BE(0));
    assert.equal(ShimBuffer.isBuffer(shim), true);
    assert.equal(ShimBuffer.isBuffer(new Uint8Array(1)), false);
    assert.equal(shim.equals(ShimBuffer.from(bytes(shim))), true);
    const ab = new Uint8Array([5, 6, 7]).buffer;
    const wrapped = ShimBuffer.from(ab, 1, 2);
    assert.deepEqual(bytes(wrapped), [6, 7]);
    assert.equal(wrapped.buffer, ab, 'from(ArrayBuffer) is a view, as in Node');
  });

  test('EventEmitter shim: once, off, listenerCount, and an unheard error is thrown', () => {
    const e = new EventEmitter();
    const seen: unknown[] = [];
    const fn = (x: never): void => void seen.push(x);
    e.on('a', fn);
    e.once('a', (x: never) => void seen.push(`once ${String(x)}`));
    assert.equal(e.listenerCount('a'), 2);
    assert.equal(e.emit('a', 1), true);
    assert.equal(e.emit('a', 2), true);
    e.off('a', fn);
    assert.equal(e.emit('a', 3), false);
    assert.deepEqual(seen, [1, 'once 1', 2]);
    assert.throws(() => e.emit('error', new Error('boom')), /boom/);
  });

  test('randomBytes comes from Web Crypto, in any size', () => {
    const a = randomBytes(70_000);
    assert.equal(a.length, 70_000);
    assert.ok(a.subarray(65_536).some((b) => b !== 0), 'past the 64 KiB a single getRandomValues call fills');
  });
});
