/**
 * Redis topologies beyond a single server, for tests: a master watched by one Sentinel, and a
 * Redis Cluster of three masters. Every process is a child of the test on a free port of
 * 127.0.0.1 with a temporary directory, stopped by PID (SIGTERM, then SIGKILL after a bound).
 * redis-server and redis-cli must be installed (CI installs them); nothing is ever skipped.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, ping, RedisServer } from './redis-server.js';

const run = promisify(execFile);
const TIMEOUT_MS = 15_000;

/** One redis-server process started with `args`, ready once `readyText` is in its log and it answers PING. */
class RedisProcess {
  readonly port: number;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #output = '';

  private constructor(port: number, child: ChildProcess) {
    this.port = port;
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('close', () => resolve()));
    const keep = (chunk: Buffer): void => {
      this.#output += chunk.toString('utf8');
      if (this.#output.length > 65_536) this.#output = this.#output.slice(-32_768);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  static async start(port: number, args: string[], readyText: string): Promise<RedisProcess> {
    const p = new RedisProcess(port, spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    const deadline = Date.now() + TIMEOUT_MS;
    let exited = false;
    void p.#exited.then(() => {
      exited = true;
    });
    // Bounded in time and count: the log is checked every 20 ms until the deadline.
    for (let i = 0; i < TIMEOUT_MS / 20 && !p.#output.includes(readyText); i++) {
      if (exited) throw new Error(`redis-server ${args.join(' ')} exited before it was ready:\n${p.#output}`);
      if (Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (!p.#output.includes(readyText)) {
      await p.stop();
      throw new Error(`redis-server on ${port} not ready within ${TIMEOUT_MS} ms:\n${p.#output}`);
    }
    await ping(port);
    return p;
  }

  async stop(): Promise<void> {
    const pid = this.#child.pid;
    if (pid === undefined || this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    process.kill(pid, 'SIGTERM');
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), TIMEOUT_MS);
    });
    try {
      if (await Promise.race([this.#exited.then(() => 'exited' as const), late]) === 'late') {
        process.kill(pid, 'SIGKILL');
        await this.#exited;
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

/** redis-cli against one port; resolves with its output. */
async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: TIMEOUT_MS });
  return stdout;
}

/** A master (a RedisServer) and one Sentinel that monitors it as `name`; the URL is `redis-sentinel://`. */
export class SentinelSetup {
  readonly name = 'petrelmaster';
  private constructor(readonly master: RedisServer, readonly sentinel: RedisProcess, readonly dir: string) {}

  static async start(): Promise<SentinelSetup> {
    const master = await RedisServer.start();
    const dir = await mkdtemp(join(tmpdir(), 'petrel-sentinel-'));
    try {
      const port = await freePort();
      const conf = join(dir, 'sentinel.conf');
      await writeFile(conf, [
        `port ${port}`, 'bind 127.0.0.1', 'protected-mode no', `dir ${dir}`, 'daemonize no', 'logfile ""',
        `sentinel monitor petrelmaster 127.0.0.1 ${master.port} 1`,
        'sentinel down-after-milliseconds petrelmaster 5000',
      ].join('\n') + '\n');
      const sentinel = await RedisProcess.start(port, [conf, '--sentinel'], '+monitor master');
      const setup = new SentinelSetup(master, sentinel, dir);
      // Bounded: the Sentinel names the master once it monitors it.
      for (let i = 0; i < 100; i++) {
        if ((await cli(port, 'SENTINEL', 'get-master-addr-by-name', setup.name)).includes(String(master.port))) return setup;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await setup.close();
      throw new Error('the Sentinel does not name its master');
    } catch (err) {
      await master.close();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  get url(): string {
    return `redis-sentinel://127.0.0.1:${this.sentinel.port}/${this.name}`;
  }

  async close(): Promise<void> {
    await this.sentinel.stop();
    await this.master.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A Redis Cluster of three masters (no replicas) with every slot assigned; the URL is `redis-cluster://`. */
export class ClusterSetup {
  private constructor(readonly nodes: RedisProcess[], readonly dir: string) {}

  static async start(masters = 3): Promise<ClusterSetup> {
    const dir = await mkdtemp(join(tmpdir(), 'petrel-rcluster-'));
    const nodes: RedisProcess[] = [];
    const setup = new ClusterSetup(nodes, dir);
    try {
      for (let i = 0; i < masters; i++) {
        const port = await freePort();
        const own = join(dir, String(port));
        await run('mkdir', ['-p', own]);
        nodes.push(await RedisProcess.start(port, [
          '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'no', '--dir', own, '--save', '',
          '--appendonly', 'yes', '--appendfsync', 'always', '--daemonize', 'no', '--logfile', '',
          '--cluster-enabled', 'yes', '--cluster-config-file', join(own, 'nodes.conf'), '--cluster-node-timeout', '5000',
        ], 'Ready to accept connections'));
      }
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
        timeout: TIMEOUT_MS,
      });
      // Bounded: every node reports the cluster ok once the slots are assigned and gossip settled.
      for (let i = 0; i < 200; i++) {
        const states = await Promise.all(nodes.map((n) => cli(n.port, 'CLUSTER', 'INFO')));
        if (states.every((s) => s.includes('cluster_state:ok'))) return setup;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error('the Redis Cluster did not reach cluster_state:ok');
    } catch (err) {
      await setup.close();
      throw err;
    }
  }

  get url(): string {
    return `redis-cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  async close(): Promise<void> {
    for (const n of this.nodes) await n.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
