/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as an MQTT 5.0 enhanced authentication mechanism (§4.12).
 * The client-first-message travels in CONNECT (or AUTH 0x19), the server-first-message in
 * AUTH 0x18, the client-final-message in the client's AUTH 0x18, and the server-final-message
 * in CONNACK (or AUTH 0x00). The broker only ever stores StoredKey and ServerKey, never the password.
 */
import { Buffer } from 'node:buffer';
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthExchange, AuthMechanism, AuthStep } from '../broker/auth-mechanism.js';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';
const DEFAULT_ITERATIONS = 4096; // RFC 7677 §4: at least 4096
const SALT_BYTES = 16;
const KEY_BYTES = 32;
const NOT_AUTHORIZED = 0x87;
const UNSPECIFIED_ERROR = 0x80;

export interface ScramCredential { salt: Buffer; iterations: number; storedKey: Buffer; serverKey: Buffer }

export interface ScramOptions {
  lookup(username: string): ScramCredential | undefined | Promise<ScramCredential | undefined>;
  /** Random bytes in the server's nonce part (default 18, i.e. 24 base64 characters). */
  nonceBytes?: number;
  /** Supplies the server's nonce part instead of random bytes; for test vectors only. */
  nonce?: () => string;
}

/** Thrown by the parsers on anything that does not follow the RFC 5802 §7 grammar. */
export class ScramFormatError extends Error {}

// ---- primitives shared with the client (RFC 5802 §3) ----

export function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

/** Minimal SASLprep (RFC 4013): NFKC only, the mapping and prohibition tables are not applied. */
export function saslPrep(value: string): string {
  return value.normalize('NFKC');
}

/** ClientKey, StoredKey and ServerKey from a password (RFC 5802 §3). */
export function deriveKeys(password: string, salt: Buffer, iterations: number): { clientKey: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const salted = pbkdf2Sync(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, KEY_BYTES, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

/** Derives a stored credential from a password (salt random 16 bytes by default, iterations default 4096). */
export function scramCredential(password: string, options: { salt?: Buffer; iterations?: number } = {}): ScramCredential {
  const salt = options.salt ?? randomBytes(SALT_BYTES);
  const iterations = options.iterations ?? DEFAULT_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError(`SCRAM iterations must be a positive integer, got ${iterations}`);
  const { storedKey, serverKey } = deriveKeys(password, salt, iterations);
  return { salt, iterations, storedKey, serverKey };
}

/** saslname escaping (RFC 5802 §5.1): ',' and '=' may not appear raw in a username. */
export function escapeUsername(username: string): string {
  return username.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

export function unescapeUsername(saslname: string): string {
  // Any '=' not starting =2C or =3D makes the message malformed (RFC 5802 §5.1).
  if (saslname.length === 0 || /=(?!2C|3D)/.test(saslname)) throw new ScramFormatError('bad saslname');
  return saslname.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64: Buffer.from(..., 'base64') silently skips garbage, which would hide malformed input. */
export function decodeBase64(value: string): Buffer {
  if (!BASE64.test(value)) throw new ScramFormatError('bad base64');
  return Buffer.from(value, 'base64');
}

/** printable = %x21-2B / %x2D-7E: no comma, no space (RFC 5802 §7). */
export function isPrintable(value: string): boolean {
  return /^[\x21-\x2B\x2D-\x7E]+$/.test(value);
}

/** Splits "a=x,b=y" into ordered attribute pairs; each must be a single letter followed by '='. */
export function parseAttributes(message: string): Array<[string, string]> {
  return message.split(',').map((part) => {
    if (!/^[A-Za-z]=/.test(part)) throw new ScramFormatError(`bad attribute ${JSON.stringify(part)}`);
    return [part[0] as string, part.slice(2)];
  });
}

export function expectAttribute(attrs: Array<[string, string]>, index: number, name: string): string {
  const attr = attrs[index];
  if (attr === undefined || attr[0] !== name) throw new ScramFormatError(`expected attribute ${name}=`);
  return attr[1];
}

// ---- server side ----

interface ClientFirst { gs2Header: string; bare: string; username: string; nonce: string }

function parseClientFirst(text: string): ClientFirst {
  // gs2-header = gs2-cbind-flag "," [authzid] "," (RFC 5802 §7). 'n' and 'y' mean no binding;
  // 'p=' asks for channel binding, which this server does not offer (no SCRAM-SHA-256-PLUS).
  const match = /^([ny]),,(.*)$/s.exec(text);
  if (match === null) throw new ScramFormatError('unsupported gs2 header');
  const bare = match[2] as string;
  const attrs = parseAttributes(bare);
  // m= is a reserved mandatory extension: a server must fail on it (RFC 5802 §5.1).
  const username = saslPrep(unescapeUsername(expectAttribute(attrs, 0, 'n')));
  const nonce = expectAttribute(attrs, 1, 'r');
  if (!isPrintable(nonce)) throw new ScramFormatError('bad client nonce');
  return { gs2Header: `${match[1] as string},,`, bare, username, nonce };
}

interface ClientFinal { withoutProof: string; channelBinding: string; nonce: string; proof: Buffer }

function parseClientFinal(text: string): ClientFinal {
  const attrs = parseAttributes(text);
  const last = attrs.length - 1;
  // client-final-message = channel-binding "," nonce ["," extensions] "," proof (RFC 5802 §7).
  const proof = decodeBase64(expectAttribute(attrs, last, 'p'));
  if (last < 2) throw new ScramFormatError('client-final too short');
  return {
    withoutProof: text.slice(0, text.lastIndexOf(',p=')),
    channelBinding: expectAttribute(attrs, 0, 'c'),
    nonce: expectAttribute(attrs, 1, 'r'),
    proof,
  };
}

interface Pending { first: ClientFirst; serverFirst: string; nonce: string; credential: ScramCredential; known: boolean }

function failure(reasonCode = NOT_AUTHORIZED): AuthStep {
  return { status: 'failure', reasonCode };
}

/** Checks the client-final-message against the pending exchange (RFC 5802 §5.1, §3). */
function verifyFinal(pending: Pending, data: Buffer): AuthStep {
  const final = parseClientFinal(data.toString('utf8'));
  const expectedBinding = Buffer.from(pending.first.gs2Header, 'utf8').toString('base64');
  if (final.channelBinding !== expectedBinding || final.nonce !== pending.nonce) return failure();
  if (final.proof.length !== KEY_BYTES) return failure();
  const credential = pending.credential;
  const authMessage = `${pending.first.bare},${pending.serverFirst},${final.withoutProof}`;
  const clientKey = xor(final.proof, hmac(credential.storedKey, authMessage));
  const stored = sha256(clientKey);
  const matches = stored.length === credential.storedKey.length && timingSafeEqual(stored, credential.storedKey);
  // An unknown user went through the same work against a fake credential and fails only here.
  if (!matches || !pending.known) return failure();
  const serverSignature = hmac(credential.serverKey, authMessage).toString('base64');
  return { status: 'success', data: Buffer.from(`v=${serverSignature}`, 'utf8') };
}

class ScramExchange implements AuthExchange {
  private state: 'first' | 'final' | 'done' = 'first';
  private pending: Pending | undefined;

  constructor(
    private readonly options: ScramOptions,
    private readonly fakeSaltKey: Buffer,
  ) {}

  async next(data: Buffer | undefined): Promise<AuthStep> {
    const state = this.state;
    // Whatever happens, a step is answered once: a failure or a success ends the exchange.
    this.state = state === 'first' ? 'final' : 'done';
    if (data === undefined || state === 'done') return this.fail();
    try {
      return state === 'first' ? await this.onFirst(data) : this.end(verifyFinal(this.pending as Pending, data));
    } catch {
      // Malformed SCRAM messages (ScramFormatError) and anything unexpected end the same way.
      return this.fail();
    }
  }

  private async onFirst(data: Buffer): Promise<AuthStep> {
    const first = parseClientFirst(data.toString('utf8'));
    let credential: ScramCredential | undefined;
    try {
      credential = await this.options.lookup(first.username);
    } catch {
      return this.fail(UNSPECIFIED_ERROR);
    }
    // RFC 5802 §9: answer an unknown user with a plausible, stable salt so the first step does
    // not reveal whether the account exists; the proof check then fails.
    const known = credential !== undefined;
    credential ??= this.fakeCredential(first.username);
    const nonce = first.nonce + this.serverNonce();
    const serverFirst = `r=${nonce},s=${credential.salt.toString('base64')},i=${credential.iterations}`;
    this.pending = { first, serverFirst, nonce, credential, known };
    return { status: 'continue', data: Buffer.from(serverFirst, 'utf8') };
  }

  private fakeCredential(username: string): ScramCredential {
    const salt = hmac(this.fakeSaltKey, username).subarray(0, SALT_BYTES);
    return { salt, iterations: DEFAULT_ITERATIONS, storedKey: randomBytes(KEY_BYTES), serverKey: randomBytes(KEY_BYTES) };
  }

  private serverNonce(): string {
    if (this.options.nonce !== undefined) return this.options.nonce();
    return randomBytes(this.options.nonceBytes ?? 18).toString('base64');
  }

  private end(step: AuthStep): AuthStep {
    this.state = 'done';
    this.pending = undefined;
    return step;
  }

  private fail(reasonCode = NOT_AUTHORIZED): AuthStep {
    return this.end(failure(reasonCode));
  }
}

/** The SCRAM-SHA-256 mechanism; `lookup` receives the SASLprep'd, unescaped username from the SCRAM message. */
export function createScramSha256(options: ScramOptions): AuthMechanism {
  // Per-mechanism secret so fake salts are stable for a username but not predictable from outside.
  const fakeSaltKey = randomBytes(32);
  return {
    method: SCRAM_SHA_256,
    start: () => new ScramExchange(options, fakeSaltKey),
  };
}
