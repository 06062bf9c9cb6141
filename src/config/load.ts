/**
 * The command line: the flags the server accepts (one table, which also writes `--help`), and
 * the configuration they give: defaults, then the file given by --config (YAML or JSON), then flags.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { ConfigError, defaultConfig, type ListenerConfig, type ServerConfig, validateConfig } from './schema.js';

interface Flag {
  type: 'string' | 'boolean';
  short?: string;
  /** Placeholder for the value in the usage text. */
  value?: string;
  help: string;
}

/** Every flag `petrel` accepts; `usage()` lists them in this order. */
export const FLAGS = {
  config: { type: 'string', short: 'c', value: '<file>', help: 'read the configuration from a YAML or JSON (.json) file' },
  port: { type: 'string', short: 'p', value: '<port>', help: 'TCP port to listen on; 0 picks a free port (default 1883)' },
  'ws-port': { type: 'string', value: '<port|off>', help: 'WebSocket port (path /mqtt), or off (default 8083)' },
  'tls-port': { type: 'string', value: '<port>', help: 'also listen for MQTT over TLS on this port (needs --cert, --key)' },
  cert: { type: 'string', value: '<file>', help: 'TLS certificate (PEM) for --tls-port' },
  key: { type: 'string', value: '<file>', help: 'TLS private key (PEM) for --tls-port' },
  ca: { type: 'string', value: '<file>', help: 'CA certificates (PEM): clients may present a certificate it signed' },
  'http-port': { type: 'string', value: '<port|off>', help: 'HTTP API port, or off (default 18083)' },
  host: { type: 'string', value: '<address>', help: 'address to bind (default 0.0.0.0)' },
  store: { type: 'string', value: '<sqlite|memory>', help: 'where persistent sessions and retained messages live (default sqlite)' },
  'data-dir': { type: 'string', value: '<dir>', help: 'directory of the SQLite store (default ./data)' },
  'cluster-redis': { type: 'string', value: '<url>', help: 'join a cluster over this Redis (redis://host:port); the store is then Redis' },
  'node-id': { type: 'string', value: '<id>', help: "this node's id in the cluster (default: the host name)" },
  'log-level': { type: 'string', value: '<level>', help: 'fatal, error, warn, info, debug, trace or silent (default info)' },
  help: { type: 'boolean', short: 'h', help: 'print this help and exit' },
  version: { type: 'boolean', help: 'print the version and exit' },
} as const satisfies Record<string, Flag>;

/** What the command line asks for. */
export type Command = { action: 'help' } | { action: 'version' } | { action: 'run'; config: ServerConfig };

/** The `--help` text. */
export function usage(): string {
  const rows = Object.entries(FLAGS as Record<string, Flag>).map(([name, f]) => {
    const left = `${f.short !== undefined ? `-${f.short}, ` : '    '}--${name}${f.value !== undefined ? ` ${f.value}` : ''}`;
    return `  ${left.padEnd(28)}${f.help}`;
  });
  return [
    'Usage: petrel [options]',
    '',
    'Starts an MQTT 3.1, 3.1.1 and 5.0 broker. Flags override the configuration file.',
    '',
    'Options:',
    ...rows,
    '',
    'Commands: petrel passwd [-c|-D] <file> <user>  sets (or with -D deletes) a user in a password file',
    '          petrel bench <conn|pub|sub|fanout|fanin|p2p> [options]  load-tests any MQTT broker (petrel bench --help)',
    '          petrel pub -t <topic> -m <message> [options]  publishes, as mosquitto_pub (petrel pub --help)',
    '          petrel sub -t <topic> [options]  subscribes and prints messages, as mosquitto_sub (petrel sub --help)',
    '',
    'Signals: SIGINT and SIGTERM stop the server; SIGHUP re-reads TLS certificates and keeps running.',
    '',
  ].join('\n');
}

/** Parses the arguments; throws (TypeError from parseArgs, or ConfigError) on a bad one. */
export function parseCommandLine(argv: string[]): Command {
  const { values } = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false });
  if (values.help === true) return { action: 'help' };
  if (values.version === true) return { action: 'version' };
  let config = defaultConfig();
  if (values.config !== undefined) {
    const text = readFileSync(values.config, 'utf8');
    const data: unknown = values.config.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
    config = validateConfig(data, config);
  }
  const flags: Record<string, unknown> = {};
  const portFlag = (key: string, text: string | undefined, offAllowed: boolean): void => {
    if (text === undefined) return;
    if (offAllowed && text === 'off') {
      flags[key] = false;
      return;
    }
    const port = Number(text);
    if (!Number.isInteger(port)) throw new ConfigError(key, `must be an integer${offAllowed ? ' or off' : ''}, got "${text}"`);
    flags[key] = port;
  };
  portFlag('port', values.port, false);
  portFlag('wsPort', values['ws-port'], true);
  portFlag('tlsPort', values['tls-port'], false);
  portFlag('http.port', values['http-port'], true);
  const httpPort = flags['http.port'];
  delete flags['http.port'];
  if (httpPort !== undefined) flags.http = httpPort === false ? { enabled: false } : { enabled: true, port: httpPort };
  for (const k of ['cert', 'key', 'ca'] as const) if (values[k] !== undefined) flags[k] = values[k];
  if (values.store !== undefined || values['data-dir'] !== undefined) {
    flags.store = {
      ...(values.store !== undefined ? { type: values.store } : {}),
      ...(values['data-dir'] !== undefined ? { dataDir: values['data-dir'] } : {}),
    };
  }
  if (values['cluster-redis'] !== undefined || values['node-id'] !== undefined) {
    flags.cluster = {
      ...(values['cluster-redis'] !== undefined ? { redis: values['cluster-redis'] } : {}),
      ...(values['node-id'] !== undefined ? { nodeId: values['node-id'] } : {}),
    };
  }
  if (values.host !== undefined) flags.host = values.host;
  if (values['log-level'] !== undefined) flags.logLevel = values['log-level'];
  config = validateConfig(flags, config);
  if (config.listeners !== undefined) config = { ...config, listeners: withFlags(config.listeners, flags) };
  return { action: 'run', config };
}

/** The configuration the arguments give (--help and --version are refused here). */
export function loadConfig(argv: string[]): ServerConfig {
  const command = parseCommandLine(argv);
  if (command.action !== 'run') throw new ConfigError(`--${command.action}`, 'not a configuration flag');
  return command.config;
}

/**
 * With a `listeners` list in the file, --port, --ws-port and --tls-port (with --cert, --key,
 * --ca) set the port of the first listener of their type, or add one; --ws-port off removes the
 * WebSocket listeners.
 */
function withFlags(listeners: ListenerConfig[], flags: Record<string, unknown>): ListenerConfig[] {
  let out = listeners.map((l) => ({ ...l }));
  const set = (type: ListenerConfig['type'], port: unknown, extra: Partial<ListenerConfig> = {}): void => {
    if (port === undefined) return;
    if (port === false) {
      out = out.filter((l) => l.type !== type);
      return;
    }
    const found = out.find((l) => l.type === type);
    if (found !== undefined) Object.assign(found, { port, ...extra });
    else out.push({ type, port: port as number, ...extra });
  };
  set('tcp', flags.port);
  set('ws', flags.wsPort);
  const tls: Partial<ListenerConfig> = {};
  for (const k of ['cert', 'key', 'ca'] as const) if (typeof flags[k] === 'string') tls[k] = flags[k] as string;
  set('tls', flags.tlsPort, tls);
  return validateConfig({ listeners: out }).listeners as ListenerConfig[];
}
