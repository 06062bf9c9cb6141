/**
 * Listeners: TCP, TLS, WebSocket and secure WebSocket, any number at once. Each one is a TCP
 * server whose sockets go through the same stages: the PROXY protocol header when enabled, then
 * TLS and/or the WebSocket upgrade by type, and finally the handler gets a byte stream and the
 * connection's metadata (`ConnectionMeta`). Listeners know nothing of MQTT beyond the WebSocket
 * subprotocol.
 */
import { Buffer } from 'node:buffer';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Server, Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { createServer as createTlsServer, type SecureVersion, type TLSSocket } from 'node:tls';
import { readDirect } from './direct-read.js';
import { parseProxyHeader, PROXY_HEADER_MAX, type ProxyHeader } from './proxy-protocol.js';
import { certUsernameOf, secureContextOf, type TlsCredentials, tlsInfoOf, tlsServerOptions } from './tls.js';
import type { ConnectionMeta, ListenerInfo, ListenerLimits, ProxySource, StreamHandler, TransportType } from './types.js';
import { attachWebSocket } from './websocket.js';

export type ListenerType = Exclude<TransportType, 'local'>;

export interface ListenOptions {
  /** tcp (default), tls, ws or wss. */
  type?: ListenerType;
  /** Shown in logs, events and hook contexts. Default: "<type>:<port>". */
  name?: string;
  /** Default by type: tcp 1883, tls 8883, ws 8083, wss 8084; 0 picks any free port. */
  port?: number;
  /** Address to bind. Default "0.0.0.0". */
  host?: string;
  /** When the port is taken, try the following ports (up to this many). Default 0: fail. */
  portFallback?: number;
  /** tls and wss: certificate and key in PEM (contents, not file names), CA for client certificates. */
  cert?: string | Buffer;
  key?: string | Buffer;
  ca?: string | Buffer;
  passphrase?: string;
  /** tls and wss: oldest TLS version accepted. Default TLSv1.2. */
  minVersion?: SecureVersion;
  /** tls and wss: ask for a client certificate (verified against `ca`); `requireCert` refuses clients without a valid one. */
  requestCert?: boolean;
  requireCert?: boolean;
  /** tls and wss: take the username from the verified client certificate's CN or first SAN. */
  certUsername?: 'cn' | 'san';
  /** ws and wss: the upgraded path. Default "/mqtt". */
  path?: string;
  /** ws and wss: largest WebSocket message in bytes. Default 1 MiB + 64 KiB. */
  maxPayload?: number;
  /** Expect a PROXY protocol v1 or v2 header first on every connection. Default false. */
  proxyProtocol?: boolean;
  /** Milliseconds a PROXY-protocol connection has to send its header. Default 5000. */
  proxyTimeout?: number;
  /** Connection limits the broker enforces for this listener (0: none). */
  limits?: Partial<ListenerLimits>;
}

export interface Listener {
  readonly name: string;
  readonly type: ListenerType;
  /** Same as `type` (kept for code written against the first, TCP-only, listener). */
  readonly protocol: ListenerType;
  readonly host: string;
  readonly port: number;
  /** ws and wss: the path upgraded to MQTT over WebSocket. */
  readonly path?: string;
  /** The object every connection's metadata points at. */
  readonly info: ListenerInfo;
  /** tls and wss: replaces certificate, key and CA; connections already open keep theirs. */
  setCredentials(credentials: TlsCredentials): void;
  /** Stops accepting and ends connections still in their PROXY, TLS or upgrade stage. */
  close(): Promise<void>;
}

export const DEFAULT_PORTS: Readonly<Record<ListenerType, number>> = { tcp: 1883, tls: 8883, ws: 8083, wss: 8084 };

function listenOnce(server: Server, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port, host, backlog: 4096 });
  });
}

/** Addresses kept by `sharedAddress`; past this many the table starts again. */
const ADDRESSES_KEPT = 1024;
const addresses = new Map<string, string>();

/**
 * One string per recent peer address: Node makes a new string for each socket, and clients behind
 * one NAT or gateway would each keep their own copy (32 bytes for an IPv4 address) for the
 * connection's life. Bounded: the table is emptied when full.
 */
function sharedAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const known = addresses.get(address);
  if (known !== undefined) return known;
  if (addresses.size >= ADDRESSES_KEPT) addresses.clear();
  addresses.set(address, address);
  return address;
}

/**
 * The peer's address. Reading `remoteAddress` makes Node keep the whole peer name on the socket
 * ({ address, family, port }: 56 bytes and its strings, per connection, for the connection's
 * life); the broker keeps only the address and port, so the cached object is let go (Node reads
 * it again from the socket if anyone asks later).
 */
function peerOf(socket: Socket): { address: string | undefined; port: number | undefined } {
  const address = sharedAddress(socket.remoteAddress);
  const port = socket.remotePort;
  const cached = socket as unknown as { _peername?: unknown };
  if (cached._peername !== undefined) cached._peername = undefined;
  return { address, port };
}

/**
 * A socket as a plain Duplex. TLS and HTTP take over a net.Socket's native handle and would not
 * see bytes already read from it; after a PROXY header those bytes (the start of the ClientHello
 * or of the upgrade request) were, so the next stage reads through this stream instead.
 */
class SocketStream extends Duplex {
  readonly #socket: Socket;

  constructor(socket: Socket, first: Buffer | undefined) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    if (first !== undefined && first.length > 0) this.push(first);
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
    socket.on('error', (err: Error) => this.destroy(err));
    socket.resume();
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#socket.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#socket.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy();
    callback(err);
  }
}

/** The stream a stage received, for the raw sockets kept until a connection is handed over. */
function rawSocketOf(stream: unknown, origins: WeakMap<object, Socket>): Socket | undefined {
  let s: unknown = stream;
  for (let i = 0; i < 3 && s !== undefined && s !== null; i++) {
    if (s instanceof Socket && !('encrypted' in s)) return s;
    const origin = origins.get(s as object);
    if (origin !== undefined) return origin;
    // A TLS socket keeps the stream it wraps as `_parent`.
    s = (s as { _parent?: unknown })._parent;
  }
  return undefined;
}

/** Listens on one port for one transport; see ListenOptions. Rejects when the port cannot be bound. */
export async function listen(handler: StreamHandler, options: ListenOptions = {}): Promise<Listener> {
  const type = options.type ?? 'tcp';
  const secure = type === 'tls' || type === 'wss';
  if (secure && (options.cert === undefined || options.key === undefined)) {
    throw new TypeError(`a ${type} listener needs a certificate and a key`);
  }
  const tlsOptions = secure ? {
    cert: options.cert as string | Buffer, key: options.key as string | Buffer, ca: options.ca, passphrase: options.passphrase,
    minVersion: options.minVersion, requestCert: options.requestCert, requireCert: options.requireCert,
  } : undefined;
  const certUsername = options.certUsername;
  const proxyTimeout = options.proxyTimeout ?? 5000;
  const limits: ListenerLimits = {
    maxConnections: options.limits?.maxConnections ?? 0,
    maxConnectionRate: options.limits?.maxConnectionRate ?? 0,
    maxConnectionRatePerSource: options.limits?.maxConnectionRatePerSource ?? 0,
  };
  // Set once the port is bound; the metadata of every connection points at this one object.
  const info = {
    name: '', type, host: options.host ?? '0.0.0.0', port: 0, limits, ...(type === 'tcp' ? { readDirect } : {}),
  } as { -readonly [K in keyof ListenerInfo]: ListenerInfo[K] };

  /** Raw sockets not yet handed to the handler (PROXY, TLS or upgrade stage): ended by close(). */
  const pending = new Set<Socket>();
  /** Streams standing in for a raw socket (SocketStream after a PROXY header). */
  const origins = new WeakMap<object, Socket>();
  /** The PROXY source of each raw socket whose header was read, until handed over. */
  const proxies = new WeakMap<Socket, ProxySource>();

  const handOver = (stream: Duplex, from: unknown, meta: ConnectionMeta): void => {
    const raw = rawSocketOf(from, origins);
    if (raw !== undefined) {
      pending.delete(raw);
      const proxy = proxies.get(raw);
      if (proxy !== undefined) {
        meta.proxy = proxy;
        // A LOCAL header (a health check of the proxy itself) names no client: the peer is the proxy.
        meta.remoteAddress = proxy.sourceAddress ?? proxy.proxyAddress;
        meta.remotePort = proxy.sourceAddress === undefined ? undefined : proxy.sourcePort;
      }
    }
    handler(stream, meta);
  };

  const tlsOf = (socket: TLSSocket, meta: ConnectionMeta): void => {
    const tls = tlsInfoOf(socket);
    meta.tls = tls;
    const username = certUsernameOf(tls, certUsername);
    if (username !== undefined) meta.certUsername = username;
  };

  // The next stage for a socket (after the PROXY header, if any).
  let next: (socket: Duplex) => void;
  let setCredentials: (credentials: TlsCredentials) => void = () => {
    throw new TypeError(`a ${type} listener has no certificate`);
  };
  let closeWs: (() => void) | undefined;
  if (type === 'tcp') {
    next = (socket) => {
      const raw = socket instanceof Socket ? socket : origins.get(socket);
      const peer = raw === undefined ? { address: undefined, port: undefined } : peerOf(raw);
      handOver(socket, socket, { remoteAddress: peer.address, remotePort: peer.port, listener: info });
    };
  } else if (type === 'tls') {
    const server = createTlsServer(tlsServerOptions(tlsOptions as NonNullable<typeof tlsOptions>));
    server.on('secureConnection', (socket: TLSSocket) => {
      socket.setNoDelay(true);
      const meta: ConnectionMeta = { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, listener: info };
      tlsOf(socket, meta);
      handOver(socket, socket, meta);
    });
    // A failed handshake (bad certificate, no certificate when required, timeout) ends the socket.
    server.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
    next = (socket) => server.emit('connection', socket);
    setCredentials = (c) => server.setSecureContext({ ...tlsServerOptions({ ...(tlsOptions as NonNullable<typeof tlsOptions>), ...c }) });
  } else {
    const http = type === 'wss'
      ? createHttpsServer(tlsServerOptions(tlsOptions as NonNullable<typeof tlsOptions>))
      : createHttpServer();
    if (type === 'wss') {
      http.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
      setCredentials = (c) => (http as ReturnType<typeof createHttpsServer>)
        .setSecureContext({ ...tlsServerOptions({ ...(tlsOptions as NonNullable<typeof tlsOptions>), ...c }) });
    }
    const ws = attachWebSocket(http, { path: options.path, maxPayload: options.maxPayload ?? 1024 * 1024 + 64 * 1024 },
      (stream: Duplex, request: IncomingMessage) => {
        const socket = request.socket;
        const meta: ConnectionMeta = {
          remoteAddress: socket.remoteAddress, remotePort: socket.remotePort, listener: info, headers: request.headers,
        };
        if (type === 'wss') tlsOf(socket as TLSSocket, meta);
        handOver(stream, socket, meta);
      });
    closeWs = ws.close;
    next = (socket) => http.emit('connection', socket);
  }

  const readProxyHeader = (socket: Socket): void => {
    let received: Buffer | undefined;
    const timer = setTimeout(() => socket.destroy(), proxyTimeout);
    timer.unref();
    const onData = (chunk: Buffer): void => {
      received = received === undefined ? chunk : Buffer.concat([received, chunk]);
      const parsed = parseProxyHeader(received);
      if (parsed.status === 'more') {
        if (received.length > PROXY_HEADER_MAX) socket.destroy();
        return;
      }
      clearTimeout(timer);
      socket.off('data', onData);
      if (parsed.status === 'invalid') {
        socket.destroy();
        return;
      }
      socket.pause();
      proxies.set(socket, proxySourceOf(parsed.header, socket));
      const rest = received.length > parsed.length ? received.subarray(parsed.length) : undefined;
      if (type !== 'ws') {
        // The bytes after the header go back in front: the broker reads the socket itself (tcp),
        // and TLS (tls, wss) feeds what a socket has buffered to the handshake before it takes
        // over the handle, which must then not be resumed here.
        if (rest !== undefined) socket.unshift(rest);
        next(socket);
        if (type === 'tcp') socket.resume();
        return;
      }
      // HTTP parses straight from the socket's handle and would miss bytes already read: the
      // upgrade request is read through a plain stream instead.
      const stream = new SocketStream(socket, rest);
      origins.set(stream, socket);
      next(stream);
    };
    socket.on('data', onData);
  };

  const server = createServer({ noDelay: true, pauseOnConnect: false }, (socket: Socket) => {
    if (type === 'tcp' && options.proxyProtocol !== true) {
      next(socket);
      return;
    }
    pending.add(socket);
    socket.once('close', () => pending.delete(socket));
    // Errors before the hand-over (a reset during the handshake) only end the socket.
    socket.on('error', () => socket.destroy());
    if (options.proxyProtocol === true) readProxyHeader(socket);
    else next(socket);
  });

  const first = options.port ?? DEFAULT_PORTS[type];
  const tries = first === 0 ? 1 : 1 + (options.portFallback ?? 0);
  let lastError: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      await listenOnce(server, first + i, options.host);
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err;
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') break;
    }
  }
  if (lastError !== undefined) throw lastError;
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : first;
  info.port = port;
  info.name = options.name ?? `${type}:${port}`;
  return {
    name: info.name,
    type,
    protocol: type,
    host: info.host,
    port,
    ...(type === 'ws' || type === 'wss' ? { path: options.path ?? '/mqtt' } : {}),
    info,
    setCredentials,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      closeWs?.();
      for (const socket of pending) socket.destroy();
      pending.clear();
    }),
  };
}

function proxySourceOf(h: ProxyHeader, socket: Socket): ProxySource {
  const local = h.command === 'local';
  return {
    version: h.version,
    sourceAddress: local ? undefined : h.sourceAddress,
    sourcePort: local ? undefined : h.sourcePort,
    destinationAddress: local ? undefined : h.destinationAddress,
    destinationPort: local ? undefined : h.destinationPort,
    proxyAddress: socket.remoteAddress,
  };
}

/** Checks certificate material before it replaces a listener's (throws OpenSSL's complaint). */
export function checkCredentials(credentials: TlsCredentials): void {
  secureContextOf(credentials);
}
