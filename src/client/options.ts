/** ClientOptions, their defaults, and the CONNECT packet they make. */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import {
  type ConnectPacket, PacketType, type Properties, type QoS, type UserProperties, type WillMessage,
} from '../protocol/index.js';
import type { ReconnectOptions } from './backoff.js';
import type { OfflineQueueOptions } from './offline-queue.js';
import type { InflightStore } from './store.js';
import type { ClientTimers } from './timers.js';

/** The CONNECT properties of MQTT 5.0 (§3.1.2.11). */
export interface ConnectProperties {
  sessionExpiryInterval?: number;
  receiveMaximum?: number;
  maximumPacketSize?: number;
  /** Aliases the server may use for messages to this client; none unless set [MQTT-3.1.2-27]. */
  topicAliasMaximum?: number;
  requestResponseInformation?: boolean;
  requestProblemInformation?: boolean;
  userProperties?: UserProperties;
  authenticationMethod?: string;
  authenticationData?: Buffer;
}

export interface WillOptions {
  topic: string;
  payload: Buffer | Uint8Array | string;
  qos?: QoS;
  retain?: boolean;
  properties?: Properties;
}

export interface ClientOptions {
  /** Default: 5.0 lets the server assign one; 3.1 / 3.1.1 get a random `petrel-…` id. */
  clientId?: string;
  /** Default 5. */
  protocolVersion?: 3 | 4 | 5;
  /** Clean Session (3.1 / 3.1.1) or Clean Start (5.0). Default true. */
  clean?: boolean;
  /** Seconds; 0 turns keep alive off. Default 60. */
  keepalive?: number;
  username?: string;
  password?: Buffer | string;
  will?: WillOptions;
  /** 5.0 only. */
  properties?: ConnectProperties;
  /** Milliseconds to wait for CONNACK. Default 30,000. */
  connectTimeout?: number;
  /** Default: real timers, unref'd. */
  timers?: ClientTimers;
  /** Where QoS 1/2 state lives. Default: a new MemoryStore. */
  store?: InflightStore;
  /** Messages one `messages()` iterator buffers before it drops the oldest. Default 1000. */
  messageBufferSize?: number;
  /**
   * Reconnect after a lost connection, with exponential backoff and jitter. Default on for a URL,
   * off for a stream or a factory (pass `true` or options to turn it on). `end()` stops it.
   */
  reconnect?: ReconnectOptions | boolean;
  /** Bounds of the publishes kept while reconnecting (see OfflineQueueOptions). */
  offlineQueue?: OfflineQueueOptions;
  /** 5.0: send repeated topics as Topic Aliases, up to the server's Topic Alias Maximum (LRU). Default false. */
  topicAliases?: boolean;
  /** 5.0 enhanced authentication with `username` and `password`; built in: 'SCRAM-SHA-256'. */
  authenticationMethod?: string;
  /** TLS of mqtts:// and wss:// URLs: trusted CAs, client certificate and key (PEM). */
  ca?: string | Buffer | (string | Buffer)[];
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Default true. */
  rejectUnauthorized?: boolean;
  servername?: string;
  /** Extra HTTP headers of a ws:// or wss:// upgrade request. */
  wsHeaders?: Record<string, string>;
}

export const DEFAULT_KEEPALIVE = 60;
export const DEFAULT_CONNECT_TIMEOUT = 30_000;
export const DEFAULT_MESSAGE_BUFFER = 1000;

export function toBuffer(data: Buffer | Uint8Array | string): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The CONNECT for these options; `clientId` is the one chosen (generated for 3.1 / 3.1.1 if absent). */
export function buildConnect(o: ClientOptions): ConnectPacket {
  const version = o.protocolVersion ?? 5;
  const keepalive = o.keepalive ?? DEFAULT_KEEPALIVE;
  if (!Number.isInteger(keepalive) || keepalive < 0 || keepalive > 0xffff) throw new RangeError('keepalive must be an integer from 0 to 65535');
  const clientId = o.clientId ?? (version === 5 ? '' : `petrel-${randomBytes(6).toString('hex')}`);
  const packet: ConnectPacket = {
    type: PacketType.Connect, protocolVersion: version, protocolName: version === 3 ? 'MQIsdp' : 'MQTT',
    clientId, clean: o.clean ?? true, keepalive,
  };
  if (o.username !== undefined) packet.username = o.username;
  if (o.password !== undefined) packet.password = toBuffer(o.password);
  if (o.will !== undefined) {
    const w = o.will;
    const will: WillMessage = { topic: w.topic, payload: toBuffer(w.payload), qos: w.qos ?? 0, retain: w.retain ?? false };
    if (w.properties !== undefined && version === 5) will.properties = w.properties;
    packet.will = will;
  }
  if (version === 5 && o.properties !== undefined) packet.properties = connectProperties(o.properties);
  return packet;
}

/** Copies only the CONNECT properties that are set: an unset Topic Alias Maximum is not advertised. */
function connectProperties(p: ConnectProperties): Properties | undefined {
  const out: Properties = {};
  let any = false;
  for (const key of Object.keys(p) as (keyof ConnectProperties)[]) {
    const value = p[key];
    if (value === undefined) continue;
    (out as Record<string, unknown>)[key] = value;
    any = true;
  }
  return any ? out : undefined;
}
