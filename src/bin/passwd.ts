/**
 * `petrel passwd [-c] <file> <username>` sets a user's password in a password file;
 * `petrel passwd -D <file> <username>` removes the user.
 *
 * The password is read from the terminal (asked twice, not echoed) or, when stdin is not a
 * terminal, from the first line of stdin. It is never taken from the command line, where other
 * users of the machine could read it. The file is replaced atomically (a temporary file in the
 * same directory, then a rename), so the server never reads half a file; a new file gets mode 0600.
 *
 * Exit codes: 0 done, 1 error (message on stderr), 2 usage error.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { link, open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Writable, type Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { PasswordFile, hashPassword, invalidUsername, withEntry, withoutEntry } from '../auth/password-file.js';

/** The streams the command talks to; a terminal stdin has `isTTY`. */
export interface PasswdIo {
  stdin: Readable & { isTTY?: boolean };
  stderr: Writable;
}

const USAGE = [
  'Usage: petrel passwd [-c] <file> <username>   set the password (asked on the terminal, or the first line of stdin)',
  '       petrel passwd -D <file> <username>     delete the user',
  '  -c  create the file if it does not exist (mode 0600)',
  '  -D  delete the user instead of setting a password',
  '',
].join('\n');

/** The longest password line read from stdin. */
const MAX_LINE = 64 * 1024;

class CommandError extends Error {}

/** Runs the command; resolves to the exit code. */
export async function runPasswd(argv: string[], io: PasswdIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { c: { type: 'boolean', short: 'c' }, D: { type: 'boolean', short: 'D' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    return usageError(io, err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    io.stderr.write(USAGE);
    return 0;
  }
  if (positionals.length > 2) return usageError(io, 'too many arguments: the password is never taken from the command line; type it when asked, or pipe it on stdin');
  const [file, username] = positionals;
  if (file === undefined || username === undefined) return usageError(io, 'expected <file> <username>');
  if (values.c === true && values.D === true) return usageError(io, '-c and -D cannot be used together');
  const invalid = invalidUsername(username);
  if (invalid !== undefined) return usageError(io, invalid);
  try {
    await (values.D === true ? deleteUser(file, username) : setPassword(file, username, values.c === true, io));
    return 0;
  } catch (err) {
    io.stderr.write(`petrel passwd: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

function usageError(io: PasswdIo, message: string): number {
  io.stderr.write(`petrel passwd: ${message}\n${USAGE}`);
  return 2;
}

/** The file's text, checked to be a valid password file; undefined when it does not exist and `create`. */
async function readPasswordFile(file: string, create: boolean): Promise<string | undefined> {
  let text;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && create) return undefined;
    if (code === 'ENOENT') throw new CommandError(`${file} does not exist (use -c to create it)`);
    throw new CommandError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    PasswordFile.parse(text);
  } catch (err) {
    throw new CommandError(`${file}: ${err instanceof Error ? err.message : String(err)}; not changed`);
  }
  return text;
}

async function setPassword(file: string, username: string, create: boolean, io: PasswdIo): Promise<void> {
  const text = await readPasswordFile(file, create);
  const password = await readPassword(io);
  const hash = await hashPassword(password);
  await writeAtomically(file, withEntry(text ?? '', username, hash), text === undefined);
}

async function deleteUser(file: string, username: string): Promise<void> {
  const text = await readPasswordFile(file, false);
  const next = withoutEntry(text ?? '', username);
  if (next === undefined) throw new CommandError(`unknown user "${username}" in ${file}`);
  await writeAtomically(file, next, false);
}

/** Replaces `file` with `text`: written to a temporary file beside it, flushed, then renamed over it. */
async function writeAtomically(file: string, text: string, isNew: boolean): Promise<void> {
  // Write where a symbolic link points, so the link stays a link.
  const target = isNew ? file : await realpath(file);
  const mode = isNew ? 0o600 : (await stat(target)).mode & 0o777;
  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle;
  try {
    handle = await open(temp, 'wx', mode);
  } catch (err) {
    throw new CommandError(`cannot write in ${dirname(target)}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    try {
      await handle.chmod(mode); // open's mode is narrowed by the umask
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (isNew) {
      // link() fails when the name exists: a file created meanwhile is not overwritten, as -c promises.
      await link(temp, target).catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'EEXIST' ? new CommandError(`${target} was created meanwhile; not changed`) : err;
      });
      await unlink(temp);
    } else {
      await rename(temp, target);
    }
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    if (err instanceof CommandError) throw err;
    throw new CommandError(`cannot write ${target}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The password: asked twice on a terminal, otherwise the first line of stdin. Never empty. */
async function readPassword(io: PasswdIo): Promise<string> {
  let password;
  if (io.stdin.isTTY === true) {
    const [first, second] = await promptTwice(io);
    if (first !== second) throw new CommandError('the passwords do not match');
    password = first;
  } else {
    password = await firstLine(io.stdin);
  }
  if (password === '') throw new CommandError('empty password');
  return password;
}

/** Two lines typed on the terminal, with echo off: readline writes to an output that drops everything. */
function promptTwice(io: PasswdIo): Promise<[string, string]> {
  const silent = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  const rl = createInterface({ input: io.stdin, output: silent, terminal: true });
  const prompts = ['Password: ', 'Reenter password: '];
  const lines: string[] = [];
  return new Promise<[string, string]>((resolve, reject) => {
    const finish = (err?: Error): void => {
      rl.removeAllListeners();
      rl.close();
      if (err !== undefined) reject(err);
      else resolve([lines[0] as string, lines[1] as string]);
    };
    rl.on('line', (line) => {
      lines.push(line);
      io.stderr.write('\n');
      if (lines.length === 2) finish();
      else io.stderr.write(prompts[1] as string);
    });
    rl.on('SIGINT', () => {
      io.stderr.write('\n');
      finish(new CommandError('interrupted'));
    });
    rl.on('close', () => finish(new CommandError('no password entered')));
    io.stderr.write(prompts[0] as string);
  });
}

/** The first line of `input` without its line ending; stops reading there. */
function firstLine(input: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = (err: Error | undefined, line?: string): void => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
      if (err !== undefined) reject(err);
      else resolve((line as string).replace(/\r$/, ''));
    };
    const onData = (chunk: Buffer | string): void => {
      const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      const newline = buffer.indexOf(0x0a);
      if (newline >= 0) {
        chunks.push(buffer.subarray(0, newline));
        done(undefined, Buffer.concat(chunks).toString('utf8'));
        return;
      }
      chunks.push(buffer);
      length += buffer.length;
      if (length > MAX_LINE) done(new CommandError('the password line on stdin is too long'));
    };
    const onEnd = (): void => {
      if (length === 0) done(new CommandError('no password on stdin'));
      else done(undefined, Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (err: Error): void => done(new CommandError(`cannot read stdin: ${err.message}`));
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onError);
  });
}

/** `petrel passwd ...` on the process's own streams. */
export function main(argv: string[]): Promise<number> {
  return runPasswd(argv, { stdin: process.stdin, stderr: process.stderr });
}
