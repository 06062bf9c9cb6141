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
  copyBytes, Decoder, decodeWhole, encode, MqttError, type Packet, PacketType, type Properties, type PreparedPublish, ProtocolVersion, publishHeaderLength,
  publishPropertiesLength, type QoS, ReasonCode, stampPublish, type WillMessage, writePublishHeader,
} from '../protocol/index.js';
import type { BrokerState } from './state.js';
import { dispatch, failConnection } from './dispatch.js';
import { addReceiverVariant, preparedFor, receiverVariant, remainingExpiry, templateFor, type Message } from './message.js';
import type { Session, SessionLink, Waiter } from './session.js';
import type { ClientInfo } from './events.js';
import type { AuthExchange } from './auth-mechanism.js';
import type { PendingConnect } from './handlers/connect.js';
import { withBit } from '../session/bits.js';
import { Deque } from '../session/deque.js';
import type { ConnectionMeta } from '../transport/types.js';

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
/** The largest buffer of per-receiver PUBLISHes a connection keeps between turns. */
const CUSTOM_KEPT = 8 * 1024;

/** What a connection collects for its next write (see `flush`). */
type PendingItem = Buffer | PreparedPublish | Message | number;

/** A delivery-only write smaller than this may wait a few busy turns to join the next ones (see `coalesce`). */
const COALESCE_MAX_BYTES = 16 * 1024;

/** Bytes of read but held packets (see `accept`) beyond which the connection stops reading. */
const HOLD_LIMIT = 256 * 1024;

/** Packets whose handling produces output or state for the client; they wait while it does not read. */
const isWork = (type: number): boolean =>
  type === PacketType.Publish || type === PacketType.Subscribe || type === PacketType.Unsubscribe || type === PacketType.Connect;

/** About what a held packet keeps in memory: a PUBLISH its topic and payload (views of the chunk), others a little. */
const heldSize = (p: Packet): number => (p.type === PacketType.Publish ? p.payload.length + p.topic.length + 64 : 64);

const CONNECTION = Symbol('petrel.connection');
const connectionOf = (stream: unknown): Connection => (stream as Record<symbol, Connection>)[CONNECTION] as Connection;
function onPacket(this: Connection, packet: Packet, bytes: number): void {
  // Counters (counters.ts): two typed-array increments per packet.
  const counters = this.state.counters;
  const type = packet.type;
  counters.packetsIn[type] = (counters.packetsIn[type] as number) + 1;
  counters.bytesIn[type] = (counters.bytesIn[type] as number) + bytes;
  this.accept(packet);
}
function onData(this: Duplex, chunk: Buffer): void {
  connectionOf(this).onData(chunk);
}
/** A direct read (ListenerInfo.readDirect): `buf` is shared and overwritten by the next read. */
function onDirect(this: Duplex, nread: number, buf: Buffer): void {
  const c = connectionOf(this);
  // Only acknowledgements and PINGREQ, which keep no bytes, are decoded where they are; anything
  // else (a payload, a partial packet) is copied first, one copy for the whole read.
  if (c.keepsNoBytes(buf, nread)) c.onData(buf.subarray(0, nread));
  else {
    const copy = Buffer.allocUnsafe(nread);
    buf.copy(copy, 0, 0, nread);
    c.onData(copy);
  }
}
/**
 * True when bytes 0..n of `buf` are whole PUBACK, PUBREC, PUBREL, PUBCOMP (packet id, an optional
 * reason code, no properties) and PINGREQ packets and nothing else: decoded, they reference no
 * byte of `buf`.
 */
function onlyAcks(buf: Buffer, n: number): boolean {
  let pos = 0;
  while (pos + 1 < n) {
    const first = buf[pos] as number;
    const length = buf[pos + 1] as number;
    if (first === 0xc0) {
      if (length !== 0) return false;
    } else if (first === 0x40 || first === 0x50 || first === 0x62 || first === 0x70) {
      // 2: packet id; 3: and a reason code; 4: and an empty property length.
      if (length < 2 || length > 4 || (length === 4 && buf[pos + 5] !== 0)) return false;
    } else {
      return false;
    }
    pos += 2 + length;
  }
  return pos === n;
}
function onDrain(this: Duplex): void {
  connectionOf(this).onDrain();
}
function onEnd(this: Duplex): void {
  connectionOf(this).close(undefined);
}
/**
 * `onEnd` after the stream's own single `end` listener (a net.Socket has one), as one function
 * shared by every stream with that listener: two listeners on one event cost an array per stream.
 */
const endAfter = new WeakMap<(...args: unknown[]) => unknown, (this: Duplex) => void>();
function listenEnd(stream: Duplex): void {
  const own = stream.rawListeners('end');
  const first = own[0] as ((...args: unknown[]) => unknown) & { listener?: unknown };
  // A `once` wrapper (it has `listener`) or several listeners: simply add ours.
  if (own.length !== 1 || first.listener !== undefined) {
    stream.on('end', onEnd);
    return;
  }
  let both = endAfter.get(first);
  if (both === undefined) {
    both = function (this: Duplex): void {
      first.call(this);
      onEnd.call(this);
    };
    endAfter.set(first, both);
  }
  stream.removeListener('end', first);
  stream.on('end', both);
}
function onError(this: Duplex, err: Error): void {
  connectionOf(this).close(err);
}

export type ConnState = 'new' | 'connecting' | 'connected' | 'closed';

/** Bits of `Connection.#flags`: one small integer instead of seven boolean fields. */
const CONGESTED = 1;
const GRACEFUL = 2;
const PROBLEM_INFO = 4;
const FLUSH_SCHEDULED = 8;
const BUSY = 16;
const READ_PAUSED = 32;
const MUTED = 64;
const PENDING_CONTROL = 128;
/** Bits 12-14: how many turns this turn's output has waited already (see `coalesce`). */
const COALESCE_SHIFT = 12;
const COALESCED = 7 << COALESCE_SHIFT;
/** At most this many turns (each of them busy) may a delivery-only write wait. */
const COALESCE_TURNS = 7;
/** The client used its inbound budget for this second (limits.ts): its PUBLISH wait and its stream is not read. */
const THROTTLED = 512;
/** Clean Start (3.1.1: Clean Session) of the accepted CONNECT, for ClientInfo. */
const CLEAN_START = 1024;
/** Nothing is written until `releaseOutput` (a cluster's CONNACK waits for the session's record). */
const OUTPUT_HELD = 2048;
/** Bit 15: this turn's output holds a large PUBLISH whose bytes are written as a view, not copied (see SHARE_MIN). */
const SHARED = 1 << 15;

/**
 * A PUBLISH this large is not copied into a connection's batch: its fixed header and packet
 * identifier are, and the rest (properties and payload, the same for every receiver) is written
 * as a view of the shared encoding. A 1 MB message to 1000 QoS 1 subscribers then holds 1 MB in
 * the broker, not 1 GB, until the sockets take it.
 */
const SHARE_MIN = 4096;

/** Writes a pending acknowledgement (type byte * 65536 + packet id, see `sendAck`) as its 4 bytes; returns the end. */
function putAck(out: Buffer, pos: number, item: number): number {
  out[pos] = Math.floor(item / 65536);
  out[pos + 1] = 2;
  out[pos + 2] = (item >> 8) & 0xff;
  out[pos + 3] = item & 0xff;
  return pos + 4;
}

/** Enhanced authentication state (5.0), when CONNECT named a method. */
export interface AuthState {
  method: string;
  exchange: AuthExchange;
  pending: PendingConnect | undefined;
  reauthenticating?: boolean;
}

/** A connection's rarely used fields (see `Connection.#extra`). */
class Extras {
  /** Inbound alias → topic (5.0), created when the first alias is used. */
  aliasesIn: Map<number, string> | undefined;
  /** Outbound topic → alias. */
  aliasesOut: Map<string, number> | undefined;
  /** UTF-8 bytes of the topics in each table, bounded by maxTopicAliasBytes. */
  aliasBytesIn = 0;
  aliasBytesOut = 0;
  /** Reason code of the client's DISCONNECT (5.0), reported by the clientDisconnected event. */
  disconnectReason = 0;
  /** 5.0 limits the client set in CONNECT. */
  clientMaxPacketSize = 0x10000000;
  clientAliasMax = 0;
  /** Session Expiry Interval from CONNECT (5.0 DISCONNECT may not raise it from 0 [MQTT-3.14.2-2]). */
  connectExpiry = 0;
  /** In a cluster: the fencing token of the client id lease this connection holds (0: none). */
  leaseToken = 0;
  auth: AuthState | undefined;
}

/** What a connection without `Extras` reads: the defaults. Never written. */
const NO_EXTRAS: Readonly<Extras> = Object.freeze(new Extras());

export class Connection implements SessionLink, Waiter {
  readonly state: BrokerState;
  readonly stream: Duplex;
  /** Who is on the other end and how they came in (shared with ClientInfo and hook contexts). */
  readonly meta: ConnectionMeta;
  /** State of a packet spanning chunks; none while the input ends on a packet boundary (idle connections hold none). */
  #decoder: Decoder | undefined;
  phase: ConnState = 'new';
  version = 0;
  /** Set when CONNECT is accepted (and kept after the connection closes). */
  session: Session | undefined;
  /** The username of the accepted CONNECT (or of the client certificate), as ClientInfo shows it. */
  username: string | undefined;
  /** The ClientInfo of `info`, built on first use. */
  #info: ClientInfo | undefined;
  will: WillMessage | undefined;
  keepalive = 0;
  lastSeen: number;
  /** Clock time the stream was handed to the broker (for the connect deadline). */
  readonly openedAt: number;
  /**
   * The connection's booleans as bits (see CONGESTED ... PENDING_CONTROL), read and written through the
   * accessors below: an idle connection is mostly its fields, and each boolean field costs 8 bytes.
   */
  #flags = PROBLEM_INFO;
  /**
   * What only 5.0 clients (limits, aliases, reason, enhanced auth) and cluster nodes (the lease)
   * use, in one object created by the first value that is not the default: a 3.1.1 client holds
   * none, which is seven fields (56 bytes) less per idle connection. See the accessors below.
   */
  #extra: Extras | undefined;
  /**
   * Output of this turn, in order. A number is a 4-byte acknowledgement; a PreparedPublish gets
   * the packet identifier and DUP from `#pendingIds` (id + 65536 for DUP); a Message is a 5.0
   * PUBLISH already written for this receiver: its `-#pendingIds[i]` bytes wait in `#custom`.
   * A turn's lone item (the usual case at moderate load) is held as is, without arrays; the arrays
   * are created by a turn's second item and let go by its write: idle connections hold none.
   */
  #pending: PendingItem[] | PendingItem | undefined;
  #pendingIds: number[] | number = 0;
  #pendingBytes = 0;
  /**
   * This turn's 5.0 PUBLISHes with per-receiver properties, whole and back to back. When they are
   * all there is to send (the usual fan-out turn) this buffer is the write; otherwise `#gather`
   * copies them into the batch. Created on first use, handed to the stream when written as is.
   */
  #custom: Buffer | undefined;
  #customUsed = 0;
  #customCount = 0;
  /** Packets read but not run yet, in arrival order (see `accept`); created on first use. */
  #held: Deque<Packet> | undefined;
  #heldBytes = 0;
  /** Flow control: a backlogged session this connection's PUBLISH wait for (see Session.highWater). */
  #waitingFor: Session | undefined;

  constructor(state: BrokerState, stream: Duplex, meta: ConnectionMeta) {
    this.state = state;
    this.stream = stream;
    this.meta = meta;
    // Whole milliseconds: small integers are stored in the object, fractions would be boxed (and
    // reallocated on every read chunk).
    this.lastSeen = Math.floor(state.clock.now());
    this.openedAt = this.lastSeen;
    // Listeners are shared functions that find the connection on the stream: no closures per
    // connection, which matters with tens of thousands of idle clients.
    (stream as unknown as Record<symbol, Connection>)[CONNECTION] = this;
    // A plain TCP socket reads into a shared buffer when its listener offers it (ListenerInfo.readDirect).
    const direct = meta.listener?.readDirect;
    if (direct === undefined || !direct(stream, onDirect)) stream.on('data', onData);
    stream.on('drain', onDrain);
    listenEnd(stream);
    stream.on('close', onEnd);
    stream.on('error', onError);
  }

  get remoteAddress(): string | undefined {
    return this.meta.remoteAddress;
  }

  /**
   * What events and `clients()` say about the client, from CONNECT's acceptance on (undefined
   * before). Built the first time anyone asks and then always the same object: an idle client
   * nobody asked about holds none.
   */
  get info(): ClientInfo | undefined {
    const session = this.session;
    if (this.#info !== undefined || session === undefined) return this.#info;
    this.#info = {
      clientId: session.clientId, protocolVersion: this.version, username: this.username, remoteAddress: this.meta.remoteAddress,
      keepalive: this.keepalive, cleanStart: this.cleanStart, connection: this.meta,
    };
    return this.#info;
  }

  /** The ClientInfo if it was built already (it always is for a client an authenticate hook gave an ACL or data). */
  get builtInfo(): ClientInfo | undefined {
    return this.#info;
  }

  /** Clean Start (Clean Session in 3.1.1) of the accepted CONNECT. */
  get cleanStart(): boolean {
    return (this.#flags & CLEAN_START) !== 0;
  }

  set cleanStart(on: boolean) {
    this.#flags = withBit(this.#flags, CLEAN_START, on);
  }

  /** True while the socket does not accept more bytes: the session queues, the client's PUBLISH / SUBSCRIBE wait. */
  get congested(): boolean {
    return (this.#flags & CONGESTED) !== 0;
  }

  set congested(on: boolean) {
    this.#flags = withBit(this.#flags, CONGESTED, on);
  }

  /** Set by a DISCONNECT from the client: the will is not published (unless 0x04). */
  get graceful(): boolean {
    return (this.#flags & GRACEFUL) !== 0;
  }

  set graceful(on: boolean) {
    this.#flags = withBit(this.#flags, GRACEFUL, on);
  }

  /** Request Problem Information (5.0): reason strings and user properties only when true. */
  get problemInfo(): boolean {
    return (this.#flags & PROBLEM_INFO) !== 0;
  }

  set problemInfo(on: boolean) {
    this.#flags = withBit(this.#flags, PROBLEM_INFO, on);
  }

  /** Set while the connection waits in the broker's flush list (BrokerState.scheduleFlush). */
  get flushScheduled(): boolean {
    return (this.#flags & FLUSH_SCHEDULED) !== 0;
  }

  set flushScheduled(on: boolean) {
    this.#flags = withBit(this.#flags, FLUSH_SCHEDULED, on);
  }

  get #busy(): boolean {
    return (this.#flags & BUSY) !== 0;
  }

  set #busy(on: boolean) {
    this.#flags = withBit(this.#flags, BUSY, on);
  }

  get #readPaused(): boolean {
    return (this.#flags & READ_PAUSED) !== 0;
  }

  set #readPaused(on: boolean) {
    this.#flags = withBit(this.#flags, READ_PAUSED, on);
  }

  /** Set when a packet could not be sent within the client's Maximum Packet Size: the connection is closing. */
  get #muted(): boolean {
    return (this.#flags & MUTED) !== 0;
  }

  set #muted(on: boolean) {
    this.#flags = withBit(this.#flags, MUTED, on);
  }

  /** Something other than a PUBLISH delivery is pending: the write does not wait (see `coalesce`). */
  get #pendingControl(): boolean {
    return (this.#flags & PENDING_CONTROL) !== 0;
  }

  set #pendingControl(on: boolean) {
    this.#flags = withBit(this.#flags, PENDING_CONTROL, on);
  }

  /** 5.0 inbound topic aliases: alias → topic (created on first use). */
  get aliasesIn(): Map<number, string> | undefined {
    return (this.#extra ?? NO_EXTRAS).aliasesIn;
  }

  set aliasesIn(value: Map<number, string> | undefined) {
    if (this.#extra !== undefined || value !== NO_EXTRAS.aliasesIn) (this.#extra ??= new Extras()).aliasesIn = value;
  }

  get aliasesOut(): Map<string, number> | undefined {
    return (this.#extra ?? NO_EXTRAS).aliasesOut;
  }

  set aliasesOut(value: Map<string, number> | undefined) {
    if (this.#extra !== undefined || value !== NO_EXTRAS.aliasesOut) (this.#extra ??= new Extras()).aliasesOut = value;
  }

  get aliasBytesIn(): number {
    return (this.#extra ?? NO_EXTRAS).aliasBytesIn;
  }

  set aliasBytesIn(value: number) {
    if (this.#extra !== undefined || value !== NO_EXTRAS.aliasBytesIn) (this.#extra ??= new Extras()).aliasBytesIn = value;
  }

  get aliasBytesOut(): number {
    return (this.#extra ?? NO_EXTRAS).aliasBytesOut;
  }

  set aliasBytesOut(value: number) {
    if (this.#extra !== undefined || value !== NO_EXTRAS.aliasBytesOut) (this.#extra ??= new Extras()).aliasBytesOut = value;
  }

  get disconnectReason(): number {
    return (this.#extra ?? NO_EXTRAS).disconnectReason;
  }

  set disconnectReason(value: number) {
    if (this.#extra !== undefined || value !== NO_EXTRAS.disconnectReason) (this.#extra ??= new Extras()).disconnectReason = value;
  }

  get clientMaxPacketSize(): number {
    return (this.#extra ?? NO_EXTRAS).clientMaxPacketSize;
  }

  set clientMaxPacketSize(value: number) {
    if (this.#extra !== undefined || value !== NO_EXTRAS.clientMaxPacketSize) (this.#extra ??= new Extras()).clientMaxPacketSize = value;
  }

  get clientAliasMax(): number {
    return (this.#extra ?? NO_EXTRAS).clientAliasMax;
  }

  set clientAliasMax(value: number) {
    if (this.#extra !== undefined || value !== NO_EXTRAS.clientAliasMax) (this.#extra ??= new Extras()).clientAliasMax = value;
  }

  get connectExpiry(): number {
    return (this.#extra ?? NO_EXTRAS).connectExpiry;
  }

  set connectExpiry(value: number) {
    if (this.#extra !== undefined || value !== NO_EXTRAS.connectExpiry) (this.#extra ??= new Extras()).connectExpiry = value;
  }

  get leaseToken(): number {
    return (this.#extra ?? NO_EXTRAS).leaseToken;
  }

  set leaseToken(value: number) {
    if (this.#extra !== undefined || value !== NO_EXTRAS.leaseToken) (this.#extra ??= new Extras()).leaseToken = value;
  }

  get auth(): AuthState | undefined {
    return (this.#extra ?? NO_EXTRAS).auth;
  }

  set auth(value: AuthState | undefined) {
    if (this.#extra !== undefined || value !== NO_EXTRAS.auth) (this.#extra ??= new Extras()).auth = value;
  }

  /** `onDirect`: bytes 0..n of a shared read buffer may be decoded in place (nothing waits in a decoder, nothing would be kept). */
  keepsNoBytes(buf: Buffer, n: number): boolean {
    return this.#decoder === undefined && onlyAcks(buf, n);
  }

  onData(chunk: Buffer): void {
    if (this.phase === 'closed') return;
    // Keep alive counts whole control packets [MQTT-3.1.2-24]: bytes of a packet that never
    // completes (a client trickling one byte at a time) do not keep a connection alive.
    // The packets of this chunk see the new time (CONNECT schedules keep alive from it); when no
    // packet completes, the old time comes back.
    const seen = this.lastSeen;
    const state = this.state;
    const now = state.clock.now();
    this.lastSeen = Math.floor(now);
    // One clock reading for every packet of the chunk (BrokerState.now).
    const outer = state.readAt(now);
    try {
      const decoder = this.#decoder;
      if (decoder === undefined) {
        // Whole packets are decoded in place; only an incomplete tail needs a Decoder to wait in.
        const end = decodeWhole(chunk, this.version, state.options.maxPacketSize, onPacket, this);
        if (end === 0) this.lastSeen = seen;
        if (end < chunk.length && (this.phase as ConnState) !== 'closed') this.#buffer(end === 0 ? chunk : chunk.subarray(end));
      } else {
        const before = decoder.bufferedBytes + chunk.length;
        decoder.feed(chunk, onPacket, this);
        // As many bytes waiting as arrived: no packet was completed.
        if (decoder.bufferedBytes >= before) this.lastSeen = seen;
        if (decoder.bufferedBytes === 0) this.#decoder = undefined;
      }
    } catch (err) {
      this.fail(err);
      return;
    } finally {
      state.readDone(outer);
    }
    if (this.#heldBytes > HOLD_LIMIT && !this.#readPaused && (this.phase as ConnState) !== 'closed') {
      this.#readPaused = true;
      this.stream.pause();
    }
    // Replies to what this client just sent (its PUBACKs, PINGRESP, SUBACK) go out now, in one
    // write for the whole chunk, rather than after every other connection's output of the turn:
    // a publisher waiting for acknowledgements sends its next window while the turn's deliveries
    // are still being written.
    if (this.#pendingControl && !this.congested) this.flush();
  }

  /**
   * Keeps the start of a packet until the rest arrives. The CONNECT handler sets `version` as
   * soon as CONNECT is decoded (any later CONNECT closes the connection), so it is the stream's
   * protocol level from then on.
   */
  #buffer(tail: Buffer): void {
    const decoder = new Decoder({ maxPacketSize: this.state.options.maxPacketSize });
    decoder.protocolVersion = this.version;
    decoder.feed(tail, onPacket, this);
    this.#decoder = decoder;
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
    if ((this.#held === undefined || this.#held.length === 0) && !this.#busy && !this.#mustWait(packet)) {
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

  /**
   * A packet that makes output waits while the client does not read it, flow control holds the
   * client or it is throttled; a PUBLISH also when it does not fit in the client's inbound budget
   * (which throttles it). Called once before a packet runs.
   */
  #mustWait(packet: Packet): boolean {
    const type = packet.type;
    if ((this.congested || this.#waitingFor !== undefined || (this.#flags & THROTTLED) !== 0) && isWork(type)) return true;
    return type === PacketType.Publish && this.state.limits.inbound && !this.state.limits.admit(this, packet);
  }

  /** Inbound rate limit: take no more PUBLISH and stop reading; the silence is ours, not the client's (keep alive). */
  throttle(): void {
    this.#flags |= THROTTLED;
    if (!this.#readPaused && this.phase !== 'closed') {
      this.#readPaused = true;
      this.stream.pause();
    }
  }

  /** The throttle's second is over: the held PUBLISH run (within the new budget) and reading resumes. */
  unthrottle(now: number): void {
    this.#flags &= ~THROTTLED;
    // Keep alive counts from here: the client's PINGREQ waited unread in the stream.
    this.lastSeen = Math.floor(now);
    this.#runHeld();
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
      if (this.#mustWait(p)) break;
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
    if (this.#readPaused && this.#heldBytes <= HOLD_LIMIT / 2 && (this.#flags & THROTTLED) === 0) {
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

  /** Flow control: `packet` (being handled now) goes back to the front of the held packets until `session` drains. */
  holdBack(packet: Packet, session: Session): void {
    (this.#held ??= new Deque<Packet>()).unshift(packet);
    this.#heldBytes += heldSize(packet);
    this.holdFor(session);
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
    this.#pendingControl = true;
    this.#push(buf, 0);
    this.#counted((buf[0] as number) >> 4, buf.length);
    this.#queued(buf.length);
  }

  /** Counts a packet handed to the stream (counters.ts): two typed-array increments. */
  #counted(type: number, bytes: number): void {
    const counters = this.state.counters;
    counters.packetsOut[type] = (counters.packetsOut[type] as number) + 1;
    counters.bytesOut[type] = (counters.bytesOut[type] as number) + bytes;
  }

  /** PUBACK / PUBREC / PUBREL / PUBCOMP with reason 0 and no properties: 4 bytes, no allocation until flush. */
  sendAck(type: number, packetId: number): void {
    if (this.phase === 'closed' || this.#muted) return;
    // PUBREL belongs to a delivery's flow (like the PUBLISH before it): it may wait to share a write.
    if (type !== PacketType.Pubrel) this.#pendingControl = true;
    if (this.clientMaxPacketSize < 4) return this.#unsendable();
    this.#push(((type << 4) | (type === PacketType.Pubrel ? 2 : 0)) * 65536 + packetId, 0);
    this.#counted(type, 4);
    this.#queued(4);
  }

  sendPubrel(packetId: number): void {
    this.sendAck(PacketType.Pubrel, packetId);
  }

  sendPublish(now: number, msg: Message, qos: QoS, retain: boolean, subIds: number[] | undefined, packetId: number, dup: boolean): boolean {
    if (this.phase === 'closed' || this.#muted) return true;
    if (this.version === ProtocolVersion.V5 && (subIds !== undefined || msg.expiresAt !== undefined || this.clientAliasMax > 0)) {
      return this.#sendCustom(now, msg, qos, retain, subIds, packetId, dup);
    }
    return this.#sendPrepared(msg, qos, retain, packetId, dup);
  }

  /** The message's shared encoding for this protocol family, QoS and RETAIN; only the packet id and DUP are stamped. */
  #sendPrepared(msg: Message, qos: QoS, retain: boolean, packetId: number, dup: boolean): boolean {
    const prepared = preparedFor(msg, this.version, qos, retain);
    // [MQTT-3.1.2-25]: never send a packet larger than the client's Maximum Packet Size.
    if (this.version === ProtocolVersion.V5 && prepared.bytes.length > this.clientMaxPacketSize) return false;
    return this.#pushPrepared(prepared, packetId, dup);
  }

  #pushPrepared(prepared: PreparedPublish, packetId: number, dup: boolean): boolean {
    if (prepared.bytes.length >= SHARE_MIN) this.#flags |= SHARED;
    this.#push(prepared, dup ? packetId + 65536 : packetId);
    this.#counted(PacketType.Publish, prepared.bytes.length);
    this.#queued(prepared.bytes.length);
    return true;
  }

  /**
   * A 5.0 PUBLISH with per-receiver properties (subscription ids, remaining expiry, topic alias).
   * Receivers that need the same bytes share a cached encoding (see `receiverVariant`); past the
   * few cached variants, the PUBLISH is written whole into `#custom`: the header for this receiver,
   * then the shared payload.
   */
  #sendCustom(now: number, msg: Message, qos: QoS, retain: boolean, subIds: number[] | undefined, packetId: number, dup: boolean): boolean {
    const topic = msg.topic;
    let alias = 0;
    let withTopic = true;
    let newAlias = false;
    let aliasBytes = 0;
    if (this.clientAliasMax > 0) {
      const aliases = (this.aliasesOut ??= new Map());
      const known = aliases.get(topic);
      if (known !== undefined) {
        // [MQTT-3.3.2-12]: the client knows the topic by its alias; the topic is sent empty. At
        // QoS 2 the topic goes with the alias anyway (allowed: it restates the mapping), because
        // MQTT.js 5 keeps a QoS 2 PUBLISH until PUBREL as received and then reports an empty topic.
        alias = known;
        withTopic = qos === 2;
      } else if (this.state.options.outboundTopicAliases && aliases.size < this.clientAliasMax) {
        // [MQTT-3.3.2-11]: a new alias, within the client's Topic Alias Maximum and the table's byte bound, sent with the topic.
        const max = this.state.options.maxTopicAliasBytes;
        aliasBytes = this.aliasBytesOut + Buffer.byteLength(topic);
        if (max === 0 || aliasBytes <= max) {
          alias = aliases.size + 1;
          newAlias = true;
        }
      }
    }
    const expiry = msg.expiresAt === undefined ? -1 : remainingExpiry(msg, now);
    // Nothing of this receiver's own: the shared encoding has the same bytes.
    if (alias === 0 && subIds === undefined && expiry < 0) return this.#sendPrepared(msg, qos, retain, packetId, dup);
    const cached = receiverVariant(msg, qos, retain, withTopic, alias, expiry, subIds);
    if (cached !== undefined) {
      // [MQTT-3.1.2-25]: never send a packet larger than the client's Maximum Packet Size.
      if (cached.bytes.length > this.clientMaxPacketSize) return false;
      if (newAlias) this.#recordAlias(topic, alias, aliasBytes);
      return this.#pushPrepared(cached, packetId, dup);
    }
    const t = templateFor(msg, this.state.templates);
    const payloadLen = msg.payload.length;
    const propsLen = publishPropertiesLength(t, expiry, subIds, alias);
    const size = publishHeaderLength(t, withTopic, qos, propsLen, payloadLen) + payloadLen;
    // [MQTT-3.1.2-25]: never send a packet larger than the client's Maximum Packet Size; the size is known before anything is written.
    if (size > this.clientMaxPacketSize) return false;
    if (newAlias) this.#recordAlias(topic, alias, aliasBytes);
    // A message with one receiver is written straight into the batch: caching its encoding would cost a copy for nothing.
    const added = msg.receivers > 1 ? addReceiverVariant(msg, t, qos, retain, withTopic, alias, expiry, subIds, propsLen, size) : undefined;
    if (added !== undefined) return this.#pushPrepared(added, packetId, dup);
    if (payloadLen >= SHARE_MIN) {
      // A large payload is not copied for this receiver: its own header, then the shared payload.
      const head = Buffer.allocUnsafe(size - payloadLen);
      writePublishHeader(head, 0, t, withTopic, qos, retain, dup, packetId, payloadLen, propsLen, expiry, subIds, alias);
      this.#flags |= SHARED;
      this.#push(head, 0);
      this.#push(msg.payload, 0);
      this.#counted(PacketType.Publish, size);
      this.#queued(size);
      return true;
    }
    // Receivers with encodings of their own: written straight into this turn's buffer.
    const at = this.#customUsed;
    let buf = this.#custom;
    if (buf === undefined || at + size > buf.length) buf = this.#growCustom(at + size);
    const pos = writePublishHeader(buf, at, t, withTopic, qos, retain, dup, packetId, payloadLen, propsLen, expiry, subIds, alias);
    copyBytes(msg.payload, 0, payloadLen, buf, pos);
    this.#customUsed = at + size;
    this.#customCount++;
    this.#push(msg, -size);
    this.#counted(PacketType.Publish, size);
    this.#queued(size);
    return true;
  }

  /** Records an outbound alias once its first PUBLISH is known to fit; `bytes` is the table's size with it. */
  #recordAlias(topic: string, alias: number, bytes: number): void {
    (this.aliasesOut as Map<string, number>).set(topic, alias);
    this.aliasBytesOut = bytes;
  }

  /** A larger `#custom` holding what is there: exactly `need` bytes at first (a lone PUBLISH is the usual case), doubling after. */
  #growCustom(need: number): Buffer {
    const old = this.#custom;
    const buf = Buffer.allocUnsafe(old === undefined ? need : Math.max(need, 2 * old.length));
    if (old !== undefined) copyBytes(old, 0, this.#customUsed, buf, 0);
    this.#custom = buf;
    return buf;
  }

  /**
   * Whether this turn's write may wait one more turn to join the next one (see BrokerState's
   * flush): only deliveries are pending (no acknowledgement or reply that a client waits for),
   * less than a batch, and it has waited fewer than COALESCE_TURNS busy turns. Counts the wait.
   */
  coalesce(): boolean {
    const flags = this.#flags;
    if ((flags & PENDING_CONTROL) !== 0 || (flags & COALESCED) >>> COALESCE_SHIFT >= COALESCE_TURNS
      || this.#pendingBytes >= COALESCE_MAX_BYTES || this.phase === 'closed') return false;
    this.#flags = flags + (1 << COALESCE_SHIFT);
    return true;
  }

  #push(item: PendingItem, id: number): void {
    const pending = this.#pending;
    if (pending === undefined) {
      this.#pending = item;
      this.#pendingIds = id;
    } else if (Array.isArray(pending)) {
      pending.push(item);
      (this.#pendingIds as number[]).push(id);
    } else {
      this.#pending = [pending, item];
      this.#pendingIds = [this.#pendingIds as number, id];
    }
  }

  #queued(bytes: number): void {
    this.#pendingBytes += bytes;
    if (this.#pendingBytes >= FLUSH_THRESHOLD) this.flush();
    else if (!this.flushScheduled) this.state.scheduleFlush(this);
  }

  /** Holds every write back until `releaseOutput` (what is sent meanwhile is collected); a close meanwhile writes nothing. */
  holdOutput(): void {
    this.#flags |= OUTPUT_HELD;
  }

  releaseOutput(): void {
    this.#flags &= ~OUTPUT_HELD;
    if (this.phase !== 'closed') this.flush();
  }

  /** Writes everything collected so far in one write. */
  flush(): void {
    const pending = this.#pending;
    if (pending === undefined || this.phase === 'closed' && this.stream.destroyed || (this.#flags & OUTPUT_HELD) !== 0) return;
    const many = Array.isArray(pending);
    const count = many ? pending.length : 1;
    let out: Buffer | Buffer[];
    const first = many ? pending[0] as PendingItem : pending;
    if ((this.#flags & SHARED) !== 0) {
      out = this.#gatherShared(many ? pending : [pending], many ? this.#pendingIds as number[] : [this.#pendingIds as number], count);
    } else if (count === this.#customCount) {
      // Only PUBLISHes written for this receiver: they are the write, back to back.
      const custom = this.#custom as Buffer;
      out = this.#customUsed === custom.length ? custom : custom.subarray(0, this.#customUsed);
      this.#custom = undefined;
    } else if (count === 1 && typeof first === 'object') {
      // A lone packet is written as is: for a QoS 0 PUBLISH, the very Buffer every receiver shares.
      out = !('idOffset' in first) ? (first as Buffer) : first.idOffset < 0 ? first.bytes : this.#gatherOne(first, this.#pendingIds as number);
    } else if (!many) {
      out = this.#gatherOne(first, this.#pendingIds as number);
    } else {
      out = this.#gather(pending, count);
    }
    this.#pending = undefined;
    this.#pendingIds = 0;
    this.#pendingBytes = 0;
    this.#flags &= ~(PENDING_CONTROL | COALESCED | SHARED);
    this.#customUsed = 0;
    this.#customCount = 0;
    // A burst may have grown the buffer (copied into the batch by now); keep only a small one.
    if (this.#custom !== undefined && this.#custom.length > CUSTOM_KEPT) this.#custom = undefined;
    if (!(Buffer.isBuffer(out) ? this.stream.write(out) : this.#writeChunks(out)) && !this.congested) {
      // The client is not reading what we send: what it sends that would make more output waits
      // (held, bounded) until it catches up, so a client that floods without reading its
      // acknowledgements cannot grow our buffers. Control packets still run (see `accept`).
      this.congested = true;
    }
  }

  /** Writes `chunks` as one write (corked: a socket hands them to the kernel in one writev); false when the stream is full. */
  #writeChunks(chunks: Buffer[]): boolean {
    const stream = this.stream;
    stream.cork();
    let ok = true;
    for (let i = 0; i < chunks.length; i++) ok = stream.write(chunks[i] as Buffer);
    stream.uncork();
    return ok;
  }

  /**
   * Like `#gather`, but the large PUBLISHes (SHARE_MIN) are not copied: the output is the small
   * items copied into runs of one buffer, with each large PUBLISH's shared bytes as a view
   * between them (its own fixed header and packet identifier are in the run before it).
   */
  #gatherShared(pending: PendingItem[], ids: number[], count: number): Buffer[] {
    // How many bytes are copied: everything but the shared parts.
    let copied = 0;
    for (let i = 0; i < count; i++) {
      const item = pending[i] as PendingItem;
      const id = ids[i] as number;
      if (id < 0) copied -= id;
      else if (typeof item === 'number') copied += 4;
      else if ('idOffset' in item) copied += item.bytes.length < SHARE_MIN ? item.bytes.length : item.idOffset < 0 ? 0 : item.idOffset + 2;
      else if ((item as Buffer).length < SHARE_MIN) copied += (item as Buffer).length;
    }
    const out = Buffer.allocUnsafe(copied);
    const chunks: Buffer[] = [];
    const custom = this.#custom;
    let at = 0;
    let pos = 0;
    let runStart = 0;
    const share = (view: Buffer): void => {
      if (pos > runStart) chunks.push(out.subarray(runStart, pos));
      chunks.push(view);
      runStart = pos;
    };
    for (let i = 0; i < count; i++) {
      const item = pending[i] as PendingItem;
      const id = ids[i] as number;
      if (id < 0) {
        pos = copyBytes(custom as Buffer, at, at - id, out, pos);
        at -= id;
      } else if (typeof item === 'number') {
        pos = putAck(out, pos, item);
      } else if ('idOffset' in item) {
        const bytes = item.bytes;
        if (bytes.length < SHARE_MIN) {
          pos = stampPublish(item, out, pos, id & 0xffff, id > 65535);
        } else if (item.idOffset < 0) {
          share(bytes);
        } else {
          // This receiver's fixed header and packet identifier, then the shared rest.
          const end = item.idOffset + 2;
          copyBytes(bytes, 0, item.idOffset, out, pos);
          out[pos] = id > 65535 ? ((bytes[0] as number) | 0x08) : ((bytes[0] as number) & 0xf7);
          out[pos + item.idOffset] = (id & 0xffff) >>> 8;
          out[pos + item.idOffset + 1] = id & 0xff;
          pos += end;
          share(bytes.subarray(end));
        }
      } else if ((item as Buffer).length < SHARE_MIN) {
        pos += (item as Buffer).copy(out, pos);
      } else {
        share(item as Buffer);
      }
    }
    if (pos > runStart) chunks.push(out.subarray(runStart, pos));
    return chunks;
  }

  /** The write of a turn's lone acknowledgement or QoS 1/2 PUBLISH (a 5.0 one of this receiver's own is `#custom`). */
  #gatherOne(item: PendingItem, id: number): Buffer {
    const out = Buffer.allocUnsafe(this.#pendingBytes);
    if (typeof item === 'number') {
      putAck(out, 0, item);
    } else if ('idOffset' in item) {
      stampPublish(item, out, 0, id & 0xffff, id > 65535);
    } else {
      (item as Buffer).copy(out, 0);
    }
    return out;
  }

  #gather(pending: PendingItem[], count: number): Buffer {
    const out = Buffer.allocUnsafe(this.#pendingBytes);
    const ids = this.#pendingIds as number[];
    const custom = this.#custom;
    let at = 0;
    let pos = 0;
    for (let i = 0; i < count; i++) {
      const item = pending[i] as PendingItem;
      const id = ids[i] as number;
      if (id < 0) {
        // A 5.0 PUBLISH written for this receiver.
        pos = copyBytes(custom as Buffer, at, at - id, out, pos);
        at -= id;
      } else if (typeof item === 'number') {
        pos = putAck(out, pos, item);
      } else if ('idOffset' in item) {
        pos = stampPublish(item, out, pos, id & 0xffff, id > 65535);
      } else {
        pos += (item as Buffer).copy(out, pos);
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
