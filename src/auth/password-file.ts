/**
 * Password files: one `username:hash` per line, as Mosquitto's `password_file`.
 *
 * Blank lines and lines whose first non-blank character is `#` are ignored; trailing blanks
 * (and a CR) are not part of a line. The username is everything before the first `:`, so it can
 * never contain one. A username appears at most once.
 *
 * Hash formats (base64 is standard, with padding):
 * - `$scrypt$N=<cost>,r=<block size>,p=<parallelism>$<salt>$<hash>`: Petrel's own, written by
 *   `hashPassword` (N=16384, r=8, p=1, 16-byte salt, 32-byte hash). The parameters are part of
 *   the string, so stronger ones can be chosen later and old lines still verify.
 * - `$7$<iterations>$<salt>$<hash>`: PBKDF2-HMAC-SHA512 (64-byte hash), `mosquitto_passwd`'s
 *   default (`-H sha512-pbkdf2`).
 * - `$6$<salt>$<hash>`: SHA-512 of the password followed by the salt bytes (`-H sha512`, the
 *   default of Mosquitto 1.6 and earlier).
 *
 * This module reads no files: callers pass the text, so a reload is a new `parse` and a swap.
 * Checks run through the asynchronous node:crypto functions (scrypt and PBKDF2 on the libuv
 * pool, never on the event loop) and compare with `timingSafeEqual`.
 */
import { Buffer } from 'node:buffer';
import { createHash, pbkdf2, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** A line of a password file that cannot be used; `line` counts from 1. */
export class PasswordFileError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.name = 'PasswordFileError';
    this.line = line;
  }
}

type Entry =
  | { kind: 'scrypt'; N: number; r: number; p: number; salt: Buffer; hash: Buffer }
  | { kind: 'pbkdf2-sha512'; iterations: number; salt: Buffer; hash: Buffer }
  | { kind: 'sha512'; salt: Buffer; hash: Buffer };

/** The parameters `hashPassword` uses. */
const SCRYPT = { N: 16384, r: 8, p: 1, saltBytes: 16, hashBytes: 32 } as const;
/** Bounds on what a file may ask for, so one line cannot take the memory or the CPU of the server. */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
const MAX_SCRYPT_P = 16;
const MAX_PBKDF2_ITERATIONS = 10_000_000;
const SHA512_BYTES = 64;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const INTEGER = /^[1-9][0-9]{0,9}$/;

function base64(text: string | undefined, what: string): Buffer {
  if (text === undefined || text === '' || !BASE64.test(text)) throw new Error(`${what} is not base64`);
  return Buffer.from(text, 'base64');
}

/** Parses one hash; throws an Error saying what is wrong. */
function parseHash(text: string): Entry {
  const parts = text.split('$');
  if (parts[0] !== '' || parts.length < 2) throw new Error('unknown hash format (expected $scrypt$, $7$ or $6$)');
  switch (parts[1]) {
    case 'scrypt': {
      if (parts.length !== 5) throw new Error('a $scrypt$ hash is $scrypt$N=..,r=..,p=..$<salt>$<hash>');
      const params = /^N=([0-9]+),r=([0-9]+),p=([0-9]+)$/.exec(parts[2] ?? '');
      if (params === null) throw new Error('a $scrypt$ hash needs N=..,r=..,p=..');
      const [N, r, p] = [Number(params[1]), Number(params[2]), Number(params[3])];
      if (!Number.isSafeInteger(N) || N < 2 || (N & (N - 1)) !== 0) throw new Error('scrypt N must be a power of 2');
      if (r < 1 || p < 1 || p > MAX_SCRYPT_P || 128 * N * r > MAX_SCRYPT_MEMORY) throw new Error('scrypt parameters out of range');
      const salt = base64(parts[3], 'the salt');
      const hash = base64(parts[4], 'the hash');
      if (hash.length < 16 || hash.length > 64) throw new Error('a scrypt hash is 16 to 64 bytes');
      return { kind: 'scrypt', N, r, p, salt, hash };
    }
    case '7': {
      if (parts.length !== 5) throw new Error('a $7$ hash is $7$<iterations>$<salt>$<hash>');
      const iterations = INTEGER.test(parts[2] ?? '') ? Number(parts[2]) : 0;
      if (iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) throw new Error('$7$ iterations out of range');
      const salt = base64(parts[3], 'the salt');
      const hash = base64(parts[4], 'the hash');
      if (hash.length !== SHA512_BYTES) throw new Error('a $7$ hash is 64 bytes');
      return { kind: 'pbkdf2-sha512', iterations, salt, hash };
    }
    case '6': {
      if (parts.length !== 4) throw new Error('a $6$ hash is $6$<salt>$<hash>');
      const salt = base64(parts[2], 'the salt');
      const hash = base64(parts[3], 'the hash');
      if (hash.length !== SHA512_BYTES) throw new Error('a $6$ hash is 64 bytes');
      return { kind: 'sha512', salt, hash };
    }
    default:
      throw new Error('unknown hash format (expected $scrypt$, $7$ or $6$)');
  }
}

function scryptAsync(password: Buffer | string, salt: Buffer, keylen: number, N: number, r: number, p: number): Promise<Buffer> {
  // maxmem: scrypt needs about 128·N·r bytes (plus 128·r·p); the default cap (32 MB) would refuse N=2^15, r=8.
  const maxmem = 128 * N * r + 128 * r * p + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, { N, r, p, maxmem }, (err, key) => (err === null ? resolve(key) : reject(err)));
  });
}

function pbkdf2Async(password: Buffer, salt: Buffer, iterations: number, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(password, salt, iterations, keylen, 'sha512', (err, key) => (err === null ? resolve(key) : reject(err)));
  });
}

/** The hash of `password` under `entry`'s algorithm and parameters (same length as entry.hash). */
async function derive(entry: Entry, password: Buffer): Promise<Buffer> {
  switch (entry.kind) {
    case 'scrypt':
      return scryptAsync(password, entry.salt, entry.hash.length, entry.N, entry.r, entry.p);
    case 'pbkdf2-sha512':
      return pbkdf2Async(password, entry.salt, entry.iterations, entry.hash.length);
    case 'sha512':
      return createHash('sha512').update(password).update(entry.salt).digest();
  }
}

/** The username of a line, or undefined for a blank line, a comment, or a line without `:`. */
function lineUser(line: string): string | undefined {
  const trimmed = line.trimEnd();
  if (trimmed === '' || trimmed.trimStart().startsWith('#')) return undefined;
  const colon = trimmed.indexOf(':');
  return colon < 0 ? undefined : trimmed.slice(0, colon);
}

/** A parsed password file. Immutable: to reload, parse the new text and replace the object. */
export class PasswordFile {
  readonly #entries: Map<string, Entry>;
  /** Work for unknown users: the first entry's algorithm and parameters with a random salt and hash. */
  readonly #decoy: Entry;

  private constructor(entries: Map<string, Entry>) {
    this.#entries = entries;
    const first = entries.values().next();
    const model: Entry = first.done === true ? { kind: 'scrypt', N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, salt: Buffer.alloc(SCRYPT.saltBytes), hash: Buffer.alloc(SCRYPT.hashBytes) } : first.value;
    this.#decoy = { ...model, salt: randomBytes(model.salt.length), hash: randomBytes(model.hash.length) };
  }

  /** Parses the text of a password file; throws PasswordFileError naming the first bad line. */
  static parse(text: string): PasswordFile {
    const entries = new Map<string, Entry>();
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = (lines[i] as string).trimEnd();
      if (line === '' || line.trimStart().startsWith('#')) continue;
      const colon = line.indexOf(':');
      if (colon < 0) throw new PasswordFileError(i + 1, 'expected username:hash');
      const username = line.slice(0, colon);
      if (username === '') throw new PasswordFileError(i + 1, 'empty username');
      if (entries.has(username)) throw new PasswordFileError(i + 1, `user "${username}" appears twice`);
      try {
        entries.set(username, parseHash(line.slice(colon + 1)));
      } catch (err) {
        throw new PasswordFileError(i + 1, err instanceof Error ? err.message : String(err));
      }
    }
    return new PasswordFile(entries);
  }

  /** The number of users. */
  get size(): number {
    return this.#entries.size;
  }

  has(username: string): boolean {
    return this.#entries.has(username);
  }

  /**
   * True when `password` is `username`'s; false for a wrong password or an unknown user. An
   * unknown user costs the same derivation as the file's first user, so the time taken does not
   * tell whether a name exists; the comparison is constant-time.
   */
  async verify(username: string, password: Buffer): Promise<boolean> {
    const entry = this.#entries.get(username);
    const target = entry ?? this.#decoy;
    const derived = await derive(target, password);
    const equal = derived.length === target.hash.length && timingSafeEqual(derived, target.hash);
    return equal && entry !== undefined;
  }
}

/** `password` hashed in Petrel's format: `$scrypt$N=16384,r=8,p=1$<16-byte salt>$<32-byte hash>`. */
export async function hashPassword(password: Buffer | string): Promise<string> {
  const salt = randomBytes(SCRYPT.saltBytes);
  const hash = await scryptAsync(password, salt, SCRYPT.hashBytes, SCRYPT.N, SCRYPT.r, SCRYPT.p);
  return `$scrypt$N=${SCRYPT.N},r=${SCRYPT.r},p=${SCRYPT.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Why `username` cannot be a password file's username, or undefined when it can. */
export function invalidUsername(username: string): string | undefined {
  if (username === '') return 'the username is empty';
  if (username.includes(':')) return 'a username cannot contain ":"';
  if (/[\r\n]/.test(username)) return 'a username cannot contain a line break';
  if (username !== username.trim()) return 'a username cannot start or end with blanks';
  if (username.startsWith('#')) return 'a username cannot start with "#"';
  return undefined;
}

/**
 * The file text with `username`'s line replaced by `username:hash`, or that line appended when
 * there was none. Every other line, comment and line ending is kept as it was.
 */
export function withEntry(text: string, username: string, hash: string): string {
  const invalid = invalidUsername(username);
  if (invalid !== undefined) throw new TypeError(invalid);
  if (/[\r\n]/.test(hash)) throw new TypeError('a hash cannot contain a line break');
  const lines = text.split('\n');
  const at = lines.findIndex((l) => lineUser(l) === username);
  if (at >= 0) {
    const cr = (lines[at] as string).endsWith('\r') ? '\r' : '';
    lines[at] = `${username}:${hash}${cr}`;
    return lines.join('\n');
  }
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const separator = text === '' || text.endsWith('\n') ? '' : eol;
  return `${text}${separator}${username}:${hash}${eol}`;
}

/** The file text without `username`'s line (other lines kept as they were); undefined when there was none. */
export function withoutEntry(text: string, username: string): string | undefined {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => lineUser(l) === username);
  if (at < 0) return undefined;
  lines.splice(at, 1);
  return lines.join('\n');
}
