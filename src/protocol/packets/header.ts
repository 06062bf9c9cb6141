/** Helpers shared by the packet codecs: the fixed header, and the optional 5.0 reason code + properties tail. */
import { ProtocolError } from '../errors.js';
import { type Reader, varintLength, Writer } from '../primitives.js';
import { type Properties, readProperties } from '../properties.js';
import { AllowedReasonCodes } from '../reason-codes.js';

/** Allocates a Writer for a packet of `remaining` bytes after the fixed header and writes that header. */
export function startPacket(firstByte: number, remaining: number): Writer {
  const w = new Writer(1 + varintLength(remaining) + remaining);
  w.u8(firstByte);
  w.varint(remaining);
  return w;
}

/**
 * Reads the 5.0 tail shared by PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT and AUTH: an optional
 * reason code (absent means 0x00) followed by optional properties [MQTT-3.4.2-1] [MQTT-3.14.2-1].
 */
export function readReasonTail(r: Reader, type: number, into: { reasonCode?: number; properties?: Properties }): void {
  if (r.remaining() === 0) return;
  const code = r.u8('reason code');
  if (!(AllowedReasonCodes[type] as ReadonlySet<number>).has(code)) {
    throw new ProtocolError(`reason code 0x${code.toString(16)} is not allowed here`);
  }
  into.reasonCode = code;
  if (r.remaining() === 0) return;
  const props = readProperties(r, type);
  if (props !== undefined) into.properties = props;
}
