/**
 * Authentication (and optionally authorization) by an HTTP service: the broker POSTs what the
 * client presented and the service answers allow or deny.
 *
 * The protocol, in full:
 * - Authenticate: `POST url` with JSON `{ clientId, username, password, remoteAddress, listener,
 *   protocolVersion }`; `password` is base64 (the CONNECT password is binary) or null; absent
 *   strings are null. A 2xx answer must be JSON `{ allow: boolean, reasonCode?: number,
 *   username?: string, acl?: { pub?: string[], sub?: string[] } }`: `reasonCode` (0x80-0xFF) is
 *   the CONNACK reason code for a deny, `username` replaces the client's, `acl` lists the topic
 *   filters the client may publish and subscribe to. Only `allow` is read as the decision; no
 *   other answer shape is accepted.
 * - Authorize (only when `authorizeUrl` is set): `POST authorizeUrl` with JSON `{ clientId,
 *   username, action: 'publish' | 'subscribe', topic, qos, retain }`; a 2xx answer must be JSON
 *   `{ allow: boolean }`.
 * - Any answer outside 2xx (redirects are not followed) is a deny. A service that cannot be
 *   reached, does not answer within `timeout`, or answers 2xx with anything but the shape above
 *   is an error: the `onError` policy decides (default deny) and the result says `failed`.
 *
 * Invariants:
 * - The password goes only into the request body: never into a cache key (a SHA-256 digest of the
 *   whole request is the key), a log, an error or a result.
 * - Answers (allow and deny) from a 2xx are cached for `cacheTtl` seconds, keyed by the whole
 *   request, so a cached answer is one the service gave to the same question; errors and non-2xx
 *   denies are not cached. The cache holds at most `cacheMaxEntries` per kind, oldest evicted.
 * - Every request is bounded: `timeout` covers the answer's body too, and a body past 64 KiB is
 *   an error. `close()` aborts what is in flight and empties the cache.
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { parseAcl } from './acl.js';
import type { TopicAcl } from './acl.js';

export interface HttpAuthOptions {
  /** Authentication endpoint (http or https); see the module comment for the protocol. */
  url: string;
  /** Authorization endpoint; when not set, `authorize` is not offered. */
  authorizeUrl?: string;
  /** Milliseconds a request (answer included) may take; default 2000. */
  timeout?: number;
  /** Seconds answers are cached; default 60; 0: no cache. */
  cacheTtl?: number;
  /** Answers cached at most, per kind (authenticate, authorize); default 10,000, oldest evicted. */
  cacheMaxEntries?: number;
  /** When the service is down, times out or answers garbage; default 'deny'. */
  onError?: 'allow' | 'deny';
  /** Extra request headers (an Authorization header for the service, say). */
  headers?: Record<string, string>;
  /** Injected clock (ms) for the cache TTL. */
  now?: () => number;
}

export interface HttpAuthenticateRequest {
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  remoteAddress: string | undefined;
  listener: string | undefined;
  protocolVersion: number;
}

export interface HttpAuthenticateResult {
  allow: boolean;
  /** The service's CONNACK reason code for a deny, when it gave one. */
  reasonCode: number | undefined;
  /** The username the service assigned, when it gave one. */
  username: string | undefined;
  acl: TopicAcl | undefined;
  /** True when the service could not answer and `onError` decided. */
  failed: boolean;
}

export interface HttpAuthorizeRequest {
  clientId: string;
  username: string | undefined;
  action: 'publish' | 'subscribe';
  topic: string;
  qos: number;
  retain: boolean;
}

export interface HttpAuth {
  authenticate(req: HttpAuthenticateRequest): Promise<HttpAuthenticateResult>;
  /** Present only when `authorizeUrl` is set. Resolves false on deny (and on error under onError 'deny'). */
  authorize?: (req: HttpAuthorizeRequest) => Promise<boolean>;
  /** Aborts requests in flight (they resolve by the onError policy) and empties the cache. */
  close(): void;
}

/** Largest answer body read from the service. */
export const MAX_ANSWER_BYTES = 64 * 1024;

function optionError(option: string, message: string): TypeError {
  return new TypeError(`HTTP auth option "${option}" ${message}`);
}

function httpUrl(value: unknown, option: string): string {
  let url: URL;
  try {
    url = new URL(String(value));
  } catch (cause) {
    throw new TypeError(`HTTP auth option "${option}" must be an http or https URL`, { cause });
  }
  if (typeof value !== 'string' || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw optionError(option, 'must be an http or https URL');
  return url.href;
}

/** Answers cached by key until their time is up; insertion order is age order. */
class AnswerCache<V> {
  readonly #entries = new Map<string, { value: V; expires: number }>();
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #now: () => number;

  constructor(ttlMs: number, max: number, now: () => number) {
    this.#ttlMs = ttlMs;
    this.#max = max;
    this.#now = now;
  }

  get enabled(): boolean {
    return this.#ttlMs > 0;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (this.#now() >= entry.expires) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, expires: this.#now() + this.#ttlMs });
    if (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}

class AnswerError extends Error {}

/** Reads at most MAX_ANSWER_BYTES of the body as UTF-8; more is an AnswerError. */
async function readBounded(response: Response): Promise<string> {
  const body = response.body;
  if (body === null) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_ANSWER_BYTES) {
      await reader.cancel();
      throw new AnswerError(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function digest(parts: readonly (string | number | boolean | null)[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64');
}

function readAuthenticateAnswer(value: unknown): HttpAuthenticateResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AnswerError('the answer is not a JSON object');
  const answer = value as Record<string, unknown>;
  const allow = answer['allow'];
  if (typeof allow !== 'boolean') throw new AnswerError('the answer has no boolean "allow"');
  let reasonCode: number | undefined;
  const code = answer['reasonCode'];
  if (code !== undefined) {
    if (typeof code !== 'number' || !Number.isInteger(code) || code < 0 || code > 0xff) throw new AnswerError('"reasonCode" is not a reason code');
    if (!allow) {
      if (code < 0x80) throw new AnswerError('"reasonCode" of a deny must be 0x80 or more');
      reasonCode = code;
    }
  }
  const username = answer['username'];
  if (username !== undefined && (typeof username !== 'string' || username.length === 0)) throw new AnswerError('"username" is not a non-empty string');
  let acl: TopicAcl | undefined;
  if (answer['acl'] !== undefined) {
    const parsed = parseAcl(answer['acl']);
    if (typeof parsed === 'string') throw new AnswerError(`"acl" is malformed: ${parsed}`);
    acl = parsed;
  }
  return { allow, reasonCode, username: allow ? username : undefined, acl: allow ? acl : undefined, failed: false };
}

function readAuthorizeAnswer(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AnswerError('the answer is not a JSON object');
  const allow = (value as Record<string, unknown>)['allow'];
  if (typeof allow !== 'boolean') throw new AnswerError('the answer has no boolean "allow"');
  return allow;
}

/** Creates the client; throws a TypeError naming the first bad option. */
export function createHttpAuth(options: HttpAuthOptions): HttpAuth {
  if (typeof options !== 'object' || options === null) throw new TypeError('HTTP auth options must be an object');
  const url = httpUrl(options.url, 'url');
  const authorizeUrl = options.authorizeUrl === undefined ? undefined : httpUrl(options.authorizeUrl, 'authorizeUrl');
  const timeout = options.timeout ?? 2000;
  if (!Number.isInteger(timeout) || timeout <= 0) throw optionError('timeout', 'must be a positive integer of milliseconds');
  const cacheTtl = options.cacheTtl ?? 60;
  if (typeof cacheTtl !== 'number' || !Number.isFinite(cacheTtl) || cacheTtl < 0) throw optionError('cacheTtl', 'must be a non-negative number of seconds');
  const cacheMaxEntries = options.cacheMaxEntries ?? 10_000;
  if (!Number.isInteger(cacheMaxEntries) || cacheMaxEntries < 1) throw optionError('cacheMaxEntries', 'must be a positive integer');
  const onError = options.onError ?? 'deny';
  if (onError !== 'allow' && onError !== 'deny') throw optionError('onError', "must be 'allow' or 'deny'");
  const now = options.now ?? Date.now;
  if (typeof now !== 'function') throw optionError('now', 'must be a function returning milliseconds');
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (options.headers !== undefined) {
    if (typeof options.headers !== 'object' || options.headers === null) throw optionError('headers', 'must be an object of header names to values');
    for (const [name, value] of Object.entries(options.headers)) {
      if (typeof value !== 'string') throw optionError('headers', `has a non-string value for "${name}"`);
      headers[name.toLowerCase()] = value;
    }
  }

  const authnCache = new AnswerCache<HttpAuthenticateResult>(cacheTtl * 1000, cacheMaxEntries, now);
  const authzCache = new AnswerCache<boolean>(cacheTtl * 1000, cacheMaxEntries, now);
  let closing = new AbortController();

  /** The parsed JSON of a 2xx answer, or undefined for any other status (a deny). */
  async function post(target: string, body: string): Promise<unknown> {
    const signal = AbortSignal.any([AbortSignal.timeout(timeout), closing.signal]);
    const response = await fetch(target, { method: 'POST', headers, body, signal, redirect: 'manual' });
    if (response.status < 200 || response.status > 299) {
      await response.body?.cancel().catch(() => undefined);
      return undefined;
    }
    const text = await readBounded(response);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new AnswerError('the answer is not JSON');
    }
  }

  const failedAuthentication: HttpAuthenticateResult = Object.freeze({
    allow: onError === 'allow', reasonCode: undefined, username: undefined, acl: undefined, failed: true,
  });
  const denied: HttpAuthenticateResult = Object.freeze({ allow: false, reasonCode: undefined, username: undefined, acl: undefined, failed: false });

  async function authenticate(req: HttpAuthenticateRequest): Promise<HttpAuthenticateResult> {
    const password = req.password === undefined ? null : req.password.toString('base64');
    const fields = [req.clientId, req.username ?? null, password, req.remoteAddress ?? null, req.listener ?? null, req.protocolVersion] as const;
    const key = authnCache.enabled ? digest(fields) : '';
    if (authnCache.enabled) {
      const hit = authnCache.get(key);
      if (hit !== undefined) return { ...hit, acl: hit.acl === undefined ? undefined : { publish: [...hit.acl.publish], subscribe: [...hit.acl.subscribe] } };
    }
    const body = JSON.stringify({
      clientId: fields[0], username: fields[1], password: fields[2], remoteAddress: fields[3], listener: fields[4], protocolVersion: fields[5],
    });
    let result: HttpAuthenticateResult;
    try {
      const answer = await post(url, body);
      if (answer === undefined) return { ...denied };
      result = readAuthenticateAnswer(answer);
    } catch {
      // Down, timed out, closed or garbage. The cause is not passed on: nothing here may carry the request.
      return { ...failedAuthentication };
    }
    if (authnCache.enabled) authnCache.set(key, result);
    return { ...result, acl: result.acl === undefined ? undefined : { publish: [...result.acl.publish], subscribe: [...result.acl.subscribe] } };
  }

  async function authorize(req: HttpAuthorizeRequest): Promise<boolean> {
    const fields = [req.clientId, req.username ?? null, req.action, req.topic, req.qos, req.retain] as const;
    const key = authzCache.enabled ? JSON.stringify(fields) : '';
    if (authzCache.enabled) {
      const hit = authzCache.get(key);
      if (hit !== undefined) return hit;
    }
    let allow: boolean;
    try {
      const answer = await post(authorizeUrl as string, JSON.stringify({
        clientId: fields[0], username: fields[1], action: fields[2], topic: fields[3], qos: fields[4], retain: fields[5],
      }));
      if (answer === undefined) return false;
      allow = readAuthorizeAnswer(answer);
    } catch {
      return onError === 'allow';
    }
    if (authzCache.enabled) authzCache.set(key, allow);
    return allow;
  }

  const auth: HttpAuth = {
    authenticate,
    close(): void {
      closing.abort();
      closing = new AbortController();
      authnCache.clear();
      authzCache.clear();
    },
  };
  if (authorizeUrl !== undefined) auth.authorize = authorize;
  return auth;
}
