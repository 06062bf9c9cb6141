#!/usr/bin/env node
/** `petrel`: starts the broker (parses arguments, loads the config, handles signals) or runs a subcommand. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommandLine, usage } from '../config/load.js';
import { applyParallelScavenge, lowerHelperThreads } from '../observability/helper-threads.js';
import { startServer } from '../server.js';

/** The version in Petrel's package.json, found from this module (dist/bin/ or build/src/bin/). */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'petrel' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // No package.json at this level: look one further up.
    }
    dir = dirname(dir);
  }
  throw new Error('package.json not found');
}

/** `petrel <name> ...`: each module's `main` gets the remaining arguments and resolves to the exit code. */
const SUBCOMMANDS = new Map<string, () => Promise<{ main(argv: string[]): Promise<number> }>>([
  ['passwd', () => import('./passwd.js')],
  ['bench', () => import('./bench.js')],
  ['pub', async () => ({ main: (await import('./pubsub.js')).mainPub })],
  ['sub', async () => ({ main: (await import('./pubsub.js')).mainSub })],
]);

async function main(): Promise<void> {
  const subcommand = SUBCOMMANDS.get(process.argv[2] ?? '');
  if (subcommand !== undefined) {
    process.exit(await (await subcommand()).main(process.argv.slice(3)));
  }
  let command;
  try {
    command = parseCommandLine(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`petrel: ${err instanceof Error ? err.message : String(err)}\nTry 'petrel --help'.\n`);
    process.exit(2);
  }
  if (command.action === 'help') {
    process.stdout.write(usage());
    return;
  }
  if (command.action === 'version') {
    process.stdout.write(`petrel ${packageVersion()}\n`);
    return;
  }
  // helperThreadNice (off by default): V8's helper threads and libuv's pool below the event loop.
  lowerHelperThreads(command.config.helperThreadNice);
  // parallelScavenge ('auto'): young collections on the main thread alone when this process may run on one CPU only.
  applyParallelScavenge(command.config.parallelScavenge);
  // Signal handlers first: the `listening` record can reach an operator (or a test) before
  // startServer's promise resumes here, and a SIGHUP then must not end the process.
  const started: { server?: Awaited<ReturnType<typeof startServer>> } = {};
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(0), 4500);
    force.unref();
    const server = started.server;
    if (server === undefined) process.exit(0);
    server.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // SIGHUP (a terminal hang-up, or `kill -HUP` from an operator) never ends the server.
  let reloadPending = false;
  const reload = (): void => {
    const running = started.server;
    if (running === undefined) {
      reloadPending = true; // still starting: reload once started
      return;
    }
    running.reload().catch((err: unknown) => running.logger.error({ err }, 'reload failed'));
  };
  process.on('SIGHUP', reload);
  started.server = await startServer(command.config);
  if (reloadPending) reload();
}

main().catch((err: unknown) => {
  process.stderr.write(`petrel: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
