/**
 * Incremental decoder: feed it arbitrary chunks, get whole packets. Invariants:
 * - the packet size is checked against `maxPacketSize` as soon as the fixed header is read,
 *   before any of the body is buffered;
 * - a complete packet inside one chunk is decoded in place (payload is a view, no copy);
 * - a packet spread over chunks is copied once, when its last byte arrives; when it comes in many
 *   small chunks (a peer trickling bytes, WebSocket frames of a few bytes) they are joined as they
 *   come, so what is held stays close to the bytes received, not a Buffer object per chunk;
 * - after an error the decoder is dead: every later call throws the same error.
 */
import { Buffer } from 'node:buffer';
import { MaxPacketSize, PacketType, RequiredFlags } from './constants.js';
import { MalformedPacketError, MqttError, PacketTooLargeError } from './errors.js';
import type { Packet } from './packets.js';
import { decodeAck } from './packets/ack.js';
import { decodeConnack } from './packets/connack.js';
import { decodeConnect } from './packets/connect.js';
import { checkEmpty, decodeAuth, decodeDisconnect } from './packets/disconnect.js';
import { decodePublish } from './packets/publish.js';
import { decodeSuback, decodeSubscribe } from './packets/subscribe.js';
import { decodeUnsuback, decodeUnsubscribe } from './packets/unsubscribe.js';
import { Reader } from './primitives.js';

export interface DecoderOptions {
  /** Largest whole packet accepted, fixed header included. Default: the protocol maximum. */
  maxPacketSize?: number;
  /** Protocol level of the stream. A broker leaves it unset: the CONNECT packet sets it. */
  protocolVersion?: 3 | 4 | 5;
}

/** Receives each decoded packet with its size on the wire (fixed header included). */
export type PacketSink<C = unknown> = (this: C, packet: Packet, bytes: number) => void;

/**
 * One Reader for every decoder: decoding is synchronous and never nested, and its view of the
 * input is dropped after each chunk, so idle connections hold no reader and no input bytes.
 */
const reader = new Reader();

/**
 * Held chunks of one incomplete packet past which they are joined. Each Buffer costs a couple of
 * hundred bytes of its own whatever it holds (and a view keeps its whole parent alive), so a packet
 * sent a byte per chunk would otherwise cost hundreds of times its size.
 */
const JOIN_CHUNKS = 64;

const PING_REQ = { type: PacketType.Pingreq } as const;
const PING_RESP = { type: PacketType.Pingresp } as const;

export class Decoder {
  maxPacketSize: number;
  /** 0 until known; set by a decoded CONNECT. */
  protocolVersion: number;
  /** Bytes of an incomplete packet; created when a packet spans chunks (idle connections hold none). */
  #chunks: Buffer[] | undefined;
  #buffered = 0;
  /**
   * Copies the held chunks of the incomplete packet into one buffer, grown by doubling (never past
   * the packet's length) so that the copying stays linear in the bytes received.
   */
  #join(chunks: Buffer[]): void {
    let target = this.#joined;
    let used = 0;
    let from = 0;
    if (target !== undefined) {
      used = (chunks[0] as Buffer).length;
      from = 1;
    }
    if (target === undefined || target.length < this.#buffered) {
      const grown = Buffer.allocUnsafeSlow(Math.min(this.#needed, Math.max(2 * this.#buffered, 1024)));
      if (target !== undefined) target.copy(grown, 0, 0, used);
      target = grown;
    }
    for (let i = from; i < chunks.length; i++) used += (chunks[i] as Buffer).copy(target, used);
    this.#joined = target;
    this.#chunks = [target.subarray(0, used)];
  }

  /** Total length of the packet being buffered, or -1 while its fixed header is incomplete. */
  #needed = -1;
  /** Where many small chunks are joined (`#join`); `#chunks[0]` is its filled part. */
  #joined: Buffer | undefined;
  #error: MqttError | undefined;

  constructor(options: DecoderOptions = {}) {
    this.maxPacketSize = options.maxPacketSize ?? MaxPacketSize;
    this.protocolVersion = options.protocolVersion ?? 0;
  }

  /** Bytes held back waiting for the rest of a packet. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Decodes what `chunk` completes; returns the whole packets in order. */
  push(chunk: Buffer): Packet[] {
    const out: Packet[] = [];
    this.feed(chunk, (p) => out.push(p));
    return out;
  }

  /**
   * Decodes what `chunk` completes and hands each packet to `sink` as soon as it is decoded,
   * so packets before a malformed one are still delivered before the error is thrown.
   */
  feed<C>(chunk: Buffer, sink: PacketSink<C>, thisArg?: C): void {
    if (this.#error !== undefined) throw this.#error;
    try {
      if (this.#buffered === 0) {
        this.#scan(chunk, sink, thisArg as C);
        return;
      }
      (this.#chunks ??= []).push(chunk);
      this.#buffered += chunk.length;
      if (this.#needed < 0) this.#needed = this.#headerLength();
      if (this.#needed < 0 || this.#buffered < this.#needed) {
        if (this.#chunks.length > JOIN_CHUNKS && this.#needed > 0) this.#join(this.#chunks);
        return;
      }
      const joined = Buffer.concat(this.#chunks, this.#buffered);
      this.#chunks = undefined;
      this.#joined = undefined;
      this.#buffered = 0;
      this.#needed = -1;
      this.#scan(joined, sink, thisArg as C);
    } catch (err) {
      reader.release();
      this.#chunks = undefined;
      this.#joined = undefined;
      this.#buffered = 0;
      this.#error = err instanceof MqttError ? err : new MalformedPacketError('undecodable packet', { cause: err });
      throw this.#error;
    }
  }

  /** Decodes every whole packet in `buf`; keeps the incomplete tail. */
  #scan<C>(buf: Buffer, sink: PacketSink<C>, thisArg: C): void {
    const pos = decodeWhole(buf, this.protocolVersion, this.maxPacketSize, sink, thisArg, this);
    if (pos < buf.length) {
      const tail = pos === 0 ? buf : buf.subarray(pos);
      (this.#chunks ??= []).push(tail);
      this.#buffered = tail.length;
      this.#needed = this.#headerLength();
    } else {
      this.#needed = -1;
    }
  }

  /** Total packet length from the buffered bytes, or -1 if the fixed header is still incomplete. */
  #headerLength(): number {
    let remaining = 0;
    let mul = 1;
    let index = 0;
    for (const chunk of this.#chunks ?? []) {
      for (let j = 0; j < chunk.length; j++, index++) {
        if (index === 0) continue;
        const b = chunk[j] as number;
        remaining += (b & 0x7f) * mul;
        if ((b & 0x80) === 0) {
          const total = index + 1 + remaining;
          if (total > this.maxPacketSize) throw new PacketTooLargeError(total, this.maxPacketSize);
          return total;
        }
        if (index === 4) throw new MalformedPacketError('remaining length longer than 4 bytes [MQTT-1.5.5-1]');
        mul *= 128;
      }
    }
    return -1;
  }
}

/**
 * Decodes every whole packet at the start of `buf` and hands each to `sink` as soon as it is
 * decoded; returns the offset of the incomplete tail (`buf.length` when there is none). `version`
 * is the stream's protocol level; a CONNECT sets it for the packets after it (and in `level`, when
 * given). Throws on a malformed or oversized packet: the caller's stream is dead then. Keeps no
 * state, so a connection needs a `Decoder` only while a packet spans chunks.
 */
export function decodeWhole<C>(
  buf: Buffer, version: number, maxPacketSize: number, sink: PacketSink<C>, thisArg: C, level?: { protocolVersion: number },
): number {
  const len = buf.length;
  let pos = 0;
  while (pos < len) {
    // Fixed header: type byte then the Remaining Length as a Variable Byte Integer.
    let remaining = 0;
    let mul = 1;
    let i = pos + 1;
    let complete = false;
    while (i < len && i <= pos + 4) {
      const b = buf[i++] as number;
      remaining += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) { complete = true; break; }
      mul *= 128;
    }
    if (!complete) {
      if (i > pos + 4) throw new MalformedPacketError('remaining length longer than 4 bytes [MQTT-1.5.5-1]');
      break;
    }
    const total = i - pos + remaining;
    if (total > maxPacketSize) throw new PacketTooLargeError(total, maxPacketSize);
    if (pos + total > len) break;
    const packet = decodeOne(buf, pos, i, i + remaining, version);
    reader.release();
    if (packet.type === PacketType.Connect) {
      version = packet.protocolVersion;
      if (level !== undefined) level.protocolVersion = version;
    }
    sink.call(thisArg, packet, total);
    pos += total;
  }
  return pos;
}

function decodeOne(buf: Buffer, start: number, body: number, end: number, version: number): Packet {
  const first = buf[start] as number;
  const type = first >> 4;
  const flags = first & 0x0f;
  const r = reader.reset(buf, body, end);
  if (type === PacketType.Publish) return decodePublish(r, flags, version);
  const required = RequiredFlags[type];
  if (required === undefined) throw new MalformedPacketError(`reserved packet type ${type}`);
  // [MQTT-2.2.2-1] [MQTT-2.2.2-2]: reserved flags must hold their defined values. CONNECT is
  // checked by decodeConnect, once the protocol level is known (MQTT 3.1 defines no such rule).
  if (flags !== required && type !== PacketType.Connect) {
    throw new MalformedPacketError(`invalid fixed header flags for packet type ${type} [MQTT-2.2.2-2]`);
  }
  switch (type) {
    case PacketType.Connect: return decodeConnect(r, flags);
    case PacketType.Connack: return decodeConnack(r, version);
    case PacketType.Puback: return decodeAck(r, PacketType.Puback, version);
    case PacketType.Pubrec: return decodeAck(r, PacketType.Pubrec, version);
    case PacketType.Pubrel: return decodeAck(r, PacketType.Pubrel, version);
    case PacketType.Pubcomp: return decodeAck(r, PacketType.Pubcomp, version);
    case PacketType.Subscribe: return decodeSubscribe(r, version);
    case PacketType.Suback: return decodeSuback(r, version);
    case PacketType.Unsubscribe: return decodeUnsubscribe(r, version);
    case PacketType.Unsuback: return decodeUnsuback(r, version);
    case PacketType.Pingreq: checkEmpty(r, 'PINGREQ'); return PING_REQ;
    case PacketType.Pingresp: checkEmpty(r, 'PINGRESP'); return PING_RESP;
    case PacketType.Disconnect: return decodeDisconnect(r, version);
    default: return decodeAuth(r, version);
  }
}
