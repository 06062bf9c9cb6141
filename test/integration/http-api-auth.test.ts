/**
 * Who gets into the HTTP API: every refusal (401 without or with wrong credentials, 403 for the
 * viewer role, 429 after too many failures, with Retry-After from an injected clock), API keys
 * given in clear or as digests, users with Basic auth and login tokens (expiry, logout), and
 * the routes left open (health, ready).
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, type TestContext, test } from 'node:test';
import { hashPassword } from '../../src/auth/password-file.js';
import { ApiAuth, AuthConfigError, createHttpApi, hashApiKey, type AuthOptions, type HttpApi } from '../../src/ops/http/index.js';
import { createBroker } from '../../src/petrel.js';

const ADMIN = 'admin-key-0123456789abcdef';
const VIEWER = 'viewer-key-0123456789abcdef';

/** A clock the test moves (milliseconds). */
class Clock {
  t = 1_000_000;
  readonly now = (): number => this.t;
}

let passwordHash: Promise<string> | undefined;

async function setup(t: TestContext, auth: Partial<AuthOptions> = {}): Promise<{ api: HttpApi; clock: Clock }> {
  const clock = new Clock();
  passwordHash ??= hashPassword('s3cret');
  const broker = createBroker();
  const api = createHttpApi(broker, {
    auth: {
      apiKeys: [ADMIN, { name: 'dash', hash: hashApiKey(VIEWER), role: 'viewer' }],
      users: [{ username: 'ops', password: await passwordHash }, { username: 'watcher', password: await passwordHash, role: 'viewer' }],
      maxFailures: 3, failureWindow: 60, tokenTtl: 600, now: clock.now,
      ...auth,
    },
  });
  t.after(async () => {
    await api.close();
    await broker.close();
  });
  return { api, clock };
}

const bearer = (k: string): Record<string, string> => ({ authorization: `Bearer ${k}` });
const basic = (u: string, p: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });

describe('HTTP API refusals', () => {
  test('401 without credentials, with a WWW-Authenticate challenge, on every route but health, ready and login', async (t) => {
    const { api } = await setup(t);
    const endpoints = (await api.app.inject({ method: 'GET', url: '/api/v1/endpoints', headers: bearer(ADMIN) })).json().data as { method: 'GET' | 'POST'; path: string }[];
    assert.ok(endpoints.length > 20);
    const open = new Set(['/health', '/ready', '/api/v1/login']);
    for (const e of endpoints) {
      const r = await api.app.inject({ method: e.method, url: e.path });
      if (open.has(e.path)) {
        assert.notEqual(r.statusCode, 401, `${e.method} ${e.path} should be open`);
        continue;
      }
      assert.equal(r.statusCode, 401, `${e.method} ${e.path} answered ${r.statusCode} without credentials`);
      assert.equal(r.json().code, 103);
      assert.match(String(r.headers['www-authenticate']), /Bearer/);
    }
    // An unknown path does not tell that it is unknown to someone without credentials.
    assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/nothing' })).statusCode, 401);
  });

  test('401 for a wrong key, an unknown user, a wrong password, a bad scheme or a malformed Basic header', async (t) => {
    const { api } = await setup(t, { maxFailures: 100 });
    for (const headers of [
      bearer('not-the-key-0123456789'), bearer(''), basic('nobody', 's3cret'), basic('ops', 'wrong'), { authorization: 'Digest abc' },
      { authorization: 'Basic !!!' }, { authorization: `Basic ${Buffer.from('no-colon').toString('base64')}` },
    ]) {
      const r = await api.app.inject({ method: 'GET', url: '/api/v1/stats', headers });
      assert.equal(r.statusCode, 401, JSON.stringify(headers));
      assert.equal(r.json().code, 103);
    }
  });

  test('the right key, a digest-configured key, and Basic auth get in', async (t) => {
    const { api } = await setup(t);
    for (const headers of [bearer(ADMIN), bearer(VIEWER), basic('ops', 's3cret'), { authorization: `bearer ${ADMIN}` }]) {
      assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/stats', headers })).statusCode, 200, JSON.stringify(headers));
    }
  });

  test('403 for the viewer role on every POST; it may read', async (t) => {
    const { api } = await setup(t);
    for (const headers of [bearer(VIEWER), basic('watcher', 's3cret')]) {
      const r = await api.app.inject({ method: 'POST', url: '/api/v1/mqtt/publish', headers, payload: { topic: 't', payload: 'x' } });
      assert.equal(r.statusCode, 403);
      assert.equal((await api.app.inject({ method: 'POST', url: '/api/v1/clients/delete?clientId=x', headers })).statusCode, 403);
      assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/clients', headers })).statusCode, 200);
    }
  });

  test('429 with Retry-After after maxFailures from one address, even with the right key; over once the window passes', async (t) => {
    const { api, clock } = await setup(t);
    for (let i = 0; i < 3; i++) assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer(`wrong-${i}-0123456789`) })).statusCode, 401);
    const limited = await api.app.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer(ADMIN) });
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.headers['retry-after'], '60');
    assert.equal(limited.json().error, 'Too Many Requests');
    clock.t += 45_000;
    assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer(ADMIN) })).headers['retry-after'], '15');
    // The login route is limited too.
    assert.equal((await api.app.inject({ method: 'POST', url: '/api/v1/login', payload: { username: 'ops', password: 's3cret' } })).statusCode, 429);
    // Another address is not limited.
    assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer(ADMIN), remoteAddress: '10.0.0.2' })).statusCode, 200);
    clock.t += 15_000;
    assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer(ADMIN) })).statusCode, 200);
  });

  test('missing credentials are not counted as failures (a page loading before login is not an attack)', async (t) => {
    const { api } = await setup(t);
    for (let i = 0; i < 5; i++) assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/stats' })).statusCode, 401);
    assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer(ADMIN) })).statusCode, 200);
  });
});

describe('login tokens', () => {
  test('login returns a token that works as Bearer until logout', async (t) => {
    const { api } = await setup(t);
    const r = await api.app.inject({ method: 'POST', url: '/api/v1/login', payload: { username: 'ops', password: 's3cret' } });
    assert.equal(r.statusCode, 200);
    const { token, role, expiresAt } = r.json().data as { token: string; role: string; expiresAt: number };
    assert.equal(role, 'admin');
    assert.equal(expiresAt, 1_000_000 + 600_000);
    assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/clients', headers: bearer(token) })).statusCode, 200);
    // EventSource cannot send headers: the event stream takes ?access_token= (other routes do not).
    assert.equal((await api.app.inject({ method: 'GET', url: `/api/v1/stats?access_token=${token}` })).statusCode, 401);
    assert.equal((await api.app.inject({ method: 'POST', url: '/api/v1/logout', headers: bearer(token) })).statusCode, 200);
    assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/clients', headers: bearer(token) })).statusCode, 401);
  });

  test('a token expires after tokenTtl (injected clock); a viewer\'s token keeps the viewer role', async (t) => {
    const { api, clock } = await setup(t);
    const login = async (username: string): Promise<string> =>
      ((await api.app.inject({ method: 'POST', url: '/api/v1/login', payload: { username, password: 's3cret' } })).json().data as { token: string }).token;
    const token = await login('ops');
    const viewer = await login('watcher');
    assert.equal((await api.app.inject({ method: 'POST', url: '/api/v1/mqtt/publish', headers: bearer(viewer), payload: { topic: 't', payload: 'x' } })).statusCode, 403);
    clock.t += 599_999;
    assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer(token) })).statusCode, 200);
    clock.t += 1;
    assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer(token) })).statusCode, 401);
  });

  test('a wrong login is 401 (code 103) and counts towards the limit; a bad login body is 400', async (t) => {
    const { api } = await setup(t);
    for (let i = 0; i < 3; i++) {
      const r = await api.app.inject({ method: 'POST', url: '/api/v1/login', payload: { username: 'ops', password: 'nope' } });
      assert.equal(r.statusCode, 401);
      assert.equal(r.json().code, 103);
    }
    assert.equal((await api.app.inject({ method: 'POST', url: '/api/v1/login', payload: { username: 'ops', password: 's3cret' } })).statusCode, 429);
    const { api: fresh } = await setup(t);
    const bad = await fresh.app.inject({ method: 'POST', url: '/api/v1/login', payload: { username: 'ops' } });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().field, 'body.password');
  });
});

describe('auth configuration', () => {
  test('keys and users that cannot be used are refused, naming the entry', () => {
    const field = (o: AuthOptions): string => {
      try {
        new ApiAuth(o);
      } catch (err) {
        assert.ok(err instanceof AuthConfigError);
        return err.field;
      }
      return assert.fail('accepted');
    };
    assert.equal(field({ apiKeys: ['short'] }), 'apiKeys[0]');
    assert.equal(field({ apiKeys: [ADMIN, { hash: 'md5:abc' }] }), 'apiKeys[1].hash');
    assert.equal(field({ apiKeys: [{ key: ADMIN, hash: hashApiKey(ADMIN) }] }), 'apiKeys[0]');
    assert.equal(field({ apiKeys: [{ key: ADMIN, role: 'root' as never }] }), 'apiKeys[0].role');
    assert.equal(field({ users: [{ username: 'u', password: 'plain-text-password' }] }), 'users[0].password');
    assert.equal(field({ users: [{ username: 'a:b', password: '$6$x$y' }] }), 'users[0].username');
  });

  test('with no keys and no users nobody gets in', async (t) => {
    const broker = createBroker();
    const api = createHttpApi(broker);
    t.after(async () => {
      await api.close();
      await broker.close();
    });
    assert.equal(api.auth.empty, true);
    assert.equal((await api.app.inject({ method: 'GET', url: '/api/v1/stats', headers: bearer(ADMIN) })).statusCode, 401);
    assert.equal((await api.app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
  });
});
