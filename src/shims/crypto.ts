/**
 * What the browser build of `petrel/client` has of `node:crypto` (scripts/build-browser.mjs puts
 * it in place of the Node module; Node itself never loads this file): random bytes from the Web
 * Crypto API. SCRAM-SHA-256 needs synchronous hashing, which browsers do not offer, so its
 * functions throw: a client there authenticates with a username and password, or a token.
 */
import { Buffer } from './buffer.js';

const MAX_CHUNK = 65_536; // getRandomValues fills at most 64 KiB per call

export function randomBytes(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += MAX_CHUNK) globalThis.crypto.getRandomValues(out.subarray(i, Math.min(size, i + MAX_CHUNK)));
  return out;
}

function unavailable(name: string): never {
  throw new Error(`${name} is not available in the browser build of petrel/client (SCRAM-SHA-256 needs node:crypto)`);
}

export function createHash(): never {
  return unavailable('createHash');
}

export function createHmac(): never {
  return unavailable('createHmac');
}

export function pbkdf2Sync(): never {
  return unavailable('pbkdf2Sync');
}

export function timingSafeEqual(): never {
  return unavailable('timingSafeEqual');
}
