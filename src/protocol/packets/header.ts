/** Fixed-header helpers shared by the packet encoders. */
import { varintLength, Writer } from '../primitives.js';

/** Allocates a Writer for a packet of `remaining` bytes after the fixed header and writes that header. */
export function startPacket(firstByte: number, remaining: number): Writer {
  const w = new Writer(1 + varintLength(remaining) + remaining);
  w.u8(firstByte);
  w.varint(remaining);
  return w;
}
