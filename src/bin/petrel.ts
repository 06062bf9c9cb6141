#!/usr/bin/env node
/** `petrel`: starts the broker. Parses arguments, loads the config, handles signals. */
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../config/schema.js';
import { startServer } from '../server.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.argv.slice(2));
  } catch (err) {
    const message = err instanceof ConfigError || err instanceof Error ? err.message : String(err);
    process.stderr.write(`petrel: ${message}\n`);
    process.exit(2);
  }
  const server = await startServer(config);
  process.stdout.write(`petrel listening on ${server.listener.host}:${server.listener.port}\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(0), 4500);
    force.unref();
    server.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`petrel: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
