/**
 * MqttClient: one MQTT session over one connection at a time. The transport is a factory that
 * opens a Duplex byte stream (an in-process pair, TCP, TLS, WebSocket), so the client never sees
 * sockets. Invariants: operations made before CONNACK or after close fail with a typed error; on
 * close every pending operation fails with `ClientClosedError` (carrying the server's
 * DISCONNECT reason code, if any), every `messages()` iterator ends, and 'close' is emitted once.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import {
  type ConnackPacket, type ConnectPacket, type DisconnectPacket, MqttError, type Packet, PacketType, type Properties,
  ProtocolError, ProtocolVersion, type PublishPacket, type QoS, ReasonCode, topicNameProblem,
} from '../protocol/index.js';
import { ClientClosedError, ConnackError, ConnectTimeoutError, KeepaliveTimeoutError, PublishError } from './errors.js';
import { Inbound } from './inbound.js';
import { Keepalive } from './keepalive.js';
import { Link, type LinkHandler } from './link.js';
import { MessageStream, type ReceivedMessage } from './messages.js';
import {
  buildConnect, type ClientOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MESSAGE_BUFFER, toBuffer,
} from './options.js';
import { Outbound, type PublishResult, serverLimits } from './outbound.js';
import { PacketIds } from './packet-ids.js';
import { MemoryStore, type InflightStore } from './store.js';
import { Subscriptions, type SubscribeOptions, type SubscriptionRequest, type SubackResult } from './subscriptions.js';
import { realTimers, type ClientTimers } from './timers.js';

export type Transport = () => Promise<Duplex>;

export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  /** 5.0 PUBLISH properties (a Topic Alias is not sent by this client). */
  properties?: Properties;
}

export interface EndOptions {
  /** 5.0 DISCONNECT reason code. Default 0x00; 0x04 asks the server to publish the will. */
  reasonCode?: number;
  properties?: Properties;
}

export interface ClientEvents {
  message: [ReceivedMessage];
  /** The server sent DISCONNECT (5.0); 'close' follows. */
  disconnect: [DisconnectPacket];
  /** The connection is gone; `error` is why, undefined after `end()` or a server DISCONNECT 0x00. */
  close: [Error | undefined];
  /** The server broke the protocol, or the stream failed; emitted only when someone listens ('close' follows). */
  error: [Error];
}

type Phase = 'idle' | 'connecting' | 'connected' | 'closed';

export class MqttClient extends EventEmitter<ClientEvents> {
  readonly #open: Transport;
  readonly #options: ClientOptions;
  readonly #timers: ClientTimers;
  readonly #store: InflightStore;
  readonly #ids = new PacketIds();
  readonly #outbound: Outbound;
  readonly #inbound: Inbound;
  readonly #subs: Subscriptions;
  readonly #streams = new Set<MessageStream>();
  readonly #version: 3 | 4 | 5;
  #phase: Phase = 'idle';
  #link: Link | undefined;
  #keepalive: Keepalive | undefined;
  #connack: ConnackPacket | undefined;
  #clientId = '';
  #closeCode: number = ReasonCode.NormalDisconnection;
  #closed: Promise<void> | undefined;

  constructor(transport: Duplex | Transport, options: ClientOptions = {}) {
    super();
    this.#open = typeof transport === 'function' ? transport : () => Promise.resolve(transport);
    this.#options = options;
    this.#version = options.protocolVersion ?? 5;
    this.#timers = options.timers ?? realTimers;
    this.#store = options.store ?? new MemoryStore();
    this.#outbound = new Outbound(this.#ids, this.#store);
    this.#inbound = new Inbound(this.#store, (m) => this.#deliver(m));
    this.#subs = new Subscriptions(this.#ids);
  }

  /** The client identifier in use: the one sent, or the one the server assigned (5.0). */
  get clientId(): string {
    return this.#clientId;
  }

  get sessionPresent(): boolean {
    return this.#connack?.sessionPresent ?? false;
  }

  /** The CONNACK of the current connection; throws before one was received. */
  get connack(): ConnackPacket {
    if (this.#connack === undefined) throw new ClientClosedError(ReasonCode.UnspecifiedError);
    return this.#connack;
  }

  get connected(): boolean {
    return this.#phase === 'connected';
  }

  get protocolVersion(): 3 | 4 | 5 {
    return this.#version;
  }

  /** Opens the transport, sends CONNECT and resolves with the CONNACK of an accepted connection. */
  async connect(): Promise<ConnackPacket> {
    if (this.#phase !== 'idle') throw new ProtocolError('connect() may be called once');
    this.#phase = 'connecting';
    const connect = buildConnect(this.#options);
    this.#clientId = connect.clientId;
    let stream: Duplex;
    try {
      stream = await this.#open();
    } catch (err) {
      this.#phase = 'closed';
      throw err;
    }
    return new Promise<ConnackPacket>((resolve, reject) => this.#handshake(stream, connect, resolve, reject));
  }

  publish(topic: string, payload: Buffer | Uint8Array | string, options: PublishOptions = {}): Promise<PublishResult> {
    return new Promise<PublishResult>((resolve, reject) => {
      if (this.#phase !== 'connected') {
        reject(new ClientClosedError(this.#closeCode));
        return;
      }
      const problem = topicNameProblem(topic);
      if (problem !== undefined) {
        reject(new PublishError(ReasonCode.TopicNameInvalid, problem));
        return;
      }
      const qos = options.qos ?? 0;
      if (qos !== 0 && qos !== 1 && qos !== 2) {
        reject(new PublishError(ReasonCode.QoSNotSupported, `QoS ${String(qos)} does not exist`));
        return;
      }
      const packet: PublishPacket = {
        type: PacketType.Publish, topic, payload: toBuffer(payload), qos, retain: options.retain ?? false, dup: false,
      };
      if (options.properties !== undefined && this.#version === ProtocolVersion.V5) packet.properties = options.properties;
      this.#outbound.publish(packet, resolve, reject);
    });
  }

  /** Resolves with SUBACK's codes, one per filter: the granted QoS, or a failure code (0x80 or more). */
  subscribe(filter: string | string[] | SubscriptionRequest[], options: SubscribeOptions = {}): Promise<SubackResult> {
    if (this.#phase !== 'connected' || this.#link === undefined) return Promise.reject(new ClientClosedError(this.#closeCode));
    return this.#subs.subscribe(this.#link, filter, options);
  }

  /** Resolves with UNSUBACK's codes (5.0; 3.1.1 sends none, so each is 0x00). */
  unsubscribe(filters: string | string[], options: { properties?: Properties } = {}): Promise<SubackResult> {
    if (this.#phase !== 'connected' || this.#link === undefined) return Promise.reject(new ClientClosedError(this.#closeCode));
    return this.#subs.unsubscribe(this.#link, filters, options);
  }

  /** Received messages matching `filter` (default: all), until the client closes. */
  messages(filter?: string, options: { bufferSize?: number } = {}): MessageStream {
    const stream = new MessageStream(filter, options.bufferSize ?? this.#options.messageBufferSize ?? DEFAULT_MESSAGE_BUFFER,
      (s) => this.#streams.delete(s));
    if (this.#phase === 'closed') stream.end();
    else this.#streams.add(stream);
    return stream;
  }

  /** Sends DISCONNECT (5.0 with `reasonCode`) and closes; resolves once the connection is gone. */
  end(options: EndOptions = {}): Promise<void> {
    const link = this.#link;
    if (link === undefined || this.#phase === 'closed') return this.#closed ?? Promise.resolve();
    if (this.#phase === 'connected') {
      const packet: DisconnectPacket = { type: PacketType.Disconnect };
      if (options.reasonCode !== undefined) packet.reasonCode = options.reasonCode;
      if (options.properties !== undefined) packet.properties = options.properties;
      link.send(packet);
    }
    this.#phase = 'closed';
    this.#keepalive?.stop();
    link.end();
    // The server closes its end on DISCONNECT [MQTT-3.14.4-1]; if it does not, the stream is destroyed.
    const cancel = this.#timers.setTimer(() => link.destroy(), END_GRACE_MS);
    return (this.#closed ?? Promise.resolve()).finally(cancel);
  }

  #handshake(stream: Duplex, connect: ConnectPacket, resolve: (c: ConnackPacket) => void, reject: (e: Error) => void): void {
    const ms = this.#options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
    let settled = false;
    const settle = (error: Error | undefined, connack?: ConnackPacket): void => {
      if (settled) return;
      settled = true;
      cancelTimer();
      if (error !== undefined) reject(error);
      else resolve(connack as ConnackPacket);
    };
    const cancelTimer = ms > 0 ? this.#timers.setTimer(() => this.#link?.destroy(new ConnectTimeoutError(ms)), ms) : noop;
    this.#closed = new Promise<void>((done) => {
      const handler: LinkHandler = {
        packet: (p) => {
          if (this.#phase === 'connecting') this.#first(p, settle);
          else this.#packet(p);
        },
        failed: (err) => this.#fail(err),
        wrote: () => this.#keepalive?.sent(),
        closed: (err) => {
          this.#shutdown(err);
          settle(err ?? new ClientClosedError(this.#closeCode));
          done();
        },
      };
      const maxPacketSize = this.#version === ProtocolVersion.V5 ? this.#options.properties?.maximumPacketSize : undefined;
      this.#link = new Link(stream, this.#version, handler, maxPacketSize);
    });
    this.#link?.send(connect);
  }

  /** The first packet must be CONNACK [MQTT-3.2.0-1]. */
  #first(p: Packet, settle: (error: Error | undefined, connack?: ConnackPacket) => void): void {
    if (p.type !== PacketType.Connack) throw new ProtocolError(`packet type ${p.type} before CONNACK`);
    this.#connack = p;
    if (p.reasonCode >= 0x80) {
      this.#closeCode = p.reasonCode;
      const error = new ConnackError(p);
      settle(error);
      // [MQTT-3.2.2-7]: the server closes the connection; we need not wait for it.
      this.#link?.destroy(error);
      return;
    }
    const props = p.properties;
    const assigned = props?.assignedClientIdentifier;
    if (assigned !== undefined) this.#clientId = assigned;
    if (!p.sessionPresent) this.#store.clear();
    this.#phase = 'connected';
    const link = this.#link as Link;
    this.#inbound.reset(this.#options.properties?.topicAliasMaximum ?? 0);
    this.#outbound.attach(link, serverLimits(this.#version, props));
    // [MQTT-3.2.2-21]: the Server Keep Alive replaces the one the client asked for.
    const keepalive = (this.#version === ProtocolVersion.V5 ? props?.serverKeepAlive : undefined) ?? (this.#options.keepalive ?? 60);
    if (keepalive > 0) {
      const ms = keepalive * 1000;
      this.#keepalive = new Keepalive(ms, this.#timers, () => link.send({ type: PacketType.Pingreq }),
        () => link.destroy(new KeepaliveTimeoutError(ms)));
    }
    settle(undefined, p);
  }

  #packet(p: Packet): void {
    const link = this.#link as Link;
    switch (p.type) {
      case PacketType.Publish: this.#inbound.publish(p, link); return;
      case PacketType.Puback: this.#outbound.puback(p); return;
      case PacketType.Pubrec: this.#outbound.pubrec(p); return;
      case PacketType.Pubrel: this.#inbound.pubrel(p, link); return;
      case PacketType.Pubcomp: this.#outbound.pubcomp(p); return;
      case PacketType.Suback: this.#subs.suback(p); return;
      case PacketType.Unsuback: this.#subs.unsuback(p); return;
      case PacketType.Pingresp: this.#keepalive?.pong(); return;
      case PacketType.Disconnect: this.#disconnected(p); return;
      default: throw new ProtocolError(`the server sent packet type ${p.type}`);
    }
  }

  /** The server's DISCONNECT (5.0): surface it, then close [MQTT-3.14.4-1]. */
  #disconnected(p: DisconnectPacket): void {
    const code = p.reasonCode ?? ReasonCode.NormalDisconnection;
    this.#closeCode = code;
    this.emit('disconnect', p);
    const link = this.#link as Link;
    link.destroy(code >= 0x80 ? new MqttError(code, `disconnected by the server with reason code 0x${code.toString(16)}`) : undefined);
  }

  /** A protocol error of the server's: 5.0 tells it with DISCONNECT [MQTT-4.13.1-1], then the link closes. */
  #fail(error: Error): void {
    const link = this.#link;
    if (link === undefined) return;
    if (this.#phase === 'connected' && this.#version === ProtocolVersion.V5 && error instanceof MqttError) {
      link.send({ type: PacketType.Disconnect, reasonCode: error.reasonCode });
    }
    if (this.listenerCount('error') > 0) this.emit('error', error);
    link.destroy(error);
  }

  #deliver(message: ReceivedMessage): void {
    this.emit('message', message);
    for (const s of this.#streams) s.offer(message);
  }

  #shutdown(error: Error | undefined): void {
    this.#phase = 'closed';
    this.#keepalive?.stop();
    if (error instanceof MqttError && this.#closeCode === ReasonCode.NormalDisconnection) this.#closeCode = error.reasonCode;
    const closed = new ClientClosedError(this.#closeCode, { cause: error });
    this.#outbound.detach(closed);
    this.#subs.detach(closed);
    for (const s of this.#streams) s.end();
    this.#streams.clear();
    // A transport error is told as 'error' too; MqttErrors were told by #fail, 'disconnect' or connect().
    if (error !== undefined && !(error instanceof MqttError) && this.listenerCount('error') > 0) this.emit('error', error);
    this.emit('close', error);
  }
}

/** How long `end()` waits for the server to close its end before destroying the stream. */
const END_GRACE_MS = 5000;

function noop(): void {}

/** Connects and resolves once the server accepted (CONNACK 0x00); rejects with `ConnackError` otherwise. */
export async function connect(transport: Duplex | Transport, options: ClientOptions = {}): Promise<MqttClient> {
  const client = new MqttClient(transport, options);
  await client.connect();
  return client;
}
