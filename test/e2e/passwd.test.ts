/**
 * `petrel passwd` as users run it (`node build/src/bin/petrel.js passwd ...`, the password on
 * stdin): create, update, delete, refusals and exit codes; the files it writes verify with
 * PasswordFile.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PasswordFile } from '../../src/auth/password-file.js';

/** Compiled CLI, next to this compiled test: build/test/e2e → build/src/bin. */
const BIN = fileURLToPath(new URL('../../src/bin/petrel.js', import.meta.url));
/** Starting node (and one scrypt) on a loaded machine can be slow; this bounds every run. */
const RUN_MS = 60_000;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `petrel passwd <args>` with `input` on stdin; killed (and failed) after RUN_MS. */
function passwd(args: string[], input: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'passwd', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`petrel passwd ${args.join(' ')} did not exit within ${RUN_MS} ms; stderr: ${stderr}`));
    }, RUN_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // the command may exit before reading stdin
    child.stdin.end(input);
  });
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-passwd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function verifies(file: string, user: string, password: string): Promise<boolean> {
  return PasswordFile.parse(readFileSync(file, 'utf8')).verify(user, Buffer.from(password));
}

/** A $7$ line made by mosquitto_passwd for bob / "bob's password". */
const BOB = 'bob:$7$101$HZCnN8QyEYAxPUWY$G5EwNFx2xp3NxgOxkgPVyFuNaH28QTo7kBb36n2N+yZI7A73339vxOCkjKYHSgHkwa1UtBt81d1tqfNPWgEVQQ==';

describe('petrel passwd', () => {
  test('-c creates the file with mode 0600 from the first line of stdin; it verifies', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'users');
    const run = await passwd(['-c', file, 'alice'], 'hunter2\nnot the password\n');
    assert.deepEqual(run, { code: 0, stdout: '', stderr: '' });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(readFileSync(file, 'utf8'), /^alice:\$scrypt\$N=16384,r=8,p=1\$[^$]+\$[^$]+\n$/);
    assert.equal(await verifies(file, 'alice', 'hunter2'), true);
    assert.equal(await verifies(file, 'alice', 'not the password'), false);
    assert.deepEqual(readdirSync(dir), ['users'], 'no temporary file left');
  });

  test('sets a password in an existing file, keeping its comments, other users and mode; CRLF input', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'users');
    writeFileSync(file, `# operators\n${BOB}\n\n# alice below\nalice:$6$AAAA$${Buffer.alloc(64).toString('base64')}\n`);
    chmodSync(file, 0o640);
    const run = await passwd([file, 'alice'], 'new pass\r\n');
    assert.equal(run.code, 0, run.stderr);
    const lines = readFileSync(file, 'utf8').split('\n');
    assert.deepEqual([lines[0], lines[1], lines[2], lines[3], lines[5], lines.length], ['# operators', BOB, '', '# alice below', '', 6]);
    assert.match(lines[4] as string, /^alice:\$scrypt\$/);
    assert.equal(statSync(file).mode & 0o777, 0o640);
    assert.equal(await verifies(file, 'alice', 'new pass'), true);
    assert.equal(await verifies(file, 'bob', "bob's password"), true, 'the Mosquitto line still verifies');

    const added = await passwd([file, 'carol'], 'c');
    assert.equal(added.code, 0, added.stderr);
    assert.equal(await verifies(file, 'carol', 'c'), true);
    assert.equal(PasswordFile.parse(readFileSync(file, 'utf8')).size, 3);
    // -c on an existing file adds to it; it does not start over.
    assert.equal((await passwd(['-c', file, 'dave'], 'd\n')).code, 0);
    assert.equal(PasswordFile.parse(readFileSync(file, 'utf8')).size, 4);
    assert.deepEqual(readdirSync(dir), ['users']);
  });

  test('writes through a symbolic link, which stays a link', async (t) => {
    const dir = tempDir(t);
    mkdirSync(join(dir, 'real'));
    writeFileSync(join(dir, 'real', 'users'), `${BOB}\n`);
    symlinkSync(join(dir, 'real', 'users'), join(dir, 'link'));
    assert.equal((await passwd([join(dir, 'link'), 'alice'], 'a\n')).code, 0);
    assert.ok(await verifies(join(dir, 'real', 'users'), 'alice', 'a'));
    assert.equal(readdirSync(dir).sort().join(), 'link,real');
  });

  test('-D removes the user; an unknown user or a missing file exits 1 and changes nothing', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'users');
    const text = `# keep me\nalice:$6$AAAA$${Buffer.alloc(64).toString('base64')}\n${BOB}\n`;
    writeFileSync(file, text);
    const run = await passwd(['-D', file, 'alice'], '');
    assert.deepEqual(run, { code: 0, stdout: '', stderr: '' });
    assert.equal(readFileSync(file, 'utf8'), `# keep me\n${BOB}\n`);

    const unknown = await passwd(['-D', file, 'alice'], '');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown user "alice"/);
    assert.equal(readFileSync(file, 'utf8'), `# keep me\n${BOB}\n`);

    const missing = await passwd(['-D', join(dir, 'nope'), 'bob'], '');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /does not exist/);
    assert.ok(!existsSync(join(dir, 'nope')));
  });

  test('errors exit 1 with a message on stderr: missing file without -c, unreadable or malformed file, no password', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'users');
    const missing = await passwd([file, 'alice'], 'pw\n');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /-c/);
    assert.ok(!existsSync(file), 'not created without -c');

    mkdirSync(join(dir, 'a-directory'));
    const unreadable = await passwd([join(dir, 'a-directory'), 'alice'], 'pw\n');
    assert.equal(unreadable.code, 1);
    assert.match(unreadable.stderr, /cannot read/);

    writeFileSync(file, `${BOB}\nalice:plaintext\n`);
    const malformed = await passwd([file, 'carol'], 'pw\n');
    assert.equal(malformed.code, 1);
    assert.match(malformed.stderr, /line 2\b/);
    assert.equal(readFileSync(file, 'utf8'), `${BOB}\nalice:plaintext\n`, 'a malformed file is left alone');

    writeFileSync(file, `${BOB}\n`);
    for (const input of ['', '\n']) {
      const empty = await passwd([file, 'carol'], input);
      assert.equal(empty.code, 1, JSON.stringify(input));
      assert.match(empty.stderr, /password/);
    }
    assert.equal(readFileSync(file, 'utf8'), `${BOB}\n`);
    assert.equal(readdirSync(dir).sort().join(), 'a-directory,users', 'no temporary file left');
  });

  test('refuses a password on the command line, and other usage errors, with exit 2', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'users');
    const withPassword = await passwd(['-c', file, 'alice', 'secret'], 'pw\n');
    assert.equal(withPassword.code, 2);
    assert.match(withPassword.stderr, /never taken from the command line/);
    assert.ok(!existsSync(file));
    const usageErrors = [[], ['-c', file], ['-b', '-c', file, 'alice', 'secret'], ['-c', '-D', file, 'alice'], ['-c', file, 'a:b'], ['-c', file, '']];
    const runs = await Promise.all(usageErrors.map((args) => passwd(args, 'pw\n')));
    runs.forEach((run, i) => {
      assert.equal(run.code, 2, JSON.stringify(usageErrors[i]));
      assert.match(run.stderr, /Usage: petrel passwd/);
      assert.equal(run.stdout, '');
    });
    assert.ok(!existsSync(file));
    const help = await passwd(['--help'], '');
    assert.equal(help.code, 0);
    assert.match(help.stderr, /Usage: petrel passwd/);
  });
});
