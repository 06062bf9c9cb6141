/**
 * MqttClient: one MQTT session over one connection at a time. The transport is a URL (dialed by
 * transport/dial.ts) or a factory that opens a Duplex byte stream (an in-process pair, TCP, TLS,
 * WebSocket), so the client never sees sockets. Invariants: operations made before the first
 * CONNACK or after close fail with a typed error; with reconnect on, a lost connection is
 * 'offline', not closed: QoS 1/2 flows, subscriptions, iterators and requests wait for the next
 * connection, and publishes made meanwhile go to a bounded offline queue; on the final close
 * every pending operation fails with `ClientClosedError` (carrying the server's DISCONNECT reason
 * code, if any), every `messages()` iterator ends, and 'close' is emitted once.
 */
import { EventEmitter } from 'node:events';
import {
  type ConnackPacket, type ConnectPacket, type DisconnectPacket, MqttError, type Packet, PacketType, type Properties,
  ProtocolError, ProtocolVersion, type PublishPacket, type QoS, ReasonCode, topicFilterProblem, topicNameProblem,
} from '../protocol/index.js';
import { randomBytes } from 'node:crypto';
import { dial, type DialOptions } from '../transport/dial.js';
import type { ByteStream } from '../transport/types.js';
import { OutboundAliases } from './aliases.js';
import { type AuthExchange, AuthenticationError, authExchange } from './auth.js';
import { Backoff } from './backoff.js';
import {
  ClientClosedError, ConnackError, ConnectTimeoutError, KeepaliveTimeoutError, OfflineQueueFullError, PublishError,
} from './errors.js';
import { Inbound } from './inbound.js';
import { Keepalive } from './keepalive.js';
import { Link, type LinkHandler } from './link.js';
import { MessageStream, type ReceivedMessage } from './messages.js';
import {
  buildConnect, type ClientOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MESSAGE_BUFFER, toBuffer,
} from './options.js';
import { OfflineQueue } from './offline-queue.js';
import { Outbound, type PublishResult, serverLimits } from './outbound.js';
import { PacketIds } from './packet-ids.js';
import { RequestTimeoutError, Requests } from './request.js';
import { MemoryStore, type InflightStore } from './store.js';
import { Subscriptions, type SubscribeOptions, type SubscriptionRequest, type SubackResult } from './subscriptions.js';
import { realTimers, type ClientTimers } from './timers.js';

/** Opens one connection: a Node Duplex (TCP, TLS, WebSocket, an in-process pair) or any other `ByteStream`. */
export type Transport = () => Promise<ByteStream>;

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
  /** A CONNACK accepted a connection (the first one, and each after a reconnect). */
  online: [ConnackPacket];
  /** The connection was lost and the client will reconnect; `error` is why. */
  offline: [Error | undefined];
  /** A reconnect attempt starts (`attempt` counts from 1 since the last accepted connection). */
  reconnect: [number];
}

export interface RequestOptions {
  /** Milliseconds to wait for the response. Default 30,000. */
  timeout?: number;
  /** QoS of the request (and of the response subscription). Default 1. */
  qos?: QoS;
  /** Where the response goes. Default: this client's own response topic, subscribed once. */
  responseTopic?: string;
  /** More PUBLISH properties of the request (User Properties, Content Type…). */
  properties?: Properties;
}

/** A refused CONNACK that another attempt would not change: the client stops reconnecting. */
const FATAL_CONNACK = new Set<number>([
  ReasonCode.UnsupportedProtocolVersion, ReasonCode.ClientIdentifierNotValid, ReasonCode.BadUserNameOrPassword,
  ReasonCode.NotAuthorized, ReasonCode.Banned, ReasonCode.BadAuthenticationMethod,
]);

interface Queued {
  packet: PublishPacket;
  resolve: (result: PublishResult) => void;
  reject: (error: Error) => void;
}

type Phase = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

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
  readonly #backoff: Backoff | undefined;
  readonly #offline: OfflineQueue<Queued>;
  readonly #requests = new Requests();
  readonly #responseSubs = new Map<string, Promise<unknown>>();
  #onlineWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  #phase: Phase = 'idle';
  #link: Link | undefined;
  #keepalive: Keepalive | undefined;
  #connack: ConnackPacket | undefined;
  #clientId = '';
  #closeCode: number = ReasonCode.NormalDisconnection;
  #closed: Promise<void> | undefined;
  #everOnline = false;
  #finished = false;
  #cancelRetry: (() => void) | undefined;
  #responseTopic: string | undefined;

  constructor(transport: ByteStream | Transport | string, options: ClientOptions = {}) {
    super();
    if (typeof transport === 'string') {
      const dialOptions = dialOptionsOf(options);
      this.#open = () => dial(transport, dialOptions);
    } else {
      this.#open = typeof transport === 'function' ? transport : () => Promise.resolve(transport);
    }
    this.#options = options;
    this.#version = options.protocolVersion ?? 5;
    this.#timers = options.timers ?? realTimers;
    this.#store = options.store ?? new MemoryStore();
    this.#outbound = new Outbound(this.#ids, this.#store);
    this.#inbound = new Inbound(this.#store, (m) => this.#deliver(m));
    this.#subs = new Subscriptions(this.#ids);
    const reconnect = options.reconnect ?? (typeof transport === 'string');
    // A stream given as such cannot be opened twice.
    const reusable = typeof transport !== 'object';
    this.#backoff = reconnect === false || !reusable ? undefined : new Backoff(reconnect === true ? {} : reconnect);
    this.#offline = new OfflineQueue(options.offlineQueue);
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

  /** Publishes waiting in the offline queue. */
  get queued(): number {
    return this.#offline.length;
  }

  get protocolVersion(): 3 | 4 | 5 {
    return this.#version;
  }

  /** Opens the transport, sends CONNECT and resolves with the CONNACK of an accepted connection. */
  async connect(): Promise<ConnackPacket> {
    if (this.#phase !== 'idle') throw new ProtocolError('connect() may be called once');
    this.#phase = 'connecting';
    // [MQTT-3.1.2-4]: a clean start discards the session state, ours too; otherwise what a durable store kept is resent.
    if (this.#options.clean ?? true) this.#store.clear();
    else this.#outbound.restore(this.#version);
    try {
      return await this.#attempt();
    } catch (err) {
      this.#shutdown(err instanceof Error ? err : undefined);
      throw err;
    }
  }

  publish(topic: string, payload: Buffer | Uint8Array | string, options: PublishOptions = {}): Promise<PublishResult> {
    return new Promise<PublishResult>((resolve, reject) => {
      if (this.#phase !== 'connected' && this.#phase !== 'reconnecting') {
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
      if (this.#phase === 'connected') this.#outbound.publish(packet, resolve, reject);
      else if (!this.#offline.push(packet.payload, { packet, resolve, reject })) reject(new OfflineQueueFullError());
    });
  }

  /** Resolves with SUBACK's codes, one per filter: the granted QoS, or a failure code (0x80 or more). */
  subscribe(filter: string | string[] | SubscriptionRequest[], options: SubscribeOptions = {}): Promise<SubackResult> {
    if (this.#phase === 'reconnecting') return this.#whenOnline().then(() => this.subscribe(filter, options));
    if (this.#phase !== 'connected' || this.#link === undefined) return Promise.reject(new ClientClosedError(this.#closeCode));
    return this.#subs.subscribe(this.#link, filter, options);
  }

  /** Resolves with UNSUBACK's codes (5.0; 3.1.1 sends none, so each is 0x00). */
  unsubscribe(filters: string | string[], options: { properties?: Properties } = {}): Promise<SubackResult> {
    if (this.#phase === 'reconnecting') return this.#whenOnline().then(() => this.unsubscribe(filters, options));
    if (this.#phase !== 'connected' || this.#link === undefined) return Promise.reject(new ClientClosedError(this.#closeCode));
    return this.#subs.unsubscribe(this.#link, filters, options);
  }

  /**
   * 5.0 request / response (§4.10): publishes `payload` to `topic` with a Response Topic and a
   * fresh Correlation Data, and resolves with the first message that comes back with that
   * Correlation Data; rejects with `RequestTimeoutError` after `timeout`. The response topic is
   * subscribed once per client.
   */
  async request(topic: string, payload: Buffer | Uint8Array | string, options: RequestOptions = {}): Promise<ReceivedMessage> {
    if (this.#version !== ProtocolVersion.V5) throw new ProtocolError('request() needs MQTT 5.0 (Response Topic, Correlation Data)');
    const qos = options.qos ?? 1;
    const responseTopic = options.responseTopic ?? (this.#responseTopic ??= `petrel/response/${randomBytes(8).toString('hex')}`);
    const problem = topicNameProblem(responseTopic) ?? topicFilterProblem(responseTopic);
    if (problem !== undefined) throw new PublishError(ReasonCode.TopicNameInvalid, problem);
    let subscribed = this.#responseSubs.get(responseTopic);
    if (subscribed === undefined) {
      subscribed = this.subscribe(responseTopic, { qos }).then((r) => {
        const code = r.reasonCodes[0] ?? ReasonCode.UnspecifiedError;
        if (code >= 0x80) throw new PublishError(code, `the response topic was refused with 0x${code.toString(16)}`);
      });
      this.#responseSubs.set(responseTopic, subscribed);
      subscribed.catch(() => this.#responseSubs.delete(responseTopic));
    }
    await subscribed;
    const correlationData = this.#requests.correlation();
    const ms = options.timeout ?? 30_000;
    return new Promise<ReceivedMessage>((resolve, reject) => {
      const cancel = this.#timers.setTimer(() => this.#requests.fail(correlationData, new RequestTimeoutError(ms)), ms);
      this.#requests.add(correlationData, { resolve, reject, cancel });
      this.publish(topic, payload, { qos, properties: { ...options.properties, responseTopic, correlationData } })
        .catch((err: Error) => this.#requests.fail(correlationData, err));
    });
  }

  /** Received messages matching `filter` (default: all), until the client closes. */
  messages(filter?: string, options: { bufferSize?: number } = {}): MessageStream {
    const stream = new MessageStream(filter, options.bufferSize ?? this.#options.messageBufferSize ?? DEFAULT_MESSAGE_BUFFER,
      (s) => this.#streams.delete(s));
    if (this.#phase === 'closed') stream.end();
    else this.#streams.add(stream);
    return stream;
  }

  /** Sends DISCONNECT (5.0 with `reasonCode`) and closes, for good: no reconnect follows; resolves once the connection is gone. */
  end(options: EndOptions = {}): Promise<void> {
    this.#cancelRetry?.();
    this.#cancelRetry = undefined;
    const link = this.#link;
    if (this.#phase === 'closed') return this.#closed ?? Promise.resolve();
    if (link === undefined) {
      // Between two connections (or never connected): nothing to close but the client.
      this.#phase = 'closed';
      this.#shutdown(undefined);
      return Promise.resolve();
    }
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

  /** One connection attempt: open, CONNECT, CONNACK (with AUTH in between for enhanced authentication). */
  async #attempt(): Promise<ConnackPacket> {
    const options = this.#clientId === '' ? this.#options : { ...this.#options, clientId: this.#clientId };
    const connect = buildConnect(options);
    this.#clientId = connect.clientId;
    let auth: AuthExchange | undefined;
    const method = this.#options.authenticationMethod;
    if (method !== undefined && this.#version === ProtocolVersion.V5) {
      auth = authExchange(method, this.#options.username, this.#options.password);
      const data = auth.first();
      connect.properties = { ...connect.properties, authenticationMethod: method, ...(data === undefined ? {} : { authenticationData: data }) };
    }
    const stream = await this.#open();
    if (this.#phase === 'closed') {
      stream.destroy();
      throw new ClientClosedError(this.#closeCode);
    }
    return new Promise<ConnackPacket>((resolve, reject) => this.#handshake(stream, connect, auth, resolve, reject));
  }

  #handshake(stream: ByteStream, connect: ConnectPacket, auth: AuthExchange | undefined,
    resolve: (c: ConnackPacket) => void, reject: (e: Error) => void): void {
    const ms = this.#options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT;
    let settled = false;
    let accepted = false;
    const settle = (error: Error | undefined, connack?: ConnackPacket): void => {
      if (settled) return;
      settled = true;
      cancelTimer();
      if (error !== undefined) reject(error);
      else {
        accepted = true;
        resolve(connack as ConnackPacket);
      }
    };
    const cancelTimer = ms > 0 ? this.#timers.setTimer(() => link.destroy(new ConnectTimeoutError(ms)), ms) : noop;
    let link!: Link;
    this.#closed = new Promise<void>((done) => {
      const handler: LinkHandler = {
        packet: (p) => {
          if (!settled) this.#first(p, link, auth, settle);
          else this.#packet(p);
        },
        failed: (err) => this.#fail(err),
        wrote: () => this.#keepalive?.sent(),
        closed: (err) => {
          settle(err ?? new ClientClosedError(this.#closeCode));
          this.#lost(err, accepted);
          done();
        },
      };
      const maxPacketSize = this.#version === ProtocolVersion.V5 ? this.#options.properties?.maximumPacketSize : undefined;
      link = new Link(stream, this.#version, handler, maxPacketSize);
    });
    this.#link = link;
    link.send(connect);
  }

  /** The first packet must be CONNACK [MQTT-3.2.0-1], or AUTH 0x18 during enhanced authentication [MQTT-4.12.0-2]. */
  #first(p: Packet, link: Link, auth: AuthExchange | undefined, settle: (error: Error | undefined, connack?: ConnackPacket) => void): void {
    if (p.type === PacketType.Auth && auth !== undefined && p.reasonCode === ReasonCode.ContinueAuthentication) {
      const method = this.#options.authenticationMethod as string;
      // [MQTT-4.12.0-5]: the same Authentication Method throughout.
      if (p.properties?.authenticationMethod !== method) throw new ProtocolError('AUTH with another authentication method [MQTT-4.12.0-5]');
      const data = auth.challenge(p.properties.authenticationData);
      link.send({ type: PacketType.Auth, reasonCode: ReasonCode.ContinueAuthentication, properties: { authenticationMethod: method, authenticationData: data } });
      return;
    }
    if (p.type !== PacketType.Connack) throw new ProtocolError(`packet type ${p.type} before CONNACK`);
    this.#connack = p;
    if (p.reasonCode >= 0x80) {
      this.#closeCode = p.reasonCode;
      const error = new ConnackError(p);
      settle(error);
      // [MQTT-3.2.2-7]: the server closes the connection; we need not wait for it.
      link.destroy(error);
      return;
    }
    if (auth !== undefined && !auth.verify(p.properties?.authenticationData)) {
      const error = new AuthenticationError('the server did not prove that it knows the credential');
      settle(error);
      link.destroy(error);
      return;
    }
    const props = p.properties;
    const assigned = props?.assignedClientIdentifier;
    if (assigned !== undefined) this.#clientId = assigned;
    const resumed = p.sessionPresent;
    if (!resumed) {
      this.#store.clear();
      this.#inbound.cleared();
    }
    this.#phase = 'connected';
    this.#closeCode = ReasonCode.NormalDisconnection;
    const limits = serverLimits(this.#version, props);
    this.#inbound.reset(this.#options.properties?.topicAliasMaximum ?? 0, this.#options.properties?.receiveMaximum ?? 0xffff);
    const again = this.#everOnline;
    this.#everOnline = true;
    this.#backoff?.reset();
    // A new session on the server: it forgot our subscriptions.
    if (again && !resumed) this.#subs.resubscribe(link).catch(noop);
    // Then the flows kept from the last connection, then what was published meanwhile.
    const aliases = this.#options.topicAliases === true && limits.topicAliasMaximum > 0 ? new OutboundAliases(limits.topicAliasMaximum) : undefined;
    this.#outbound.attach(link, limits, resumed, aliases);
    // [MQTT-3.2.2-21]: the Server Keep Alive replaces the one the client asked for.
    const keepalive = (this.#version === ProtocolVersion.V5 ? props?.serverKeepAlive : undefined) ?? (this.#options.keepalive ?? 60);
    if (keepalive > 0) {
      const ms = keepalive * 1000;
      this.#keepalive = new Keepalive(ms, this.#timers, () => link.send({ type: PacketType.Pingreq }),
        () => link.destroy(new KeepaliveTimeoutError(ms)));
    }
    for (let q = this.#offline.shift(); q !== undefined && link.open; q = this.#offline.shift()) this.#outbound.publish(q.packet, q.resolve, q.reject);
    settle(undefined, p);
    const waiters = this.#onlineWaiters;
    this.#onlineWaiters = [];
    for (const w of waiters) w.resolve();
    this.emit('online', p);
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
    this.#requests.answer(message);
    this.emit('message', message);
    for (const s of this.#streams) s.offer(message);
  }

  #whenOnline(): Promise<void> {
    return new Promise((resolve, reject) => this.#onlineWaiters.push({ resolve, reject }));
  }

  /** A connection (or an attempt) ended: reconnect when allowed, else close for good. */
  #lost(error: Error | undefined, accepted: boolean): void {
    this.#keepalive?.stop();
    this.#keepalive = undefined;
    this.#link = undefined;
    if (error instanceof MqttError && this.#closeCode === ReasonCode.NormalDisconnection) this.#closeCode = error.reasonCode;
    const fatal = error instanceof ConnackError && FATAL_CONNACK.has(error.reasonCode);
    // The first connect() reports its own failure; after end() or without reconnect, the client closes.
    if (this.#phase === 'closed' || this.#backoff === undefined || !this.#everOnline || fatal) {
      if (this.#everOnline || this.#phase === 'closed') this.#shutdown(error);
      return;
    }
    const closed = new ClientClosedError(this.#closeCode, { cause: error });
    this.#outbound.detach(closed, true);
    this.#subs.detach(closed);
    if (accepted) {
      this.#phase = 'reconnecting';
      if (error !== undefined && !(error instanceof MqttError) && this.listenerCount('error') > 0) this.emit('error', error);
      this.emit('offline', error);
    }
    this.#schedule();
  }

  #schedule(): void {
    const backoff = this.#backoff as Backoff;
    this.#cancelRetry = this.#timers.setTimer(() => {
      this.#cancelRetry = undefined;
      if (this.#phase !== 'reconnecting') return;
      this.emit('reconnect', backoff.attempts);
      this.#attempt().catch((err: unknown) => {
        // A dial that failed never made a link: try again from here (a failed handshake retried in #lost).
        if (this.#link === undefined && this.#phase === 'reconnecting' && this.#cancelRetry === undefined) {
          if (this.listenerCount('error') > 0 && err instanceof Error) this.emit('error', err);
          this.#schedule();
        }
      });
    }, backoff.next());
  }

  #shutdown(error: Error | undefined): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#phase = 'closed';
    this.#keepalive?.stop();
    this.#cancelRetry?.();
    if (error instanceof MqttError && this.#closeCode === ReasonCode.NormalDisconnection) this.#closeCode = error.reasonCode;
    const closed = new ClientClosedError(this.#closeCode, { cause: error });
    this.#outbound.detach(closed);
    this.#subs.detach(closed);
    for (let q = this.#offline.shift(); q !== undefined; q = this.#offline.shift()) q.reject(closed);
    for (const w of this.#onlineWaiters) w.reject(closed);
    this.#onlineWaiters = [];
    this.#requests.failAll(closed);
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

function dialOptionsOf(o: ClientOptions): DialOptions {
  const d: DialOptions = { timeout: o.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT };
  if (o.ca !== undefined) d.ca = o.ca;
  if (o.cert !== undefined) d.cert = o.cert;
  if (o.key !== undefined) d.key = o.key;
  if (o.rejectUnauthorized !== undefined) d.rejectUnauthorized = o.rejectUnauthorized;
  if (o.servername !== undefined) d.servername = o.servername;
  if (o.wsHeaders !== undefined) d.headers = o.wsHeaders;
  return d;
}

/**
 * Connects and resolves once the server accepted (CONNACK 0x00); rejects with `ConnackError`
 * otherwise. `transport` is a URL (`mqtt://`, `mqtts://`, `ws://`, `wss://`), a stream, or a
 * factory of streams.
 */
export async function connect(transport: ByteStream | Transport | string, options: ClientOptions = {}): Promise<MqttClient> {
  const client = new MqttClient(transport, options);
  await client.connect();
  return client;
}

/** `connect(url, options)`: dials `url` (reconnecting by default). */
export function connectUrl(url: string, options: ClientOptions = {}): Promise<MqttClient> {
  return connect(url, options);
}
