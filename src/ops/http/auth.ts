/**
 * Who may use the HTTP API: API keys (`Authorization: Bearer <key>`), users with hashed
 * passwords (Basic auth, or `POST /api/v1/login` for a session token) and the tokens login hands
 * out. Failed attempts are counted per source address; past the limit the address gets 429 until
 * its window ends, whatever it sends.
 *
 * Invariants:
 * - no secret is kept in clear: keys and tokens as SHA-256 digests (of 32 random bytes: no
 *   dictionary to guess from, so an unsalted digest is enough), passwords as the password file's
 *   salted hashes (src/auth/password-file.ts, scrypt);
 * - every comparison is constant-time (`timingSafeEqual` over digests), and every stored key or
 *   token is compared, so the time taken does not tell which one matched;
 * - time comes from `now()` (milliseconds), so tests drive the rate limit and token expiry.
 */
import { Buffer } from 'node:buffer';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { PasswordFile } from '../../auth/password-file.js';

export type Role = 'admin' | 'viewer';

/** An API key: the key itself (from a config file) or its digest, `sha256:<64 hex digits>`. */
export interface ApiKeyConfig {
  name?: string;
  key?: string;
  hash?: string;
  /** Default admin. */
  role?: Role;
}

/** A user: the password as a password file's hash (`petrel passwd` writes one). */
export interface UserConfig {
  username: string;
  password: string;
  /** Default admin. */
  role?: Role;
}

export interface Principal {
  /** The key's name, or the username. */
  name: string;
  kind: 'key' | 'user' | 'token';
  role: Role;
}

export interface AuthOptions {
  apiKeys?: readonly (string | ApiKeyConfig)[];
  users?: readonly UserConfig[];
  /** Failed attempts one source address may make per window before it gets 429. Default 10. */
  maxFailures?: number;
  /** The failure window, in seconds. Default 60. */
  failureWindow?: number;
  /** Lifetime of a login token, in seconds. Default 28800 (8 hours). */
  tokenTtl?: number;
  /** Milliseconds; tests inject a clock. Default Date.now. */
  now?: () => number;
}

/** A bad entry in the auth options; `field` is its path, e.g. "apiKeys[1].hash". */
export class AuthConfigError extends Error {
  constructor(readonly field: string, detail: string) {
    super(`${field}: ${detail}`);
    this.name = 'AuthConfigError';
  }
}

const KEY_PREFIX = 'petrel_';
/** Tracked source addresses and live tokens are bounded; the oldest go first. */
const MAX_TRACKED = 10_000;
const MAX_TOKENS = 1000;

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** A new random key (32 bytes, base64url, with a recognisable prefix) and the digest to store. */
export function newApiKey(): { key: string; hash: string } {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  return { key, hash: hashApiKey(key) };
}

/** The stored form of a key: `sha256:<hex>`. */
export function hashApiKey(key: string): string {
  return `sha256:${digest(key).toString('hex')}`;
}

function parseHash(text: string, field: string): Buffer {
  const m = /^sha256:([0-9a-f]{64})$/.exec(text);
  if (m === null) throw new AuthConfigError(field, 'must be "sha256:" followed by 64 lower-case hex digits');
  return Buffer.from(m[1] as string, 'hex');
}

interface StoredKey {
  digest: Buffer;
  name: string;
  role: Role;
}

interface Failures {
  count: number;
  resetAt: number;
}

interface Token extends StoredKey {
  expiresAt: number;
}

export class ApiAuth {
  readonly #keys: StoredKey[] = [];
  readonly #users: PasswordFile | undefined;
  readonly #roles = new Map<string, Role>();
  readonly #failures = new Map<string, Failures>();
  #tokens: Token[] = [];
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #tokenTtlMs: number;
  readonly #now: () => number;

  /** Throws AuthConfigError naming the entry for a key or user that cannot be used. */
  constructor(options: AuthOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#maxFailures = options.maxFailures ?? 10;
    this.#windowMs = (options.failureWindow ?? 60) * 1000;
    this.#tokenTtlMs = (options.tokenTtl ?? 28_800) * 1000;
    (options.apiKeys ?? []).forEach((entry, i) => this.#keys.push(keyOf(entry, i)));
    const users = options.users ?? [];
    const lines: string[] = [];
    users.forEach((u, i) => {
      const at = `users[${i}]`;
      if (typeof u !== 'object' || u === null) throw new AuthConfigError(at, 'must be a mapping with username and password');
      if (typeof u.username !== 'string' || u.username === '' || /[:\r\n]/.test(u.username)) {
        throw new AuthConfigError(`${at}.username`, 'must be a non-empty string without ":" or line breaks');
      }
      if (this.#roles.has(u.username)) throw new AuthConfigError(`${at}.username`, `"${u.username}" appears twice`);
      if (typeof u.password !== 'string' || /[\r\n]/.test(u.password)) throw new AuthConfigError(`${at}.password`, 'must be a password hash ($scrypt$, $7$ or $6$)');
      try {
        PasswordFile.parse(`${u.username}:${u.password}`);
      } catch (err) {
        throw new AuthConfigError(`${at}.password`, `${err instanceof Error ? err.message.replace(/^line 1: /, '') : String(err)} (a hash from petrel passwd, not the password itself)`);
      }
      this.#roles.set(u.username, roleOf(u.role, `${at}.role`));
      lines.push(`${u.username}:${u.password}`);
    });
    this.#users = lines.length > 0 ? PasswordFile.parse(lines.join('\n')) : undefined;
  }

  /** True when no key and no user is configured: nobody could get in. */
  get empty(): boolean {
    return this.#keys.length === 0 && this.#users === undefined;
  }

  /** Seconds `address` must wait before it may try again, or undefined when it may try now. */
  retryAfter(address: string): number | undefined {
    const f = this.#failures.get(address);
    if (f === undefined) return undefined;
    const now = this.#now();
    if (now >= f.resetAt) {
      this.#failures.delete(address);
      return undefined;
    }
    return f.count >= this.#maxFailures ? Math.max(1, Math.ceil((f.resetAt - now) / 1000)) : undefined;
  }

  /** Counts a failed attempt from `address`. */
  failed(address: string): void {
    const now = this.#now();
    let f = this.#failures.get(address);
    if (f === undefined || now >= f.resetAt) {
      if (f !== undefined) this.#failures.delete(address);
      if (this.#failures.size >= MAX_TRACKED) this.#failures.delete(this.#failures.keys().next().value as string);
      f = { count: 0, resetAt: now + this.#windowMs };
      this.#failures.set(address, f);
    }
    f.count++;
  }

  /**
   * The principal an `Authorization` header names, or undefined when it names nobody (a wrong
   * key, token or password, or a scheme other than Bearer and Basic).
   */
  async check(header: string): Promise<Principal | undefined> {
    const space = header.indexOf(' ');
    const scheme = space < 0 ? header.toLowerCase() : header.slice(0, space).toLowerCase();
    const value = space < 0 ? '' : header.slice(space + 1).trim();
    if (scheme === 'bearer') return this.bearer(value);
    if (scheme !== 'basic') return undefined;
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    return this.login(decoded.slice(0, colon), decoded.slice(colon + 1));
  }

  /** The key or login token `value` is, or undefined. */
  bearer(value: string): Principal | undefined {
    if (value === '') return undefined;
    const d = digest(value);
    let found: StoredKey | undefined;
    // Every key and token is compared: the time does not depend on which one matched.
    for (const k of this.#keys) if (timingSafeEqual(k.digest, d) && found === undefined) found = k;
    if (found !== undefined) return { name: found.name, kind: 'key', role: found.role };
    const now = this.#now();
    if (this.#tokens.some((t) => t.expiresAt <= now)) this.#tokens = this.#tokens.filter((t) => t.expiresAt > now);
    let token: Token | undefined;
    for (const t of this.#tokens) if (timingSafeEqual(t.digest, d) && token === undefined) token = t;
    return token === undefined ? undefined : { name: token.name, kind: 'token', role: token.role };
  }

  /** The user whose password this is, or undefined (an unknown user costs the same time). */
  async login(username: string, password: string): Promise<Principal | undefined> {
    const users = this.#users;
    if (users === undefined) return undefined;
    const ok = await users.verify(username, Buffer.from(password, 'utf8'));
    return ok ? { name: username, kind: 'user', role: this.#roles.get(username) ?? 'admin' } : undefined;
  }

  /** A session token for `principal` (kept as a digest), valid for the token lifetime. */
  issueToken(principal: Principal): { token: string; expiresAt: number } {
    const token = randomBytes(32).toString('base64url');
    const expiresAt = this.#now() + this.#tokenTtlMs;
    if (this.#tokens.length >= MAX_TOKENS) this.#tokens.shift();
    this.#tokens.push({ digest: digest(token), name: principal.name, role: principal.role, expiresAt });
    return { token, expiresAt };
  }

  /** Ends a login token; false when it was not one. */
  revokeToken(token: string): boolean {
    const d = digest(token);
    const before = this.#tokens.length;
    this.#tokens = this.#tokens.filter((t) => !timingSafeEqual(t.digest, d));
    return this.#tokens.length < before;
  }
}

function roleOf(role: unknown, field: string): Role {
  if (role === undefined || role === 'admin') return 'admin';
  if (role === 'viewer') return 'viewer';
  throw new AuthConfigError(field, 'must be admin or viewer');
}

function keyOf(entry: string | ApiKeyConfig, i: number): StoredKey {
  const at = `apiKeys[${i}]`;
  if (typeof entry === 'string') {
    if (entry.length < 16) throw new AuthConfigError(at, 'a key must be at least 16 characters');
    return { digest: digest(entry), name: `key${i}`, role: 'admin' };
  }
  if (typeof entry !== 'object' || entry === null) throw new AuthConfigError(at, 'must be a key or a mapping with key or hash');
  if ((entry.key === undefined) === (entry.hash === undefined)) throw new AuthConfigError(at, 'needs exactly one of key or hash');
  if (entry.name !== undefined && typeof entry.name !== 'string') throw new AuthConfigError(`${at}.name`, 'must be a string');
  const name = entry.name ?? `key${i}`;
  const role = roleOf(entry.role, `${at}.role`);
  if (entry.key !== undefined) {
    if (typeof entry.key !== 'string' || entry.key.length < 16) throw new AuthConfigError(`${at}.key`, 'must be a string of at least 16 characters');
    return { digest: digest(entry.key), name, role };
  }
  if (typeof entry.hash !== 'string') throw new AuthConfigError(`${at}.hash`, 'must be a string');
  return { digest: parseHash(entry.hash, `${at}.hash`), name, role };
}
