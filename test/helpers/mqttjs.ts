/**
 * Helpers for tests that drive a real broker over TCP: MQTT.js clients, a raw socket client
 * built on Petrel's own codec, and bounded, event-driven waits (never sleeps).
 */
import type { Buffer } from 'node:buffer';
import type { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient, type MqttClientEventCallbacks } from 'mqtt';
import type { BrokerEvents } from '../../src/broker/events.js';
import { type Broker, createBroker } from '../../src/petrel.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import { Decoder, encode, type Packet, PacketType, type Properties, type QoS } from '../../src/protocol/index.js';

/** Default bound for every wait: generous for a loaded 2-core machine. */
export const WAIT_MS = 5000;

export type Version = 3 | 4 | 5;
export const VERSIONS: readonly Version[] = [3, 4, 5];
export const V3_V4: readonly Version[] = [3, 4];

export function versionName(v: Version): string {
  return v === 3 ? 'MQTT 3.1' : v === 4 ? 'MQTT 3.1.1' : 'MQTT 5.0';
}

/** MQTT.js options selecting a protocol level; 3.1 needs the old protocol name. */
export function versionOptions(v: Version): IClientOptions {
  return v === 3 ? { protocolVersion: 3, protocolId: 'MQIsdp' } : { protocolVersion: v };
}

/** Rejects with a clear message if `promise` does not settle within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

type Filter<A extends unknown[]> = (...args: A) => boolean;

/**
 * Resolves with the arguments of the next `event` (that passes `filter`) of `emitter`;
 * rejects after `ms`. Register it before triggering the event.
 */
export function waitFor<E extends keyof BrokerEvents>(emitter: Broker, event: E, ms?: number, filter?: Filter<BrokerEvents[E]>): Promise<BrokerEvents[E]>;
export function waitFor<E extends keyof MqttClientEventCallbacks>(
  emitter: MqttClient, event: E, ms?: number, filter?: Filter<Parameters<MqttClientEventCallbacks[E]>>,
): Promise<Parameters<MqttClientEventCallbacks[E]>>;
export function waitFor(emitter: EventEmitter, event: string, ms?: number, filter?: Filter<unknown[]>): Promise<unknown[]>;
export function waitFor(emitter: Broker | MqttClient | EventEmitter, event: string, ms = WAIT_MS, filter?: Filter<never[]>): Promise<unknown[]> {
  // All three have EventEmitter's on/off at run time; only their static typings differ.
  const e = emitter as unknown as EventEmitter;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      e.off(event, on);
      reject(new Error(`timed out after ${ms} ms waiting for "${event}"`));
    }, ms);
    const on = (...args: unknown[]): void => {
      if (filter !== undefined && !(filter as Filter<unknown[]>)(...args)) return;
      clearTimeout(timer);
      e.off(event, on);
      resolve(args);
    };
    e.on(event, on);
  });
}

// ---- brokers ----------------------------------------------------------------------------------

export interface TestBroker {
  broker: Broker;
  port: number;
  url: string;
}

/** A broker listening on 127.0.0.1 with a free port. Close it with `broker.close()`. */
export async function startBroker(options: BrokerOptions = {}): Promise<TestBroker> {
  const broker = createBroker(options);
  const listener = await broker.listen({ port: 0, host: '127.0.0.1' });
  return { broker, port: listener.port, url: `mqtt://127.0.0.1:${listener.port}` };
}

// ---- MQTT.js clients --------------------------------------------------------------------------

/** Options every test client gets: no automatic reconnect, bounded connect. */
export function clientOptions(v: Version, extra: IClientOptions = {}): IClientOptions {
  return { reconnectPeriod: 0, connectTimeout: WAIT_MS, ...versionOptions(v), ...extra };
}

/** Connects an MQTT.js client; resolves once CONNACK accepted it. */
export async function connectClient(url: string, v: Version, extra: IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(url, clientOptions(v, extra));
}

/** Ends clients without waiting for the broker (teardown must not hang on a dead peer). */
export async function endAll(clients: Iterable<MqttClient>): Promise<void> {
  await Promise.all([...clients].map((c) => withTimeout(c.endAsync(true), WAIT_MS, 'client end').catch(() => undefined)));
}

export interface Received {
  topic: string;
  payload: string;
  qos: QoS;
  retain: boolean;
  dup: boolean;
}

/** Records every PUBLISH an MQTT.js client receives; waits are event-driven and bounded. */
export class Inbox {
  readonly messages: Received[] = [];
  readonly #client: MqttClient;
  readonly #waiters = new Set<() => void>();

  constructor(client: MqttClient) {
    this.#client = client;
    client.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => {
      this.messages.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain, dup: packet.dup });
      for (const w of [...this.#waiters]) w();
    });
  }

  get client(): MqttClient {
    return this.#client;
  }

  /** Resolves once `check` holds over the messages received so far (checked on every arrival). */
  until(check: (messages: readonly Received[]) => boolean, what: string, ms = WAIT_MS): Promise<void> {
    if (check(this.messages)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        if (!check(this.messages)) return;
        this.#waiters.delete(waiter);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; received ${JSON.stringify(this.messages.map((m) => m.topic))}`));
      }, ms);
      this.#waiters.add(waiter);
    });
  }

  /** Resolves with the first message on `topic` (already received or the next one). */
  async next(topic: string, ms = WAIT_MS): Promise<Received> {
    await this.until((ms_) => ms_.some((m) => m.topic === topic), `a message on "${topic}"`, ms);
    return this.messages.find((m) => m.topic === topic) as Received;
  }

  count(n: number, ms = WAIT_MS): Promise<void> {
    return this.until((m) => m.length >= n, `${n} messages`, ms);
  }

  on(topic: string): Received[] {
    return this.messages.filter((m) => m.topic === topic);
  }
}

// ---- raw socket client ------------------------------------------------------------------------

/**
 * A bare TCP client speaking through Petrel's codec: for what MQTT.js will not send (zero-length
 * client id with Clean Session 0, silence after CONNECT) and for a reader that stops reading.
 */
export class RawClient {
  readonly socket: Socket;
  readonly version: Version;
  readonly decoder: Decoder;
  readonly packets: Packet[] = [];
  readonly chunks: Buffer[] = [];
  /** Resolves when the socket is closed (by either side). */
  readonly closed: Promise<void>;
  readonly #arrivals = new Set<() => void>();

  private constructor(socket: Socket, version: Version) {
    this.socket = socket;
    this.version = version;
    this.decoder = new Decoder({ protocolVersion: version });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      for (const p of this.decoder.push(chunk)) this.packets.push(p);
      for (const w of [...this.#arrivals]) w();
    });
  }

  static async connect(port: number, version: Version): Promise<RawClient> {
    const socket = netConnect({ port, host: '127.0.0.1' });
    await withTimeout(new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }), WAIT_MS, 'TCP connect');
    return new RawClient(socket, version);
  }

  send(packet: Packet): void {
    this.socket.write(encode(packet, this.version));
  }

  /** CONNECT with the given fields; defaults: clean session, no keep alive. */
  sendConnect(fields: { clientId: string; clean?: boolean; keepalive?: number; properties?: Properties }): void {
    this.send({
      type: PacketType.Connect, protocolVersion: this.version, protocolName: this.version === 3 ? 'MQIsdp' : 'MQTT',
      clientId: fields.clientId, clean: fields.clean ?? true, keepalive: fields.keepalive ?? 0,
      ...(fields.properties !== undefined && this.version === 5 ? { properties: fields.properties } : {}),
    });
  }

  /** Resolves with the first received packet of `type` not yet taken, removing it from `packets`. */
  take<T extends Packet['type']>(type: T, ms = WAIT_MS): Promise<Extract<Packet, { type: T }>> {
    const find = (): Extract<Packet, { type: T }> | undefined => {
      const i = this.packets.findIndex((p) => p.type === type);
      if (i < 0) return undefined;
      return this.packets.splice(i, 1)[0] as Extract<Packet, { type: T }>;
    };
    const now = find();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        const p = find();
        if (p === undefined) return;
        this.#arrivals.delete(waiter);
        clearTimeout(timer);
        resolve(p);
      };
      const timer = setTimeout(() => {
        this.#arrivals.delete(waiter);
        reject(new Error(`timed out after ${ms} ms waiting for packet type ${type}`));
      }, ms);
      this.#arrivals.add(waiter);
    });
  }

  /** Waits (bounded) for the connection to close. */
  waitClosed(ms = WAIT_MS): Promise<void> {
    return withTimeout(this.closed, ms, 'the connection to close');
  }

  destroy(): void {
    this.socket.destroy();
  }
}
