/**
 * Byte-level reading and writing: integers, Variable Byte Integers, UTF-8 strings
 * (validated as §1.5.4 requires) and binary data. A Reader never reads past its end:
 * running out of bytes inside a packet is a Malformed Packet.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { MalformedPacketError } from './errors.js';

/** Checks a UTF-8 Encoded String: well-formed UTF-8, no surrogates, no U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2]. */
export function validUtf8(buf: Buffer, start: number, end: number): boolean {
  let ascii = true;
  for (let i = start; i < end; i++) {
    const b = buf[i] as number;
    if (b === 0) return false;
    if (b >= 0x80) { ascii = false; break; }
  }
  if (ascii) return true;
  return isUtf8(buf.subarray(start, end));
}

const NO_BYTES = Buffer.alloc(0);

export class Reader {
  buf: Buffer = NO_BYTES;
  pos = 0;
  end = 0;

  reset(buf: Buffer, pos: number, end: number): this {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    return this;
  }

  /** Drops the reference to the input so it can be collected. */
  release(): void {
    this.buf = NO_BYTES;
    this.pos = 0;
    this.end = 0;
  }

  remaining(): number {
    return this.end - this.pos;
  }

  #need(n: number, what: string): void {
    if (this.pos + n > this.end) throw new MalformedPacketError(`packet ends inside ${what}`);
  }

  u8(what = 'a byte'): number {
    this.#need(1, what);
    return this.buf[this.pos++] as number;
  }

  u16(what = 'a two byte integer'): number {
    this.#need(2, what);
    const v = ((this.buf[this.pos] as number) << 8) | (this.buf[this.pos + 1] as number);
    this.pos += 2;
    return v;
  }

  u32(what = 'a four byte integer'): number {
    this.#need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Variable Byte Integer: at most 4 bytes [MQTT-1.5.5-1]; a non-minimal encoding is accepted. */
  varint(what = 'a variable byte integer'): number {
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 4; i++) {
      this.#need(1, what);
      const b = this.buf[this.pos++] as number;
      value += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return value;
      mul *= 128;
    }
    throw new MalformedPacketError(`${what} is longer than 4 bytes`);
  }

  /** UTF-8 Encoded String [MQTT-1.5.4-1] [MQTT-1.5.4-2]. */
  utf8(what = 'a string'): string {
    const len = this.u16(what);
    this.#need(len, what);
    const start = this.pos;
    this.pos += len;
    if (!validUtf8(this.buf, start, this.pos)) {
      throw new MalformedPacketError(`${what} is not valid UTF-8 or contains U+0000`);
    }
    return this.buf.toString('utf8', start, this.pos);
  }

  /** Binary Data: two byte length then bytes. Returns a view, not a copy. */
  binary(what = 'binary data'): Buffer {
    const len = this.u16(what);
    this.#need(len, what);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** The rest of the packet, as a view. */
  rest(): Buffer {
    const out = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return out;
  }
}

export function varintLength(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

export function writeVarint(buf: Buffer, pos: number, n: number): number {
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    buf[pos++] = b;
  } while (n > 0);
  return pos;
}

/** Sequential writer over a Buffer allocated with the exact packet length. */
export class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }

  u16(v: number): void {
    this.buf[this.pos++] = v >>> 8;
    this.buf[this.pos++] = v & 0xff;
  }

  u32(v: number): void {
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }

  varint(v: number): void {
    this.pos = writeVarint(this.buf, this.pos, v);
  }

  /** Writes a length-prefixed string whose byte length the caller already computed. */
  utf8(s: string, byteLen: number): void {
    this.u16(byteLen);
    this.pos = writeString(this.buf, this.pos, s, byteLen);
  }

  binary(b: Buffer): void {
    this.u16(b.length);
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }

  raw(b: Buffer): void {
    b.copy(this.buf, this.pos);
    this.pos += b.length;
  }
}

/** Strings up to this many characters are measured and copied in JS, avoiding a native call. */
const SHORT_STRING = 64;

/** Byte length of a string in UTF-8 (a lone surrogate counts 3, as Buffer.byteLength does). */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n > SHORT_STRING) return Buffer.byteLength(s, 'utf8');
  let len = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) len += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { len += 2; i++; }
    else len += 2;
  }
  return len;
}

/** Writes the `byteLen` UTF-8 bytes of `s` at `pos`; returns the position after them. */
export function writeString(buf: Buffer, pos: number, s: string, byteLen: number): number {
  if (byteLen !== s.length) return pos + buf.write(s, pos, byteLen, 'utf8');
  if (byteLen > SHORT_STRING) return pos + buf.write(s, pos, byteLen, 'latin1');
  for (let i = 0; i < byteLen; i++) buf[pos + i] = s.charCodeAt(i);
  return pos + byteLen;
}
