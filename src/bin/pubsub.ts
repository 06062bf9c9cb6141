/**
 * `petrel pub` and `petrel sub`: publish and subscribe from the command line with the options
 * mosquitto_pub / mosquitto_sub users know, on Petrel's client. Exit codes follow them: 0 done,
 * 1 an error (connection refused, a refused CONNACK or SUBACK, a bad argument: 1 as they do),
 * 27 when `sub -W` times out.
 */
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { connect, type MqttClient } from '../client/index.js';
import type { ClientOptions } from '../client/options.js';
import type { ReceivedMessage } from '../client/messages.js';
import type { Properties, QoS } from '../protocol/index.js';

const COMMON = {
  host: { type: 'string', short: 'h' },
  port: { type: 'string', short: 'p' },
  url: { type: 'string', short: 'L' },
  topic: { type: 'string', short: 't', multiple: true },
  qos: { type: 'string', short: 'q' },
  username: { type: 'string', short: 'u' },
  pw: { type: 'string', short: 'P' },
  id: { type: 'string', short: 'i' },
  'protocol-version': { type: 'string', short: 'V' },
  keepalive: { type: 'string', short: 'k' },
  cafile: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  insecure: { type: 'boolean' },
  property: { type: 'string', short: 'D', multiple: true },
  debug: { type: 'boolean', short: 'd' },
  help: { type: 'boolean' },
} as const;

const PUB = {
  ...COMMON,
  message: { type: 'string', short: 'm' },
  file: { type: 'string', short: 'f' },
  lines: { type: 'boolean', short: 'l' },
  stdin: { type: 'boolean', short: 's' },
  null: { type: 'boolean', short: 'n' },
  retain: { type: 'boolean', short: 'r' },
} as const;

const SUB = {
  ...COMMON,
  count: { type: 'string', short: 'C' },
  verbose: { type: 'boolean', short: 'v' },
  timeout: { type: 'string', short: 'W' },
  format: { type: 'string', short: 'F' },
  json: { type: 'boolean' },
  'no-clean': { type: 'boolean', short: 'c' },
  'no-retained': { type: 'boolean', short: 'R' },
} as const;

export interface Io {
  stdin: NodeJS.ReadableStream;
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

const PUB_USAGE = `Usage: petrel pub {-t topic | -L url} {-m message | -f file | -l | -s | -n} [options]
  -h host (localhost)  -p port (1883)  -L mqtt://|mqtts://|ws://|wss://host:port[/path]
  -q 0|1|2  -r retain  -u user  -P password  -i client id  -V 31|311|5 (5)  -k keepalive (60)
  -D publish user-property <k> <v> | -D publish message-expiry-interval <s>
  --cafile file  --cert file  --key file  --insecure
`;
const SUB_USAGE = `Usage: petrel sub {-t topic ... | -L url} [options]
  -h host (localhost)  -p port (1883)  -L url  -q 0|1|2  -u user  -P password  -i client id
  -c (persistent session)  -V 31|311|5 (5)  -C count  -W timeout (s)  -v (topic and payload)
  -F format (%t topic, %p payload, %q QoS, %r retain, %l length, %j JSON, \\n)  --json (JSON lines)
  -R (skip retained)  --cafile file  --cert file  --key file  --insecure
`;

class UsageError extends Error {}

function int(name: string, v: string | undefined, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be an integer from ${min} to ${max}, got "${v}"`);
  return n;
}

function versionOf(v: string | undefined): 3 | 4 | 5 {
  switch (v ?? '5') {
    case '31': case 'mqttv31': return 3;
    case '311': case 'mqttv311': return 4;
    case '5': case 'mqttv5': return 5;
    default: throw new UsageError(`-V must be 31, 311 or 5, got "${String(v)}"`);
  }
}

type Common = { [K in keyof typeof COMMON]?: (typeof COMMON)[K] extends { multiple: true } ? string[]
  : (typeof COMMON)[K] extends { type: 'boolean' } ? boolean : string };

/** The broker URL and client options the common flags give. */
function clientSetup(v: Common, clean: boolean): { url: string; options: ClientOptions } {
  let url = v.url;
  if (url === undefined) url = `mqtt://${v.host ?? 'localhost'}:${int('-p', v.port, 1, 65535, 1883)}`;
  if (!/^(mqtts?|wss?):\/\//.test(url)) throw new UsageError(`-L must be an mqtt://, mqtts://, ws:// or wss:// URL, got "${url}"`);
  if (url.startsWith('ws') && new URL(url).pathname === '/') url = `${url.replace(/\/$/, '')}/mqtt`;
  const options: ClientOptions = {
    protocolVersion: versionOf(v['protocol-version']),
    clean,
    keepalive: int('-k', v.keepalive, 0, 65535, 60),
    reconnect: false,
    connectTimeout: 10_000,
    ...(v.id !== undefined ? { clientId: v.id } : {}),
    ...(v.username !== undefined ? { username: v.username } : {}),
    ...(v.pw !== undefined ? { password: v.pw } : {}),
    ...(v.cafile !== undefined ? { ca: readFileSync(v.cafile) } : {}),
    ...(v.cert !== undefined ? { cert: readFileSync(v.cert) } : {}),
    ...(v.key !== undefined ? { key: readFileSync(v.key) } : {}),
    ...(v.insecure === true ? { rejectUnauthorized: false } : {}),
  };
  return { url, options };
}

/** `-D publish user-property k v` and `-D publish message-expiry-interval s`, as the remaining argument list gives them. */
function publishProperties(argv: string[]): { argv: string[]; properties: Properties | undefined } {
  const out: string[] = [];
  const props: Properties = {};
  let any = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if ((a === '-D' || a === '--property') && argv[i + 1] === 'publish') {
      const name = argv[i + 2];
      if (name === 'user-property') {
        const k = argv[i + 3];
        const val = argv[i + 4];
        if (k === undefined || val === undefined) throw new UsageError('-D publish user-property needs a key and a value');
        (props.userProperties ??= []).push([k, val]);
        i += 4;
      } else if (name === 'message-expiry-interval') {
        props.messageExpiryInterval = int('message-expiry-interval', argv[i + 3], 0, 0xffffffff, 0);
        i += 3;
      } else {
        throw new UsageError(`-D publish ${String(name)}: only user-property and message-expiry-interval are supported`);
      }
      any = true;
      continue;
    }
    out.push(a);
  }
  return { argv: out, properties: any ? props : undefined };
}

async function open(url: string, options: ClientOptions, io: Io): Promise<MqttClient | undefined> {
  try {
    return await connect(url, options);
  } catch (err) {
    const code = (err as { reasonCode?: number }).reasonCode;
    io.stderr.write(`Error: ${code !== undefined ? `connection refused (0x${code.toString(16)})` : err instanceof Error ? err.message : String(err)}\n`);
    return undefined;
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks);
}

/** `petrel pub ...`: resolves to the exit code. */
export async function runPub(argv: string[], io: Io): Promise<number> {
  let props: Properties | undefined;
  let values: Record<string, unknown>;
  try {
    const split = publishProperties(argv);
    props = split.properties;
    values = parseArgs({ args: split.argv, options: PUB, strict: true, allowPositionals: false }).values;
  } catch (err) {
    io.stderr.write(`petrel pub: ${err instanceof Error ? err.message : String(err)}\n${PUB_USAGE}`);
    return 1;
  }
  if (values.help === true) {
    io.stdout.write(PUB_USAGE);
    return 0;
  }
  const v = values as Common & { message?: string; file?: string; lines?: boolean; stdin?: boolean; null?: boolean; retain?: boolean };
  let setup: ReturnType<typeof clientSetup>;
  let qos: QoS;
  try {
    setup = clientSetup(v, true);
    qos = int('-q', v.qos, 0, 2, 0) as QoS;
    const sources = [v.message !== undefined, v.file !== undefined, v.lines === true, v.stdin === true, v.null === true].filter(Boolean).length;
    if (sources !== 1) throw new UsageError('give exactly one of -m, -f, -l, -s or -n');
    if ((v.topic ?? []).length !== 1) throw new UsageError('give one topic with -t');
  } catch (err) {
    io.stderr.write(`petrel pub: ${err instanceof Error ? err.message : String(err)}\n${PUB_USAGE}`);
    return 1;
  }
  const topic = (v.topic as string[])[0] as string;
  const client = await open(setup.url, setup.options, io);
  if (client === undefined) return 1;
  const publishOptions = { qos, retain: v.retain === true, ...(props !== undefined ? { properties: props } : {}) };
  try {
    if (v.lines === true) {
      // One message per line of stdin, as it arrives.
      const rl = createInterface({ input: io.stdin, crlfDelay: Infinity });
      for await (const line of rl) await client.publish(topic, line, publishOptions);
    } else {
      const payload = v.message !== undefined ? Buffer.from(v.message) : v.file !== undefined ? readFileSync(v.file)
        : v.stdin === true ? await readAll(io.stdin) : Buffer.alloc(0);
      await client.publish(topic, payload, publishOptions);
    }
  } catch (err) {
    io.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    await client.end().catch(() => undefined);
    return 1;
  }
  await client.end().catch(() => undefined);
  return 0;
}

/** A message as `-F` says, mosquitto_sub's way: %t %p %q %r %l %j %%, \n and \t; no newline added. */
export function formatMessage(format: string, m: ReceivedMessage): string {
  let out = '';
  for (let i = 0; i < format.length; i++) {
    const ch = format[i] as string;
    const next = format[i + 1];
    if (ch === '%' && next !== undefined) {
      i++;
      switch (next) {
        case 't': out += m.topic; break;
        case 'p': out += m.payload.toString(); break;
        case 'q': out += String(m.qos); break;
        case 'r': out += m.retain ? '1' : '0'; break;
        case 'l': out += String(m.payload.length); break;
        case 'j': out += jsonOf(m); break;
        case '%': out += '%'; break;
        default: out += `%${next}`;
      }
    } else if (ch === '\\' && next !== undefined) {
      i++;
      out += next === 'n' ? '\n' : next === 't' ? '\t' : next === '\\' ? '\\' : `\\${next}`;
    } else {
      out += ch;
    }
  }
  return out;
}

function jsonOf(m: ReceivedMessage): string {
  const text = m.payload.toString();
  const printable = Buffer.from(text).equals(m.payload);
  return JSON.stringify({
    tst: new Date().toISOString(), topic: m.topic, qos: m.qos, retain: m.retain ? 1 : 0, payloadlen: m.payload.length,
    ...(printable ? { payload: text } : { payload_base64: m.payload.toString('base64') }),
    ...(m.properties?.userProperties !== undefined ? { user_properties: Object.fromEntries(m.properties.userProperties) } : {}),
  });
}

/** `petrel sub ...`: resolves to the exit code. */
export async function runSub(argv: string[], io: Io, signal?: AbortSignal): Promise<number> {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: argv, options: SUB, strict: true, allowPositionals: false }).values;
  } catch (err) {
    io.stderr.write(`petrel sub: ${err instanceof Error ? err.message : String(err)}\n${SUB_USAGE}`);
    return 1;
  }
  if (values.help === true) {
    io.stdout.write(SUB_USAGE);
    return 0;
  }
  const v = values as Common & { count?: string; verbose?: boolean; timeout?: string; format?: string; json?: boolean; 'no-clean'?: boolean; 'no-retained'?: boolean };
  let setup: ReturnType<typeof clientSetup>;
  let qos: QoS;
  let count: number;
  let timeout: number;
  try {
    setup = clientSetup(v, v['no-clean'] !== true);
    if (v['no-clean'] === true && v.id === undefined) throw new UsageError('-c needs a client id (-i)');
    qos = int('-q', v.qos, 0, 2, 0) as QoS;
    count = int('-C', v.count, 1, 2 ** 31 - 1, 0);
    timeout = int('-W', v.timeout, 1, 2 ** 31 - 1, 0);
    if ((v.topic ?? []).length === 0) throw new UsageError('give at least one topic with -t');
  } catch (err) {
    io.stderr.write(`petrel sub: ${err instanceof Error ? err.message : String(err)}\n${SUB_USAGE}`);
    return 1;
  }
  if (setup.options.protocolVersion === 5 && v['no-clean'] === true) {
    setup.options.properties = { ...setup.options.properties, sessionExpiryInterval: 0xffffffff };
  }
  const client = await open(setup.url, setup.options, io);
  if (client === undefined) return 1;
  const messages = client.messages();
  const granted = await client.subscribe((v.topic as string[]).map((t) => ({ topicFilter: t, qos }))).catch((err: unknown) => err);
  if (granted instanceof Error || (granted as { reasonCodes: number[] }).reasonCodes.some((c) => c >= 0x80)) {
    io.stderr.write(`Error: subscription refused${granted instanceof Error ? `: ${granted.message}` : ''}\n`);
    await client.end().catch(() => undefined);
    return 1;
  }
  let received = 0;
  let timedOut = false;
  const timer = timeout > 0 ? setTimeout(() => {
    timedOut = true;
    void messages.return?.();
  }, timeout * 1000) : undefined;
  const onAbort = (): void => void messages.return?.();
  signal?.addEventListener('abort', onAbort);
  try {
    for await (const m of messages) {
      if (v['no-retained'] === true && m.retain) continue;
      const line = v.json === true ? `${jsonOf(m)}\n` : v.format !== undefined ? formatMessage(v.format, m)
        : v.verbose === true ? `${m.topic} ${m.payload.toString()}\n` : `${m.payload.toString()}\n`;
      io.stdout.write(line);
      received++;
      if (count > 0 && received >= count) break;
    }
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
  await client.end().catch(() => undefined);
  if (timedOut) {
    io.stderr.write('Timed out\n');
    return 27;
  }
  return 0;
}

const io: Io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };

export function mainPub(argv: string[]): Promise<number> {
  return runPub(argv, io);
}

export function mainSub(argv: string[]): Promise<number> {
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  process.once('SIGTERM', () => ac.abort());
  return runSub(argv, io, ac.signal);
}
