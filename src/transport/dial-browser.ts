/**
 * The dialer of the browser build of `petrel/client` (scripts/build-browser.mjs puts it in place
 * of transport/dial.ts): `ws://` and `wss://` over the WHATWG WebSocket, asking for the `mqtt`
 * subprotocol [MQTT-6.0.0-3] and sending every write as one binary frame [MQTT-6.0.0-1]. TLS
 * settings are the browser's; `mqtt://` and `mqtts://` cannot be opened from a page.
 * Invariants, as in dial.ts: the promise settles once; it resolves only when the WebSocket is
 * open with the `mqtt` subprotocol and rejects on an error or after `timeout` ms, the socket closed.
 */
import { Buffer } from 'node:buffer';
import type { ByteStream } from './types.js';
import { DialError } from './dial-error.js';

/** The part of the WHATWG WebSocket used here (the browser's, or a compatible one such as ws). */
export interface WebSocketLike {
  binaryType: string;
  readonly protocol: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'close' | 'error' | 'message', listener: (event: { data?: unknown; code?: number; reason?: string }) => void): void;
}

export type WebSocketConstructor = new (url: string, protocols: string | string[]) => WebSocketLike;

export interface DialOptions {
  /** Milliseconds until the dial gives up. Default 30,000; 0 waits forever. */
  timeout?: number;
  /** The WebSocket class; default `globalThis.WebSocket`. */
  webSocket?: WebSocketConstructor;
}

export { DialError };

/** The schemes `dial` understands here. */
export function isDialUrl(url: string): boolean {
  return /^wss?:\/\//i.test(url);
}

const OPEN = 1;

/** Opens `url` (ws:// or wss://) and resolves with a stream ready for MQTT. */
export function dial(url: string | URL, options: DialOptions = {}): Promise<ByteStream> {
  let u: URL;
  try {
    u = typeof url === 'string' ? new URL(url) : url;
  } catch (err) {
    return Promise.reject(new DialError(`not a URL: ${String(url)}`, { cause: err }));
  }
  const protocol = u.protocol.toLowerCase();
  if (protocol !== 'ws:' && protocol !== 'wss:') {
    return Promise.reject(new DialError(`unsupported scheme ${protocol} in a browser (ws, wss)`));
  }
  const Ctor = options.webSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (Ctor === undefined) return Promise.reject(new DialError('no WebSocket class: pass options.webSocket'));
  const timeout = options.timeout ?? 30_000;
  return new Promise((resolve, reject) => {
    let ws: WebSocketLike;
    try {
      ws = new Ctor(u.href, 'mqtt');
    } catch (err) {
      reject(new DialError(`WebSocket ${u.href} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
      return;
    }
    ws.binaryType = 'arraybuffer';
    let settled = false;
    const timer = timeout > 0 ? setTimeout(() => fail(new DialError(`no connection within ${timeout} ms`)), timeout) : undefined;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.close();
      reject(err);
    };
    // A browser tells nothing about why a WebSocket failed; the close code is all there is.
    ws.addEventListener('error', () => fail(new DialError(`WebSocket ${u.href} failed`)));
    ws.addEventListener('close', (e) => fail(new DialError(`WebSocket ${u.href} closed before it opened (code ${e.code ?? 'none'})`)));
    ws.addEventListener('open', () => {
      if (settled) return;
      if (ws.protocol !== 'mqtt') {
        fail(new DialError('the server did not accept the mqtt subprotocol [MQTT-6.0.0-4]'));
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve(new WebSocketByteStream(ws));
    });
  });
}

type Listener = (arg: never) => void;

/**
 * An open WebSocket as the client's byte stream. Binary messages become 'data' Buffers (views,
 * no copy); a text frame is a protocol error and closes the connection [MQTT-6.0.0-1]. `write`
 * sends one binary frame; its callback runs once the browser took the bytes (a browser offers no
 * flush event), and `write` returns false while more than 1 MiB waits in the socket's buffer.
 */
class WebSocketByteStream implements ByteStream {
  destroyed = false;
  #closed = false;
  readonly #ws: WebSocketLike;
  readonly #listeners = new Map<string, (Listener | (() => void))[]>();
  #error: Error | undefined;
  #ended = false;

  constructor(ws: WebSocketLike) {
    this.#ws = ws;
    ws.addEventListener('message', (e) => {
      if (this.destroyed) return;
      const data = e.data;
      if (data instanceof ArrayBuffer) this.#emit('data', Buffer.from(data));
      else this.destroy(new Error('the server sent a text frame [MQTT-6.0.0-1]'));
    });
    ws.addEventListener('error', () => {
      this.#error ??= new Error('WebSocket error');
    });
    ws.addEventListener('close', (e) => {
      if (this.#error === undefined && !this.#ended && e.code !== 1000) this.#error = new Error(`WebSocket closed (code ${e.code ?? 'none'})`);
      this.#finish();
    });
  }

  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'end' | 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(event: string, listener: Listener | (() => void)): this {
    const list = this.#listeners.get(event);
    if (list === undefined) this.#listeners.set(event, [listener]);
    else list.push(listener);
    return this;
  }

  write(chunk: Buffer, callback?: (error?: Error | null) => void): boolean {
    if (this.destroyed || this.#ws.readyState !== OPEN) {
      const err = new Error('the WebSocket is closed');
      if (callback !== undefined) queueMicrotask(() => callback(err));
      return false;
    }
    this.#ws.send(chunk);
    if (callback !== undefined) queueMicrotask(() => callback(null));
    return this.#ws.bufferedAmount < 1 << 20;
  }

  /** Closes normally (1000) after what was sent. */
  end(): this {
    if (!this.destroyed && !this.#ended) {
      this.#ended = true;
      this.#ws.close(1000);
    }
    return this;
  }

  destroy(error?: Error): this {
    if (this.destroyed) return this;
    if (error !== undefined) this.#error ??= error;
    this.#ended = true;
    // Browsers let a page close with 1000 or 3000-4999 only; a failure closes without a code.
    if (error === undefined) this.#ws.close(1000);
    else this.#ws.close();
    this.#finish();
    return this;
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.destroyed = true;
    const error = this.#error;
    if (error !== undefined) this.#emit('error', error);
    this.#emit('close');
    this.#listeners.clear();
  }

  #emit(event: string, arg?: unknown): void {
    const list = this.#listeners.get(event);
    if (list === undefined) return;
    for (const fn of [...list]) (fn as (a: unknown) => void)(arg);
  }
}
