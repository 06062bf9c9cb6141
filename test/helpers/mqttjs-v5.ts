/**
 * Helpers for MQTT 5.0 interop tests: MQTT.js 5.0 clients against a broker on 127.0.0.1,
 * recorders of received messages and of the raw bytes on the wire, and per-test teardown.
 * Every wait is event-driven and bounded.
 */
import type { Buffer } from 'node:buffer';
import type { TestContext } from 'node:test';
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Broker } from '../../src/petrel.js';
import type { BrokerOptions } from '../../src/broker/options.js';
import { Decoder, type Packet } from '../../src/protocol/index.js';
import { endAll, startBroker, WAIT_MS, waitFor, withTimeout } from './mqttjs.js';

export { WAIT_MS, waitFor, withTimeout };

/** Options every 5.0 test client gets: protocol 5, no automatic reconnect, bounded connect. */
export function v5Options(extra: IClientOptions = {}): IClientOptions {
  return { reconnectPeriod: 0, connectTimeout: WAIT_MS, protocolVersion: 5, ...extra };
}

export interface Env {
  broker: Broker;
  port: number;
  url: string;
  /** Connects an MQTT.js 5.0 client and waits for an accepting CONNACK; ended at teardown. */
  connect(extra?: IClientOptions): Promise<MqttClient>;
  /** Starts an MQTT.js 5.0 client without waiting; `ready` resolves with its first CONNACK. */
  open(extra?: IClientOptions): Opened;
  /** Ends `client` at teardown (for clients made elsewhere). */
  track(client: MqttClient): MqttClient;
}

export interface Opened {
  client: MqttClient;
  /** The first CONNACK (accepting or refusing); rejects on a connection error or timeout. */
  connack: Promise<IConnackPacket>;
}

/** A broker on 127.0.0.1, port 0, whose clients and broker are closed when the test ends. */
export async function setup(t: TestContext, options: BrokerOptions = {}): Promise<Env> {
  const { broker, port, url } = await startBroker(options);
  const clients: MqttClient[] = [];
  t.after(async () => {
    await endAll(clients);
    await broker.close();
  });
  const track = (client: MqttClient): MqttClient => {
    clients.push(client);
    return client;
  };
  const open = (extra: IClientOptions = {}): Opened => {
    const client = track(mqtt.connect(url, v5Options(extra)));
    // Swallow errors here: a test that expects one waits for it explicitly.
    client.on('error', () => undefined);
    const connack = withTimeout(new Promise<IConnackPacket>((resolve, reject) => {
      const onPacket = (p: { cmd: string }): void => {
        if (p.cmd !== 'connack') return;
        client.off('packetreceive', onPacket);
        resolve(p as IConnackPacket);
      };
      client.on('packetreceive', onPacket);
      client.once('close', () => reject(new Error('connection closed before CONNACK')));
    }), WAIT_MS, 'CONNACK');
    return { client, connack };
  };
  const connect = async (extra: IClientOptions = {}): Promise<MqttClient> => {
    const client = track(await mqtt.connectAsync(url, v5Options(extra)));
    return client;
  };
  return { broker, port, url, connect, open, track };
}

/** A list that grows as events arrive, with bounded waits on its contents. */
export class Recorder<T> {
  readonly items: T[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #listeners: ((item: T) => void)[] = [];

  push(item: T): void {
    this.items.push(item);
    for (const l of this.#listeners) l(item);
    for (const w of [...this.#waiters]) w();
  }

  /** Calls `listener` with every item recorded from now on. */
  onPush(listener: (item: T) => void): void {
    this.#listeners.push(listener);
  }

  /** Resolves once `check` holds over the items so far (checked on every arrival). */
  until(check: (items: readonly T[]) => boolean, what: string, ms = WAIT_MS): Promise<void> {
    if (check(this.items)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        if (!check(this.items)) return;
        this.#waiters.delete(waiter);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; have ${this.items.length}`));
      }, ms);
      this.#waiters.add(waiter);
    });
  }

  /** Resolves with the first item matching `match` (already recorded or the next one). */
  async find(match: (item: T) => boolean, what: string, ms = WAIT_MS): Promise<T> {
    await this.until((items) => items.some(match), what, ms);
    return this.items.find(match) as T;
  }
}

export interface Message {
  /** The topic MQTT.js reports (a topic alias already resolved). */
  topic: string;
  payload: Buffer;
  packet: IPublishPacket;
}

/** Every application message an MQTT.js client emits ('message'), with its PUBLISH packet. */
export class Inbox extends Recorder<Message> {
  constructor(client: MqttClient) {
    super();
    client.on('message', (topic, payload, packet) => this.push({ topic, payload, packet }));
  }

  next(topic: string, ms = WAIT_MS): Promise<Message> {
    return this.find((m) => m.topic === topic, `a message on "${topic}"`, ms);
  }

  on(topic: string): Message[] {
    return this.items.filter((m) => m.topic === topic);
  }

  payloads(topic?: string): string[] {
    return this.items.filter((m) => topic === undefined || m.topic === topic).map((m) => m.payload.toString());
  }
}

/**
 * The packets the broker actually wrote to an MQTT.js client, decoded by Petrel's codec from
 * the socket's bytes, independently of how far MQTT.js has processed them. Attach it right
 * after `mqtt.connect()` (synchronously), before any byte arrives.
 */
export class WireTap extends Recorder<Packet> {
  constructor(client: MqttClient) {
    super();
    const decoder = new Decoder({ protocolVersion: 5 });
    client.stream.on('data', (chunk: Buffer) => {
      for (const p of decoder.push(chunk)) this.push(p);
    });
  }

  count(type: Packet['type']): number {
    return this.items.filter((p) => p.type === type).length;
  }
}
