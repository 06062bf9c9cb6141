/**
 * Dialers: a URL in, a connected Duplex byte stream out. `mqtt://` is TCP (default port 1883),
 * `mqtts://` TLS (8883), `ws://` and `wss://` MQTT over WebSocket (80 / 443; the `mqtt`
 * subprotocol [MQTT-6.0.0-3], binary frames only [MQTT-6.0.0-1], backpressure both ways).
 * Invariants: the promise settles once; it resolves only when the stream can carry MQTT bytes
 * (TCP connected, TLS handshake done, WebSocket open) and rejects on an error or after `timeout`
 * ms, the half-open socket destroyed.
 */
import type { Buffer } from 'node:buffer';
import { isIP, connect as tcpConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { WebSocket } from 'ws';
import { WebSocketStream } from './websocket.js';
import { DialError } from './dial-error.js';

export interface DialOptions {
  /** TLS (`mqtts`, `wss`): trusted CA certificates; default the system's. */
  ca?: string | Buffer | (string | Buffer)[];
  /** TLS client certificate and key (PEM). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Default true: the server's certificate must verify. */
  rejectUnauthorized?: boolean;
  /** SNI and the name checked against the certificate; default the URL's host unless it is an IP address. */
  servername?: string;
  /** Milliseconds until the dial gives up. Default 30,000; 0 waits forever. */
  timeout?: number;
  /** WebSocket: extra HTTP headers of the upgrade request. */
  headers?: Record<string, string>;
}

export { DialError };

const DEFAULT_PORTS: Record<string, number> = { 'mqtt:': 1883, 'tcp:': 1883, 'mqtts:': 8883, 'ssl:': 8883, 'tls:': 8883, 'ws:': 80, 'wss:': 443 };

/** The schemes `dial` understands. */
export function isDialUrl(url: string): boolean {
  const colon = url.indexOf(':');
  return colon > 0 && DEFAULT_PORTS[url.slice(0, colon + 1).toLowerCase()] !== undefined && url.includes('://');
}

/** Opens `url` and resolves with a stream ready for MQTT. */
export function dial(url: string | URL, options: DialOptions = {}): Promise<Duplex> {
  let u: URL;
  try {
    u = typeof url === 'string' ? new URL(url) : url;
  } catch (err) {
    return Promise.reject(new DialError(`not a URL: ${String(url)}`, { cause: err }));
  }
  const protocol = u.protocol.toLowerCase();
  const defaultPort = DEFAULT_PORTS[protocol];
  if (defaultPort === undefined) return Promise.reject(new DialError(`unsupported scheme ${protocol} (mqtt, mqtts, ws, wss)`));
  // URL keeps the brackets of an IPv6 literal in `hostname`.
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost';
  const port = u.port === '' ? defaultPort : Number(u.port);
  if (protocol === 'ws:' || protocol === 'wss:') return dialWebSocket(u, options);
  if (protocol === 'mqtts:' || protocol === 'ssl:' || protocol === 'tls:') return dialTls(host, port, options);
  return settleSocket(tcpConnect({ host, port }), 'connect', options.timeout);
}

function tlsOptions(host: string, o: DialOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { rejectUnauthorized: o.rejectUnauthorized ?? true };
  const servername = o.servername ?? (isIP(host) === 0 ? host : undefined);
  if (servername !== undefined) out.servername = servername;
  if (o.ca !== undefined) out.ca = o.ca;
  if (o.cert !== undefined) out.cert = o.cert;
  if (o.key !== undefined) out.key = o.key;
  return out;
}

function dialTls(host: string, port: number, o: DialOptions): Promise<Duplex> {
  return settleSocket(tlsConnect({ host, port, ...tlsOptions(host, o) }), 'secureConnect', o.timeout);
}

/** Resolves when `socket` emits `ready` ('connect' or 'secureConnect'); Nagle off, small packets go at once. */
function settleSocket(socket: Socket | TLSSocket, ready: 'connect' | 'secureConnect', timeout = 30_000): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const timer = timeout > 0 ? setTimeout(() => socket.destroy(new DialError(`no connection within ${timeout} ms`)), timeout) : undefined;
    timer?.unref();
    const failed = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', failed);
    socket.once(ready, () => {
      clearTimeout(timer);
      socket.off('error', failed);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

function dialWebSocket(u: URL, o: DialOptions): Promise<Duplex> {
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const secure = u.protocol.toLowerCase() === 'wss:';
  const wsOptions: Record<string, unknown> = { perMessageDeflate: false, ...(secure ? tlsOptions(host, o) : {}) };
  if (o.headers !== undefined) wsOptions.headers = o.headers;
  const timeout = o.timeout ?? 30_000;
  if (timeout > 0) wsOptions.handshakeTimeout = timeout;
  if (u.pathname === '') u.pathname = '/';
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(u, 'mqtt', wsOptions);
    const failed = (err: Error): void => {
      ws.terminate();
      reject(new DialError(`WebSocket ${u.href} failed: ${err.message}`, { cause: err }));
    };
    ws.once('error', failed);
    ws.once('open', () => {
      ws.off('error', failed);
      if (ws.protocol !== 'mqtt') {
        ws.terminate();
        reject(new DialError(`the server did not accept the mqtt subprotocol [MQTT-6.0.0-4]`));
        return;
      }
      const tcp = (ws as unknown as { _socket?: { setNoDelay?: (on: boolean) => void } })._socket;
      tcp?.setNoDelay?.(true);
      resolve(new WebSocketStream(ws));
    });
  });
}
