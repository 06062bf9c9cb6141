import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK } from 'jose';
import type { JWK, JWTPayload } from 'jose';
import { JwtAuthError, createJwtAuth, matchesAny } from '../../../src/auth/jwt.js';
import type { JwtAuthOptions } from '../../../src/auth/jwt.js';
import { filterMatches } from '../../../src/auth/acl.js';
import { matches } from '../../../src/protocol/topic.js';
import { Rng } from '../../helpers/codec-prng.js';

const SECRET = 'a-long-enough-shared-secret-for-hs256!';
const NOW = 1_700_000_000_000; // ms; the injected clock
const now = (): number => NOW;
const SEC = NOW / 1000;

async function hs256(claims: JWTPayload, secret = SECRET, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret));
}

async function signed(claims: JWTPayload, key: KeyObject, alg: string, kid?: string): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(kid === undefined ? { alg } : { alg, kid }).sign(key);
}

async function refusal(promise: Promise<unknown>): Promise<JwtAuthError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof JwtAuthError, `expected a JwtAuthError, got ${String(error)}`);
    return error;
  }
  assert.fail('the token was accepted');
}

const hsAuth = (options: Partial<JwtAuthOptions> = {}) => createJwtAuth({ secret: SECRET, now, ...options });

void describe('createJwtAuth options', () => {
  it('needs exactly one key source', () => {
    assert.throws(() => createJwtAuth({}), (e: Error) => e instanceof TypeError && /secret.*publicKey.*jwksUrl/.test(e.message));
    assert.throws(() => createJwtAuth({ secret: 's', jwksUrl: 'http://127.0.0.1/jwks' }), (e: Error) => e instanceof TypeError && /got secret, jwksUrl/.test(e.message));
  });

  it('names the bad option', () => {
    const cases: [JwtAuthOptions, string][] = [
      [{ secret: '' }, 'secret'],
      [{ publicKey: 'not a key' }, 'publicKey'],
      [{ publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }, 'publicKey'],
      [{ jwksUrl: 'ftp://127.0.0.1/keys' }, 'jwksUrl'],
      [{ jwksUrl: 'not a url' }, 'jwksUrl'],
      [{ jwksUrl: 'http://127.0.0.1/keys', jwksTimeout: 0 }, 'jwksTimeout'],
      [{ jwksUrl: 'http://127.0.0.1/keys', jwksCooldown: -1 }, 'jwksCooldown'],
      [{ secret: 's', algorithms: [] }, 'algorithms'],
      [{ secret: 's', algorithms: ['RS256'] }, 'algorithms'],
      [{ secret: 's', clockTolerance: Number.NaN }, 'clockTolerance'],
      [{ secret: 's', usernameClaim: '' }, 'usernameClaim'],
      [{ secret: 's', issuer: '' }, 'issuer'],
    ];
    for (const [options, name] of cases) {
      assert.throws(() => createJwtAuth(options), (e: Error) => e instanceof TypeError && e.message.includes(`"${name}"`), name);
    }
  });

  it('refuses HMAC algorithms for a public key or a JWKS', () => {
    const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    assert.throws(() => createJwtAuth({ publicKey: pem, algorithms: ['HS256'] }), (e: Error) => e instanceof TypeError && e.message.includes('"algorithms"'));
    assert.throws(() => createJwtAuth({ jwksUrl: 'http://127.0.0.1/k', algorithms: ['HS256'] }), (e: Error) => e instanceof TypeError && e.message.includes('"algorithms"'));
  });
});

void describe('JWT with a shared secret (HS256)', () => {
  it('accepts a good token and reports username, expiry and claims', async () => {
    const identity = await hsAuth().verify(await hs256({ sub: 'alice', exp: SEC + 60, role: 'x' }));
    assert.equal(identity.username, 'alice');
    assert.equal(identity.expiresAt, (SEC + 60) * 1000);
    assert.equal(identity.acl, undefined);
    assert.equal(identity.claims['role'], 'x');
  });

  it('a token without sub or exp has neither', async () => {
    const identity = await hsAuth().verify(await hs256({ other: 1 }));
    assert.equal(identity.username, undefined);
    assert.equal(identity.expiresAt, undefined);
  });

  it('refuses a bad signature, garbage and an empty token as invalid', async () => {
    const auth = hsAuth();
    assert.equal((await refusal(auth.verify(await hs256({ sub: 'a' }, 'another-secret-entirely')))).reason, 'invalid');
    const good = await hs256({ sub: 'a' });
    const tampered = good.slice(0, good.lastIndexOf('.') + 1) + 'AAAA' + good.slice(good.lastIndexOf('.') + 5);
    assert.equal((await refusal(auth.verify(tampered))).reason, 'invalid');
    assert.equal((await refusal(auth.verify('not.a.jwt'))).reason, 'invalid');
    assert.equal((await refusal(auth.verify(''))).reason, 'invalid');
  });

  it('refuses an expired token as expired, beyond the clock tolerance only', async () => {
    const auth = hsAuth();
    const expired = await refusal(auth.verify(await hs256({ sub: 'a', exp: SEC - 31 })));
    assert.equal(expired.reason, 'expired');
    await auth.verify(await hs256({ sub: 'a', exp: SEC - 29 })); // within the default 30 s
    assert.equal((await refusal(hsAuth({ clockTolerance: 0 }).verify(await hs256({ sub: 'a', exp: SEC - 1 })))).reason, 'expired');
  });

  it('refuses a token not yet valid (nbf) as invalid', async () => {
    const auth = hsAuth({ clockTolerance: 0 });
    assert.equal((await refusal(auth.verify(await hs256({ sub: 'a', nbf: SEC + 10 })))).reason, 'invalid');
    await auth.verify(await hs256({ sub: 'a', nbf: SEC - 10 }));
  });

  it('uses the injected clock', async () => {
    const token = await hs256({ sub: 'a', exp: SEC + 100 });
    await hsAuth({ clockTolerance: 0 }).verify(token);
    assert.equal((await refusal(hsAuth({ clockTolerance: 0, now: () => NOW + 101_000 }).verify(token))).reason, 'expired');
  });

  it('checks issuer and audience', async () => {
    const auth = hsAuth({ issuer: 'https://issuer.example', audience: 'petrel' });
    await auth.verify(await hs256({ sub: 'a', iss: 'https://issuer.example', aud: ['other', 'petrel'] }));
    assert.equal((await refusal(auth.verify(await hs256({ sub: 'a', iss: 'https://evil.example', aud: 'petrel' })))).reason, 'invalid');
    assert.equal((await refusal(auth.verify(await hs256({ sub: 'a', iss: 'https://issuer.example', aud: 'other' })))).reason, 'invalid');
    assert.equal((await refusal(auth.verify(await hs256({ sub: 'a' })))).reason, 'invalid');
  });

  it('only the configured algorithms: an HS512 token is refused when HS256 is expected', async () => {
    assert.equal((await refusal(hsAuth().verify(await hs256({ sub: 'a' }, SECRET, 'HS512')))).reason, 'invalid');
    await hsAuth({ algorithms: ['HS512'] }).verify(await hs256({ sub: 'a' }, SECRET, 'HS512'));
  });

  it('reads the username and ACL from custom claim names', async () => {
    const auth = hsAuth({ usernameClaim: 'preferred_username', aclClaim: 'mqtt' });
    const identity = await auth.verify(await hs256({ sub: 'id-1', preferred_username: 'bob', mqtt: { pub: ['a/#'] }, acl: 'ignored' }));
    assert.equal(identity.username, 'bob');
    assert.deepEqual(identity.acl, { publish: ['a/#'], subscribe: [] });
  });

  it('refuses a username claim that is not a string', async () => {
    assert.equal((await refusal(hsAuth().verify(await hs256({ sub: 42 as unknown as string })))).reason, 'invalid');
  });

  it('parses the ACL claim', async () => {
    const identity = await hsAuth().verify(await hs256({ sub: 'a', acl: { pub: ['devices/a/+', 'x'], sub: ['cmd/a/#'] } }));
    assert.deepEqual(identity.acl, { publish: ['devices/a/+', 'x'], subscribe: ['cmd/a/#'] });
    assert.deepEqual((await hsAuth().verify(await hs256({ acl: {} }))).acl, { publish: [], subscribe: [] });
  });

  it('refuses a malformed ACL claim rather than ignoring it', async () => {
    const bad: unknown[] = [
      'a/#', ['a/#'], null, { pub: 'a/#' }, { sub: [1] }, { pub: ['a/#/b'] }, { sub: ['a+'] }, { pub: [''] },
      { pub: Array.from({ length: 1025 }, () => 'a') },
    ];
    for (const acl of bad) {
      const error = await refusal(hsAuth().verify(await hs256({ sub: 'a', acl } as JWTPayload)));
      assert.equal(error.reason, 'invalid', JSON.stringify(acl));
    }
  });

  it('error messages do not carry the token', async () => {
    const token = await hs256({ sub: 'a', exp: SEC - 100 });
    const error = await refusal(hsAuth().verify(token));
    assert.ok(!error.message.includes(token.split('.')[2] as string));
  });
});

void describe('JWT with a public key', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const ecPem = ec.publicKey.export({ type: 'spki', format: 'pem' }) as string;

  it('RS256', async () => {
    const auth = createJwtAuth({ publicKey: rsaPem, now });
    assert.equal((await auth.verify(await signed({ sub: 'r' }, rsa.privateKey, 'RS256'))).username, 'r');
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    assert.equal((await refusal(auth.verify(await signed({ sub: 'r' }, other.privateKey, 'RS256')))).reason, 'invalid');
  });

  it('ES256', async () => {
    const auth = createJwtAuth({ publicKey: ecPem, now });
    assert.equal((await auth.verify(await signed({ sub: 'e' }, ec.privateKey, 'ES256'))).username, 'e');
    // The EC key cannot verify an RS256 token; the RSA key is not configured.
    assert.equal((await refusal(auth.verify(await signed({ sub: 'e' }, rsa.privateKey, 'RS256')))).reason, 'invalid');
  });

  it('refuses an HS256 token signed with the public key text as secret (algorithm confusion)', async () => {
    for (const pem of [rsaPem, ecPem]) {
      const forged = await hs256({ sub: 'admin' }, pem);
      assert.equal((await refusal(createJwtAuth({ publicKey: pem, now }).verify(forged))).reason, 'invalid');
    }
  });

  it('refuses an unsigned token (alg none)', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
    const body = Buffer.from(JSON.stringify({ sub: 'admin' })).toString('base64url');
    assert.equal((await refusal(createJwtAuth({ publicKey: rsaPem, now }).verify(`${header}.${body}.`))).reason, 'invalid');
    assert.equal((await refusal(hsAuth().verify(`${header}.${body}.`))).reason, 'invalid');
  });
});

interface JwksServer {
  url: string;
  fetches: number;
  keys: JWK[];
  mode: 'ok' | 'error' | 'hang';
  close(): Promise<void>;
}

async function startJwks(): Promise<JwksServer> {
  const hanging = new Set<ServerResponse>();
  const state: JwksServer = { url: '', fetches: 0, keys: [], mode: 'ok', close: async () => undefined };
  const server: Server = createServer((req, res) => {
    state.fetches++;
    if (state.mode === 'hang') {
      hanging.add(res);
      return;
    }
    if (state.mode === 'error') {
      res.writeHead(500).end('oops');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  state.close = () => new Promise<void>((resolve) => {
    for (const res of hanging) res.destroy();
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return state;
}

async function publicJwk(key: KeyObject, kid: string, alg: string): Promise<JWK> {
  return { ...(await exportJWK(key)), kid, alg, use: 'sig' };
}

void describe('JWT with a JWKS URL', () => {
  let jwks: JwksServer;
  const a = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const b = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  before(async () => {
    jwks = await startJwks();
  });
  after(() => jwks.close());

  it('fetches the keys once and verifies with the matching kid', async () => {
    jwks.keys = [await publicJwk(a.publicKey, 'a', 'RS256')];
    jwks.mode = 'ok';
    jwks.fetches = 0;
    const auth = createJwtAuth({ jwksUrl: jwks.url, now });
    assert.equal((await auth.verify(await signed({ sub: 'j1' }, a.privateKey, 'RS256', 'a'))).username, 'j1');
    assert.equal((await auth.verify(await signed({ sub: 'j2' }, a.privateKey, 'RS256', 'a'))).username, 'j2');
    assert.equal(jwks.fetches, 1);
    // A key the set does not hold, within the cooldown: refused without another fetch.
    assert.equal((await refusal(auth.verify(await signed({ sub: 'x' }, b.privateKey, 'ES256', 'b')))).reason, 'invalid');
    assert.equal(jwks.fetches, 1);
  });

  it('follows a key rotation once the cooldown has passed', async () => {
    jwks.keys = [await publicJwk(a.publicKey, 'a', 'RS256')];
    jwks.mode = 'ok';
    jwks.fetches = 0;
    const auth = createJwtAuth({ jwksUrl: jwks.url, jwksCooldown: 0, now });
    await auth.verify(await signed({ sub: 'old' }, a.privateKey, 'RS256', 'a'));
    jwks.keys = [await publicJwk(b.publicKey, 'b', 'ES256')];
    assert.equal((await auth.verify(await signed({ sub: 'new' }, b.privateKey, 'ES256', 'b'))).username, 'new');
    assert.equal(jwks.fetches, 2);
    // The old key is gone from the set: its tokens are refused after the next fetch.
    assert.equal((await refusal(auth.verify(await signed({ sub: 'old' }, a.privateKey, 'RS256', 'a')))).reason, 'invalid');
  });

  it('refuses an HS256 token whatever the JWKS holds (algorithm confusion)', async () => {
    jwks.keys = [await publicJwk(a.publicKey, 'a', 'RS256')];
    jwks.mode = 'ok';
    const pem = a.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const forged = await new SignJWT({ sub: 'admin' }).setProtectedHeader({ alg: 'HS256', kid: 'a' }).sign(new TextEncoder().encode(pem));
    assert.equal((await refusal(createJwtAuth({ jwksUrl: jwks.url, now }).verify(forged))).reason, 'invalid');
  });

  it('the JWKS answering 500 is unavailable', async () => {
    jwks.mode = 'error';
    const error = await refusal(createJwtAuth({ jwksUrl: jwks.url, now }).verify(await signed({ sub: 'a' }, a.privateKey, 'RS256', 'a')));
    assert.equal(error.reason, 'unavailable');
  });

  it('the JWKS answering garbage is unavailable', async () => {
    jwks.mode = 'ok';
    jwks.keys = 'not keys' as unknown as JWK[];
    const error = await refusal(createJwtAuth({ jwksUrl: jwks.url, now }).verify(await signed({ sub: 'a' }, a.privateKey, 'RS256', 'a')));
    assert.equal(error.reason, 'unavailable');
  });

  it('the JWKS not answering in time is unavailable', async () => {
    jwks.mode = 'hang';
    const error = await refusal(createJwtAuth({ jwksUrl: jwks.url, jwksTimeout: 100, now }).verify(await signed({ sub: 'a' }, a.privateKey, 'RS256', 'a')));
    assert.equal(error.reason, 'unavailable');
  });

  it('the JWKS server being down is unavailable', async () => {
    const down = await startJwks();
    const url = down.url;
    await down.close();
    const error = await refusal(createJwtAuth({ jwksUrl: url, now }).verify(await signed({ sub: 'a' }, a.privateKey, 'RS256', 'a')));
    assert.equal(error.reason, 'unavailable');
  });
});

void describe('matchesAny', () => {
  it('applies the MQTT wildcard rules [MQTT-4.7.1-2] [MQTT-4.7.1-3]', () => {
    const yes: [string, string][] = [
      ['a/b', 'a/b'], ['a/+', 'a/b'], ['+/b', 'a/b'], ['a/#', 'a/b/c'], ['a/#', 'a'], ['#', 'a/b'], ['+', ''], ['a/+', 'a/'],
      ['+/+', '/'], ['a//b', 'a//b'], ['+/#', 'a'],
    ];
    const no: [string, string][] = [
      ['a/b', 'a/c'], ['a/+', 'a/b/c'], ['a/+', 'a'], ['a', 'a/b'], ['a/b', 'a'], ['+', 'a/b'], ['ab', 'a'], ['a', 'ab'],
    ];
    for (const [f, t] of yes) assert.equal(matchesAny([f], t), true, `${f} ~ ${t}`);
    for (const [f, t] of no) assert.equal(matchesAny([f], t), false, `${f} !~ ${t}`);
    assert.equal(matchesAny(['x/y', 'a/#'], 'a/b'), true);
    assert.equal(matchesAny([], 'a'), false);
  });

  it('$-topics are not matched by a leading wildcard [MQTT-4.7.2-1]', () => {
    assert.equal(matchesAny(['#'], '$SYS/broker'), false);
    assert.equal(matchesAny(['+/broker'], '$SYS/broker'), false);
    assert.equal(matchesAny(['$SYS/#'], '$SYS/broker'), true);
    assert.equal(matchesAny(['$SYS/+'], '$SYS/broker'), true);
  });

  it('gives the same answers as the reference matcher on random filters and topics', () => {
    const rng = new Rng(0x5eed);
    const levels = ['a', 'b', '', '$x', 'ab', 'a+', '#b'];
    const pick = (): string => rng.pick(levels);
    for (let i = 0; i < 5000; i++) {
      const topic = Array.from({ length: rng.int(1, 4) }, pick).join('/');
      const filter = Array.from({ length: rng.int(1, 4) }, () => (rng.chance(0.25) ? '+' : pick())).join('/') + (rng.chance(0.25) ? '/#' : '');
      assert.equal(filterMatches(filter, topic), matches(filter, topic), `${filter} vs ${topic}`);
    }
  });
});
