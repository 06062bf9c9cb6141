/**
 * Per-connection driver: Decoder → dispatch → batched writes → Duplex. The broker never sees
 * sockets, only this stream. Output produced during one event-loop turn is collected and
 * written with a single `write` (one system call for many packets); a prepared PUBLISH is
 * copied into that batch with its packet identifier stamped in place. When the stream stops
 * accepting bytes the connection is `congested` and its session queues (bounded) instead.
 */
import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import {
  Decoder, encode, MqttError, type Packet, PacketType, type Properties, type PreparedPublish, ProtocolVersion, type QoS, ReasonCode, stampPublish, type WillMessage,
} from '../protocol/index.js';
import type { BrokerState } from './state.js';
import { dispatch, failConnection } from './dispatch.js';
import { encodePublishFor, preparedFor, receiverProperties, type Message } from './message.js';
import type { Outgoing, Session, SessionLink, Waiter } from './session.js';
import type { ClientInfo } from './events.js';
import type { AuthExchange } from './auth-mechanism.js';
import type { PendingConnect } from './handlers/connect.js';
import { Deque } from '../session/deque.js';

/** The packet without its reason string and user properties, or undefined when it has neither (PUBLISH keeps its own). */
function withoutProblemInfo(packet: Packet): Packet | undefined {
  if (packet.type === PacketType.Publish || !('properties' in packet)) return undefined;
  const props = packet.properties;
  if (props === undefined || (props.reasonString === undefined && props.userProperties === undefined)) return undefined;
  const { reasonString: _r, userProperties: _u, ...rest } = props;
  const { properties: _p, ...bare } = packet;
  return (Object.keys(rest).length > 0 ? { ...bare, properties: rest } : bare) as Packet;
}

/** Bytes collected in one turn before they are written without waiting for the turn's end. */
const FLUSH_THRESHOLD = 64 * 1024;

/** Bytes of read but held packets (see `accept`) beyond which the connection stops reading. */
const HOLD_LIMIT = 256 * 1024;

/** Packets whose handling produces output or state for the client; they wait while it does not read. */
const isWork = (type: number): boolean =>
  type === PacketType.Publish || type === PacketType.Subscribe || type === PacketType.Unsubscribe || type === PacketType.Connect;

/** About what a held packet keeps in memory: a PUBLISH its topic and payload (views of the chunk), others a little. */
const heldSize = (p: Packet): number => (p.type === PacketType.Publish ? p.payload.length + p.topic.length + 64 : 64);

const CONNECTION = Symbol('petrel.connection');
const connectionOf = (stream: unknown): Connection => (stream as Record<symbol, Connection>)[CONNECTION] as Connection;
function onPacket(this: Connection, packet: Packet): void {
  this.accept(packet);
}
function onData(this: Duplex, chunk: Buffer): void {
  connectionOf(this).onData(chunk);
}
function onDrain(this: Duplex): void {
  connectionOf(this).onDrain();
}
function onEnd(this: Duplex): void {
  connectionOf(this).close(undefined);
}
function onError(this: Duplex, err: Error): void {
  connectionOf(this).close(err);
}

export type ConnState = 'new' | 'connecting' | 'connected' | 'closed';

export class Connection implements SessionLink, Waiter {
  readonly state: BrokerState;
  readonly stream: Duplex;
  readonly remoteAddress: string | undefined;
  readonly decoder: Decoder;
  phase: ConnState = 'new';
  version = 0;
  session: Session | undefined;
  info: ClientInfo | undefined;
  will: WillMessage | undefined;
  keepalive = 0;
  lastSeen: number;
  /** Clock time the stream was handed to the broker (for the connect deadline). */
  readonly openedAt: number;
  congested = false;
  /** Set by a DISCONNECT from the client: the will is not published (unless 0x04). */
  graceful = false;
  /** Reason code of the client's DISCONNECT (5.0), reported by the clientDisconnected event. */
  disconnectReason = 0;
  /** 5.0 limits the client set in CONNECT. */
  clientMaxPacketSize = 0x10000000;
  clientAliasMax = 0;
  /** 5.0 topic aliases: inbound alias → topic, outbound topic → alias (created on first use). */
  aliasesIn: Map<number, string> | undefined;
  aliasesOut: Map<string, number> | undefined;
  /** UTF-8 bytes of the topics in each alias table, bounded by maxTopicAliasBytes. */
  aliasBytesIn = 0;
  aliasBytesOut = 0;
  /** Request Problem Information (5.0): reason strings and user properties only when true. */
  problemInfo = true;
  /** Session Expiry Interval from CONNECT (5.0 DISCONNECT may not raise it from 0 [MQTT-3.14.2-2]). */
  connectExpiry = 0;
  /** Enhanced authentication state (5.0), when CONNECT named a method. */
  auth: { method: string; exchange: AuthExchange; pending: PendingConnect | undefined; reauthenticating?: boolean } | undefined;
  flushScheduled = false;
  #pending: (Buffer | PreparedPublish | number)[] = [];
  #pendingIds: number[] = [];
  #pendingBytes = 0;
  /** Packets read but not run yet, in arrival order (see `accept`). */
  /** Created on first use: most connections never hold a packet. */
  #held: Deque<Packet> | undefined;
  #heldBytes = 0;
  #busy = false;
  #readPaused = false;
  /** Flow control: a backlogged session this connection's PUBLISH wait for (see Session.highWater). */
  #waitingFor: Session | undefined;
  /** Set when a packet could not be sent within the client's Maximum Packet Size: the connection is closing. */
  #muted = false;

  constructor(state: BrokerState, stream: Duplex, remoteAddress: string | undefined) {
    this.state = state;
    this.stream = stream;
    this.remoteAddress = remoteAddress;
    this.decoder = new Decoder({ maxPacketSize: state.options.maxPacketSize });
    // Whole milliseconds: small integers are stored in the object, fractions would be boxed (and
    // reallocated on every read chunk).
    this.lastSeen = Math.floor(state.clock.now());
    this.openedAt = this.lastSeen;
    // Listeners are shared functions that find the connection on the stream: no closures per
    // connection, which matters with tens of thousands of idle clients.
    (stream as unknown as Record<symbol, Connection>)[CONNECTION] = this;
    stream.on('data', onData);
    stream.on('drain', onDrain);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
  }

  onData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    this.lastSeen = Math.floor(this.state.clock.now());
    try {
      this.decoder.feed(chunk, onPacket, this);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (this.#heldBytes > HOLD_LIMIT && !this.#readPaused && (this.phase as ConnState) !== 'closed') {
      this.#readPaused = true;
      this.stream.pause();
    }
  }

  /** True while an async handler (a hook) holds back this connection's packets. */
  get busy(): boolean {
    return this.#busy;
  }

  /** True while the broker stopped reading this client (too many packets held): its silence is ours. */
  get readPaused(): boolean {
    return this.#readPaused;
  }

  /**
   * One decoded packet: run now, or hold it, in order, while an async handler runs or while the
   * client does not read what we send (`congested`). Reading goes on while packets are held, so
   * PINGREQ and acknowledgements still count and run at once [MQTT-3.1.2-24], a closed socket is
   * still seen, and only when the held packets pass HOLD_LIMIT bytes does the broker stop reading.
   */
  accept(packet: Packet): void {
    if ((this.#held === undefined || this.#held.length === 0) && !this.#busy && !((this.congested || this.#waitingFor !== undefined) && isWork(packet.type))) {
      this.#run(packet);
      return;
    }
    // Keep alive and the outbound QoS flows do not depend on what is held: they go ahead.
    if (this.phase === 'connected' && !isWork(packet.type) && packet.type !== PacketType.Disconnect && packet.type !== PacketType.Auth) {
      this.#run(packet);
      return;
    }
    (this.#held ??= new Deque<Packet>()).push(packet);
    this.#heldBytes += heldSize(packet);
  }

  /** Runs one packet's handler; an async handler holds the following packets back, in order. */
  #run(packet: Packet): void {
    if (this.phase === 'closed') return;
    let result: void | Promise<void>;
    try {
      result = dispatch(this, packet);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (result === undefined) return;
    this.#busy = true;
    result.then(() => this.#settled(), (err: unknown) => {
      this.fail(err);
      this.#settled();
    });
  }

  #settled(): void {
    this.#busy = false;
    this.#runHeld();
  }

  /** Runs held packets in order until one goes async or the client's congestion holds a packet that produces output. */
  #runHeld(): void {
    const held = this.#held;
    if (held === undefined) {
      this.#resumeReading();
      return;
    }
    while (held.length > 0 && !this.#busy && this.phase !== 'closed') {
      const p = held.peek() as Packet;
      if ((this.congested || this.#waitingFor !== undefined) && isWork(p.type)) break;
      held.shift();
      this.#heldBytes -= heldSize(p);
      this.#run(p);
    }
    if (this.phase === 'closed') {
      held.clear();
      this.#heldBytes = 0;
      return;
    }
    this.#resumeReading();
  }

  #resumeReading(): void {
    if (this.#readPaused && this.#heldBytes <= HOLD_LIMIT / 2) {
      this.#readPaused = false;
      this.stream.resume();
    }
  }

  /** Flow control: take no more PUBLISH from this client until `session` drains (or stalls, or goes offline). */
  holdFor(session: Session): void {
    if (this.#waitingFor !== undefined || this.phase === 'closed') return;
    this.#waitingFor = session;
    session.wait(this);
  }

  unblock(session: Session): void {
    if (this.#waitingFor !== session) return;
    this.#waitingFor = undefined;
    if (this.phase !== 'closed') this.#runHeld();
  }

  /** Turns an error into the reply the protocol requires, then closes. */
  fail(err: unknown, extra?: Properties): void {
    failConnection(this, err, extra);
  }

  // ---- output -------------------------------------------------------------------------

  /**
   * Queues a packet for this turn's write. 5.0: a packet never exceeds the client's Maximum
   * Packet Size [MQTT-3.1.2-24]: the reason string and user properties are left out when they
   * would make it too large [MQTT-3.4.2-2] (and the same rule for every other packet); a packet
   * too large even without them is not sent and the connection closes.
   */
  send(packet: Packet): void {
    const version = this.version || ProtocolVersion.V311;
    let buf = encode(packet, version);
    if (version === ProtocolVersion.V5 && buf.length > this.clientMaxPacketSize) {
      const bare = withoutProblemInfo(packet);
      if (bare !== undefined) buf = encode(bare, version);
      if (buf.length > this.clientMaxPacketSize) {
        // A PUBLISH is discarded as if sent [MQTT-3.1.2-25]; any other packet cannot be left out.
        if (packet.type !== PacketType.Publish) this.#unsendable();
        return;
      }
    }
    this.sendBytes(buf);
  }

  /**
   * A packet the client cannot receive: nothing more is written and the connection closes once
   * the running handler has finished (closing inside it would leave its state half set up).
   */
  #unsendable(): void {
    if (this.#muted) return;
    this.#muted = true;
    queueMicrotask(() => this.close(new MqttError(ReasonCode.PacketTooLarge, 'packet larger than the client\'s Maximum Packet Size')));
  }

  sendBytes(buf: Buffer): void {
    if (this.phase === 'closed' || this.#muted) return;
    this.#pending.push(buf);
    this.#pendingIds.push(0);
    this.#queued(buf.length);
  }

  /** PUBACK / PUBREC / PUBREL / PUBCOMP with reason 0 and no properties: 4 bytes, no allocation until flush. */
  sendAck(type: number, packetId: number): void {
    if (this.phase === 'closed' || this.#muted) return;
    if (this.clientMaxPacketSize < 4) return this.#unsendable();
    this.#pending.push(((type << 4) | (type === PacketType.Pubrel ? 2 : 0)) * 65536 + packetId);
    this.#pendingIds.push(0);
    this.#queued(4);
  }

  sendPubrel(packetId: number): void {
    this.sendAck(PacketType.Pubrel, packetId);
  }

  sendPublish(_o: Outgoing | undefined, msg: Message, qos: QoS, retain: boolean, subIds: number[] | undefined, packetId: number, dup: boolean): boolean {
    if (this.phase === 'closed' || this.#muted) return true;
    const v5 = this.version === ProtocolVersion.V5;
    if (!v5 || (subIds === undefined && msg.expiresAt === undefined && this.clientAliasMax === 0)) {
      const prepared = preparedFor(msg, this.version, qos, retain);
      if (v5 && prepared.bytes.length > this.clientMaxPacketSize) return false;
      this.#pending.push(prepared);
      this.#pendingIds.push(dup ? packetId + 65536 : packetId);
      this.#queued(prepared.bytes.length);
      return true;
    }
    return this.#sendCustom(msg, qos, retain, subIds, packetId, dup);
  }

  /** A 5.0 PUBLISH with per-receiver properties (subscription ids, remaining expiry, topic alias). */
  #sendCustom(msg: Message, qos: QoS, retain: boolean, subIds: number[] | undefined, packetId: number, dup: boolean): boolean {
    const now = this.state.clock.now();
    let topic = msg.topic;
    const aliases = (this.aliasesOut ??= new Map());
    let alias = aliases.get(topic);
    if (alias !== undefined) topic = '';
    else if (this.state.options.outboundTopicAliases && aliases.size < this.clientAliasMax) {
      const max = this.state.options.maxTopicAliasBytes;
      const bytes = this.aliasBytesOut + Buffer.byteLength(topic);
      if (max === 0 || bytes <= max) {
        alias = aliases.size + 1;
        aliases.set(topic, alias);
        this.aliasBytesOut = bytes;
      }
    }
    const properties = receiverProperties(msg, now, subIds, alias);
    const buf = encodePublishFor(msg, topic, qos, retain, dup, packetId, properties);
    // [MQTT-3.1.2-25]: never send a packet larger than the client's Maximum Packet Size.
    if (buf.length > this.clientMaxPacketSize) {
      if (alias !== undefined && topic !== '') {
        aliases.delete(msg.topic);
        this.aliasBytesOut -= Buffer.byteLength(msg.topic);
      }
      return false;
    }
    this.sendBytes(buf);
    return true;
  }

  #queued(bytes: number): void {
    this.#pendingBytes += bytes;
    if (this.#pendingBytes >= FLUSH_THRESHOLD) this.flush();
    else if (!this.flushScheduled) this.state.scheduleFlush(this);
  }

  /** Writes everything collected so far in one write. */
  flush(): void {
    const pending = this.#pending;
    const count = pending.length;
    if (count === 0 || this.phase === 'closed' && this.stream.destroyed) return;
    let out: Buffer;
    const first = pending[0];
    if (count === 1 && typeof first === 'object') {
      // A lone packet is written as is: for a QoS 0 PUBLISH, the very Buffer every receiver shares.
      out = !('idOffset' in first) ? first : first.idOffset < 0 ? first.bytes : this.#gather(pending, count);
    } else {
      out = this.#gather(pending, count);
    }
    this.#pending = [];
    this.#pendingIds = [];
    this.#pendingBytes = 0;
    if (!this.stream.write(out) && !this.congested) {
      // The client is not reading what we send: what it sends that would make more output waits
      // (held, bounded) until it catches up, so a client that floods without reading its
      // acknowledgements cannot grow our buffers. Control packets still run (see `accept`).
      this.congested = true;
    }
  }

  #gather(pending: (Buffer | PreparedPublish | number)[], count: number): Buffer {
    const out = Buffer.allocUnsafe(this.#pendingBytes);
    const ids = this.#pendingIds;
    let pos = 0;
    for (let i = 0; i < count; i++) {
      const item = pending[i] as Buffer | PreparedPublish | number;
      if (typeof item === 'number') {
        out[pos] = Math.floor(item / 65536);
        out[pos + 1] = 2;
        out[pos + 2] = (item >> 8) & 0xff;
        out[pos + 3] = item & 0xff;
        pos += 4;
      } else if ('idOffset' in item) {
        const id = ids[i] as number;
        pos = stampPublish(item, out, pos, id & 0xffff, id > 65535);
      } else {
        pos += item.copy(out, pos);
      }
    }
    return out;
  }

  onDrain(): void {
    this.congested = false;
    const session = this.session;
    if (session !== undefined && session.link === this) session.pump(this.state.clock.now());
    if (!this.congested) this.#runHeld();
  }

  /** Ends the connection once; `err` undefined means the peer closed or DISCONNECT was handled. */
  close(err: Error | undefined): void {
    if (this.phase === 'closed') return;
    try {
      this.flush();
    } catch (flushErr) {
      this.state.logger.error({ err: flushErr, clientId: this.info?.clientId }, 'final write failed');
    }
    this.phase = 'closed';
    this.#held = undefined;
    this.#heldBytes = 0;
    try {
      this.state.connectionClosed(this, err);
    } catch (closeErr) {
      // Whatever failed, the socket still closes and close() of the broker still resolves.
      this.state.logger.error({ err: closeErr, clientId: this.info?.clientId }, 'connection cleanup failed');
    }
    const stream = this.stream;
    if (this.#readPaused) stream.resume();
    stream.end();
    // A peer that never closes its side is cut off shortly after; the timer goes with the stream.
    if (!stream.destroyed) {
      const timer = setTimeout(() => stream.destroy(), 1000);
      stream.once('close', () => clearTimeout(timer));
    }
  }
}
