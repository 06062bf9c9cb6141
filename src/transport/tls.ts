/**
 * TLS for the tls and wss listeners: the secure context from certificate, key and CA (PEM
 * contents; the server reads the files), client certificates requested or required (mutual TLS),
 * and what a verified client certificate tells the broker (TlsInfo, a username from its CN or SAN).
 */
import type { Buffer } from 'node:buffer';
import { createSecureContext, type SecureContext, type SecureVersion, type TLSSocket } from 'node:tls';
import type { PeerCertificate, TlsInfo } from './types.js';

/** Certificate material in PEM (strings or bytes); reloadable without dropping connections. */
export interface TlsCredentials {
  cert: string | Buffer;
  key: string | Buffer;
  /** CA certificates that client certificates must chain to (mutual TLS). */
  ca?: string | Buffer | undefined;
  /** Passphrase of an encrypted key. */
  passphrase?: string | undefined;
}

export interface TlsOptions extends TlsCredentials {
  /** Oldest TLS version accepted. Default TLSv1.2. */
  minVersion?: SecureVersion;
  /** Ask clients for a certificate; with `requireCert`, refuse those without a valid one. */
  requestCert?: boolean;
  requireCert?: boolean;
  /**
   * Use the verified client certificate's Subject CN ('cn') or its first e-mail, DNS or URI
   * Subject Alternative Name ('san') as the client's username, in place of CONNECT's.
   */
  certUsername?: 'cn' | 'san' | undefined;
}

/** A secure context; throws (with OpenSSL's message) for a bad certificate, key or passphrase. */
export function secureContextOf(options: TlsOptions): SecureContext {
  return createSecureContext({
    cert: options.cert, key: options.key, ca: options.ca, passphrase: options.passphrase,
    minVersion: options.minVersion ?? 'TLSv1.2',
  });
}

/** Options for tls.createServer / https.createServer (and their setSecureContext). */
export function tlsServerOptions(options: TlsOptions): TlsServerOptions {
  // Fails early, with OpenSSL's complaint, on a bad certificate, key or passphrase.
  secureContextOf(options);
  const requestCert = options.requestCert === true || options.requireCert === true;
  return {
    cert: options.cert, key: options.key, ca: options.ca, passphrase: options.passphrase,
    minVersion: options.minVersion ?? 'TLSv1.2',
    requestCert,
    rejectUnauthorized: requestCert && options.requireCert === true,
    // A client that opens a socket and never completes the handshake is let go after this long.
    handshakeTimeout: 10_000,
  };
}

export interface TlsServerOptions {
  cert: string | Buffer;
  key: string | Buffer;
  ca: string | Buffer | undefined;
  passphrase: string | undefined;
  minVersion: SecureVersion;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  handshakeTimeout: number;
}

function firstOf(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The client certificate reduced to what auth decisions use; undefined when none was presented. */
function peerCertificateOf(socket: TLSSocket): PeerCertificate | undefined {
  const cert = socket.getPeerCertificate();
  if (cert === null || typeof cert !== 'object' || cert.raw === undefined) return undefined;
  const san = typeof cert.subjectaltname === 'string' && cert.subjectaltname !== '' ? cert.subjectaltname.split(', ') : [];
  return {
    subjectCN: firstOf(cert.subject?.CN),
    subjectAltNames: san,
    issuerCN: firstOf(cert.issuer?.CN),
    fingerprint256: cert.fingerprint256,
    serialNumber: cert.serialNumber,
    validFrom: cert.valid_from,
    validTo: cert.valid_to,
    raw: cert.raw,
  };
}

/** What the handshake established. */
export function tlsInfoOf(socket: TLSSocket): TlsInfo {
  const cipher = socket.getCipher();
  const error = socket.authorizationError;
  return {
    protocol: socket.getProtocol() ?? undefined,
    cipher: cipher?.name,
    authorized: socket.authorized,
    authorizationError: error === null || error === undefined ? undefined : String(error),
    peerCertificate: peerCertificateOf(socket),
  };
}

/** The username a verified certificate gives, by the listener's `certUsername`. */
export function certUsernameOf(info: TlsInfo, from: 'cn' | 'san' | undefined): string | undefined {
  const cert = info.peerCertificate;
  if (from === undefined || !info.authorized || cert === undefined) return undefined;
  if (from === 'cn') return cert.subjectCN;
  for (const name of cert.subjectAltNames) {
    const colon = name.indexOf(':');
    const kind = name.slice(0, colon);
    if (kind === 'email' || kind === 'DNS' || kind === 'URI') return name.slice(colon + 1);
  }
  return undefined;
}
