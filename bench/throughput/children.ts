/** Generator processes as seen from the runner: spawned on core 1, talked to over IPC. */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { GENERATOR_CORE } from './brokers.js';
import type { ChildMessage, ParentMessage } from './common.js';

type Kind = ChildMessage['kind'];
type Of<K extends Kind> = Extract<ChildMessage, { kind: K }>;

export class Child {
  readonly proc: ChildProcess;
  readonly #queue: ChildMessage[] = [];
  #notify: (() => void) | undefined;
  #exited = false;

  constructor(script: string, args: string[]) {
    const file = path.join(import.meta.dirname, script);
    this.proc = spawn('taskset', ['-c', GENERATOR_CORE, process.execPath, file, ...args], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.proc.on('message', (m: ChildMessage) => { this.#queue.push(m); this.#notify?.(); });
    this.proc.on('exit', () => { this.#exited = true; this.#notify?.(); });
  }

  send(msg: ParentMessage): void {
    if (this.proc.connected) this.proc.send(msg);
  }

  /** The next message, which must be of `kind`; rejects on an 'error' message, exit or timeout. */
  async expect<K extends Kind>(kind: K, timeoutMs: number): Promise<Of<K>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.#queue.shift();
      if (m !== undefined) {
        if (m.kind === kind) return m as Of<K>;
        if (m.kind === 'error') throw new Error(`generator: ${m.message}`);
        throw new Error(`generator sent '${m.kind}', expected '${kind}'`);
      }
      if (this.#exited) throw new Error(`generator exited (code ${this.proc.exitCode}) before '${kind}'`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no '${kind}' from the generator within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#notify = () => { clearTimeout(t); this.#notify = undefined; resolve(); };
      });
    }
  }

  /** Waits for the process to exit; kills it after `timeoutMs`. */
  async exit(timeoutMs: number): Promise<void> {
    if (this.#exited) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => { this.proc.kill('SIGKILL'); resolve(); }, timeoutMs);
      this.proc.once('exit', () => { clearTimeout(t); resolve(); });
    });
  }
}
