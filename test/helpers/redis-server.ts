/**
 * A real redis-server for tests: started as a child process on a free port of 127.0.0.1 with a
 * temporary directory, ready once it logged that it accepts connections and answered PING,
 * stopped by PID (SIGTERM, then SIGKILL after a bound), killed outright (SIGKILL) for crash
 * cases, and restartable on the same port and directory (so an append-only file survives).
 *
 * redis-server must be installed (CI installs it): when it is missing, `start` rejects and the
 * test fails; it is never skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServerOptions {
  /** appendonly yes (with appendfsync always): what a client saw acknowledged survives a SIGKILL. Default true. */
  appendOnly?: boolean;
  /** Path of the binary; default `redis-server` from PATH. */
  binary?: string;
  /** How long start and stop may take, in ms; default 10,000. */
  timeoutMs?: number;
}

/** A free TCP port on 127.0.0.1 (bound on port 0, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  server.close();
  await once(server, 'close');
  if (port === 0) throw new Error('no free port');
  return port;
}

export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly #appendOnly: boolean;
  readonly #binary: string;
  readonly #timeoutMs: number;
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #output = '';
  /** How many times the server was started. */
  starts = 0;

  private constructor(port: number, dir: string, options: RedisServerOptions) {
    this.port = port;
    this.dir = dir;
    this.#appendOnly = options.appendOnly ?? true;
    this.#binary = options.binary ?? 'redis-server';
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Starts a server on a free port with a new temporary directory. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = await mkdtemp(join(tmpdir(), 'petrel-redis-'));
    const server = new RedisServer(await freePort(), dir, options);
    try {
      await server.#spawn();
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Stops (SIGTERM, SIGKILL after the bound) and starts again on the same port and directory. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#spawn();
  }

  /** Starts the stopped server again on the same port and directory. */
  async resume(): Promise<void> {
    if (this.#child !== undefined) throw new Error('redis-server is running');
    await this.#spawn();
  }

  /** SIGTERM by PID; SIGKILL if it has not exited within the bound. */
  async stop(): Promise<void> {
    await this.#signal('SIGTERM');
  }

  /** SIGKILL by PID: a crash, nothing flushed beyond what appendfsync wrote. */
  async kill(): Promise<void> {
    await this.#signal('SIGKILL');
  }

  /** Stops the server and removes its directory. */
  async close(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    const exited = this.#exited;
    if (child === undefined || exited === undefined || child.pid === undefined) return;
    process.kill(child.pid, signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.#timeoutMs);
    });
    try {
      if (await Promise.race([exited.then(() => 'exited' as const), late]) === 'late') {
        process.kill(child.pid, 'SIGKILL');
        await exited;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  async #spawn(): Promise<void> {
    const args = [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--dir', this.dir,
      '--appendonly', this.#appendOnly ? 'yes' : 'no', '--appendfsync', 'always',
      '--daemonize', 'no', '--logfile', '', '--protected-mode', 'no',
    ];
    const child = spawn(this.#binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#output = '';
    const exited = new Promise<void>((resolve) => {
      child.once('close', () => {
        if (this.#child === child) {
          this.#child = undefined;
          this.#exited = undefined;
        }
        resolve();
      });
    });
    let ready: (() => void) | undefined;
    const readyLine = new Promise<void>((resolve) => {
      ready = resolve;
    });
    const onData = (chunk: Buffer): void => {
      this.#output += chunk.toString('utf8');
      if (this.#output.length > 65_536) this.#output = this.#output.slice(-32_768);
      if (this.#output.includes('Ready to accept connections')) ready?.();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (err) => reject(new Error(`cannot start ${this.#binary} (is redis-server installed?): ${err.message}`)));
      void exited.then(() => reject(new Error(`redis-server exited before it was ready:\n${this.#output}`)));
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`redis-server not ready within ${this.#timeoutMs} ms:\n${this.#output}`)), this.#timeoutMs);
    });
    this.#child = child;
    this.#exited = exited;
    try {
      await Promise.race([readyLine, failed, late]);
      await Promise.race([ping(this.port), failed, late]);
    } catch (err) {
      if (child.pid !== undefined && this.#child === child) {
        child.kill('SIGKILL');
        await exited;
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
    failed.catch(() => undefined);
    this.starts++;
  }
}

/** Sends PING over a raw connection and resolves on +PONG. */
export async function ping(port: number): Promise<void> {
  const socket = createConnection({ host: '127.0.0.1', port });
  try {
    await once(socket, 'connect');
    socket.write('PING\r\n');
    let reply = '';
    for await (const chunk of socket) {
      reply += (chunk as Buffer).toString('latin1');
      if (reply.includes('\r\n')) break;
    }
    if (!reply.startsWith('+PONG')) throw new Error(`redis-server answered PING with ${JSON.stringify(reply)}`);
  } finally {
    socket.destroy();
  }
}
