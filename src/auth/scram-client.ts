/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677): pure message building and checking,
 * no I/O, so the MQTT client and the tests can drive it over CONNECT / AUTH themselves.
 */
import { Buffer } from 'node:buffer';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  ScramFormatError, decodeBase64, deriveKeys, escapeUsername, expectAttribute, hmac, isPrintable,
  parseAttributes, saslPrep, xor,
} from './scram-sha-256.js';

/** No channel binding and no authzid: the only gs2 header the broker accepts besides "y,,". */
const GS2_HEADER = 'n,,';
// pbkdf2 takes a 32-bit signed count; a larger value is malformed rather than merely slow.
const MAX_ITERATIONS = 0x7fffffff;

export class ScramClient {
  private readonly clientFirstBare: string;
  private readonly nonce: string;
  private expectedServerSignature: Buffer | undefined;

  /** `nonce` defaults to 18 random bytes in base64; pass one only for test vectors. */
  constructor(username: string, private readonly password: string, nonce?: string) {
    this.nonce = nonce ?? randomBytes(18).toString('base64');
    if (!isPrintable(this.nonce)) throw new ScramFormatError('SCRAM nonce must be printable ASCII without commas');
    if (username.length === 0) throw new ScramFormatError('SCRAM username must not be empty');
    this.clientFirstBare = `n=${escapeUsername(saslPrep(username))},r=${this.nonce}`;
  }

  /** client-first-message (RFC 5802 §5.1), the Authentication Data of CONNECT. */
  firstMessage(): Buffer {
    return Buffer.from(GS2_HEADER + this.clientFirstBare, 'utf8');
  }

  /**
   * client-final-message for the server-first-message received in AUTH 0x18.
   * Throws ScramFormatError on a malformed message, a nonce that does not extend ours
   * (RFC 5802 §5.1), or a bad iteration count.
   */
  finalMessage(serverFirst: Buffer): Buffer {
    const text = serverFirst.toString('utf8');
    const attrs = parseAttributes(text);
    // m= in the first position is a mandatory extension we do not know: fail (RFC 5802 §5.1).
    const nonce = expectAttribute(attrs, 0, 'r');
    const salt = decodeBase64(expectAttribute(attrs, 1, 's'));
    const iterationsText = expectAttribute(attrs, 2, 'i');
    if (!isPrintable(nonce) || !nonce.startsWith(this.nonce) || nonce.length === this.nonce.length) {
      throw new ScramFormatError('server nonce does not extend the client nonce');
    }
    if (salt.length === 0) throw new ScramFormatError('empty salt');
    if (!/^[1-9][0-9]{0,9}$/.test(iterationsText) || Number(iterationsText) > MAX_ITERATIONS) {
      throw new ScramFormatError(`bad iteration count ${JSON.stringify(iterationsText)}`);
    }
    const { clientKey, storedKey, serverKey } = deriveKeys(this.password, salt, Number(iterationsText));
    const channelBinding = Buffer.from(GS2_HEADER, 'utf8').toString('base64');
    const withoutProof = `c=${channelBinding},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${text},${withoutProof}`;
    const proof = xor(clientKey, hmac(storedKey, authMessage));
    this.expectedServerSignature = hmac(serverKey, authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /**
   * Checks the server-final-message (CONNACK or AUTH 0x00 Authentication Data): true only when
   * its v= matches the ServerSignature we expect, which proves the server knew ServerKey (RFC 5802 §3).
   */
  verifyServerFinal(serverFinal: Buffer): boolean {
    const expected = this.expectedServerSignature;
    if (expected === undefined) return false;
    let signature: Buffer;
    try {
      signature = decodeBase64(expectAttribute(parseAttributes(serverFinal.toString('utf8')), 0, 'v'));
    } catch {
      return false; // includes "e=..." server errors
    }
    return signature.length === expected.length && timingSafeEqual(signature, expected);
  }
}
