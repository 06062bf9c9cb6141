/**
 * The generator's wire layer: packets pre-encoded once with Petrel's codec, a minimal frame
 * scanner for the receive side (3.1.1 and 5.0, topic aliases resolved), and a socket wrapper
 * reading into one shared large buffer.
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { createWebSocketStream, WebSocket } from 'ws';
import { type ConnackPacket, Decoder, encode, type Packet, type QoS, type SubackPacket } from '../../src/protocol/index.js';
import type { Transport } from './common.js';

export const PAYLOAD_BYTES = 128;
/** Payload layout: [0, 8) send time (double, performance.now()), [8, 12) stream id, [12, 16) sequence number. */
const STREAM_AT = 8;
const SEQ_AT = 12;

/** `persistent`: Clean Session 0 (5.0: Clean Start 0 with a one-hour Session Expiry Interval). */
export function connectBytes(clientId: string, version: 4 | 5, topicAliasMaximum: number, persistent = false): Buffer {
  const properties = {
    ...(topicAliasMaximum > 0 ? { topicAliasMaximum } : {}),
    ...(persistent ? { sessionExpiryInterval: 3600 } : {}),
  };
  return encode({
    type: 1, protocolVersion: version, protocolName: 'MQTT', clientId, clean: !persistent, keepalive: 60,
    ...(version === 5 && Object.keys(properties).length > 0 ? { properties } : {}),
  }, version);
}

export function subscribeBytes(topicFilter: string, qos: QoS, version: 4 | 5): Buffer {
  return encode({ type: 8, packetId: 1, subscriptions: [{ topicFilter, qos }] }, version);
}

/** Decodes one whole control packet (CONNACK, SUBACK, …) with Petrel's decoder. */
export function decodeFrame(frame: Buffer, version: 4 | 5): Packet | undefined {
  return new Decoder({ protocolVersion: version }).push(frame)[0];
}

export function isConnack(p: Packet | undefined): p is ConnackPacket {
  return p?.type === 2;
}

export function isSuback(p: Packet | undefined): p is SubackPacket {
  return p?.type === 9;
}

/**
 * A PUBLISH encoded once for one (publisher, topic) stream; `stamp` copies it into a batch with
 * a new packet id, timestamp and sequence number (numbered per stream from 0).
 */
export class PublishTemplate {
  readonly bytes: Buffer;
  /** Offset of the packet identifier. */
  readonly idAt: number;
  /** Offset of the payload. */
  readonly payloadAt: number;
  readonly qos: QoS;
  seq = 0;

  /** `weight` = subscribers that should receive each message of this stream. */
  constructor(topic: string, qos: QoS, version: 4 | 5, messageExpiry: number, readonly stream: number, readonly weight: number) {
    const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
    const packet = {
      type: 3 as const, topic, payload, qos, retain: false, dup: false,
      ...(version === 5 && messageExpiry > 0 ? { properties: { messageExpiryInterval: messageExpiry } } : {}),
    };
    this.bytes = encode(qos > 0 ? { ...packet, packetId: 1 } : packet, version);
    let i = 1;
    while (((this.bytes[i] as number) & 0x80) !== 0) i++;
    this.idAt = i + 1 + 2 + Buffer.byteLength(topic);
    this.payloadAt = this.bytes.length - PAYLOAD_BYTES;
    this.qos = qos;
    this.bytes.writeUInt32LE(stream, this.payloadAt + STREAM_AT);
  }

  /** Writes this packet at `at` in `out`; returns the offset just after it. */
  stamp(out: Buffer, at: number, packetId: number, nowMs: number): number {
    this.bytes.copy(out, at);
    if (this.qos > 0) out.writeUInt16BE(packetId, at + this.idAt);
    out.writeDoubleLE(nowMs, at + this.payloadAt);
    out.writeUInt32LE(this.seq++, at + this.payloadAt + SEQ_AT);
    return at + this.bytes.length;
  }
}

/** What the scanner reports. Only PUBLISH and the acknowledgements are on the hot path. */
export interface FrameSink {
  /**
   * A PUBLISH arrived: its QoS, packet id (0 at QoS 0), the sender's timestamp, stream id and
   * sequence number, and whether its topic (resolved through the alias at 5.0) was the expected one.
   */
  onPublish(qos: number, packetId: number, sentAtMs: number, stream: number, seq: number, topicOk: boolean): void;
  /** PUBACK (4), PUBREC (5) or PUBCOMP (7) with its reason code (0 when left out). */
  onAck(type: number, packetId: number, reason: number): void;
  onPubrel(packetId: number): void;
  /** Any other packet, as the whole frame. */
  onControl(type: number, frame: Buffer): void;
}

/**
 * Splits a byte stream into MQTT frames without decoding them. A frame cut by a read is
 * copied into `#rest` and completed by the next read.
 */
export class FrameScanner {
  #rest: Buffer | undefined;
  /** 5.0: PUBLISH packets that carried only a topic alias (empty topic), resolved from the map. */
  aliasOnly = 0;
  /** 5.0: topic per alias the broker set (index = alias). */
  readonly #aliases: (Buffer | undefined)[] = [];

  /**
   * `expectedTopic`: the only topic this client may receive (undefined: not checked);
   * `aliasMaximum`: the Topic Alias Maximum this client sent (5.0).
   */
  constructor(private readonly sink: FrameSink, readonly version: 4 | 5, private readonly expectedTopic: Buffer | undefined, private readonly aliasMaximum: number) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.#rest !== undefined) {
      buf = Buffer.concat([this.#rest, chunk]);
      this.#rest = undefined;
    }
    const end = buf.length;
    let off = 0;
    while (end - off >= 2) {
      let len = 0;
      let mul = 1;
      let i = off + 1;
      let complete = false;
      while (i < end && i < off + 5) {
        const b = buf[i++] as number;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if (b < 0x80) { complete = true; break; }
      }
      if (!complete || i + len > end) break;
      this.#frame(buf, off, i, i + len);
      off = i + len;
    }
    // The read buffer is shared and reused: keep a copy of a partial frame.
    if (off < end) this.#rest = Buffer.from(buf.subarray(off, end));
  }

  #frame(buf: Buffer, off: number, start: number, end: number): void {
    const b0 = buf[off] as number;
    const type = b0 >> 4;
    if (type === 3) this.#publish(buf, b0, start, end);
    else if (type === 4 || type === 5 || type === 7) this.sink.onAck(type, buf.readUInt16BE(start), end - start > 2 ? buf[start + 2] as number : 0);
    else if (type === 6) this.sink.onPubrel(buf.readUInt16BE(start));
    else this.sink.onControl(type, buf.subarray(off, end));
  }

  #publish(buf: Buffer, b0: number, start: number, end: number): void {
    const qos = (b0 >> 1) & 3;
    const topicLen = buf.readUInt16BE(start);
    const topicAt = start + 2;
    let at = topicAt + topicLen;
    let id = 0;
    if (qos > 0) { id = buf.readUInt16BE(at); at += 2; }
    let ok = true;
    let alias = 0;
    if (this.version === 5) {
      let plen = 0;
      let mul = 1;
      for (let k = 0; k < 4; k++) {
        const b = buf[at++] as number;
        plen += (b & 0x7f) * mul;
        mul *= 128;
        if (b < 0x80) break;
      }
      const propsEnd = at + plen;
      while (at < propsEnd) {
        const pid = buf[at++] as number;
        if (pid === 0x23) { alias = buf.readUInt16BE(at); at += 2; }
        else if (pid === 0x02) at += 4;
        else if (pid === 0x01) at += 1;
        else if (pid === 0x03 || pid === 0x08 || pid === 0x09) at += 2 + buf.readUInt16BE(at);
        else if (pid === 0x26) { at += 2 + buf.readUInt16BE(at); at += 2 + buf.readUInt16BE(at); }
        else if (pid === 0x0b) { while (((buf[at++] as number) & 0x80) !== 0 && at < propsEnd); }
        else { ok = false; break; }
      }
      at = propsEnd;
    }
    const expected = this.expectedTopic;
    if (alias !== 0) {
      if (alias > this.aliasMaximum) ok = false;
      else if (topicLen > 0) {
        const known = this.#aliases[alias];
        if (known === undefined || known.length !== topicLen || known.compare(buf, topicAt, topicAt + topicLen) !== 0) {
          this.#aliases[alias] = Buffer.from(buf.subarray(topicAt, topicAt + topicLen));
        }
        if (expected !== undefined && (expected.length !== topicLen || expected.compare(buf, topicAt, topicAt + topicLen) !== 0)) ok = false;
      } else {
        this.aliasOnly++;
        const known = this.#aliases[alias];
        if (known === undefined || (expected !== undefined && !expected.equals(known))) ok = false;
      }
    } else if (topicLen === 0) {
      ok = false;
    } else if (expected !== undefined && (expected.length !== topicLen || expected.compare(buf, topicAt, topicAt + topicLen) !== 0)) {
      ok = false;
    }
    if (end - at >= 16) {
      this.sink.onPublish(qos, id, buf.readDoubleLE(at), buf.readUInt32LE(at + STREAM_AT), buf.readUInt32LE(at + SEQ_AT), ok);
    } else {
      this.sink.onPublish(qos, id, Number.NaN, 0xffffffff, 0, false);
    }
  }
}

/** One read buffer for every socket of the process: reads are handled synchronously. */
const readBuffer = Buffer.allocUnsafe(256 * 1024);

export interface ClientOptions {
  port: number;
  host: string;
  localAddress?: string;
  /** Default tcp. */
  transport?: Transport;
  /** tls and wss: the CA that signed the broker's certificate (PEM). */
  ca?: Buffer;
}

/** A connection as the clients see it: a byte stream and the moment it can carry MQTT. */
export interface Connection {
  stream: Duplex;
  /** Resolves once TCP is connected, the TLS handshake is done or the WebSocket is open. */
  open: Promise<void>;
}

/**
 * Opens a connection whose reads go straight to `scanner`. TCP reads into the shared buffer
 * (no allocation per read); TLS and WebSocket deliver their own chunks. WebSocket clients
 * connect to /mqtt with the `mqtt` subprotocol and no compression, as MQTT.js does; every
 * write is one binary frame.
 */
export function openSocket(opts: ClientOptions, scanner: FrameScanner, afterRead: () => void): Connection {
  const onData = (chunk: Buffer): void => {
    scanner.push(chunk);
    afterRead();
  };
  const transport = opts.transport ?? 'tcp';
  const local = opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {};
  if (transport === 'tcp') {
    const socket = net.connect({
      port: opts.port, host: opts.host, ...local, noDelay: true,
      onread: {
        buffer: readBuffer,
        callback: (n: number, buf: Uint8Array): boolean => {
          onData(Buffer.from(buf.buffer, buf.byteOffset, n));
          return true;
        },
      },
    });
    return { stream: socket, open: once(socket, 'connect') };
  }
  if (transport === 'tls') {
    const socket = tls.connect({ port: opts.port, host: opts.host, ...local, ...(opts.ca !== undefined ? { ca: opts.ca } : {}) });
    socket.setNoDelay(true);
    socket.on('data', onData);
    return { stream: socket, open: once(socket, 'secureConnect') };
  }
  const scheme = transport === 'wss' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${opts.host}:${opts.port}/mqtt`, 'mqtt', {
    perMessageDeflate: false, ...local, ...(transport === 'wss' && opts.ca !== undefined ? { ca: opts.ca } : {}),
  });
  const stream = createWebSocketStream(ws);
  stream.on('data', onData);
  return { stream, open: once(ws, 'open') };
}

function once(emitter: { once(event: string, fn: (arg?: unknown) => void): unknown }, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    emitter.once(event, () => resolve());
    emitter.once('error', (err) => reject(err instanceof Error ? err : new Error(String(err))));
  });
}
