import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import type { AuthExchange, AuthStep } from '../../../src/broker/auth-mechanism.js';
import { ScramClient, createScramSha256, scramCredential } from '../../../src/auth/index.js';
import type { ScramCredential, ScramOptions } from '../../../src/auth/index.js';
import { deriveKeys, escapeUsername, hmac, unescapeUsername, xor } from '../../../src/auth/scram-sha-256.js';

// RFC 7677 §3 test vector.
const RFC = {
  user: 'user',
  password: 'pencil',
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

const SALT = Buffer.from('0123456789abcdef');
const ITERATIONS = 64; // keeps the suite fast; the RFC vector covers 4096
const users = new Map<string, ScramCredential>([
  ['alice', scramCredential('secret', { salt: SALT, iterations: ITERATIONS })],
  ['a,b=c', scramCredential('pw', { salt: SALT, iterations: ITERATIONS })],
]);

function start(options: Partial<ScramOptions> = {}): AuthExchange {
  const mechanism = createScramSha256({ lookup: (name) => users.get(name), nonce: () => 'SERVERNONCE', ...options });
  assert.equal(mechanism.method, 'SCRAM-SHA-256');
  return mechanism.start({ clientId: 'c1', username: undefined, remoteAddress: undefined, connection: { remoteAddress: undefined, remotePort: undefined, listener: undefined }, reauthenticate: false });
}

const buf = (text: string): Buffer => Buffer.from(text, 'utf8');

function continueData(step: AuthStep): Buffer {
  assert.equal(step.status, 'continue');
  return (step as { data: Buffer }).data;
}

function assertFailure(step: AuthStep, reasonCode = 0x87): void {
  assert.deepEqual(step, { status: 'failure', reasonCode });
}

/** Runs a client against the server up to the server's answer to the client-final-message. */
async function exchange(username: string, password: string, options: Partial<ScramOptions> = {}): Promise<{ client: ScramClient; server: AuthExchange; result: AuthStep }> {
  const client = new ScramClient(username, password, 'CLIENTNONCE');
  const server = start(options);
  const serverFirst = continueData(await server.next(client.firstMessage()));
  const result = await server.next(client.finalMessage(serverFirst));
  return { client, server, result };
}

void describe('SCRAM-SHA-256 RFC 7677 §3 test vector', () => {
  const credential = scramCredential(RFC.password, { salt: Buffer.from(RFC.salt, 'base64'), iterations: 4096 });

  void it('the client produces the RFC messages and accepts the RFC server signature', () => {
    const client = new ScramClient(RFC.user, RFC.password, RFC.clientNonce);
    assert.equal(client.firstMessage().toString(), RFC.clientFirst);
    assert.equal(client.finalMessage(buf(RFC.serverFirst)).toString(), RFC.clientFinal);
    assert.equal(client.verifyServerFinal(buf(RFC.serverFinal)), true);
  });

  void it('the server produces the RFC messages', async () => {
    const server = start({ lookup: (name) => (name === 'user' ? credential : undefined), nonce: () => RFC.serverNonce });
    assert.equal(continueData(await server.next(buf(RFC.clientFirst))).toString(), RFC.serverFirst);
    const final = await server.next(buf(RFC.clientFinal));
    assert.deepEqual(final, { status: 'success', data: buf(RFC.serverFinal) });
  });
});

void describe('SCRAM-SHA-256 exchange', () => {
  void it('succeeds with the right password and the client verifies the server', async () => {
    const { client, result } = await exchange('alice', 'secret');
    assert.equal(result.status, 'success');
    const data = (result as { data?: Buffer }).data;
    assert.ok(data !== undefined);
    assert.equal(client.verifyServerFinal(data), true);
    assert.equal(client.verifyServerFinal(buf('v=AAAA')), false);
    assert.equal(client.verifyServerFinal(buf('e=invalid-proof')), false);
  });

  void it('works with random nonces and salts and with escaped usernames', async () => {
    const credential = scramCredential('pässwörd');
    assert.equal(credential.salt.length, 16);
    assert.equal(credential.iterations, 4096);
    const mechanism = createScramSha256({ lookup: (name) => (name === 'a,b=c' ? credential : undefined) });
    const server = mechanism.start({ clientId: 'c', username: 'ignored', remoteAddress: undefined, connection: { remoteAddress: undefined, remotePort: undefined, listener: undefined }, reauthenticate: true });
    const client = new ScramClient('a,b=c', 'pässwörd');
    assert.match(client.firstMessage().toString(), /^n,,n=a=2Cb=3Dc,r=[A-Za-z0-9+/=]+$/);
    const result = await server.next(client.finalMessage(continueData(await server.next(client.firstMessage()))));
    assert.equal(result.status, 'success');
    assert.equal(client.verifyServerFinal((result as { data: Buffer }).data), true);
  });

  void it('applies NFKC to passwords on both sides', async () => {
    // U+2168 ROMAN NUMERAL NINE normalizes to "IX".
    const credential = scramCredential('\u2168', { salt: SALT, iterations: ITERATIONS });
    const { result } = await exchange('u', 'IX', { lookup: () => credential });
    assert.equal(result.status, 'success');
  });

  void it('fails a wrong password with 0x87', async () => {
    const { client, result } = await exchange('alice', 'wrong');
    assertFailure(result);
    assert.equal(client.verifyServerFinal(buf(RFC.serverFinal)), false);
  });

  void it('does not reveal an unknown user until the proof', async () => {
    const known = start();
    const unknown = start();
    const knownFirst = continueData(await known.next(buf('n,,n=alice,r=CLIENTNONCE'))).toString();
    const unknownFirst = continueData(await unknown.next(buf('n,,n=mallory,r=CLIENTNONCE'))).toString();
    const shape = /^r=CLIENTNONCESERVERNONCE,s=[A-Za-z0-9+/]{22}==,i=4096$/;
    assert.match(unknownFirst, shape);
    assert.match(knownFirst.replace(/i=\d+$/, 'i=4096'), shape);
    // The fake salt is stable for a username, so repeated probes see the same answer.
    const mechanism = createScramSha256({ lookup: () => undefined, nonce: () => 'SERVERNONCE' });
    const probe = async (): Promise<string> => {
      const ctx = { clientId: 'c', username: undefined, remoteAddress: undefined, connection: { remoteAddress: undefined, remotePort: undefined, listener: undefined }, reauthenticate: false };
      return continueData(await mechanism.start(ctx).next(buf('n,,n=mallory,r=CLIENTNONCE'))).toString();
    };
    assert.equal(await probe(), await probe());
    const client = new ScramClient('mallory', 'guess', 'CLIENTNONCE');
    assertFailure(await unknown.next(client.finalMessage(buf(unknownFirst))));
  });

  void it('answers a lookup that throws with 0x80', async () => {
    const server = start({ lookup: () => Promise.reject(new Error('database down')) });
    assertFailure(await server.next(buf('n,,n=alice,r=CLIENTNONCE')), 0x80);
    assertFailure(await server.next(buf('c=biws,r=x,p=AAAA')));
  });

  void it('accepts an async lookup and the "y,," header bound to its own c= value', async () => {
    const server = start({ lookup: (name) => Promise.resolve(users.get(name)) });
    const serverFirst = continueData(await server.next(buf('y,,n=alice,r=CLIENTNONCE'))).toString();
    // c= must carry base64("y,,") = "eSws" (RFC 5802 §7); build that proof by hand.
    const withoutProof = 'c=eSws,r=CLIENTNONCESERVERNONCE';
    const authMessage = `n=alice,r=CLIENTNONCE,${serverFirst},${withoutProof}`;
    const { clientKey, storedKey, serverKey } = deriveKeys('secret', SALT, ITERATIONS);
    const proof = xor(clientKey, hmac(storedKey, authMessage)).toString('base64');
    const result = await server.next(buf(`${withoutProof},p=${proof}`));
    assert.deepEqual(result, { status: 'success', data: buf(`v=${hmac(serverKey, authMessage).toString('base64')}`) });
  });

  void it('fails a "y,," client whose final message claims "n,,"', async () => {
    const client = new ScramClient('alice', 'secret', 'CLIENTNONCE');
    const server = start();
    const serverFirst = continueData(await server.next(buf('y,,n=alice,r=CLIENTNONCE')));
    assertFailure(await server.next(client.finalMessage(serverFirst)));
  });
});

void describe('SCRAM-SHA-256 failures', () => {
  void it('fails a tampered nonce', async () => {
    const client = new ScramClient('alice', 'secret', 'CLIENTNONCE');
    const server = start();
    const serverFirst = continueData(await server.next(client.firstMessage()));
    const final = client.finalMessage(serverFirst).toString().replace('SERVERNONCE', 'SERVERNONCF');
    assertFailure(await server.next(buf(final)));
  });

  void it('fails a tampered channel binding or proof', async () => {
    for (const tamper of [(m: string) => m.replace('c=biws', 'c=eSws'), (m: string) => m.replace(/p=(.)/, (_all, c: string) => `p=${c === 'A' ? 'B' : 'A'}`)]) {
      const client = new ScramClient('alice', 'secret', 'CLIENTNONCE');
      const server = start();
      const final = client.finalMessage(continueData(await server.next(client.firstMessage()))).toString();
      assertFailure(await server.next(buf(tamper(final))));
    }
  });

  const badFirst = [
    'p=tls-unique,,n=alice,r=CLIENTNONCE', // channel binding requested
    'n,a=alice,n=alice,r=CLIENTNONCE', // authzid
    'x,,n=alice,r=CLIENTNONCE',
    'n,,r=CLIENTNONCE', // missing n=
    'n,,n=alice', // missing r=
    'n,,m=ext,n=alice,r=CLIENTNONCE', // mandatory extension
    'n,,n=al=41ice,r=CLIENTNONCE', // bad escape
    'n,,n=,r=CLIENTNONCE',
    'n,,n=alice,r=',
    'n,,n=alice,r=CLIENT NONCE',
    'n,,n=alice,,r=CLIENTNONCE',
    '',
  ];
  for (const message of badFirst) {
    void it(`fails a malformed client-first ${JSON.stringify(message)}`, async () => {
      assertFailure(await start().next(buf(message)));
    });
  }

  const badFinal = [
    'c=biws,r=CLIENTNONCESERVERNONCE', // missing proof
    'r=CLIENTNONCESERVERNONCE,c=biws,p=AAAA', // out of order
    'c=biws,p=AAAA', // missing nonce
    'c=biws,r=CLIENTNONCESERVERNONCE,p=not*base64', // bad base64
    'c=biws,r=CLIENTNONCESERVERNONCE,p=AAA', // truncated base64
    'c=biws,r=CLIENTNONCESERVERNONCE,p=AAAA', // proof of the wrong length
    'c=biws,r=CLIENTNONCESERVERNONCE,p=AAAA,x=1', // proof not last
    'garbage',
  ];
  for (const message of badFinal) {
    void it(`fails a malformed client-final ${JSON.stringify(message)}`, async () => {
      const server = start();
      continueData(await server.next(buf('n,,n=alice,r=CLIENTNONCE')));
      assertFailure(await server.next(buf(message)));
    });
  }

  void it('fails missing authentication data', async () => {
    assertFailure(await start().next(undefined));
    const server = start();
    continueData(await server.next(buf('n,,n=alice,r=CLIENTNONCE')));
    assertFailure(await server.next(undefined));
  });

  void it('fails any call after success or failure', async () => {
    const ok = await exchange('alice', 'secret');
    assert.equal(ok.result.status, 'success');
    assertFailure(await ok.server.next(buf('n,,n=alice,r=CLIENTNONCE')));
    const bad = await exchange('alice', 'wrong');
    assertFailure(bad.result);
    assertFailure(await bad.server.next(buf('n,,n=alice,r=CLIENTNONCE')));
    const early = start();
    assertFailure(await early.next(buf('bad')));
    assertFailure(await early.next(buf('c=biws,r=x,p=AAAA')));
  });
});

void describe('ScramClient input checks', () => {
  const client = (): ScramClient => {
    const c = new ScramClient('alice', 'secret', 'CLIENTNONCE');
    c.firstMessage();
    return c;
  };
  const badServerFirst = [
    'r=OTHERNONCE,s=c2FsdA==,i=4096', // does not extend our nonce
    'r=CLIENTNONCE,s=c2FsdA==,i=4096', // adds nothing
    'r=CLIENTNONCEx,s=c2Fsd*==,i=4096',
    'r=CLIENTNONCEx,s=,i=4096',
    'r=CLIENTNONCEx,s=c2FsdA==,i=0',
    'r=CLIENTNONCEx,s=c2FsdA==,i=-1',
    'r=CLIENTNONCEx,s=c2FsdA==,i=4096x',
    'r=CLIENTNONCEx,s=c2FsdA==,i=99999999999',
    'r=CLIENTNONCEx,s=c2FsdA==',
    'm=ext,r=CLIENTNONCEx,s=c2FsdA==,i=4096',
  ];
  for (const message of badServerFirst) {
    void it(`throws on server-first ${JSON.stringify(message)}`, () => {
      assert.throws(() => client().finalMessage(buf(message)));
    });
  }

  void it('accepts a low iteration count and rejects a bad nonce', () => {
    assert.doesNotThrow(() => client().finalMessage(buf('r=CLIENTNONCEx,s=c2FsdA==,i=1')));
    assert.throws(() => new ScramClient('alice', 'secret', 'a,b'));
    assert.equal(new ScramClient('alice', 'secret').verifyServerFinal(buf(RFC.serverFinal)), false);
  });

  void it('escapes and unescapes saslnames (RFC 5802 §5.1)', () => {
    assert.equal(escapeUsername('a=b,c'), 'a=3Db=2Cc');
    assert.equal(unescapeUsername('a=3Db=2Cc'), 'a=b,c');
    assert.throws(() => unescapeUsername('a=2c'));
  });
});
