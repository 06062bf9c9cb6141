/**
 * Password files: parsing with line-numbered errors, Petrel's scrypt hashes, files written by
 * the real `mosquitto_passwd` ($7$ PBKDF2-SHA512 and $6$ SHA-512), and the text edits that keep
 * every other line.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PasswordFile, PasswordFileError, hashPassword, withEntry, withoutEntry } from '../../../src/auth/password-file.js';

const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';

/** The error `fn` throws, which must be a PasswordFileError. */
function parseError(text: string): PasswordFileError {
  try {
    PasswordFile.parse(text);
  } catch (err) {
    assert.ok(err instanceof PasswordFileError, `expected a PasswordFileError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a PasswordFileError, nothing was thrown');
}

/** A password file written by the real mosquitto_passwd (batch mode: test passwords only). */
function mosquittoFile(users: [string, string][], hashFlag: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-mosq-passwd-'));
  try {
    const file = join(dir, 'passwd');
    users.forEach(([user, password], i) => {
      execFileSync(MOSQUITTO_PASSWD, [...hashFlag, ...(i === 0 ? ['-c'] : []), '-b', file, user, password], { timeout: 10_000, stdio: 'pipe' });
    });
    return readFileSync(file, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('PasswordFile.parse', () => {
  test('ignores blank lines and comments, counts users', async () => {
    const hash = await hashPassword('pw');
    const file = PasswordFile.parse(`# users\n\nalice:${hash}\r\n   \n  # indented comment\nbob:${hash}  \n`);
    assert.equal(file.size, 2);
    assert.ok(file.has('alice'));
    assert.ok(file.has('bob'));
    assert.ok(!file.has('# users'));
    assert.equal(PasswordFile.parse('').size, 0);
  });

  test('names the line of a malformed entry', async () => {
    const hash = await hashPassword('pw');
    const cases: [string, number][] = [
      [`alice:${hash}\nno colon here\n`, 2],
      [`# c\n\n:${hash}\n`, 3],
      ['alice:plaintext\n', 1],
      [`alice:${hash}\nbob:$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA\n`, 2],
      ['alice:$7$101$not base64!$AAAA\n', 1],
      ['alice:$7$0$AAAA$' + Buffer.alloc(64).toString('base64') + '\n', 1],
      ['alice:$7$101$AAAA$AAAA\n', 1], // a 3-byte hash is not PBKDF2-SHA512's 64
      ['alice:$6$AAAA\n', 1],
      ['alice:$scrypt$N=1000,r=8,p=1$AAAA$' + Buffer.alloc(32).toString('base64') + '\n', 1], // N not a power of 2
      ['alice:$scrypt$N=1073741824,r=8,p=1$AAAA$' + Buffer.alloc(32).toString('base64') + '\n', 1], // 1 TB of memory
      [`alice:${hash}\n\nalice:${hash}\n`, 3],
    ];
    for (const [text, line] of cases) {
      const err = parseError(text);
      assert.equal(err.line, line, text);
      assert.match(err.message, new RegExp(`line ${line}\\b`));
    }
  });
});

describe('PasswordFile.verify', () => {
  test('Petrel hashes: the right password verifies, a wrong one and an unknown user do not', async () => {
    const hash = await hashPassword('correct horse');
    assert.match(hash, /^\$scrypt\$N=16384,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    assert.notEqual(await hashPassword('correct horse'), hash, 'a fresh salt each time');
    const file = PasswordFile.parse(`alice:${hash}\nbob:${await hashPassword(Buffer.from([0, 255, 1]))}\n`);
    assert.equal(await file.verify('alice', Buffer.from('correct horse')), true);
    assert.equal(await file.verify('alice', Buffer.from('correct horsE')), false);
    assert.equal(await file.verify('alice', Buffer.alloc(0)), false);
    assert.equal(await file.verify('bob', Buffer.from([0, 255, 1])), true, 'binary passwords');
    assert.equal(await file.verify('bob', Buffer.from('correct horse')), false);
    assert.equal(await file.verify('carol', Buffer.from('correct horse')), false);
    assert.equal(await PasswordFile.parse('').verify('alice', Buffer.from('x')), false);
  });

  test('scrypt parameters are read from the line', async () => {
    // N=1024, r=1, p=2, salt "salty-salt", hash from node:crypto's scryptSync with those parameters.
    const { scryptSync } = await import('node:crypto');
    const salt = Buffer.from('salty-salt');
    const hash = scryptSync('pw', salt, 24, { N: 1024, r: 1, p: 2 });
    const file = PasswordFile.parse(`u:$scrypt$N=1024,r=1,p=2$${salt.toString('base64')}$${hash.toString('base64')}\n`);
    assert.equal(await file.verify('u', Buffer.from('pw')), true);
    assert.equal(await file.verify('u', Buffer.from('pW')), false);
  });

  test('a Petrel line verifies beside comments (a fixed vector, so the format cannot drift)', async () => {
    const line = 'alice:$scrypt$N=16384,r=8,p=1$kwsv+WWmnP85+66wl1xLOA==$zYZxC9h/oq2bTlAo0De91xhCVkku4Pitths4uB3/Xx8=';
    const file = PasswordFile.parse(`# written by petrel passwd\n${line}\n`);
    assert.equal(await file.verify('alice', Buffer.from('hunter2')), true);
    assert.equal(await file.verify('alice', Buffer.from('hunter3')), false);
  });

  test('files from the real mosquitto_passwd: $7$ (PBKDF2-SHA512, the default) verify', async () => {
    const text = mosquittoFile([['alice', 'secret'], ['bob', 'p@ss:word with spaces'], ['ünï', 'ключ']], []);
    assert.match(text, /^alice:\$7\$101\$/m);
    const file = PasswordFile.parse(text);
    assert.equal(file.size, 3);
    assert.equal(await file.verify('alice', Buffer.from('secret')), true);
    assert.equal(await file.verify('bob', Buffer.from('p@ss:word with spaces')), true);
    assert.equal(await file.verify('ünï', Buffer.from('ключ')), true);
    assert.equal(await file.verify('alice', Buffer.from('secret2')), false);
    assert.equal(await file.verify('bob', Buffer.from('secret')), false);
    assert.equal(await file.verify('mallory', Buffer.from('secret')), false);
  });

  test('files from the real mosquitto_passwd -H sha512: $6$ (salted SHA-512) verify', async () => {
    const text = mosquittoFile([['alice', 'secret'], ['bob', 'other']], ['-H', 'sha512']);
    assert.match(text, /^alice:\$6\$/m);
    const file = PasswordFile.parse(text);
    assert.equal(await file.verify('alice', Buffer.from('secret')), true);
    assert.equal(await file.verify('bob', Buffer.from('other')), true);
    assert.equal(await file.verify('alice', Buffer.from('other')), false);
    assert.equal(await file.verify('alice', Buffer.from('secreT')), false);
    assert.equal(await file.verify('carol', Buffer.from('secret')), false);
  });

  test('Mosquitto and Petrel lines mix in one file', async () => {
    const text = withEntry(mosquittoFile([['alice', 'a']], []), 'bob', await hashPassword('b'));
    const file = PasswordFile.parse(text);
    assert.equal(await file.verify('alice', Buffer.from('a')), true);
    assert.equal(await file.verify('bob', Buffer.from('b')), true);
  });
});

describe('withEntry / withoutEntry', () => {
  const text = '# header\nalice:$6$old$x\n\n# bob below\nbob:$6$bob$y\ncarol:$6$c$z';

  test('withEntry replaces the user\'s line and keeps every other line', () => {
    assert.equal(withEntry(text, 'bob', '$new'), '# header\nalice:$6$old$x\n\n# bob below\nbob:$new\ncarol:$6$c$z');
    assert.equal(withEntry('a:1\r\nb:2\r\n', 'a', '$n'), 'a:$n\r\nb:2\r\n', 'CRLF kept');
  });

  test('withEntry appends a new user, with a line break before it when the last line had none', () => {
    assert.equal(withEntry(text, 'dave', '$d'), `${text}\ndave:$d\n`);
    assert.equal(withEntry('a:1\n', 'dave', '$d'), 'a:1\ndave:$d\n');
    assert.equal(withEntry('', 'dave', '$d'), 'dave:$d\n');
    assert.equal(withEntry('a:1\r\n', 'dave', '$d'), 'a:1\r\ndave:$d\r\n');
    // A comment that looks like the user is not the user's line.
    assert.equal(withEntry('#dave:old\n', 'dave', '$d'), '#dave:old\ndave:$d\n');
  });

  test('withEntry refuses a username the file format cannot hold', () => {
    for (const bad of ['', 'a:b', 'a\nb', '#x', ' x']) assert.throws(() => withEntry('', bad, '$h'), TypeError, JSON.stringify(bad));
    assert.throws(() => withEntry('', 'x', '$h\nmallory:$h'), TypeError);
  });

  test('withoutEntry removes the user\'s line only; undefined for an unknown user', () => {
    assert.equal(withoutEntry(text, 'bob'), '# header\nalice:$6$old$x\n\n# bob below\ncarol:$6$c$z');
    assert.equal(withoutEntry(text, 'carol'), '# header\nalice:$6$old$x\n\n# bob below\nbob:$6$bob$y');
    assert.equal(withoutEntry('a:1\n', 'a'), '');
    assert.equal(withoutEntry(text, 'dave'), undefined);
    assert.equal(withoutEntry(text, '# header'), undefined);
    assert.equal(withoutEntry('', 'a'), undefined);
  });
});
