import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpAuth } from '../../../src/auth/http-auth.js';
import type { HttpAuthOptions, HttpAuthenticateRequest } from '../../../src/auth/http-auth.js';

interface Seen {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

type Reply = (seen: Seen, res: ServerResponse) => void;

/** A service on 127.0.0.1 whose answer each test sets; it records every request. */
class Service {
  server: Server = createServer((req, res) => this.#handle(req, res));
  seen: Seen[] = [];
  reply: Reply = (_seen, res) => json(res, 200, { allow: true });
  readonly #hanging = new Set<ServerResponse>();
  base = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Holds the response open: the client's timeout is the only way out. */
  hang(res: ServerResponse): void {
    this.#hanging.add(res);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const seen: Seen = { path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> };
      this.seen.push(seen);
      this.reply(seen, res);
    });
  }

  close(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

const request = (over: Partial<HttpAuthenticateRequest> = {}): HttpAuthenticateRequest => ({
  clientId: 'c1', username: 'alice', password: Buffer.from('s3cr3t-pa55'), remoteAddress: '10.0.0.1', listener: 'tcp', protocolVersion: 5, ...over,
});

const publish = { clientId: 'c1', username: 'alice', action: 'publish' as const, topic: 'a/b', qos: 1, retain: false };

void describe('HTTP auth webhook', () => {
  const service = new Service();
  let clock = 0;
  const make = (over: Partial<HttpAuthOptions> = {}) => createHttpAuth({ url: `${service.base}/auth`, authorizeUrl: `${service.base}/acl`, cacheTtl: 0, now: () => clock, ...over });

  before(() => service.start());
  after(() => service.close());
  beforeEach(() => {
    service.seen = [];
    service.reply = (_seen, res) => json(res, 200, { allow: true });
    clock = 0;
  });

  it('validates its options eagerly, naming the option', () => {
    const cases: [Partial<HttpAuthOptions>, string][] = [
      [{ url: 'not a url' }, 'url'], [{ url: 'ftp://127.0.0.1/x' }, 'url'], [{ authorizeUrl: 'nope' }, 'authorizeUrl'],
      [{ timeout: 0 }, 'timeout'], [{ cacheTtl: -1 }, 'cacheTtl'], [{ cacheMaxEntries: 0 }, 'cacheMaxEntries'],
      [{ onError: 'maybe' as 'allow' }, 'onError'], [{ headers: { x: 1 as unknown as string } }, 'headers'],
    ];
    for (const [over, name] of cases) {
      assert.throws(() => make(over), (e: Error) => e instanceof TypeError && e.message.includes(`"${name}"`), name);
    }
  });

  it('posts the CONNECT fields, password in base64, and allows', async () => {
    const auth = make({ headers: { Authorization: 'Bearer service-token' } });
    const result = await auth.authenticate(request());
    assert.deepEqual(result, { allow: true, reasonCode: undefined, username: undefined, acl: undefined, failed: false });
    assert.equal(service.seen.length, 1);
    const [seen] = service.seen;
    assert.equal(seen?.path, '/auth');
    assert.equal(seen?.headers['content-type'], 'application/json');
    assert.equal(seen?.headers['authorization'], 'Bearer service-token');
    assert.deepEqual(seen?.body, { clientId: 'c1', username: 'alice', password: Buffer.from('s3cr3t-pa55').toString('base64'), remoteAddress: '10.0.0.1', listener: 'tcp', protocolVersion: 5 });
  });

  it('sends null for an absent username, password, address and listener', async () => {
    await make().authenticate(request({ username: undefined, password: undefined, remoteAddress: undefined, listener: undefined }));
    assert.deepEqual(service.seen[0]?.body, { clientId: 'c1', username: null, password: null, remoteAddress: null, listener: null, protocolVersion: 5 });
  });

  it('denies, passing the reason code through', async () => {
    service.reply = (_seen, res) => json(res, 200, { allow: false });
    assert.deepEqual(await make().authenticate(request()), { allow: false, reasonCode: undefined, username: undefined, acl: undefined, failed: false });
    service.reply = (_seen, res) => json(res, 200, { allow: false, reasonCode: 0x86 });
    assert.equal((await make().authenticate(request())).reasonCode, 0x86);
  });

  it('takes the username and ACL the service assigns', async () => {
    service.reply = (_seen, res) => json(res, 200, { allow: true, username: 'alice@tenant', acl: { pub: ['t/alice/#'], sub: ['t/+/news'] } });
    const result = await make().authenticate(request());
    assert.equal(result.username, 'alice@tenant');
    assert.deepEqual(result.acl, { publish: ['t/alice/#'], subscribe: ['t/+/news'] });
  });

  it('any answer outside 2xx is a deny, not an error', async () => {
    for (const status of [301, 401, 403, 404, 500, 503]) {
      service.reply = (_seen, res) => json(res, status, { allow: true });
      const result = await make({ onError: 'allow' }).authenticate(request());
      assert.equal(result.allow, false, String(status));
      assert.equal(result.failed, false, String(status));
    }
  });

  it('garbage in a 2xx answer is an error: onError decides', async () => {
    const garbage: Reply[] = [
      (_s, res) => res.writeHead(200).end('not json {'),
      (_s, res) => json(res, 200, 'allow'),
      (_s, res) => json(res, 200, { allow: 'yes' }),
      (_s, res) => json(res, 200, { allow: false, reasonCode: 0x00 }),
      (_s, res) => json(res, 200, { allow: false, reasonCode: 300 }),
      (_s, res) => json(res, 200, { allow: true, username: 7 }),
      (_s, res) => json(res, 200, { allow: true, acl: { pub: ['a/#/b'] } }),
      (_s, res) => json(res, 200, { allow: true, pad: 'x'.repeat(70 * 1024) }),
    ];
    for (const [i, reply] of garbage.entries()) {
      service.reply = reply;
      const denied = await make().authenticate(request());
      assert.deepEqual(denied, { allow: false, reasonCode: undefined, username: undefined, acl: undefined, failed: true }, `garbage ${i}`);
      const allowed = await make({ onError: 'allow' }).authenticate(request());
      assert.deepEqual(allowed, { allow: true, reasonCode: undefined, username: undefined, acl: undefined, failed: true }, `garbage ${i}`);
    }
  });

  it('a service that is down: onError deny (the default) or allow', async () => {
    const down = new Service();
    await down.start();
    const base = down.base;
    await down.close();
    const url = `${base}/auth`;
    assert.deepEqual(await createHttpAuth({ url }).authenticate(request()), { allow: false, reasonCode: undefined, username: undefined, acl: undefined, failed: true });
    assert.equal((await createHttpAuth({ url, onError: 'allow' }).authenticate(request())).allow, true);
    const authorize = createHttpAuth({ url, authorizeUrl: url, onError: 'allow' }).authorize;
    assert.equal(await authorize?.(publish), true);
    assert.equal(await createHttpAuth({ url, authorizeUrl: url }).authorize?.(publish), false);
  });

  it('a service that never answers times out: onError decides', async () => {
    service.reply = (_seen, res) => service.hang(res);
    const denied = await make({ timeout: 100 }).authenticate(request());
    assert.deepEqual(denied, { allow: false, reasonCode: undefined, username: undefined, acl: undefined, failed: true });
    assert.equal((await make({ timeout: 100, onError: 'allow' }).authenticate(request())).allow, true);
    assert.equal(await make({ timeout: 100 }).authorize?.(publish), false);
  });

  it('close() aborts a request in flight', async () => {
    service.reply = (_seen, res) => service.hang(res);
    const auth = make();
    const pending = auth.authenticate(request());
    // Wait until the service has the request, then close.
    for (let i = 0; i < 200 && service.seen.length === 0; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(service.seen.length, 1);
    auth.close();
    assert.equal((await pending).failed, true);
  });

  it('the password appears in no result', async () => {
    const pw = 's3cr3t-pa55';
    const replies: Reply[] = [(_s, res) => json(res, 200, { allow: true }), (_s, res) => res.writeHead(200).end(pw)];
    for (const reply of replies) {
      service.reply = reply;
      const result = await make({ cacheTtl: 60 }).authenticate(request());
      const text = JSON.stringify(result);
      assert.ok(!text.includes(pw) && !text.includes(Buffer.from(pw).toString('base64')));
    }
  });

  it('authorize posts the action and returns the answer', async () => {
    service.reply = (seen, res) => json(res, 200, { allow: seen.body['topic'] === 'a/b' });
    const auth = make();
    assert.equal(await auth.authorize?.(publish), true);
    assert.equal(await auth.authorize?.({ ...publish, action: 'subscribe', topic: 'x/#' }), false);
    assert.equal(service.seen[0]?.path, '/acl');
    assert.deepEqual(service.seen[0]?.body, { clientId: 'c1', username: 'alice', action: 'publish', topic: 'a/b', qos: 1, retain: false });
    assert.deepEqual(service.seen[1]?.body, { clientId: 'c1', username: 'alice', action: 'subscribe', topic: 'x/#', qos: 1, retain: false });
  });

  it('authorize: non-2xx denies, garbage follows onError', async () => {
    service.reply = (_seen, res) => json(res, 403, { allow: true });
    assert.equal(await make({ onError: 'allow' }).authorize?.(publish), false);
    service.reply = (_seen, res) => json(res, 200, { result: 'allow' });
    assert.equal(await make({ onError: 'allow' }).authorize?.(publish), true);
    assert.equal(await make({ onError: 'deny' }).authorize?.(publish), false);
  });

  it('authorize is not offered without authorizeUrl', () => {
    assert.equal(createHttpAuth({ url: `${service.base}/auth` }).authorize, undefined);
  });

  it('caches answers for cacheTtl seconds on the injected clock', async () => {
    let n = 0;
    service.reply = (seen, res) => json(res, 200, seen.path === '/acl' ? { allow: true } : { allow: true, username: `u${++n}` });
    const auth = make({ cacheTtl: 60 });
    assert.equal((await auth.authenticate(request())).username, 'u1');
    clock = 59_999;
    assert.equal((await auth.authenticate(request())).username, 'u1');
    assert.equal(service.seen.length, 1);
    // Another password, client or listener is another question.
    await auth.authenticate(request({ password: Buffer.from('other') }));
    await auth.authenticate(request({ clientId: 'c2' }));
    await auth.authenticate(request({ listener: 'ws' }));
    assert.equal(service.seen.length, 4);
    clock = 60_000;
    assert.equal((await auth.authenticate(request())).username, 'u5');
    assert.equal(service.seen.length, 5);

    assert.equal(await auth.authorize?.(publish), true);
    assert.equal(await auth.authorize?.(publish), true);
    assert.equal(service.seen.length, 6);
    await auth.authorize?.({ ...publish, topic: 'a/c' });
    assert.equal(service.seen.length, 7);
    clock = 120_000;
    await auth.authorize?.(publish);
    assert.equal(service.seen.length, 8);
  });

  it('caches denies, but neither errors nor non-2xx answers', async () => {
    service.reply = (_seen, res) => json(res, 200, { allow: false, reasonCode: 0x87 });
    const auth = make({ cacheTtl: 60 });
    await auth.authenticate(request());
    assert.deepEqual(await auth.authenticate(request()), { allow: false, reasonCode: 0x87, username: undefined, acl: undefined, failed: false });
    assert.equal(service.seen.length, 1);
    service.reply = (_seen, res) => res.writeHead(200).end('garbage');
    const other = request({ clientId: 'c2' });
    await auth.authenticate(other);
    service.reply = (_seen, res) => json(res, 500, {});
    await auth.authenticate(other);
    service.reply = (_seen, res) => json(res, 200, { allow: true });
    assert.equal((await auth.authenticate(other)).allow, true);
    assert.equal(service.seen.length, 4);
  });

  it('cacheTtl 0 asks every time', async () => {
    const auth = make({ cacheTtl: 0 });
    for (let i = 0; i < 3; i++) await auth.authenticate(request());
    assert.equal(service.seen.length, 3);
  });

  it('the cache holds at most cacheMaxEntries, the oldest evicted', async () => {
    const auth = make({ cacheTtl: 60, cacheMaxEntries: 2 });
    for (const id of ['a', 'b', 'c']) await auth.authenticate(request({ clientId: id }));
    assert.equal(service.seen.length, 3);
    await auth.authenticate(request({ clientId: 'c' })); // cached
    await auth.authenticate(request({ clientId: 'b' })); // cached
    assert.equal(service.seen.length, 3);
    await auth.authenticate(request({ clientId: 'a' })); // evicted: asked again
    assert.equal(service.seen.length, 4);
  });

  it('a cached ACL cannot be changed through a result', async () => {
    service.reply = (_seen, res) => json(res, 200, { allow: true, acl: { pub: ['a'] } });
    const auth = make({ cacheTtl: 60 });
    (await auth.authenticate(request())).acl?.publish.push('#');
    assert.deepEqual((await auth.authenticate(request())).acl, { publish: ['a'], subscribe: [] });
  });
});
