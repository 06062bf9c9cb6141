/**
 * PROXY protocol header parser (HAProxy's proxy-protocol.txt, version 1 text and version 2 binary).
 *
 * A load balancer in front of a listener may open each connection with one header that names the
 * real client. `parseProxyHeader` is pure: it looks at the bytes received so far and answers
 * `more`, `done` (with the header's length, so the bytes after it are left for the MQTT decoder)
 * or `invalid`. It decides as early as the bytes allow: a first byte that can start neither
 * signature is invalid at once, a v2 header whose family or declared length is wrong is invalid
 * from its 16-byte fixed part, a v1 line is checked field by field as it arrives. It never throws.
 *
 * Choices where the specification leaves room:
 * - v1 is strict: single spaces, ports in decimal without leading zeros, addresses valid for
 *   TCP4/TCP6 (no IPv6 zone). After UNKNOWN anything up to CRLF is ignored, as the spec requires.
 * - v2 PROXY with the UNSPEC family carries no address: it is reported as command `local` (use the
 *   real peer), the binary twin of v1 UNKNOWN. v2 LOCAL ignores the whole address block and its
 *   TLVs (the spec says to discard it), but its version, command and family byte must be valid.
 * - v2 accepts STREAM and UNSPEC transports only (DGRAM is refused); the declared block length is
 *   capped at `PROXY_V2_BLOCK_MAX` (2048) bytes, well above the addresses (at most 216 bytes) and
 *   the TLVs real proxies send. TLV values are copied, so the header does not pin the network
 *   chunk it came in; a TLV type seen twice keeps its last value. CRC32C TLVs are not verified.
 */
import { Buffer } from 'node:buffer';
import { isIPv4, isIPv6, SocketAddress } from 'node:net';

export interface ProxyHeader {
  version: 1 | 2;
  /** 'proxy' for a relayed connection; 'local' for v2 LOCAL or v1 UNKNOWN (health checks): the addresses are then undefined and the real peer address should be kept. */
  command: 'proxy' | 'local';
  family: 'tcp4' | 'tcp6' | 'unix' | 'unknown';
  sourceAddress: string | undefined; // canonical text form (IPv6 as Node prints it, e.g. '::1', '2001:db8::1')
  sourcePort: number | undefined;
  destinationAddress: string | undefined;
  destinationPort: number | undefined;
  /** v2 TLVs by type (raw bytes), only when present; undefined otherwise. */
  tlvs?: Map<number, Buffer>;
}

export type ProxyParse =
  | { status: 'more' } // need more bytes (the header is incomplete so far and nothing is wrong yet)
  | { status: 'done'; header: ProxyHeader; length: number } // header is bytes [0, length) of the input
  | { status: 'invalid'; reason: string }; // not a valid PROXY header: the connection must be closed

/** Longest v1 line, "PROXY " to CRLF included. */
const V1_MAX = 107;
/** Largest v2 address-and-TLV block accepted (the 16-bit length field allows 65535). */
const PROXY_V2_BLOCK_MAX = 2048;

/** Most bytes a header may take before it is invalid: 16 + 2048 (v2); a v1 line takes at most 107. */
export const PROXY_HEADER_MAX: number = 16 + PROXY_V2_BLOCK_MAX;

const V1_SIGNATURE = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

const MORE: ProxyParse = Object.freeze({ status: 'more' });

function invalid(reason: string): ProxyParse {
  return { status: 'invalid', reason };
}

/** Parses a header at the start of `data` (all bytes received so far on the connection). */
export function parseProxyHeader(data: Buffer): ProxyParse {
  if (data.length === 0) return MORE;
  const first = data[0];
  if (first === 0x50) return parseV1(data);
  if (first === 0x0d) return parseV2(data);
  return invalid('no PROXY protocol signature');
}

/** True when the first `min(data.length, sig.length)` bytes equal the signature's. */
function prefixMatches(data: Buffer, sig: Buffer): boolean {
  const n = Math.min(data.length, sig.length);
  for (let i = 0; i < n; i++) if (data[i] !== sig[i]) return false;
  return true;
}

/** Index of the first `byte` in `data[start, end)`, or `end`. */
function find(data: Buffer, byte: number, start: number, end: number): number {
  for (let i = start; i < end; i++) if (data[i] === byte) return i;
  return end;
}

// ---------------------------------------------------------------- version 1

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;

const PROTO_TCP4 = 'TCP4';
const PROTO_TCP6 = 'TCP6';
const PROTO_UNKNOWN = 'UNKNOWN';

function parseV1(data: Buffer): ProxyParse {
  if (!prefixMatches(data, V1_SIGNATURE)) return invalid('no PROXY protocol signature');
  const n = data.length;
  if (n <= V1_SIGNATURE.length) return MORE;

  // Find the line end; a LF not after CR, or a CR followed by anything but LF, is never valid.
  const scanEnd = Math.min(n, V1_MAX);
  let cr = -1;
  for (let i = V1_SIGNATURE.length; i < scanEnd; i++) {
    const c = data[i];
    if (c === CR) {
      if (i + 1 >= V1_MAX) return invalid(`v1: no CRLF within ${V1_MAX} bytes`);
      if (i + 1 < n) {
        if (data[i + 1] !== LF) return invalid('v1: CR not followed by LF');
        cr = i;
        break;
      }
      // The CR is the last byte so far: the line is whole, only its LF is still to come.
      const error = parseV1Line(data, V1_SIGNATURE.length, i, true);
      return error === undefined ? MORE : invalid(error);
    } else if (c === LF) {
      return invalid('v1: LF without CR');
    }
  }
  if (cr < 0) {
    if (n >= V1_MAX) return invalid(`v1: no CRLF within ${V1_MAX} bytes`);
    // Incomplete: check what has arrived so far, to refuse garbage before the line is complete.
    const partial = parseV1Line(data, V1_SIGNATURE.length, n, false);
    return partial === undefined ? MORE : invalid(partial);
  }
  const header: ProxyHeader = {
    version: 1,
    command: 'proxy',
    family: 'unknown',
    sourceAddress: undefined,
    sourcePort: undefined,
    destinationAddress: undefined,
    destinationPort: undefined,
  };
  const error = parseV1Line(data, V1_SIGNATURE.length, cr, true, header);
  if (error !== undefined) return invalid(error);
  return { status: 'done', header, length: cr + 2 };
}

/**
 * Checks the line `data[start, end)` after "PROXY ". `complete` says `end` is the CR of the line;
 * otherwise the line is cut at `end` and only what is there is checked. Fills `header` when given
 * (complete lines only). Returns an error text, or undefined when nothing is wrong (yet).
 */
function parseV1Line(data: Buffer, start: number, end: number, complete: boolean, header?: ProxyHeader): string | undefined {
  const sp = find(data, SPACE, start, end);
  const tokenComplete = sp < end || complete;
  const token = data.toString('latin1', start, sp);
  let family: 'tcp4' | 'tcp6';
  if (token === PROTO_UNKNOWN) {
    // Anything after UNKNOWN up to the CRLF is to be ignored; in a partial line it must start with a space.
    if (header !== undefined) header.command = 'local';
    return undefined;
  } else if (token === PROTO_TCP4) {
    family = 'tcp4';
  } else if (token === PROTO_TCP6) {
    family = 'tcp6';
  } else {
    if (!tokenComplete && (PROTO_TCP4.startsWith(token) || PROTO_TCP6.startsWith(token) || PROTO_UNKNOWN.startsWith(token))) return undefined;
    return 'v1: unknown protocol (TCP4, TCP6 or UNKNOWN expected)';
  }
  if (sp === end) return complete ? 'v1: addresses missing' : undefined;

  // Four fields: source address, destination address, source port, destination port.
  let fieldStart = sp + 1;
  for (let field = 0; field < 4; field++) {
    const fieldEnd = find(data, SPACE, fieldStart, end);
    const whole = fieldEnd < end || complete;
    if (!whole) {
      // The line stops inside this field: check its characters and length so far.
      return field < 2 ? partialAddressError(data, fieldStart, fieldEnd, family) : partialPortError(data, fieldStart, fieldEnd);
    }
    if (fieldEnd === fieldStart) return 'v1: empty field';
    if (field < 2) {
      const address = v1Address(data, fieldStart, fieldEnd, family);
      if (address === undefined) return `v1: invalid ${family === 'tcp4' ? 'IPv4' : 'IPv6'} address`;
      if (header !== undefined) {
        if (field === 0) header.sourceAddress = address;
        else header.destinationAddress = address;
      }
    } else {
      const port = v1Port(data, fieldStart, fieldEnd);
      if (port < 0) return 'v1: invalid port';
      if (header !== undefined) {
        if (field === 2) header.sourcePort = port;
        else header.destinationPort = port;
      }
    }
    if (fieldEnd === end) {
      if (field < 3) return complete ? 'v1: fields missing' : undefined;
      break;
    }
    if (field === 3) return 'v1: extra data after the destination port';
    fieldStart = fieldEnd + 1;
  }
  if (header !== undefined) header.family = family;
  return undefined;
}

function isAddressChar(c: number, family: 'tcp4' | 'tcp6'): boolean {
  if (c >= 0x30 && c <= 0x39) return true; // 0-9
  if (c === 0x2e) return true; // '.' (IPv4, or an IPv6 address ending in IPv4 form)
  if (family === 'tcp4') return false;
  return c === 0x3a || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46); // ':' a-f A-F
}

/** Longest text form: 255.255.255.255; ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255. */
function maxAddressLength(family: 'tcp4' | 'tcp6'): number {
  return family === 'tcp4' ? 15 : 45;
}

function partialAddressError(data: Buffer, start: number, end: number, family: 'tcp4' | 'tcp6'): string | undefined {
  if (end - start > maxAddressLength(family)) return 'v1: address too long';
  for (let i = start; i < end; i++) if (!isAddressChar(data[i] as number, family)) return 'v1: invalid character in address';
  return undefined;
}

function partialPortError(data: Buffer, start: number, end: number): string | undefined {
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = data[i] as number;
    if (c < 0x30 || c > 0x39) return 'v1: invalid port';
    if (i > start && data[start] === 0x30) return 'v1: invalid port (leading zero)';
    value = value * 10 + (c - 0x30);
    if (value > 65535) return 'v1: invalid port (over 65535)';
  }
  return undefined;
}

/** The canonical text of the address in `data[start, end)`, or undefined when it is not one of `family`. */
function v1Address(data: Buffer, start: number, end: number, family: 'tcp4' | 'tcp6'): string | undefined {
  if (partialAddressError(data, start, end, family) !== undefined) return undefined;
  const text = data.toString('latin1', start, end);
  if (family === 'tcp4') return isIPv4(text) ? text : undefined;
  return isIPv6(text) ? canonicalIPv6(text) : undefined;
}

/** A decimal port 0..65535 without leading zeros, or -1. */
function v1Port(data: Buffer, start: number, end: number): number {
  if (end - start > 5 || partialPortError(data, start, end) !== undefined) return -1;
  let value = 0;
  for (let i = start; i < end; i++) value = value * 10 + ((data[i] as number) - 0x30);
  return value;
}

/** IPv6 text as Node prints peer addresses (RFC 5952 form, lowercase, IPv4-mapped as ::ffff:a.b.c.d). */
function canonicalIPv6(text: string): string | undefined {
  try {
    return new SocketAddress({ address: text, family: 'ipv6' }).address;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- version 2

const V2_FIXED = 16;
const AF_UNSPEC = 0x0;
const AF_INET = 0x1;
const AF_INET6 = 0x2;
const AF_UNIX = 0x3;
const CMD_LOCAL = 0x0;
const CMD_PROXY = 0x1;
const TRANSPORT_UNSPEC = 0x0;
const TRANSPORT_STREAM = 0x1;
const UNIX_PATH = 108;

/** Bytes of the address part for each family: 2×IPv4 + 2 ports, 2×IPv6 + 2 ports, 2 socket paths. */
function addressLength(af: number): number {
  if (af === AF_INET) return 12;
  if (af === AF_INET6) return 36;
  if (af === AF_UNIX) return 2 * UNIX_PATH;
  return 0;
}

function familyName(af: number): ProxyHeader['family'] {
  if (af === AF_INET) return 'tcp4';
  if (af === AF_INET6) return 'tcp6';
  if (af === AF_UNIX) return 'unix';
  return 'unknown';
}

function parseV2(data: Buffer): ProxyParse {
  if (!prefixMatches(data, V2_SIGNATURE)) return invalid('no PROXY protocol signature');
  const n = data.length;
  if (n <= V2_SIGNATURE.length) return MORE;

  const verCmd = data[12] as number;
  if (verCmd >> 4 !== 2) return invalid('v2: unsupported version');
  const cmd = verCmd & 0x0f;
  if (cmd !== CMD_LOCAL && cmd !== CMD_PROXY) return invalid('v2: unknown command');
  if (n < 14) return MORE;

  const famByte = data[13] as number;
  const af = famByte >> 4;
  const transport = famByte & 0x0f;
  if (af !== AF_UNSPEC && af !== AF_INET && af !== AF_INET6 && af !== AF_UNIX) return invalid('v2: unknown address family');
  if (transport !== TRANSPORT_UNSPEC && transport !== TRANSPORT_STREAM) return invalid('v2: unsupported transport (STREAM expected)');
  if (n < V2_FIXED) return MORE;

  const blockLength = data.readUInt16BE(14);
  if (blockLength > PROXY_V2_BLOCK_MAX) return invalid(`v2: header block of ${blockLength} bytes (at most ${PROXY_V2_BLOCK_MAX})`);
  const addrLength = addressLength(af);
  if (cmd === CMD_PROXY && blockLength < addrLength) return invalid('v2: address block too short for its family');
  const length = V2_FIXED + blockLength;
  if (n < length) return MORE;

  const header: ProxyHeader = {
    version: 2,
    command: cmd === CMD_PROXY && af !== AF_UNSPEC ? 'proxy' : 'local',
    family: familyName(af),
    sourceAddress: undefined,
    sourcePort: undefined,
    destinationAddress: undefined,
    destinationPort: undefined,
  };
  // LOCAL: the receiver discards the whole block (addresses and TLVs) and keeps the real peer.
  if (cmd === CMD_LOCAL) return { status: 'done', header, length };

  const a = V2_FIXED;
  if (af === AF_INET) {
    header.sourceAddress = ipv4Text(data, a);
    header.destinationAddress = ipv4Text(data, a + 4);
    header.sourcePort = data.readUInt16BE(a + 8);
    header.destinationPort = data.readUInt16BE(a + 10);
  } else if (af === AF_INET6) {
    const source = ipv6Text(data, a);
    const destination = ipv6Text(data, a + 16);
    if (source === undefined || destination === undefined) return invalid('v2: invalid IPv6 address');
    header.sourceAddress = source;
    header.destinationAddress = destination;
    header.sourcePort = data.readUInt16BE(a + 32);
    header.destinationPort = data.readUInt16BE(a + 34);
  } else if (af === AF_UNIX) {
    header.sourceAddress = unixPath(data, a);
    header.destinationAddress = unixPath(data, a + UNIX_PATH);
  }

  let off = a + addrLength;
  let tlvs: Map<number, Buffer> | undefined;
  while (off < length) {
    if (length - off < 3) return invalid('v2: truncated TLV');
    const type = data[off] as number;
    const valueLength = data.readUInt16BE(off + 1);
    const valueStart = off + 3;
    if (valueStart + valueLength > length) return invalid('v2: TLV overruns the header block');
    tlvs ??= new Map();
    tlvs.set(type, Buffer.from(data.subarray(valueStart, valueStart + valueLength)));
    off = valueStart + valueLength;
  }
  if (tlvs !== undefined) header.tlvs = tlvs;
  return { status: 'done', header, length };
}

function ipv4Text(data: Buffer, at: number): string {
  return `${data[at] as number}.${data[at + 1] as number}.${data[at + 2] as number}.${data[at + 3] as number}`;
}

function ipv6Text(data: Buffer, at: number): string | undefined {
  let text = data.readUInt16BE(at).toString(16);
  for (let i = 2; i < 16; i += 2) text += `:${data.readUInt16BE(at + i).toString(16)}`;
  return canonicalIPv6(text);
}

/** A socket path: the bytes up to the first NUL (the field is NUL-padded to 108 bytes). */
function unixPath(data: Buffer, at: number): string {
  const end = find(data, 0, at, at + UNIX_PATH);
  return data.toString('utf8', at, end);
}
