/**
 * One bench connection: CONNECT / SUBSCRIBE once, then PUBLISH stamped into a pre-encoded packet
 * (packet identifier, send time, sequence number written in place) many at a time in one write,
 * and receipt of PUBLISH and acknowledgements through Petrel's Decoder. Replies (PUBACK, PUBREC,
 * PUBREL, PUBCOMP) are collected and written once per event-loop turn.
 */
import { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { Decoder, encode, PacketType, preparePublish, stampPublish, type Packet, type PreparedPublish, type QoS } from '../protocol/index.js';
import { openBenchSocket, type BenchTarget } from '../transport/bench-sockets.js';
import type { Histogram } from './histogram.js';
import { type LossTracker, MAX_SEQ, nowMs, readStamp, type Stamp, stampPayload } from './payload.js';

/** Counters shared by every client of a run. */
export interface Stats {
  sent: number;
  /** QoS 1: PUBACK, QoS 2: PUBREC with a success code; QoS 0: equals sent. */
  acked: number;
  received: number;
  connected: number;
  failed: number;
  /** Errors by reason: `connack:0x87`, `puback:0x97`, `socket:ECONNREFUSED`, `closed`, … */
  readonly errors: Map<string, number>;
  /** Latency of deliveries, microseconds. */
  readonly latency: Histogram;
  /** TCP (TLS, WebSocket) open to CONNACK, microseconds. */
  readonly connectTime: Histogram;
}

export function addError(stats: Stats, reason: string): void {
  stats.errors.set(reason, (stats.errors.get(reason) ?? 0) + 1);
}

export interface ClientSetup {
  target: BenchTarget;
  localAddress: string | undefined;
  version: 3 | 4 | 5;
  clientId: string;
  keepalive: number;
  username: string | undefined;
  password: string | undefined;
  stats: Stats;
  loss: LossTracker;
  /** Called when the client has replies to write (once until `flush`). */
  dirty(client: BenchClient): void;
  /** Called when a QoS 1/2 window opened. */
  wake(): void;
}

/** The publishing side of a client. */
export interface PublishRole {
  topic: string;
  qos: QoS;
  size: number;
  /** Publisher number within the run. */
  publisher: number;
  stream: number;
  window: number;
  /** Messages to send; MAX_SEQ for "until stopped". */
  limit: number;
}

export interface SubscribeRole {
  filter: string;
  qos: QoS;
  /** Subscriber number within the run. */
  subscriber: number;
}

const PINGREQ = Buffer.from([0xc0, 0]);
/** Bytes of replies a client collects before it writes them without waiting for the turn's end. */
const REPLY_CHUNK = 16 * 1024;
/** Plausible latencies only (ms): a payload of another tool, or a clock far off, is not recorded. */
const MAX_PLAUSIBLE_MS = 3_600_000;

function onPacket(this: BenchClient, packet: Packet): void {
  this.handle(packet);
}

export class BenchClient {
  stream: Duplex | undefined;
  readonly #setup: ClientSetup;
  readonly #decoder: Decoder;
  readonly publish: PublishRole | undefined;
  readonly subscribe: SubscribeRole | undefined;
  #prepared: PreparedPublish | undefined;
  #payloadAt = 0;
  /** Sequence number per packet identifier in flight (-1: free). */
  #seqOf: Int32Array | undefined;
  #nextId = 1;
  inflight = 0;
  /** Messages written. */
  seq = 0;
  /** When this publisher's first message is due (rate mode). */
  startMs = 0;
  ready = false;
  closing = false;
  #openedAt = 0;
  #settle: ((ok: boolean) => void) | undefined;
  #replies: Buffer | undefined;
  #repliesLen = 0;
  readonly #stamp: Stamp = { sentMs: 0, stream: 0, seq: 0 };
  #now = 0;

  constructor(setup: ClientSetup, publish: PublishRole | undefined, subscribe: SubscribeRole | undefined) {
    this.#setup = setup;
    this.#decoder = new Decoder({ protocolVersion: setup.version });
    this.publish = publish;
    this.subscribe = subscribe;
    if (publish !== undefined) {
      const packet = {
        type: PacketType.Publish, topic: publish.topic, payload: Buffer.alloc(publish.size, 0x61), qos: publish.qos, retain: false, dup: false,
        ...(publish.qos > 0 ? { packetId: 1 } : {}),
      };
      this.#prepared = preparePublish(packet, setup.version);
      this.#payloadAt = this.#prepared.bytes.length - publish.size;
      if (publish.qos > 0) this.#seqOf = new Int32Array(65536).fill(-1);
    }
  }

  get clientId(): string {
    return this.#setup.clientId;
  }

  /** Bytes waiting in the socket's write queue. */
  get backlog(): number {
    return this.stream?.writableLength ?? 0;
  }

  /** Connects (and subscribes); resolves true once ready, false on any failure (counted in stats). */
  start(): Promise<boolean> {
    const s = this.#setup;
    return new Promise<boolean>((resolve) => {
      this.#settle = resolve;
      let sock;
      try {
        sock = openBenchSocket(s.target, s.localAddress);
      } catch (err) {
        this.#fail(`socket:${errorCode(err)}`);
        return;
      }
      const stream = sock.stream;
      this.stream = stream;
      this.#openedAt = nowMs();
      stream.on('data', (chunk: Buffer) => this.#read(chunk));
      stream.on('error', (err: Error) => {
        if (!this.closing) this.#fail(`socket:${errorCode(err)}`);
      });
      stream.on('close', () => {
        if (this.closing) return;
        this.#fail('closed');
      });
      sock.open.then(() => {
        if (this.closing) return;
        stream.write(encode({
          type: PacketType.Connect, protocolVersion: s.version, protocolName: s.version === 3 ? 'MQIsdp' : 'MQTT',
          clientId: s.clientId, clean: true, keepalive: s.keepalive,
          ...(s.username !== undefined ? { username: s.username } : {}),
          ...(s.password !== undefined ? { password: Buffer.from(s.password) } : {}),
        }, s.version));
      }, () => undefined); // the 'error' listener has counted it
    });
  }

  #fail(reason: string): void {
    const s = this.#setup.stats;
    addError(s, reason);
    if (this.ready) s.connected--;
    else if (this.#settle !== undefined) s.failed++;
    this.ready = false;
    this.closing = true;
    this.stream?.destroy();
    const settle = this.#settle;
    this.#settle = undefined;
    settle?.(false);
  }

  /** Gives up on a client still connecting. */
  abandon(reason: string): void {
    if (this.#settle !== undefined) this.#fail(reason);
  }

  #read(chunk: Buffer): void {
    this.#now = nowMs();
    try {
      this.#decoder.feed(chunk, onPacket, this);
    } catch (err) {
      if (!this.closing) this.#fail(`protocol:${err instanceof Error ? err.message : String(err)}`);
    }
  }

  handle(p: Packet): void {
    const s = this.#setup.stats;
    switch (p.type) {
      case PacketType.Publish: {
        s.received++;
        const st = this.#stamp;
        if (readStamp(p.payload, st)) {
          const ms = this.#now - st.sentMs;
          if (ms > -1 && ms < MAX_PLAUSIBLE_MS) s.latency.record(ms * 1000);
          if (this.subscribe !== undefined) this.#setup.loss.received(this.subscribe.subscriber, st.stream, st.seq);
        }
        if (p.qos === 1) this.#reply(0x40, p.packetId ?? 0);
        else if (p.qos === 2) this.#reply(0x50, p.packetId ?? 0);
        return;
      }
      case PacketType.Puback:
        this.#ack(p.packetId, p.reasonCode ?? 0, 'puback', true);
        return;
      case PacketType.Pubrec:
        if (this.#ack(p.packetId, p.reasonCode ?? 0, 'pubrec', (p.reasonCode ?? 0) >= 0x80)) return;
        this.#reply(0x62, p.packetId);
        return;
      case PacketType.Pubcomp:
        this.#free(p.packetId);
        return;
      case PacketType.Pubrel:
        this.#reply(0x70, p.packetId);
        return;
      case PacketType.Connack:
        if (this.#settle === undefined || this.ready) return;
        if (p.reasonCode >= 0x80) {
          this.#fail(`connack:0x${p.reasonCode.toString(16)}`);
          return;
        }
        s.connectTime.record((this.#now - this.#openedAt) * 1000);
        if (this.subscribe !== undefined) {
          this.stream?.write(encode({ type: PacketType.Subscribe, packetId: 1, subscriptions: [{ topicFilter: this.subscribe.filter, qos: this.subscribe.qos }] }, this.#setup.version));
        } else {
          this.#ready();
        }
        return;
      case PacketType.Suback: {
        const code = p.reasonCodes[0] ?? 0x80;
        if (code >= 0x80) this.#fail(`suback:0x${code.toString(16)}`);
        else this.#ready();
        return;
      }
      case PacketType.Disconnect:
        this.#fail(`disconnect:0x${(p.reasonCode ?? 0).toString(16)}`);
        return;
      default:
        return;
    }
  }

  #ready(): void {
    this.ready = true;
    this.#setup.stats.connected++;
    const settle = this.#settle;
    this.#settle = undefined;
    settle?.(true);
  }

  /** An acknowledgement of one of our PUBLISH; true when it ends the exchange. */
  #ack(id: number, code: number, what: string, ends: boolean): boolean {
    const seqOf = this.#seqOf;
    const pub = this.publish;
    if (seqOf === undefined || pub === undefined) return true;
    const seq = seqOf[id] as number;
    if (seq < 0) {
      addError(this.#setup.stats, `${what}:unknown-id`);
      return true;
    }
    if (code >= 0x80) {
      addError(this.#setup.stats, `${what}:0x${code.toString(16)}`);
      this.#free(id);
      return true;
    }
    this.#setup.stats.acked++;
    this.#setup.loss.acked(pub.publisher, seq);
    if (ends) this.#free(id);
    return ends;
  }

  #free(id: number): void {
    const seqOf = this.#seqOf;
    if (seqOf === undefined || (seqOf[id] as number) < 0) return;
    seqOf[id] = -1;
    this.inflight--;
    this.#setup.wake();
  }

  #reply(b0: number, id: number): void {
    let buf = this.#replies;
    if (buf === undefined) {
      buf = this.#replies = Buffer.allocUnsafe(REPLY_CHUNK);
      this.#setup.dirty(this);
    }
    let at = this.#repliesLen;
    buf[at++] = b0;
    buf[at++] = 2;
    buf[at++] = id >>> 8;
    buf[at++] = id & 0xff;
    this.#repliesLen = at;
    if (at + 4 > REPLY_CHUNK) this.flush();
  }

  /** Writes the collected replies. */
  flush(): void {
    const buf = this.#replies;
    if (buf === undefined) return;
    const len = this.#repliesLen;
    this.#replies = undefined;
    this.#repliesLen = 0;
    if (len > 0 && this.stream !== undefined && !this.closing) this.stream.write(buf.subarray(0, len));
  }

  /** How many more messages the window and the limit allow now. */
  room(): number {
    const pub = this.publish;
    if (pub === undefined || !this.ready) return 0;
    let n = pub.limit - this.seq;
    if (pub.qos > 0 && pub.window - this.inflight < n) n = pub.window - this.inflight;
    return n > 0 ? n : 0;
  }

  /** Writes up to `n` PUBLISH (bounded by `room()`) in one write; returns how many. */
  pump(n: number, now: number): number {
    const prepared = this.#prepared;
    const pub = this.publish;
    const stream = this.stream;
    if (prepared === undefined || pub === undefined || stream === undefined) return 0;
    const k = Math.min(n, this.room());
    if (k <= 0) return 0;
    const len = prepared.bytes.length;
    const out = Buffer.allocUnsafe(k * len);
    const seqOf = this.#seqOf;
    const stats = this.#setup.stats;
    let at = 0;
    for (let i = 0; i < k; i++) {
      let id = 0;
      if (seqOf !== undefined) {
        id = this.#nextId;
        while ((seqOf[id] as number) >= 0) id = id === 65535 ? 1 : id + 1;
        this.#nextId = id === 65535 ? 1 : id + 1;
        seqOf[id] = this.seq;
        this.inflight++;
      } else {
        this.#setup.loss.acked(pub.publisher, this.seq);
        stats.acked++;
      }
      stampPublish(prepared, out, at, id, false);
      stampPayload(out, at + this.#payloadAt, now, pub.stream, this.seq++);
      at += len;
    }
    stats.sent += k;
    stream.write(out);
    return k;
  }

  /** Sends PINGREQ (keep alive). */
  ping(): void {
    if (this.ready && !this.closing) this.stream?.write(PINGREQ);
  }

  /** DISCONNECT and end; resolves once closed (or after `ms`, then destroyed). */
  close(ms: number): Promise<void> {
    const stream = this.stream;
    if (stream === undefined || stream.destroyed) {
      this.closing = true;
      return Promise.resolve();
    }
    if (this.ready) this.#setup.stats.connected--;
    this.ready = false;
    this.closing = true;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        stream.destroy();
        resolve();
      }, ms);
      stream.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.flush();
      stream.end(encode({ type: PacketType.Disconnect }, this.#setup.version));
    });
  }
}

/** Publishers stop here (loss accounting covers at most this many messages each). */
export const PUBLISH_LIMIT = MAX_SEQ;

function errorCode(err: unknown): string {
  if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.message : String(err);
}
