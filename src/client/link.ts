/**
 * One connection of the client: a byte stream (a Duplex, or the browser's WebSocket adapter), the decoder that reads it and the encoder
 * that writes it. Invariants: packets reach the handler in arrival order; the first error (a
 * decode error, the stream's own error, `close(error)`) is the one reported; `closed` runs exactly
 * once, when the stream is gone. The link never half-closes: when the peer ends, it is destroyed.
 */
import type { Buffer } from 'node:buffer';
import { Decoder, encode, MalformedPacketError, type Packet } from '../protocol/index.js';
import type { ByteStream } from '../transport/types.js';

export interface LinkHandler {
  /** A decoded packet from the server. May throw an `MqttError`: `failed` then gets it. */
  packet(packet: Packet): void;
  /** The bytes did not decode, or `packet` threw: the handler closes the link (after a DISCONNECT, in 5.0). */
  failed(error: Error): void;
  /** A packet was written (keep alive counts from here). */
  wrote(): void;
  /** The stream is gone; `error` is why, undefined after a clean close. */
  closed(error: Error | undefined): void;
}

export class Link {
  readonly stream: ByteStream;
  readonly version: number;
  readonly #decoder: Decoder;
  readonly #handler: LinkHandler;
  #error: Error | undefined;
  #closed = false;

  constructor(stream: ByteStream, version: 3 | 4 | 5, handler: LinkHandler, maxPacketSize?: number) {
    this.stream = stream;
    this.version = version;
    this.#handler = handler;
    const decoderOptions: { protocolVersion: 3 | 4 | 5; maxPacketSize?: number } = { protocolVersion: version };
    if (maxPacketSize !== undefined) decoderOptions.maxPacketSize = maxPacketSize;
    this.#decoder = new Decoder(decoderOptions);
    stream.on('data', (chunk: Buffer) => this.#data(chunk));
    stream.on('end', () => stream.destroy());
    stream.on('error', (err: Error) => {
      this.#error ??= err;
    });
    stream.on('close', () => this.#close());
    if (stream.destroyed) queueMicrotask(() => this.#close());
  }

  get open(): boolean {
    return !this.#closed && !this.stream.destroyed;
  }

  /** Encodes and writes `packet`; `done` runs once it is flushed to the stream (or failed). */
  send(packet: Packet, done?: (err?: Error | null) => void): void {
    this.write(encode(packet, this.version), done);
  }

  write(bytes: Buffer, done?: (err?: Error | null) => void): void {
    if (!this.open) {
      done?.(new Error('the connection is closed'));
      return;
    }
    this.stream.write(bytes, done);
    this.#handler.wrote();
  }

  /** Ends the stream after what was written; the peer's end then closes it. */
  end(): void {
    if (this.open) this.stream.end();
  }

  /** Closes at once; `error` becomes the reason reported to the handler. */
  destroy(error?: Error): void {
    if (error !== undefined) this.#error ??= error;
    this.stream.destroy();
  }

  #data(chunk: Buffer): void {
    if (this.#closed) return;
    try {
      this.#decoder.feed(chunk, this.#handler.packet, this.#handler);
    } catch (err) {
      this.#handler.failed(err instanceof Error ? err : new MalformedPacketError('undecodable packet', { cause: err }));
    }
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handler.closed(this.#error);
  }
}
