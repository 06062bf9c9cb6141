/**
 * The part of Node's `Buffer` that the codec and the client use, over a plain `Uint8Array`, for
 * the browser build of `petrel/client` (scripts/build-browser.mjs puts it in place of
 * `node:buffer`; Node itself never loads this file). A `Buffer` here is a `Uint8Array` subclass,
 * so `subarray` returns views of the same memory as Node's does, and a payload a browser user
 * gets is an ordinary `Uint8Array` with `toString()`.
 *
 * Encodings: utf8 (also 'utf-8'), latin1 ('binary'), ascii, hex and base64. Anything else throws.
 */

type Encoding = 'utf8' | 'utf-8' | 'latin1' | 'binary' | 'ascii' | 'hex' | 'base64';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');
const strictDecoder = new TextDecoder('utf-8', { fatal: true });

function normalise(encoding: string | undefined): 'utf8' | 'latin1' | 'hex' | 'base64' {
  switch ((encoding ?? 'utf8').toLowerCase()) {
    case 'utf8': case 'utf-8': return 'utf8';
    case 'latin1': case 'binary': case 'ascii': return 'latin1';
    case 'hex': return 'hex';
    case 'base64': return 'base64';
    default: throw new TypeError(`unknown encoding: ${encoding}`);
  }
}

/** UTF-8 length of `s`; a lone surrogate counts 3 bytes (it is written as U+FFFD), as in Node. */
function utf8Length(s: string): number {
  let len = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) len += 1;
    else if (c < 0x800) len += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { len += 4; i++; }
    else len += 3;
  }
  return len;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function bytesOf(s: string, encoding: 'utf8' | 'latin1' | 'hex' | 'base64'): Uint8Array {
  if (encoding === 'utf8') return encoder.encode(s);
  if (encoding === 'latin1') {
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
    return out;
  }
  if (encoding === 'hex') {
    const n = s.length >>> 1;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = Number.parseInt(s.slice(2 * i, 2 * i + 2), 16);
      if (Number.isNaN(v)) return out.subarray(0, i);
      out[i] = v;
    }
    return out;
  }
  // base64 (and base64url), skipping what is not part of the alphabet, as Node does.
  const clean = s.replace(/-/g, '+').replace(/_/g, '/').replace(/[^A-Za-z0-9+/]/g, '');
  const bin = atob(clean + '==='.slice((clean.length + 3) % 4));
  return bytesOf(bin, 'latin1');
}

function textOf(bytes: Uint8Array, encoding: 'utf8' | 'latin1' | 'hex' | 'base64'): string {
  if (encoding === 'utf8') return decoder.decode(bytes);
  if (encoding === 'hex') {
    let s = '';
    for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i] as number];
    return s;
  }
  let latin1 = '';
  for (let i = 0; i < bytes.length; i += 4096) latin1 += String.fromCharCode(...bytes.subarray(i, i + 4096));
  if (encoding === 'latin1') return latin1;
  if (typeof btoa === 'function') return btoa(latin1);
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += B64.charAt(n >>> 18) + B64.charAt((n >>> 12) & 63);
    out += (i + 1 < bytes.length ? B64.charAt((n >>> 6) & 63) : '=') + (i + 2 < bytes.length ? B64.charAt(n & 63) : '=');
  }
  return out;
}

export class Buffer extends Uint8Array {
  static override from(value: string, encoding?: Encoding): Buffer;
  static override from(value: ArrayBuffer, byteOffset?: number, length?: number): Buffer;
  static override from(value: ArrayLike<number> | Iterable<number>): Buffer;
  static override from(value: string | ArrayBuffer | ArrayLike<number> | Iterable<number>, a?: Encoding | number, b?: number): Buffer {
    if (typeof value === 'string') {
      const bytes = bytesOf(value, normalise(a as string | undefined));
      const out = new Buffer(bytes.length);
      out.set(bytes);
      return out;
    }
    if (value instanceof ArrayBuffer) {
      const offset = typeof a === 'number' ? a : 0;
      return new Buffer(value, offset, b ?? value.byteLength - offset);
    }
    // A copy, as Node's Buffer.from(array | typed array) makes.
    const src = ArrayBuffer.isView(value) ? value as Uint8Array : Uint8Array.from(value as ArrayLike<number>);
    const out = new Buffer(src.length);
    out.set(src);
    return out;
  }

  static alloc(size: number, fill?: number): Buffer {
    const out = new Buffer(size);
    if (fill !== undefined && fill !== 0) out.fill(fill);
    return out;
  }

  static allocUnsafe(size: number): Buffer {
    return new Buffer(size);
  }

  static allocUnsafeSlow(size: number): Buffer {
    return new Buffer(size);
  }

  static byteLength(value: string | ArrayBufferView | ArrayBuffer, encoding?: Encoding): number {
    if (typeof value !== 'string') return value.byteLength;
    const e = normalise(encoding);
    if (e === 'utf8') return utf8Length(value);
    if (e === 'latin1') return value.length;
    return bytesOf(value, e).length;
  }

  static isBuffer(value: unknown): value is Buffer {
    return value instanceof Buffer;
  }

  static concat(list: readonly Uint8Array[], totalLength?: number): Buffer {
    const total = totalLength ?? list.reduce((n, b) => n + b.length, 0);
    const out = new Buffer(total);
    let pos = 0;
    for (const b of list) {
      if (pos >= total) break;
      const part = b.length <= total - pos ? b : b.subarray(0, total - pos);
      out.set(part, pos);
      pos += part.length;
    }
    return out;
  }

  override toString(encoding?: Encoding, start = 0, end = this.length): string {
    const s = Math.max(0, start);
    const e = Math.min(this.length, end);
    if (e <= s) return '';
    return textOf(this.subarray(s, e), normalise(encoding));
  }

  /** Writes `s` at `offset`, at most `length` bytes (whole characters only); returns the bytes written. */
  write(s: string, offset = 0, length = this.length - offset, encoding: Encoding = 'utf8'): number {
    const room = Math.min(length, this.length - offset);
    const e = normalise(encoding);
    if (e === 'utf8') return encoder.encodeInto(s, this.subarray(offset, offset + room)).written;
    const bytes = bytesOf(s, e);
    const n = Math.min(room, bytes.length);
    this.set(bytes.subarray(0, n), offset);
    return n;
  }

  /** Copies `this[sourceStart, sourceEnd)` into `target` at `targetStart` (overlap allowed); returns the bytes copied. */
  copy(target: Uint8Array, targetStart = 0, sourceStart = 0, sourceEnd = this.length): number {
    const n = Math.max(0, Math.min(sourceEnd, this.length) - sourceStart, 0);
    const count = Math.min(n, target.length - targetStart);
    if (count <= 0) return 0;
    // `set` copies as if through a temporary array, so overlapping ranges of one buffer are safe.
    target.set(this.subarray(sourceStart, sourceStart + count), targetStart);
    return count;
  }

  equals(other: Uint8Array): boolean {
    if (other.length !== this.length) return false;
    for (let i = 0; i < this.length; i++) if (this[i] !== other[i]) return false;
    return true;
  }

  readUInt16BE(offset = 0): number {
    return ((this[offset] as number) << 8) | (this[offset + 1] as number);
  }

  readUInt32BE(offset = 0): number {
    return ((this[offset] as number) * 0x1000000) + (((this[offset + 1] as number) << 16) | ((this[offset + 2] as number) << 8) | (this[offset + 3] as number));
  }

  writeUInt16BE(value: number, offset = 0): number {
    this[offset] = value >>> 8;
    this[offset + 1] = value & 0xff;
    return offset + 2;
  }

  writeUInt32BE(value: number, offset = 0): number {
    this[offset] = value >>> 24;
    this[offset + 1] = (value >>> 16) & 0xff;
    this[offset + 2] = (value >>> 8) & 0xff;
    this[offset + 3] = value & 0xff;
    return offset + 4;
  }
}

/** Well-formed UTF-8, as Node's `buffer.isUtf8`. */
export function isUtf8(bytes: Uint8Array): boolean {
  try {
    strictDecoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}
