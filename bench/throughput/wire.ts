/**
 * The generator's wire layer: packets pre-encoded once with Petrel's codec, a minimal frame
 * scanner for the receive side, and a socket wrapper reading into one shared large buffer.
 */
import { Buffer } from 'node:buffer';
import net from 'node:net';
import { encode, type QoS } from '../../src/protocol/index.js';

export const PAYLOAD_BYTES = 128;
const V311 = 4;

export function connectBytes(clientId: string): Buffer {
  return encode({ type: 1, protocolVersion: 4, protocolName: 'MQTT', clientId, clean: true, keepalive: 60 }, V311);
}

export function subscribeBytes(topicFilter: string, qos: QoS): Buffer {
  return encode({ type: 8, packetId: 1, subscriptions: [{ topicFilter, qos }] }, V311);
}

/** A PUBLISH encoded once; `stamp` copies it into a batch with a new packet id and timestamp. */
export class PublishTemplate {
  readonly bytes: Buffer;
  /** Offset of the payload (the timestamp goes in its first 8 bytes). */
  readonly payloadAt: number;
  readonly qos: QoS;

  constructor(topic: string, qos: QoS) {
    const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
    const packet = { type: 3 as const, topic, payload, qos, retain: false, dup: false };
    this.bytes = encode(qos > 0 ? { ...packet, packetId: 1 } : packet, V311);
    this.payloadAt = this.bytes.length - PAYLOAD_BYTES;
    this.qos = qos;
  }

  /** Writes this packet at `at` in `out`; returns the offset just after it. */
  stamp(out: Buffer, at: number, packetId: number, nowMs: number): number {
    this.bytes.copy(out, at);
    if (this.qos > 0) out.writeUInt16BE(packetId, at + this.payloadAt - 2);
    out.writeDoubleLE(nowMs, at + this.payloadAt);
    return at + this.bytes.length;
  }
}

/** What the scanner reports. Only PUBLISH and PUBACK are on the hot path. */
export interface FrameSink {
  /** A PUBLISH arrived: its QoS, packet id (0 at QoS 0) and the sender's timestamp. */
  onPublish(qos: number, packetId: number, sentAtMs: number): void;
  onPuback(packetId: number): void;
  /** Any other packet: its type and first body byte pair (CONNACK return code is body[1]). */
  onControl(type: number, body: Buffer): void;
}

/**
 * Splits a byte stream into MQTT frames without decoding them. A frame cut by a read is
 * copied into `#rest` and completed by the next read.
 */
export class FrameScanner {
  #rest: Buffer | undefined;

  constructor(private readonly sink: FrameSink) {}

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
      this.#frame(buf, buf[off] as number, i, i + len);
      off = i + len;
    }
    // The read buffer is shared and reused: keep a copy of a partial frame.
    if (off < end) this.#rest = Buffer.from(buf.subarray(off, end));
  }

  #frame(buf: Buffer, b0: number, start: number, end: number): void {
    const type = b0 >> 4;
    if (type === 3) {
      const qos = (b0 >> 1) & 3;
      const topicLen = buf.readUInt16BE(start);
      let at = start + 2 + topicLen;
      let id = 0;
      if (qos > 0) { id = buf.readUInt16BE(at); at += 2; }
      this.sink.onPublish(qos, id, at + 8 <= end ? buf.readDoubleLE(at) : Number.NaN);
    } else if (type === 4) {
      this.sink.onPuback(buf.readUInt16BE(start));
    } else {
      this.sink.onControl(type, buf.subarray(start, end));
    }
  }
}

/** One read buffer for every socket of the process: reads are handled synchronously. */
const readBuffer = Buffer.allocUnsafe(256 * 1024);

export interface ClientOptions {
  port: number;
  host: string;
  localAddress?: string;
}

/** Opens a TCP connection whose reads go straight to `scanner`. */
export function openSocket(opts: ClientOptions, scanner: FrameScanner, afterRead: () => void): net.Socket {
  const socket = net.connect({
    port: opts.port,
    host: opts.host,
    ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
    noDelay: true,
    onread: {
      buffer: readBuffer,
      callback: (n: number, buf: Uint8Array): boolean => {
        scanner.push(Buffer.from(buf.buffer, buf.byteOffset, n));
        afterRead();
        return true;
      },
    },
  });
  return socket;
}
