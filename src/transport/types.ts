/**
 * What a transport hands the broker with each byte stream: who is on the other end and how they
 * came in. Types only: the broker reads these (events, logs, hook contexts, per-listener limits)
 * without importing any network module.
 */
import type { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';

export type TransportType = 'tcp' | 'tls' | 'ws' | 'wss' | 'local';

/** Limits a listener puts on the connections it accepts; the broker enforces them at CONNECT. */
export interface ListenerLimits {
  /** Connections open at once on this listener; 0: no limit. */
  maxConnections: number;
  /** New connections per second on this listener; 0: no limit. */
  maxConnectionRate: number;
  /** New connections per second from one source address on this listener; 0: no limit. */
  maxConnectionRatePerSource: number;
}

/** One listener, shared by every connection it accepted (one object per listener, not per connection). */
export interface ListenerInfo {
  readonly name: string;
  readonly type: TransportType;
  readonly host: string;
  readonly port: number;
  readonly limits?: Readonly<ListenerLimits>;
  /**
   * How this listener's plain TCP sockets can be read without the stream layer (direct-read.ts):
   * installs `sink` on `stream` and returns true, or returns false and changes nothing. Absent on
   * listeners whose streams are read as a Duplex only.
   */
  readonly readDirect?: DirectReader;
}

/** Called with the stream as `this`, the byte count and a shared buffer whose bytes 0..nread are valid only during the call. */
export type DirectSink = (this: Duplex, nread: number, buf: Buffer) => void;
export type DirectReader = (stream: Duplex, sink: DirectSink) => boolean;

/** A verified (or at least presented) TLS client certificate, reduced to what auth decisions use. */
export interface PeerCertificate {
  /** Subject Common Name. */
  subjectCN: string | undefined;
  /** Subject Alternative Names as Node prints them: "DNS:a.example", "email:x@y", "URI:...", "IP Address:..." */
  subjectAltNames: string[];
  issuerCN: string | undefined;
  /** SHA-256 fingerprint, colon-separated hex as Node prints it. */
  fingerprint256: string;
  serialNumber: string;
  validFrom: string;
  validTo: string;
  /** DER bytes of the certificate. */
  raw: Buffer;
}

export interface TlsInfo {
  /** Negotiated protocol, e.g. "TLSv1.3". */
  protocol: string | undefined;
  cipher: string | undefined;
  /** True when the client presented a certificate that verified against the listener's CA. */
  authorized: boolean;
  /** Why a presented certificate did not verify (only with requestCert and not requireCert). */
  authorizationError: string | undefined;
  peerCertificate: PeerCertificate | undefined;
}

/** The PROXY protocol header a load balancer sent ahead of the client's bytes. */
export interface ProxySource {
  version: 1 | 2;
  /** The client address and port the header names (also the connection's remoteAddress). */
  sourceAddress: string | undefined;
  sourcePort: number | undefined;
  destinationAddress: string | undefined;
  destinationPort: number | undefined;
  /** The address of the proxy itself: the TCP peer. */
  proxyAddress: string | undefined;
}

/** Connection metadata: one object per connection, created by the transport. */
export interface ConnectionMeta {
  /** The client's address: the TCP peer, or the source a PROXY header named. */
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  listener: ListenerInfo | undefined;
  tls?: TlsInfo;
  /** Headers of the WebSocket upgrade request (names in lower case). */
  headers?: Readonly<Record<string, string | string[] | undefined>>;
  proxy?: ProxySource;
  /**
   * A username taken from the verified client certificate (CN or a SAN, by the listener's
   * `certUsername`); when set it replaces the username of CONNECT.
   */
  certUsername?: string;
}

/** Receives each accepted connection: the stream of MQTT bytes and what is known about its peer. */
export type StreamHandler = (stream: Duplex, meta: ConnectionMeta) => void;

/**
 * The part of a Duplex that the client uses: a Node Duplex (TCP, TLS, an in-process pair, a ws
 * stream) is one, and so is the browser's WebSocket adapter (transport/dial-browser.ts).
 * 'data' carries Buffers; 'close' comes exactly once, after 'error' if there was one.
 */
export interface ByteStream {
  readonly destroyed: boolean;
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'end' | 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  write(chunk: Buffer, callback?: (error?: Error | null) => void): boolean;
  end(): this;
  destroy(error?: Error): this;
}
