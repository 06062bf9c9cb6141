/**
 * Annotated byte fixtures: hex byte pairs, `"text"` for the UTF-8 bytes of a string and `#`
 * comments to the end of the line. Whitespace is ignored.
 */
import { Buffer } from 'node:buffer';

export function hex(annotated: string): Buffer {
  const bytes: number[] = [];
  let i = 0;
  const s = annotated;
  while (i < s.length) {
    const c = s[i] as string;
    if (c === '#') {
      while (i < s.length && s[i] !== '\n') i++;
    } else if (c === '"') {
      const close = s.indexOf('"', i + 1);
      if (close < 0) throw new Error(`unterminated string in fixture at ${i}`);
      bytes.push(...Buffer.from(s.slice(i + 1, close), 'utf8'));
      i = close + 1;
    } else if (/\s/.test(c)) {
      i++;
    } else {
      const pair = s.slice(i, i + 2);
      if (!/^[0-9a-fA-F]{2}$/.test(pair)) throw new Error(`bad hex '${pair}' in fixture at ${i}`);
      bytes.push(parseInt(pair, 16));
      i += 2;
    }
  }
  return Buffer.from(bytes);
}

export function toHex(buf: Uint8Array): string {
  return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('hex').replace(/(..)/g, '$1 ').trim();
}
