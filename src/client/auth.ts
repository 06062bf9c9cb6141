/**
 * Enhanced authentication on the client side (5.0 §4.12): CONNECT carries the method and the
 * first data, the server answers AUTH 0x18 challenges until CONNACK. A fresh exchange is made for
 * every connection (a reconnect never replays an old nonce). Invariant: the client accepts a
 * CONNACK only when the method verifies the server's last data (for SCRAM, the server signature,
 * which proves the server knows the credential: RFC 5802 §3).
 */
import type { Buffer } from 'node:buffer';
import { ScramClient } from '../auth/scram-client.js';
import { MqttError, ReasonCode } from '../protocol/index.js';

export interface AuthExchange {
  /** Authentication Data of CONNECT (none when undefined). */
  first(): Buffer | undefined;
  /** The answer to an AUTH 0x18 challenge; throws when the challenge is malformed. */
  challenge(data: Buffer | undefined): Buffer;
  /** True when the CONNACK's Authentication Data completes the exchange. */
  verify(data: Buffer | undefined): boolean;
}

/** A server that failed to prove itself, or a challenge that did not parse. */
export class AuthenticationError extends MqttError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ReasonCode.NotAuthorized, message, options);
  }
}

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/** The exchange for `method` with these credentials. */
export function authExchange(method: string, username: string | undefined, password: Buffer | string | undefined): AuthExchange {
  if (method !== SCRAM_SHA_256) throw new RangeError(`authentication method ${method} is not built in (SCRAM-SHA-256 is)`);
  if (username === undefined || password === undefined) throw new RangeError('SCRAM-SHA-256 needs a username and a password');
  const scram = new ScramClient(username, typeof password === 'string' ? password : password.toString('utf8'));
  return {
    first: () => scram.firstMessage(),
    challenge(data) {
      if (data === undefined) throw new AuthenticationError('AUTH 0x18 without Authentication Data');
      try {
        return scram.finalMessage(data);
      } catch (err) {
        throw new AuthenticationError('malformed SCRAM challenge', { cause: err });
      }
    },
    verify: (data) => data !== undefined && scram.verifyServerFinal(data),
  };
}
