/**
 * MQTT over WebSocket (MQTT 5.0 §6, 3.1.1 §6): an HTTP server that upgrades requests on one path
 * with the `mqtt` (or `mqttv3.1`) subprotocol and turns each WebSocket into a byte stream. Binary
 * frames carry the MQTT bytes with no regard to packet boundaries: a packet split across frames
 * and several packets in one frame both reach the decoder as one stream [MQTT-6.0.0-2]. A text
 * frame closes the connection [MQTT-6.0.0-1].
 */
import type { Buffer } from 'node:buffer';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex as DuplexType } from 'node:stream';
import { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

export interface WebSocketOptions {
  /** Request path that is upgraded; others get 404. Default "/mqtt". */
  path?: string;
  /** Largest WebSocket message accepted, in bytes; a frame announcing more closes the connection (1009). */
  maxPayload: number;
}

/** A WebSocket as a byte stream: binary messages in, binary messages out, with backpressure both ways. */
export class WebSocketStream extends Duplex {
  readonly #ws: WebSocket;

  constructor(ws: WebSocket) {
    super({ allowHalfOpen: false });
    this.#ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        // [MQTT-6.0.0-1]: MQTT Control Packets travel in binary frames only.
        ws.close(1003, 'binary frames only');
        this.destroy();
        return;
      }
      if (!this.push(data)) ws.pause();
    });
    ws.on('close', () => {
      this.push(null);
      this.destroy();
    });
    ws.on('error', (err: Error) => this.destroy(err));
  }

  override _read(): void {
    if (this.#ws.isPaused) this.#ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // The callback runs once the frame is handed to the socket: a slow reader fills the writable
    // buffer and the broker sees `write() === false`, as with TCP.
    this.#ws.send(chunk, { binary: true }, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#ws.close(1000);
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const ws = this.#ws;
    if (ws.readyState === ws.OPEN) ws.close(err === null ? 1000 : 1011);
    else if (ws.readyState === ws.CONNECTING) ws.terminate();
    // A peer that never answers the close frame is cut off.
    const socket = (ws as unknown as { _socket?: DuplexType })._socket;
    if (socket !== undefined && !socket.destroyed) setTimeout(() => socket.destroy(), 2000).unref();
    callback(err);
  }
}

/** Picks the MQTT subprotocol among those the client offered [MQTT-6.0.0-3]. */
function pickProtocol(offered: Set<string>): string | false {
  if (offered.has('mqtt')) return 'mqtt';
  if (offered.has('mqttv3.1')) return 'mqttv3.1';
  return false;
}

/**
 * Serves MQTT over WebSocket on `http` (an http or https server that is never listened on: the
 * listener hands it sockets). `onStream` gets the byte stream and the upgrade request.
 */
export function attachWebSocket(http: HttpServer, options: WebSocketOptions,
  onStream: (stream: DuplexType, request: IncomingMessage) => void): { close(): void } {
  const path = options.path ?? '/mqtt';
  const wss = new WebSocketServer({
    noServer: true, maxPayload: options.maxPayload, perMessageDeflate: false, clientTracking: false,
    handleProtocols: pickProtocol,
  });
  http.on('upgrade', (request: IncomingMessage, socket: DuplexType, head: Buffer) => {
    const url = request.url ?? '/';
    const q = url.indexOf('?');
    if ((q < 0 ? url : url.slice(0, q)) !== path) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      const stream = new WebSocketStream(ws);
      // The TCP socket below the WebSocket carries small frames: no Nagle delay.
      const tcp = (ws as unknown as { _socket?: { setNoDelay?: (on: boolean) => void } })._socket;
      tcp?.setNoDelay?.(true);
      onStream(stream, request);
    });
  });
  http.on('request', (_req, res) => {
    res.writeHead(426, { 'Content-Type': 'text/plain', Connection: 'close', Upgrade: 'websocket' });
    res.end(`MQTT over WebSocket: connect to ${path} with the mqtt subprotocol\n`);
  });
  // An HTTP client that never sends its request is dropped after the headers timeout.
  http.headersTimeout = 10_000;
  http.requestTimeout = 10_000;
  return { close: () => wss.close() };
}
