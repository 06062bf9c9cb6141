/** The command line of `petrel bench`: scenarios, flags, their defaults and bounds. */
import { parseArgs } from 'node:util';
import { type BenchScheme, isAddress } from '../transport/bench-sockets.js';
import { HEADER_BYTES, MAX_PUBLISHERS } from './payload.js';

export const SCENARIOS = ['conn', 'pub', 'sub', 'fanout', 'fanin', 'p2p'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Hard bounds: every run ends, whatever the flags say. */
export const MAX_DURATION_S = 3600;
export const MAX_CLIENTS = 200_000;

export interface BenchOptions {
  scenario: Scenario;
  scheme: BenchScheme;
  host: string;
  port: number;
  path: string;
  /** Clients (conn, pub, sub), subscribers (fanout), publishers (fanin) or pairs (p2p). */
  count: number;
  /** fanout: publishers; fanin: subscribers. */
  others: number;
  /** New connections per second. */
  rate: number;
  /** Milliseconds between the PUBLISH of one client; 0 = as fast as the window allows. */
  interval: number;
  qos: 0 | 1 | 2;
  size: number;
  /** Topic pattern (%i client number, %c client id, %rand random 32-bit hex, %rand_N random below N). */
  topic: string;
  version: 3 | 4 | 5;
  durationS: number;
  /** Messages per publisher; 0 = until the duration ends. */
  messages: number;
  inflight: number;
  keepalive: number;
  username?: string;
  password?: string;
  cafile?: string;
  cert?: string;
  key?: string;
  insecure: boolean;
  ifaddr: string[];
  json: boolean;
  clientIdPrefix: string;
}

const FLAGS = {
  host: { type: 'string', short: 'h' },
  port: { type: 'string', short: 'p' },
  url: { type: 'string' },
  count: { type: 'string', short: 'c' },
  publishers: { type: 'string' },
  subscribers: { type: 'string' },
  rate: { type: 'string', short: 'R' },
  interval: { type: 'string', short: 'I' },
  'msg-rate': { type: 'string' },
  qos: { type: 'string', short: 'q' },
  size: { type: 'string', short: 's' },
  topic: { type: 'string', short: 't' },
  version: { type: 'string', short: 'V' },
  duration: { type: 'string', short: 'd' },
  messages: { type: 'string', short: 'n' },
  inflight: { type: 'string' },
  keepalive: { type: 'string', short: 'k' },
  username: { type: 'string', short: 'u' },
  password: { type: 'string', short: 'P' },
  cafile: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  insecure: { type: 'boolean' },
  ifaddr: { type: 'string' },
  prefix: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

export const USAGE = [
  'Usage: petrel bench <conn|pub|sub|fanout|fanin|p2p> [options]',
  '',
  'Load-tests any MQTT broker. conn: a connect storm; pub / sub: publishers or subscribers only;',
  'fanout: --publishers (1) to --count subscribers; fanin: --count publishers to --subscribers (1);',
  'p2p: --count pairs, each publisher to its own subscriber. Progress goes to stderr, the summary to stdout.',
  '',
  'Options:',
  '  -h, --host <host>          broker host (default 127.0.0.1)',
  '  -p, --port <port>          broker port (default 1883; 8883 mqtts, 8083 ws, 8084 wss)',
  '      --url <url>            mqtt://, mqtts://, ws:// or wss://host:port/path instead of -h/-p',
  '  -c, --count <n>            clients, subscribers (fanout), publishers (fanin) or pairs (p2p); default 10',
  '      --publishers <n>       fanout: publishers (default 1)',
  '      --subscribers <n>      fanin: subscribers (default 1)',
  '  -R, --rate <n>             new connections per second (default 1000)',
  '  -I, --interval <ms>        milliseconds between the messages of one publisher (default 0: as fast as possible)',
  '      --msg-rate <n>         total messages per second of all publishers (instead of -I)',
  '  -q, --qos <0|1|2>          QoS of PUBLISH and SUBSCRIBE (default 0)',
  `  -s, --size <bytes>         payload size, at least ${HEADER_BYTES} (default 256)`,
  '  -t, --topic <pattern>      topic; %i client number, %c client id, %rand, %rand_N (default per scenario)',
  '  -V, --version <3|4|5>      MQTT 3.1, 3.1.1 or 5.0 (default 4)',
  `  -d, --duration <s>         seconds of load after everyone is connected (default 10, at most ${MAX_DURATION_S})`,
  '  -n, --messages <n>         messages per publisher (default 0: until the duration ends)',
  '      --inflight <n>         QoS 1/2: unacknowledged messages per publisher (default 64)',
  '  -k, --keepalive <s>        keep alive (default 60)',
  '  -u, --username <name>      user name',
  '  -P, --password <text>      password',
  '      --cafile <file>        CA certificates (PEM) for mqtts:// and wss://',
  '      --cert <file>          client certificate (PEM)',
  '      --key <file>           client private key (PEM)',
  '      --insecure             do not verify the broker\'s certificate',
  '      --ifaddr <a,b,...>     source addresses, used in turn by successive connections',
  '      --prefix <text>        client identifier prefix (default pb<pid>-)',
  '      --json                 print the summary as one JSON object',
  '      --help                 print this help',
  '',
].join('\n');

export class UsageError extends Error {}

function int(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name} must be a whole number, not '${text}'`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}`);
  return n;
}

const DEFAULT_PORT: Record<BenchScheme, number> = { mqtt: 1883, mqtts: 8883, ws: 8083, wss: 8084 };
const DEFAULT_TOPIC: Record<Scenario, string> = {
  conn: 'petrel-bench/conn', pub: 'petrel-bench/%i', sub: 'petrel-bench/#',
  fanout: 'petrel-bench/fanout', fanin: 'petrel-bench/fanin', p2p: 'petrel-bench/p2p/%i',
};

/** Parses `argv` (after `bench`); undefined for --help. Throws UsageError. */
export function parseBenchArgs(argv: string[]): BenchOptions | undefined {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values: v, positionals } = parsed;
  if (v.help === true) return undefined;
  if (positionals.length !== 1) throw new UsageError('name one scenario: conn, pub, sub, fanout, fanin or p2p');
  const scenario = positionals[0] as Scenario;
  if (!SCENARIOS.includes(scenario)) throw new UsageError(`unknown scenario '${positionals[0]}'`);

  let scheme: BenchScheme = 'mqtt';
  let host = v.host ?? '127.0.0.1';
  let port: number | undefined;
  let path = '/mqtt';
  let username = v.username;
  let password = v.password;
  if (v.url !== undefined) {
    let url: URL;
    try {
      url = new URL(v.url);
    } catch {
      throw new UsageError(`--url '${v.url}' is not a URL`);
    }
    const s = url.protocol.replace(/:$/, '');
    if (s !== 'mqtt' && s !== 'mqtts' && s !== 'ws' && s !== 'wss') throw new UsageError(`--url: use mqtt://, mqtts://, ws:// or wss://, not ${url.protocol}//`);
    scheme = s;
    host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (url.port !== '') port = Number(url.port);
    if (url.pathname !== '' && url.pathname !== '/') path = url.pathname + url.search;
    if (url.username !== '') username ??= decodeURIComponent(url.username);
    if (url.password !== '') password ??= decodeURIComponent(url.password);
  }
  if (v.port !== undefined) port = int('port', v.port, 0, 1, 65535);
  const count = int('count', v.count, 10, 1, MAX_CLIENTS);
  const others = scenario === 'fanout' ? int('publishers', v.publishers, 1, 1, MAX_CLIENTS)
    : scenario === 'fanin' ? int('subscribers', v.subscribers, 1, 1, MAX_CLIENTS) : 0;
  if (count + others > MAX_CLIENTS || count > MAX_PUBLISHERS) throw new UsageError(`at most ${MAX_CLIENTS} clients`);
  const qos = int('qos', v.qos, 0, 0, 2) as 0 | 1 | 2;
  const version = int('version', v.version, 4, 3, 5) as 3 | 4 | 5;
  const publishers = scenario === 'fanout' ? others : scenario === 'fanin' || scenario === 'pub' || scenario === 'p2p' ? count : 0;
  let interval = int('interval', v.interval, 0, 0, 3_600_000);
  if (v['msg-rate'] !== undefined) {
    if (v.interval !== undefined) throw new UsageError('give -I/--interval or --msg-rate, not both');
    const total = int('msg-rate', v['msg-rate'], 0, 1, 100_000_000);
    interval = publishers > 0 ? (publishers * 1000) / total : 0;
  }
  if ((v.cert === undefined) !== (v.key === undefined)) throw new UsageError('--cert and --key go together');
  const options: BenchOptions = {
    scenario, scheme, host, port: port ?? DEFAULT_PORT[scheme], path, count, others,
    rate: int('rate', v.rate, 1000, 1, 1_000_000),
    interval, qos,
    size: int('size', v.size, 256, HEADER_BYTES, 256 * 1024 * 1024 - 1024),
    topic: v.topic ?? DEFAULT_TOPIC[scenario],
    version,
    durationS: int('duration', v.duration, 10, 1, MAX_DURATION_S),
    messages: int('messages', v.messages, 0, 0, 1 << 26),
    inflight: int('inflight', v.inflight, 64, 1, 65535),
    keepalive: int('keepalive', v.keepalive, 60, 0, 65535),
    insecure: v.insecure === true,
    ifaddr: sourceAddresses(v.ifaddr),
    json: v.json === true,
    clientIdPrefix: v.prefix ?? `pb${process.pid}-`,
  };
  if (username !== undefined) options.username = username;
  if (password !== undefined) options.password = password;
  if (v.cafile !== undefined) options.cafile = v.cafile;
  if (v.cert !== undefined) options.cert = v.cert;
  if (v.key !== undefined) options.key = v.key;
  return options;
}

function sourceAddresses(text: string | undefined): string[] {
  if (text === undefined) return [];
  const list = text.split(',').map((a) => a.trim()).filter((a) => a !== '');
  const bad = list.find((a) => !isAddress(a));
  if (bad !== undefined) throw new UsageError(`--ifaddr takes IP addresses, not '${bad}'`);
  if (list.length === 0) throw new UsageError('--ifaddr needs at least one address');
  return list;
}

/** Expands a topic pattern for client number `i` with identifier `clientId`. */
export function expandTopic(pattern: string, i: number, clientId: string, random: () => number = Math.random): string {
  return pattern.replace(/%rand_(\d+)|%rand|%i|%c/g, (m: string, n: string | undefined) => {
    if (m === '%i') return String(i);
    if (m === '%c') return clientId;
    if (n !== undefined) return String(Math.floor(random() * Math.max(1, Number(n))));
    return Math.floor(random() * 0x100000000).toString(16).padStart(8, '0');
  });
}
