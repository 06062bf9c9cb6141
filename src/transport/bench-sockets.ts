/**
 * Client connections for `petrel bench`: TCP, TLS, WebSocket and WebSocket over TLS to any
 * broker, each handed back as a Duplex with Nagle off. WebSocket connections ask for the `mqtt`
 * subprotocol without compression (ws turns Nagle off itself); every write is one binary frame.
 */
import type { Buffer } from 'node:buffer';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { createWebSocketStream, WebSocket } from 'ws';

export type BenchScheme = 'mqtt' | 'mqtts' | 'ws' | 'wss';

export interface BenchTarget {
  scheme: BenchScheme;
  host: string;
  port: number;
  /** WebSocket path (default /mqtt). */
  path: string;
  /** TLS: CA certificates (PEM), a client certificate and key, and whether to skip verification. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecure?: boolean;
}

export interface BenchSocket {
  stream: Duplex;
  /** Resolves once the connection can carry MQTT (TCP connected, TLS handshake done, WebSocket open). */
  open: Promise<void>;
}

/** True for an IPv4 or IPv6 address literal (what `--ifaddr` takes). */
export function isAddress(text: string): boolean {
  return net.isIP(text) !== 0;
}

/** Opens one connection from `localAddress` (when given). */
export function openBenchSocket(target: BenchTarget, localAddress: string | undefined): BenchSocket {
  const local = localAddress !== undefined ? { localAddress } : {};
  const secure = {
    ...(target.ca !== undefined ? { ca: target.ca } : {}),
    ...(target.cert !== undefined ? { cert: target.cert } : {}),
    ...(target.key !== undefined ? { key: target.key } : {}),
    rejectUnauthorized: target.insecure !== true,
  };
  if (target.scheme === 'mqtt') {
    const socket = net.connect({ host: target.host, port: target.port, noDelay: true, ...local });
    return { stream: socket, open: opened(socket, 'connect') };
  }
  if (target.scheme === 'mqtts') {
    const servername = net.isIP(target.host) === 0 ? { servername: target.host } : {};
    const socket = tls.connect({ host: target.host, port: target.port, ...servername, ...local, ...secure });
    socket.setNoDelay(true);
    return { stream: socket, open: opened(socket, 'secureConnect') };
  }
  const host = net.isIPv6(target.host) ? `[${target.host}]` : target.host;
  const ws = new WebSocket(`${target.scheme}://${host}:${target.port}${target.path}`, 'mqtt', {
    perMessageDeflate: false, ...local, ...(target.scheme === 'wss' ? secure : {}),
  });
  const stream = createWebSocketStream(ws);
  return { stream, open: opened(ws, 'open') };
}

function opened(emitter: { once(event: string, fn: (arg?: unknown) => void): unknown }, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    emitter.once(event, () => resolve());
    emitter.once('error', (err) => reject(err instanceof Error ? err : new Error(String(err))));
  });
}
