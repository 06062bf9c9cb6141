/**
 * A Petrel server as a child process (`node dist/bin/petrel.js` with a temporary YAML config) on
 * a free port of 127.0.0.1, for cluster tests: its JSON log records can be awaited, and it is
 * stopped by PID (SIGTERM or SIGKILL, bounded). The log level is debug, so route announcements
 * (`cluster route`) can be waited for.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withTimeout } from './mqttjs.js';

/** Tests run from build/test/helpers/: the package's dist/ is three levels up. */
const BIN = fileURLToPath(new URL('../../../dist/bin/petrel.js', import.meta.url));
const START_MS = 15_000;

export type LogRecord = Record<string, unknown>;

export interface NodeConfig {
  redis: string;
  nodeId: string;
  heartbeatInterval?: number;
  nodeTimeout?: number;
  /** The broker's sharedSubscriptionStrategy (how this node picks members for what is published here). */
  sharedSubscriptionStrategy?: 'round-robin' | 'random' | 'least-inflight';
}

export class PetrelNode {
  readonly nodeId: string;
  readonly #config: NodeConfig;
  readonly #dir: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #out = '';
  #err = '';
  readonly #waiters = new Set<() => void>();
  url = '';

  private constructor(config: NodeConfig) {
    this.nodeId = config.nodeId;
    this.#config = config;
    this.#dir = mkdtempSync(join(tmpdir(), `petrel-node-${config.nodeId}-`));
  }

  static async start(config: NodeConfig): Promise<PetrelNode> {
    const node = new PetrelNode(config);
    await node.#spawn();
    return node;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Log records written so far (by this run of the process). */
  records(): LogRecord[] {
    const out = this.#out;
    return out.slice(0, out.lastIndexOf('\n') + 1).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogRecord);
  }

  /** How many records were written so far: `waitFor(…, since)` then looks only at later ones. */
  mark(): number {
    return this.records().length;
  }

  /** The first record matching `pred` (written already, after the `since` first ones, or the next one), within `ms`. */
  waitFor(pred: (r: LogRecord) => boolean, what: string, ms = START_MS, since = 0): Promise<LogRecord> {
    const exited = this.#exited;
    return withTimeout(new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.records().slice(since).find(pred);
        if (found === undefined) return;
        this.#waiters.delete(check);
        resolve(found);
      };
      this.#waiters.add(check);
      check();
      void exited.then(() => {
        this.#waiters.delete(check);
        reject(new Error(`node ${this.nodeId} exited before ${what}: ${this.#err}`));
      });
    }), ms, `${what} on node ${this.nodeId}`);
  }

  /** Waits until this node learnt (after the `since` first records) that `from` routes `filter` (added, or with op '-', removed). */
  route(from: string, filter: string, op: '+' | '-' = '+', since = 0): Promise<LogRecord> {
    return this.waitFor((r) => r.msg === 'cluster route' && r.from === from && r.filter === filter && r.op === op, `route ${op}${filter} of ${from}`, START_MS, since);
  }

  /** Waits until this node learnt that `clientId` on `from` joined (online or offline), or left ('-'), the shared group `group`. */
  share(from: string, group: string, clientId: string, op: 'online' | 'offline' | '-' = 'online', since = 0): Promise<LogRecord> {
    return this.waitFor((r) => r.msg === 'cluster share' && r.from === from && r.group === group && r.clientId === clientId && r.op === op,
      `share ${op} ${group} ${clientId} of ${from}`, START_MS, since);
  }

  /** Waits until this node (re)loaded the routes of `from` after the `since` first records. */
  routesLoaded(from: string, since: number): Promise<LogRecord> {
    return this.waitFor((r) => r.msg === 'cluster routes loaded' && r.from === from && (r.routes as number) > 0, `the routes of ${from}`, START_MS, since);
  }

  async #spawn(): Promise<void> {
    const c = this.#config;
    const file = join(this.#dir, 'petrel.yaml');
    writeFileSync(file, [
      'logLevel: debug',
      'cluster:',
      `  redis: ${c.redis}`,
      `  nodeId: ${c.nodeId}`,
      `  heartbeatInterval: ${c.heartbeatInterval ?? 200}`,
      `  nodeTimeout: ${c.nodeTimeout ?? 1500}`,
      ...(c.sharedSubscriptionStrategy === undefined ? [] : ['broker:', `  sharedSubscriptionStrategy: ${c.sharedSubscriptionStrategy}`]),
      '',
    ].join('\n'));
    const child = spawn(process.execPath, [BIN, '--config', file, '--port', '0', '--ws-port', 'off', '--http-port', 'off', '--host', '127.0.0.1'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.#out = '';
    this.#err = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      this.#out += s;
      for (const w of [...this.#waiters]) w();
    });
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      this.#err += s;
    });
    this.#exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const listening = await this.waitFor((r) => r.msg === 'listening' && r.type === 'tcp', 'the listening record');
    await this.waitFor((r) => r.msg === 'cluster node started', 'the cluster start');
    this.url = `mqtt://127.0.0.1:${listening.port as number}`;
  }

  get running(): boolean {
    const child = this.#child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Sends `signal` to the PID and waits (bounded) for the exit. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const pid = this.#child?.pid;
    if (this.running && pid !== undefined) process.kill(pid, signal);
    await withTimeout(this.#exited, START_MS, `node ${this.nodeId} to exit on ${signal}`);
  }

  /** Starts the process again with the same node id and config (a new port). */
  async restart(): Promise<void> {
    if (this.running) throw new Error(`node ${this.nodeId} is running`);
    await this.#spawn();
  }

  async close(): Promise<void> {
    await this.stop('SIGKILL').catch(() => undefined);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
