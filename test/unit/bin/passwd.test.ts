/**
 * `runPasswd` on a terminal: the password is asked twice and never echoed; a mismatch or an
 * interrupted prompt changes nothing. The terminal is a stream with `isTTY` and `setRawMode`,
 * which is all readline looks at.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, type TestContext, test } from 'node:test';
import { PasswordFile } from '../../../src/auth/password-file.js';
import { runPasswd } from '../../../src/bin/passwd.js';

/** A fake terminal: what the test types goes in; `output` collects everything written to stderr. */
function terminal(): { stdin: PassThrough & { isTTY: boolean; rawModes: boolean[]; setRawMode(on: boolean): void }; stderr: PassThrough; output: () => string } {
  const stdin = Object.assign(new PassThrough(), {
    isTTY: true,
    rawModes: [] as boolean[],
    setRawMode(on: boolean): void {
      stdin.rawModes.push(on);
    },
  });
  const stderr = new PassThrough();
  let output = '';
  stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
  return { stdin, stderr, output: () => output };
}

/** Types `keys` once the prompt `prompt` has been written (waits for stderr's data events; fails after 5 s). */
function typeAfter(tty: ReturnType<typeof terminal>, prompt: string, keys: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!tty.output().includes(prompt)) return;
      cleanup();
      tty.stdin.write(keys);
      resolve();
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no prompt ${JSON.stringify(prompt)}; got ${JSON.stringify(tty.output())}`));
    }, 5000);
    const cleanup = (): void => {
      clearTimeout(timer);
      tty.stderr.off('data', check);
    };
    tty.stderr.on('data', check); // after terminal()'s own listener, so output() already has the chunk
    check();
  });
}

function tempFile(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-passwd-tty-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'users');
}

describe('petrel passwd on a terminal', () => {
  test('asks twice without echo, in raw mode, and writes a hash that verifies', async (t) => {
    const file = tempFile(t);
    const tty = terminal();
    const done = runPasswd(['-c', file, 'alice'], tty);
    await typeAfter(tty, 'Password: ', 's3cret-typed\r');
    await typeAfter(tty, 'Reenter password: ', 's3cret-typed\r');
    assert.equal(await done, 0, tty.output());
    assert.ok(!tty.output().includes('s3cret'), `the password was echoed: ${JSON.stringify(tty.output())}`);
    assert.equal(tty.stdin.rawModes[0], true, 'raw mode while typing');
    assert.equal(tty.stdin.rawModes.at(-1), false, 'raw mode off afterwards');
    const users = PasswordFile.parse(readFileSync(file, 'utf8'));
    assert.equal(await users.verify('alice', Buffer.from('s3cret-typed')), true);
  });

  test('two different passwords exit 1 and write nothing', async (t) => {
    const file = tempFile(t);
    const tty = terminal();
    const done = runPasswd(['-c', file, 'alice'], tty);
    await typeAfter(tty, 'Password: ', 'one\r');
    await typeAfter(tty, 'Reenter password: ', 'two\r');
    assert.equal(await done, 1);
    assert.match(tty.output(), /do not match/);
    assert.ok(!existsSync(file));
  });

  test('Ctrl-C at the prompt exits 1 and writes nothing', async (t) => {
    const file = tempFile(t);
    const tty = terminal();
    const done = runPasswd(['-c', file, 'alice'], tty);
    await typeAfter(tty, 'Password: ', 'abc\x03');
    assert.equal(await done, 1);
    assert.match(tty.output(), /interrupted/);
    assert.ok(!existsSync(file));
  });
});
