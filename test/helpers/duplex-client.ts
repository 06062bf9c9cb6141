/**
 * A packet-level MQTT client over an in-process stream pair: sends packets built with Petrel's
 * codec and awaits the broker's packets one by one. Used by integration and conformance tests.
 */
import { Buffer } from 'node:buffer';
import { duplexPair, type Duplex } from 'node:stream';
import type { BrokerCore } from '../../src/broker/broker.js';
import type { ConnectionMeta } from '../../src/transport/types.js';
import {
  type ConnackPacket, type ConnectPacket, Decoder, encode, type Packet, PacketType, type Properties, type WillMessage,
} from '../../src/protocol/index.js';

export interface ConnectOptions {
  clientId?: string;
  version?: 3 | 4 | 5;
  clean?: boolean;
  keepalive?: number;
  will?: WillMessage;
  username?: string;
  password?: Buffer;
  properties?: Properties;
  /** What the broker is told about the connection (listener, remote address); default: remote address "test". */
  meta?: ConnectionMeta;
}

export class TestClient {
  readonly stream: Duplex;
  readonly version: 3 | 4 | 5;
  readonly #decoder: Decoder;
  readonly #packets: Packet[] = [];
  #waiter: (() => void) | undefined;
  #ended = false;
  readonly closed: Promise<void>;
  /** Raw bytes received, for exact-byte assertions. */
  readonly raw: Buffer[] = [];

  constructor(broker: BrokerCore, version: 3 | 4 | 5 = 4, meta: ConnectionMeta | string = 'test') {
    const [client, server] = duplexPair();
    this.stream = client;
    this.version = version;
    this.#decoder = new Decoder({ protocolVersion: version });
    broker.handle(server, meta);
    client.on('data', (chunk: Buffer) => {
      this.raw.push(chunk);
      for (const p of this.#decoder.push(chunk)) this.#packets.push(p);
      this.#wake();
    });
    // Like a TCP socket without half-open support: the broker's end closes our side too.
    client.once('end', () => client.end());
    this.closed = new Promise((resolve) => {
      const done = (): void => {
        this.#ended = true;
        this.#wake();
        resolve();
      };
      client.once('end', done);
      client.once('close', done);
      client.once('error', done);
    });
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  static async connect(broker: BrokerCore, o: ConnectOptions = {}): Promise<{ client: TestClient; connack: ConnackPacket }> {
    const version = o.version ?? 4;
    const client = new TestClient(broker, version, o.meta);
    const connect: ConnectPacket = {
      type: PacketType.Connect, protocolVersion: version, protocolName: version === 3 ? 'MQIsdp' : 'MQTT',
      clientId: o.clientId ?? '', clean: o.clean ?? true, keepalive: o.keepalive ?? 0,
    };
    if (o.will !== undefined) connect.will = o.will;
    if (o.username !== undefined) connect.username = o.username;
    if (o.password !== undefined) connect.password = o.password;
    if (o.properties !== undefined) connect.properties = o.properties;
    client.send(connect);
    const connack = await client.expect(PacketType.Connack);
    return { client, connack };
  }

  send(packet: Packet): void {
    this.stream.write(encode(packet, this.version));
  }

  sendRaw(bytes: Buffer | number[]): void {
    this.stream.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** The next packet from the broker; rejects after `ms` or when the stream ends first. */
  async next(ms = 3000): Promise<Packet> {
    const deadline = Date.now() + ms;
    for (;;) {
      const p = this.#packets.shift();
      if (p !== undefined) return p;
      if (this.#ended) throw new Error('stream ended before a packet arrived');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no packet within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** The next packet, which must be of `type`. */
  async expect<T extends Packet['type']>(type: T, ms = 3000): Promise<Extract<Packet, { type: T }>> {
    const p = await this.next(ms);
    if (p.type !== type) throw new Error(`expected packet type ${type}, got ${p.type}: ${JSON.stringify(p)}`);
    return p as Extract<Packet, { type: T }>;
  }

  /**
   * Proves that the broker has nothing queued for this client: a PINGREQ is answered in order,
   * so if the next packet is PINGRESP nothing was sent before it.
   */
  async expectNothing(): Promise<void> {
    this.send({ type: PacketType.Pingreq });
    const p = await this.next();
    if (p.type !== PacketType.Pingresp) throw new Error(`expected nothing, got ${JSON.stringify(p)}`);
  }

  async subscribe(filter: string, qos: 0 | 1 | 2 = 0, packetId = 1, properties?: Properties): Promise<number[]> {
    this.send({ type: PacketType.Subscribe, packetId, subscriptions: [{ topicFilter: filter, qos }], ...(properties ? { properties } : {}) });
    const suback = await this.expect(PacketType.Suback);
    return suback.reasonCodes;
  }

  publish(topic: string, payload: string | Buffer, qos: 0 | 1 | 2 = 0, packetId?: number, retain = false, properties?: Properties): void {
    this.send({
      type: PacketType.Publish, topic, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), qos, retain, dup: false,
      ...(qos > 0 ? { packetId: packetId ?? 1 } : {}), ...(properties ? { properties } : {}),
    });
  }

  disconnect(): void {
    this.send({ type: PacketType.Disconnect });
    this.stream.end();
  }

  /** Closes the stream without DISCONNECT: an abnormal loss for the broker. */
  drop(): void {
    this.stream.end();
  }

  get ended(): boolean {
    return this.#ended;
  }
}

/** Resolves when the broker ends the stream; rejects after `ms`. */
export async function waitClosed(c: TestClient, ms = 3000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    c.closed,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`stream not closed within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Awaits `promise`, failing after `ms`; the timer keeps the event loop alive meanwhile. */
export async function within<T>(promise: Promise<T>, ms = 3000, what = 'event'): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
