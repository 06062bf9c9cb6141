/**
 * JSON Web Token authentication: a client presents a JWT (typically as its CONNECT password) and
 * the broker verifies it with one configured key source: a shared secret (HS*), a PEM public key
 * or certificate, or a JWKS URL whose keys are fetched and cached.
 *
 * Invariants:
 * - Exactly one key source, checked when the verifier is created; a bad option is a TypeError
 *   that names it.
 * - The accepted algorithms follow the key source (HS* for a secret, asymmetric ones for a public
 *   key or a JWKS), so a token cannot choose how it is checked: an HS256 token "signed" with the
 *   public key text is refused when a public key is configured (algorithm confusion).
 * - Every failure is a `JwtAuthError`: 'expired' (exp passed, beyond the clock tolerance),
 *   'unavailable' (the JWKS could not be fetched: down, timed out, not 200, not a JWKS) or
 *   'invalid' (everything else). Error messages never carry the token.
 * - Claims that decide what a client may do (username, ACL) are refused when malformed, never
 *   ignored.
 *
 * The JWKS cache (cooldown, max age) runs on jose's own clock (Date.now); `now` governs the
 * token's time claims only.
 */
import { X509Certificate, createPublicKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey, JWTVerifyOptions } from 'jose';
import { parseAcl } from './acl.js';
import type { TopicAcl } from './acl.js';

export { matchesAny } from './acl.js';
export type { TopicAcl } from './acl.js';

export interface JwtAuthOptions {
  /** HS256/HS384/HS512 shared secret (UTF-8). */
  secret?: string;
  /** PEM public key (SPKI) or certificate for RS256/ES256 etc. (contents, not a file name). */
  publicKey?: string;
  /** JWKS URL (http or https); keys are fetched when first needed and cached. */
  jwksUrl?: string;
  /** Seconds after a successful JWKS fetch before an unknown key id may trigger another; default 30. */
  jwksCooldown?: number;
  /** Seconds the fetched JWKS is used before it is fetched again; default 600. */
  jwksCacheMaxAge?: number;
  /** Milliseconds a JWKS fetch may take; default 5000. */
  jwksTimeout?: number;
  /**
   * Accepted "alg" values. Default: inferred from the key source: HS256 for a secret; RS256,
   * PS256, ES256/384/512 or EdDSA from a public key's type and curve; RS256 and ES256 for a JWKS.
   */
  algorithms?: string[];
  /** Required "iss". */
  issuer?: string;
  /** Required "aud" (one of the token's audiences). */
  audience?: string;
  /** Claim holding the username; default 'sub'. */
  usernameClaim?: string;
  /** Claim holding a per-token ACL `{ pub?: string[], sub?: string[] }` (MQTT filters); default 'acl'. */
  aclClaim?: string;
  /** Seconds of clock skew tolerated; default 30. */
  clockTolerance?: number;
  /** Injected clock (ms since epoch) for tests. */
  now?: () => number;
}

export interface JwtIdentity {
  username: string | undefined;
  /** ms since epoch, from exp */
  expiresAt: number | undefined;
  acl: TopicAcl | undefined;
  claims: Record<string, unknown>;
}

export type JwtAuthFailure = 'invalid' | 'expired' | 'unavailable';

export class JwtAuthError extends Error {
  readonly reason: JwtAuthFailure;
  constructor(reason: JwtAuthFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
    this.name = 'JwtAuthError';
  }
}

export interface JwtAuth {
  /** Verifies `token`; rejects with a JwtAuthError. */
  verify(token: string): Promise<JwtIdentity>;
}

const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

function optionError(option: string, message: string): TypeError {
  return new TypeError(`JWT auth option "${option}" ${message}`);
}

function seconds(options: JwtAuthOptions, option: 'clockTolerance' | 'jwksCooldown' | 'jwksCacheMaxAge', fallback: number): number {
  const value = options[option];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw optionError(option, 'must be a non-negative number of seconds');
  return value;
}

function optionalString(options: JwtAuthOptions, option: 'issuer' | 'audience' | 'usernameClaim' | 'aclClaim'): string | undefined {
  const value = options[option];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw optionError(option, 'must be a non-empty string');
  return value;
}

/** The algorithms a PEM public key can verify, strongest match first. */
function algorithmsForKey(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      if (curve === 'secp521r1') return ['ES512'];
      throw optionError('publicKey', `is an EC key on an unsupported curve (${curve ?? 'unknown'})`);
    }
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    default:
      throw optionError('publicKey', `is a key type JWT verification does not support (${key.asymmetricKeyType ?? 'unknown'})`);
  }
}

function defaultForKey(key: KeyObject): string[] {
  const usable = algorithmsForKey(key);
  return key.asymmetricKeyType === 'rsa' ? ['RS256'] : key.asymmetricKeyType === 'rsa-pss' ? ['PS256'] : usable;
}

function importPublicKey(pem: unknown): KeyObject {
  if (typeof pem !== 'string' || pem.length === 0) throw optionError('publicKey', 'must be the PEM text of a public key or certificate');
  if (pem.includes('PRIVATE KEY')) throw optionError('publicKey', 'holds a private key; give the public key or certificate');
  try {
    return pem.includes('BEGIN CERTIFICATE') ? new X509Certificate(pem).publicKey : createPublicKey({ key: pem, format: 'pem' });
  } catch (cause) {
    throw new TypeError('JWT auth option "publicKey" is not a PEM public key (SPKI) or certificate', { cause });
  }
}

function checkAlgorithms(value: unknown, allowed: readonly string[], source: string): string[] {
  if (!Array.isArray(value) || value.length === 0) throw optionError('algorithms', 'must be a non-empty array of JWS algorithm names');
  for (const alg of value as unknown[]) {
    if (typeof alg !== 'string' || !allowed.includes(alg)) {
      throw optionError('algorithms', `holds ${JSON.stringify(alg)}, which ${source} cannot verify (allowed: ${allowed.join(', ')})`);
    }
  }
  return [...(value as string[])];
}

type KeySource = { kind: 'static'; key: Uint8Array | KeyObject } | { kind: 'jwks'; resolve: JWTVerifyGetKey };

/** An error from the JWKS resolver that means the key set could not be had, not that the token is bad. */
function jwksUnavailable(error: unknown): boolean {
  if (!(error instanceof errors.JOSEError)) return true; // fetch failed: refused, reset, DNS, aborted
  // ERR_JOSE_GENERIC: not 200, or not JSON. The rest say the set itself is unusable.
  return error.code === 'ERR_JOSE_GENERIC' || error.code === 'ERR_JWKS_TIMEOUT' || error.code === 'ERR_JWKS_INVALID';
}

class JwksUnavailable extends Error {}

function jwksSource(options: JwtAuthOptions): KeySource {
  let url: URL;
  try {
    url = new URL(String(options.jwksUrl));
  } catch (cause) {
    throw new TypeError('JWT auth option "jwksUrl" must be an http or https URL', { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw optionError('jwksUrl', 'must be an http or https URL');
  const timeout = options.jwksTimeout ?? 5000;
  if (!Number.isInteger(timeout) || timeout <= 0) throw optionError('jwksTimeout', 'must be a positive integer of milliseconds');
  const remote = createRemoteJWKSet(url, {
    timeoutDuration: timeout,
    cooldownDuration: seconds(options, 'jwksCooldown', 30) * 1000,
    cacheMaxAge: seconds(options, 'jwksCacheMaxAge', 600) * 1000,
  });
  const resolve: JWTVerifyGetKey = async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      if (jwksUnavailable(error)) throw new JwksUnavailable('the JWKS could not be fetched', { cause: error });
      throw error;
    }
  };
  return { kind: 'jwks', resolve };
}

function failure(error: unknown): JwtAuthError {
  if (error instanceof JwtAuthError) return error;
  if (error instanceof JwksUnavailable) return new JwtAuthError('unavailable', 'the JWKS could not be fetched', { cause: error.cause });
  if (error instanceof errors.JOSEError) {
    if (error.code === 'ERR_JWT_EXPIRED') return new JwtAuthError('expired', 'the token has expired', { cause: error });
    return new JwtAuthError('invalid', `the token was refused (${error.code})`, { cause: error });
  }
  return new JwtAuthError('invalid', 'the token could not be verified', { cause: error });
}

/** Creates a verifier; throws a TypeError naming the first bad option. */
export function createJwtAuth(options: JwtAuthOptions): JwtAuth {
  if (typeof options !== 'object' || options === null) throw new TypeError('JWT auth options must be an object');
  const given = (['secret', 'publicKey', 'jwksUrl'] as const).filter((name) => options[name] !== undefined);
  if (given.length !== 1) {
    throw new TypeError(`JWT auth needs exactly one of the options "secret", "publicKey" or "jwksUrl"${given.length > 1 ? ` (got ${given.join(', ')})` : ''}`);
  }

  let source: KeySource;
  let algorithms: string[];
  if (options.secret !== undefined) {
    if (typeof options.secret !== 'string' || options.secret.length === 0) throw optionError('secret', 'must be a non-empty string');
    source = { kind: 'static', key: new TextEncoder().encode(options.secret) };
    algorithms = options.algorithms === undefined ? ['HS256'] : checkAlgorithms(options.algorithms, HMAC_ALGORITHMS, 'a shared secret');
  } else if (options.publicKey !== undefined) {
    const key = importPublicKey(options.publicKey);
    source = { kind: 'static', key };
    algorithms = options.algorithms === undefined ? defaultForKey(key) : checkAlgorithms(options.algorithms, algorithmsForKey(key), `this ${key.asymmetricKeyType ?? ''} key`);
  } else {
    source = jwksSource(options);
    algorithms = options.algorithms === undefined ? ['RS256', 'ES256'] : checkAlgorithms(options.algorithms, ASYMMETRIC_ALGORITHMS, 'a JWKS');
  }

  const issuer = optionalString(options, 'issuer');
  const audience = optionalString(options, 'audience');
  const usernameClaim = optionalString(options, 'usernameClaim') ?? 'sub';
  const aclClaim = optionalString(options, 'aclClaim') ?? 'acl';
  const clockTolerance = seconds(options, 'clockTolerance', 30);
  const now = options.now;
  if (now !== undefined && typeof now !== 'function') throw optionError('now', 'must be a function returning ms since the epoch');

  const base: JWTVerifyOptions = { algorithms, clockTolerance };
  if (issuer !== undefined) base.issuer = issuer;
  if (audience !== undefined) base.audience = audience;

  function identity(payload: JWTPayload): JwtIdentity {
    const claims = payload as Record<string, unknown>;
    const name = claims[usernameClaim];
    if (name !== undefined && (typeof name !== 'string' || name.length === 0)) {
      throw new JwtAuthError('invalid', `the "${usernameClaim}" claim must be a non-empty string`);
    }
    let acl: TopicAcl | undefined;
    const rawAcl = claims[aclClaim];
    if (rawAcl !== undefined) {
      const parsed = parseAcl(rawAcl);
      if (typeof parsed === 'string') throw new JwtAuthError('invalid', `the "${aclClaim}" claim is malformed: ${parsed}`);
      acl = parsed;
    }
    return { username: name, expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined, acl, claims };
  }

  return {
    async verify(token: string): Promise<JwtIdentity> {
      if (typeof token !== 'string' || token.length === 0) throw new JwtAuthError('invalid', 'no token');
      const verifyOptions: JWTVerifyOptions = now === undefined ? base : { ...base, currentDate: new Date(now()) };
      try {
        const { payload } = source.kind === 'static'
          ? await jwtVerify(token, source.key, verifyOptions)
          : await jwtVerify(token, source.resolve, verifyOptions);
        return identity(payload);
      } catch (error) {
        throw failure(error);
      }
    },
  };
}
