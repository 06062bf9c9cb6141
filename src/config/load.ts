/** Reads the configuration: defaults, then the file given by --config (YAML or JSON), then flags. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { ConfigError, defaultConfig, type ServerConfig, validateConfig } from './schema.js';

export function loadConfig(argv: string[]): ServerConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string', short: 'h' },
      'log-level': { type: 'string' },
      config: { type: 'string', short: 'c' },
    },
    strict: true,
    allowPositionals: false,
  });
  let config = defaultConfig();
  if (values.config !== undefined) {
    const text = readFileSync(values.config, 'utf8');
    const data: unknown = values.config.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    config = validateConfig(data, config);
  }
  const flags: Record<string, unknown> = {};
  if (values.port !== undefined) {
    const port = Number(values.port);
    if (!Number.isInteger(port)) throw new ConfigError('port', `must be an integer, got "${values.port}"`);
    flags.port = port;
  }
  if (values.host !== undefined) flags.host = values.host;
  if (values['log-level'] !== undefined) flags.logLevel = values['log-level'];
  return validateConfig(flags, config);
}
