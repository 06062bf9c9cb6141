/**
 * The SQLite store's journal: a batch of `StoreOp` records as one compact binary blob (one row
 * per transaction), and the netting that turns a run of journaled ops into the few that change
 * the tables.
 *
 * Blob layout, per op: a one-byte op code, then the op's fields in a fixed order. Strings are a
 * varint byte length and UTF-8 bytes; byte arrays a varint length and the bytes; numbers that can
 * exceed 32 bits (seq, wall-clock times) are float64; optional fields start with a 0/1 byte.
 * Properties are the JSON text of codec.ts (Buffers as base64), so a decoded op equals the one
 * encoded, Buffers included.
 *
 * Records of the current log format name things once per log generation (`LogNames`): a client
 * id, a message's topic or sender is written in full the first time the generation uses it
 * (varint 0, then the string) and as its number (varint index + 2) after that, up to MAX_NAMES
 * names per generation (later ones are written in full each time: varint 1, then the string); a delivery's
 * message id, when it is the message put last in the same record (the usual case: a message and
 * its deliveries are one write), is one byte; a queue or inflight entry packs its QoS, retain
 * flag and state into one byte and writes its seq as a varint. A delivery then costs about ten
 * bytes instead of three strings and a float64, and encoding it a map lookup instead of copying
 * them.
 */
import { Buffer } from 'node:buffer';
import { crc32 } from 'node:zlib';
import type { QoS } from '../../protocol/index.js';
import { decodeProperties, encodeProperties } from '../codec.js';
import type { InflightEntry, QueueEntry, StoredMessage, StoredSession, StoredSubscription, StoredWill, StoreOp } from '../types.js';

const OP_CODES = {
  message: 1, session: 2, dropSession: 3, subscribe: 4, unsubscribe: 5, enqueue: 6, dequeue: 7,
  inflight: 8, complete: 9, pubrec: 10, pubrel: 11, retain: 12, unretain: 13,
} as const satisfies Record<StoreOp['op'], number>;

/** A name's reference in a record: defined here (the string follows), in full without a number (the string follows), or number + NAME_REF. */
const NAME_DEFINE = 0;
const NAME_INLINE = 1;
const NAME_REF = 2;
/**
 * The most names one generation numbers: what it keeps in memory is bounded by the names' count,
 * not only by the log's size (a topic per message, say a device id in every topic, would keep one
 * entry per message until the cut). Names after that are written in full.
 */
export const MAX_NAMES = 65_536;

/**
 * The names (client ids, topics) one log generation has written in full, numbered in order.
 * Those a record defines count once it is in the file (`commit`); a record that could not be
 * written takes its definitions back (`rollback`).
 */
export class LogNames {
  #ids = new Map<string, number>();
  readonly #list: string[] = [];
  #committed = 0;

  get size(): number {
    return this.#list.length;
  }

  get(name: string): number | undefined {
    return this.#ids.get(name);
  }

  define(name: string): void {
    this.#ids.set(name, this.#list.length);
    this.#list.push(name);
  }

  commit(): void {
    this.#committed = this.#list.length;
  }

  rollback(): void {
    const list = this.#list;
    for (let i = this.#committed; i < list.length; i++) this.#ids.delete(list[i]!);
    list.length = this.#committed;
  }

  clear(): void {
    // A new Map, not clear() (session/rotating.ts: a cleared table keeps its successor alive).
    this.#ids = new Map();
    this.#list.length = 0;
    this.#committed = 0;
  }
}

class Writer {
  buf: Buffer;
  pos = 0;
  /** The generation's names (current log format); undefined: every string in full (blobs, earlier formats). */
  names: LogNames | undefined;
  /** The id of the message put last in this record (a delivery of it refers back in one byte). */
  lastMessage: string | undefined;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  #room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.#room(1);
    this.buf[this.pos++] = v;
  }

  varint(v: number): void {
    this.#room(5);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }

  /** A non-negative safe integer, 7 bits per byte (varint is for 32-bit values). */
  uvarint(v: number): void {
    this.#room(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  f64(v: number): void {
    this.#room(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  str(s: string): void {
    const len = s.length;
    // Short ASCII strings (client ids, message ids, most topics) byte by byte: cheaper than a
    // native call for the length and another for the bytes.
    if (len < 128) {
      this.#room(len + 1);
      const buf = this.buf;
      const start = this.pos;
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + 1 + i] = c;
      }
      if (i === len) {
        buf[start] = len;
        this.pos = start + 1 + len;
        return;
      }
    }
    const n = Buffer.byteLength(s);
    this.varint(n);
    this.#room(n);
    this.pos += this.buf.write(s, this.pos, n, 'utf8');
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.#room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  optStr(s: string | null | undefined): void {
    if (s === null || s === undefined) return this.u8(0);
    this.u8(1);
    this.str(s);
  }

  /** A client id or topic: its number once the generation has written it (see the file comment). */
  name(s: string): void {
    const names = this.names;
    if (names === undefined) return this.str(s);
    const id = names.get(s);
    if (id !== undefined) return this.varint(id + NAME_REF);
    if (names.size >= MAX_NAMES) {
      // The generation has named as many as it keeps: this one is written in full, every time.
      this.u8(NAME_INLINE);
      return this.str(s);
    }
    this.u8(NAME_DEFINE);
    this.str(s);
    names.define(s);
  }

  optName(s: string | undefined): void {
    if (s === undefined) return this.u8(0);
    this.u8(1);
    this.name(s);
  }

  /** A reference to a message: one byte when it is the one this record put last. */
  messageRef(id: string): void {
    if (this.names === undefined) return this.str(id);
    if (id === this.lastMessage) return this.u8(0);
    this.u8(1);
    this.str(id);
  }

  optF64(v: number | undefined): void {
    if (v === undefined) return this.u8(0);
    this.u8(1);
    this.f64(v);
  }

  numbers(list: readonly number[] | undefined): void {
    if (list === undefined) return this.u8(0);
    this.u8(1);
    this.varint(list.length);
    for (const n of list) this.f64(n);
  }
}

class Reader {
  readonly buf: Buffer;
  pos = 0;
  /** The generation's names read so far (current log format), or undefined (strings in full). */
  readonly names: string[] | undefined;
  lastMessage: string | undefined;

  constructor(buf: Buffer, names: string[] | undefined) {
    this.buf = buf;
    this.names = names;
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  u8(): number {
    if (this.pos >= this.buf.length) throw new RangeError('journal record truncated');
    return this.buf[this.pos++]!;
  }

  varint(): number {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = this.u8();
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
      if (shift > 35) throw new RangeError('journal varint too long');
    }
  }

  uvarint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 0x80;
      if (scale > 2 ** 49) throw new RangeError('journal varint too long');
    }
  }

  f64(): number {
    if (this.pos + 8 > this.buf.length) throw new RangeError('journal record truncated');
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  #take(n: number): Buffer {
    if (this.pos + n > this.buf.length) throw new RangeError('journal record truncated');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  str(): string {
    return this.#take(this.varint()).toString('utf8');
  }

  /** A copy: the blob's memory is not kept alive by one payload. */
  bytes(): Buffer {
    return Buffer.from(this.#take(this.varint()));
  }

  optStr(): string | undefined {
    return this.u8() === 0 ? undefined : this.str();
  }

  name(): string {
    const names = this.names;
    if (names === undefined) return this.str();
    const ref = this.varint();
    if (ref === NAME_DEFINE) {
      const s = this.str();
      names.push(s);
      return s;
    }
    if (ref === NAME_INLINE) return this.str();
    const s = names[ref - NAME_REF];
    if (s === undefined) throw new RangeError(`journal name ${ref - NAME_REF} not defined`);
    return s;
  }

  optName(): string | undefined {
    return this.u8() === 0 ? undefined : this.name();
  }

  messageRef(): string {
    if (this.names === undefined) return this.str();
    if (this.u8() === 1) return this.str();
    if (this.lastMessage === undefined) throw new RangeError('journal message reference before any message');
    return this.lastMessage;
  }

  optF64(): number | undefined {
    return this.u8() === 0 ? undefined : this.f64();
  }

  numbers(): number[] | undefined {
    if (this.u8() === 0) return undefined;
    const n = this.varint();
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(this.f64());
    return out;
  }
}

function writeMessage(w: Writer, m: StoredMessage): void {
  w.str(m.id);
  w.lastMessage = m.id;
  w.name(m.topic);
  w.bytes(m.payload);
  w.u8(m.qos);
  w.u8(m.retain ? 1 : 0);
  w.optStr(encodeProperties(m.properties));
  w.optF64(m.expiresAt);
  w.optName(m.senderId);
}

function readMessage(r: Reader): StoredMessage {
  const id = r.str();
  r.lastMessage = id;
  return {
    id, topic: r.name(), payload: r.bytes(), qos: r.u8() as QoS, retain: r.u8() === 1,
    properties: decodeProperties(r.optStr() ?? null), expiresAt: r.optF64(), senderId: r.optName(),
  };
}

function writeWill(w: Writer, will: StoredWill | undefined): void {
  if (will === undefined) return w.u8(0);
  w.u8(1);
  w.str(will.topic);
  w.bytes(will.payload);
  w.u8(will.qos);
  w.u8(will.retain ? 1 : 0);
  w.optStr(encodeProperties(will.properties));
}

function readWill(r: Reader): StoredWill | undefined {
  if (r.u8() === 0) return undefined;
  return { topic: r.str(), payload: r.bytes(), qos: r.u8() as QoS, retain: r.u8() === 1, properties: decodeProperties(r.optStr() ?? null) };
}

function writeSession(w: Writer, s: StoredSession): void {
  w.name(s.clientId);
  w.f64(s.expiryInterval);
  w.optF64(s.expiresAt);
  writeWill(w, s.will);
  w.optF64(s.willAt);
}

function readSession(r: Reader): StoredSession {
  return { clientId: r.name(), expiryInterval: r.f64(), expiresAt: r.optF64(), will: readWill(r), willAt: r.optF64() };
}

function writeSubscription(w: Writer, s: StoredSubscription): void {
  w.str(s.topicFilter);
  w.u8(s.qos);
  w.u8((s.noLocal ? 1 : 0) | (s.retainAsPublished ? 2 : 0));
  w.u8(s.retainHandling);
  w.optF64(s.subscriptionIdentifier);
}

function readSubscription(r: Reader): StoredSubscription {
  const topicFilter = r.str();
  const qos = r.u8() as QoS;
  const flags = r.u8();
  return { topicFilter, qos, noLocal: (flags & 1) !== 0, retainAsPublished: (flags & 2) !== 0, retainHandling: r.u8() as 0 | 1 | 2, subscriptionIdentifier: r.optF64() };
}

/** Entry flags of the current format: QoS in bits 0–1, then these. */
const ENTRY_RETAIN = 4;
const ENTRY_SUB_IDS = 8;
const ENTRY_PUBREL = 16;
/** The seq is not a safe non-negative integer (never from the broker): float64 instead of a varint. */
const ENTRY_SEQ_F64 = 32;

/**
 * A queue entry, or the entry of an inflight op with its packet id and state. Current format:
 * client name, one flags byte, seq as a varint, message reference, subscription ids if flagged,
 * the packet id; earlier formats: every field on its own, seq as float64.
 */
function writeEntry(w: Writer, e: QueueEntry, inflight: InflightEntry | undefined): void {
  if (w.names === undefined) {
    w.str(e.clientId);
    w.f64(e.seq);
    w.str(e.messageId);
    w.u8(e.qos);
    w.u8(e.retain ? 1 : 0);
    w.numbers(e.subscriptionIds);
    if (inflight !== undefined) {
      w.varint(inflight.packetId);
      w.u8(inflight.state === 'pubrel' ? 1 : 0);
    }
    return;
  }
  w.name(e.clientId);
  const seq = e.seq;
  const wide = !(Number.isSafeInteger(seq) && seq >= 0);
  const ids = e.subscriptionIds;
  w.u8(e.qos | (e.retain ? ENTRY_RETAIN : 0) | (ids === undefined ? 0 : ENTRY_SUB_IDS)
    | (inflight?.state === 'pubrel' ? ENTRY_PUBREL : 0) | (wide ? ENTRY_SEQ_F64 : 0));
  if (wide) w.f64(seq);
  else w.uvarint(seq);
  w.messageRef(e.messageId);
  if (ids !== undefined) {
    w.varint(ids.length);
    for (let i = 0; i < ids.length; i++) w.f64(ids[i]!);
  }
  if (inflight !== undefined) w.varint(inflight.packetId);
}

/** A queue entry, or (`inflight`) an inflight one with its packet id and state, each object built once. */
function readEntry(r: Reader, inflight: false): QueueEntry;
function readEntry(r: Reader, inflight: true): InflightEntry;
function readEntry(r: Reader, inflight: boolean): QueueEntry | InflightEntry {
  let clientId: string;
  let seq: number;
  let messageId: string;
  let qos: QoS;
  let retain: boolean;
  let subscriptionIds: number[] | undefined;
  let flags = 0;
  if (r.names === undefined) {
    clientId = r.str();
    seq = r.f64();
    messageId = r.str();
    qos = r.u8() as QoS;
    retain = r.u8() === 1;
    subscriptionIds = r.numbers();
  } else {
    clientId = r.name();
    flags = r.u8();
    seq = (flags & ENTRY_SEQ_F64) !== 0 ? r.f64() : r.uvarint();
    messageId = r.messageRef();
    qos = (flags & 3) as QoS;
    retain = (flags & ENTRY_RETAIN) !== 0;
    if ((flags & ENTRY_SUB_IDS) !== 0) {
      const n = r.varint();
      subscriptionIds = [];
      for (let i = 0; i < n; i++) subscriptionIds.push(r.f64());
    }
  }
  if (!inflight) return { clientId, seq, messageId, qos, retain, subscriptionIds };
  const packetId = r.varint();
  const pubrel = r.names === undefined ? r.u8() === 1 : (flags & ENTRY_PUBREL) !== 0;
  return { clientId, seq, messageId, qos, retain, subscriptionIds, packetId, state: pubrel ? 'pubrel' : 'publish' };
}

/** Reused by every encodeOps call: the store binds the blob (SQLite copies it) before the next one. */
const scratch = new Writer(64 * 1024);

/**
 * One blob holding `batches`' ops in order, every string in full (the body of a record of the
 * earlier log formats). The result is a view of a buffer that the next call overwrites: use it
 * (or copy it) before encoding again.
 */
export function encodeOps(batches: readonly (readonly StoreOp[])[]): Buffer {
  scratch.pos = 0;
  scratch.names = undefined;
  return encodeInto(scratch, batches);
}

/**
 * The same ops as an operation-log record of log generation `generation`, naming through
 * `names` (the generation's, see LogNames: commit it once the record is written, roll it back
 * if not): body length (u32 LE), CRC-32 (u32 LE) of the generation's low 32 bits (u32 LE)
 * followed by the body, then those 32 bits, then the body. A record cut short by a crash, or
 * damaged, fails its length or CRC check when read back; a record left in the file by an earlier
 * generation (a reused log file) fails the generation check. The result is a view of the shared
 * buffer, like encodeOps'.
 */
export function encodeRecord(batches: readonly (readonly StoreOp[])[], generation: number, names: LogNames): Buffer {
  scratch.pos = RECORD_HEAD;
  scratch.names = names;
  const out = encodeInto(scratch, batches);
  scratch.names = undefined;
  const tag = generation >>> 0;
  out.writeUInt32LE(out.length - RECORD_HEAD, 0);
  out.writeUInt32LE(tag, 8);
  out.writeUInt32LE(crc32(out.subarray(8)), 4);
  return out;
}

/** Record head: length, CRC, generation tag (the CRC covers the tag and the body). */
const RECORD_HEAD = 12;
/** Records of the first log format: length and CRC of the body, no generation tag. */
const RECORD_HEAD_V1 = 8;

/** File header of an operation log: magic and generation. */
export const LOG_HEADER_BYTES = 16;
const LOG_MAGIC = Buffer.from('PTRLOPS3', 'latin1');
/** The earlier formats, still read after an upgrade: records without a generation tag, then with one; strings in full in both. */
const LOG_MAGIC_V1 = Buffer.from('PTRLOPS1', 'latin1');
const LOG_MAGIC_V2 = Buffer.from('PTRLOPS2', 'latin1');

export function logHeader(generation: number): Buffer {
  const b = Buffer.alloc(LOG_HEADER_BYTES);
  LOG_MAGIC.copy(b, 0);
  b.writeDoubleLE(generation, 8);
  return b;
}

/** Whether `file` starts with the header this version writes (records carry a generation tag). */
export function isCurrentLog(file: Buffer): boolean {
  return file.length >= LOG_HEADER_BYTES && file.subarray(0, 8).equals(LOG_MAGIC);
}

/**
 * Reads an operation log: its generation and the ops of every whole, intact record of that
 * generation in order (those starting at offset `from` or later), up to the first record that is
 * cut short, damaged, empty (zeros: a preallocated or never written part of the file) or of
 * another generation (what an earlier generation left in a reused file), which is where a crash
 * in the middle of a write leaves the log's end.
 * A file without a valid header (empty, or cut inside the header) holds nothing.
 */
/** The generation in the header of an operation log of any format; undefined when it has no valid header. */
export function logGeneration(file: Buffer): number | undefined {
  if (file.length < LOG_HEADER_BYTES) return undefined;
  const magic = file.subarray(0, 8);
  if (!magic.equals(LOG_MAGIC) && !magic.equals(LOG_MAGIC_V2) && !magic.equals(LOG_MAGIC_V1)) return undefined;
  return file.readDoubleLE(8);
}

export function readLog(file: Buffer, out: StoreOp[], from = 0): { generation: number; records: number; validBytes: number } | undefined {
  const generation = logGeneration(file);
  if (generation === undefined) return undefined;
  const v1 = file.subarray(0, 8).equals(LOG_MAGIC_V1);
  // The generation's names, defined by its records in order (every record is decoded, also those before `from`).
  const names: string[] | undefined = isCurrentLog(file) ? [] : undefined;
  const head = v1 ? RECORD_HEAD_V1 : RECORD_HEAD;
  const tag = generation >>> 0;
  let pos = LOG_HEADER_BYTES;
  let records = 0;
  while (pos + head <= file.length) {
    const length = file.readUInt32LE(pos);
    const crc = file.readUInt32LE(pos + 4);
    const end = pos + head + length;
    if (length === 0 || end > file.length) break;
    if (v1) {
      if (crc32(file.subarray(pos + head, end)) !== crc) break;
    } else if (file.readUInt32LE(pos + 8) !== tag || crc32(file.subarray(pos + 8, end)) !== crc) {
      break;
    }
    const ops: StoreOp[] = [];
    try {
      decodeOps(file.subarray(pos + head, end), ops, names);
    } catch {
      break;
    }
    // Records before `from` are in the tables already.
    if (pos >= from) for (const op of ops) out.push(op);
    records++;
    pos = end;
  }
  return { generation, records, validBytes: pos };
}

function encodeInto(w: Writer, batches: readonly (readonly StoreOp[])[]): Buffer {
  w.lastMessage = undefined;
  for (const ops of batches) {
    for (const op of ops) {
      // The op code a constant per case: a lookup by the op's name would cost a hash per op.
      switch (op.op) {
        case 'message': w.u8(OP_CODES.message); writeMessage(w, op.message); break;
        case 'session': w.u8(OP_CODES.session); writeSession(w, op.session); break;
        case 'dropSession': w.u8(OP_CODES.dropSession); w.name(op.clientId); break;
        case 'subscribe': w.u8(OP_CODES.subscribe); w.name(op.clientId); writeSubscription(w, op.subscription); break;
        case 'unsubscribe': w.u8(OP_CODES.unsubscribe); w.name(op.clientId); w.str(op.topicFilter); break;
        case 'enqueue': w.u8(OP_CODES.enqueue); writeEntry(w, op.entry, undefined); break;
        case 'dequeue': w.u8(OP_CODES.dequeue); w.name(op.clientId); w.f64(op.seq); break;
        case 'inflight': w.u8(OP_CODES.inflight); writeEntry(w, op.entry, op.entry); break;
        case 'complete': w.u8(OP_CODES.complete); w.name(op.clientId); w.varint(op.packetId); break;
        case 'pubrec': w.u8(OP_CODES.pubrec); w.name(op.clientId); w.varint(op.packetId); break;
        case 'pubrel': w.u8(OP_CODES.pubrel); w.name(op.clientId); w.varint(op.packetId); break;
        case 'retain': w.u8(OP_CODES.retain); w.name(op.topic); w.messageRef(op.messageId); break;
        case 'unretain': w.u8(OP_CODES.unretain); w.name(op.topic); break;
      }
    }
  }
  w.lastMessage = undefined;
  return w.buf.subarray(0, w.pos);
}

/**
 * The ops of one blob, in order; `names`: those of its log generation so far (a record of the
 * current format, which adds the names it defines), none for a blob of strings in full. Throws
 * RangeError for a damaged blob.
 */
export function decodeOps(blob: Buffer, out: StoreOp[], names?: string[]): void {
  const r = new Reader(blob, names);
  while (!r.done) {
    const code = r.u8();
    switch (code) {
      case OP_CODES.message: out.push({ op: 'message', message: readMessage(r) }); break;
      case OP_CODES.session: out.push({ op: 'session', session: readSession(r) }); break;
      case OP_CODES.dropSession: out.push({ op: 'dropSession', clientId: r.name() }); break;
      case OP_CODES.subscribe: out.push({ op: 'subscribe', clientId: r.name(), subscription: readSubscription(r) }); break;
      case OP_CODES.unsubscribe: out.push({ op: 'unsubscribe', clientId: r.name(), topicFilter: r.str() }); break;
      case OP_CODES.enqueue: out.push({ op: 'enqueue', entry: readEntry(r, false) }); break;
      case OP_CODES.dequeue: out.push({ op: 'dequeue', clientId: r.name(), seq: r.f64() }); break;
      case OP_CODES.inflight: out.push({ op: 'inflight', entry: readEntry(r, true) }); break;
      case OP_CODES.complete: out.push({ op: 'complete', clientId: r.name(), packetId: r.varint() }); break;
      case OP_CODES.pubrec: out.push({ op: 'pubrec', clientId: r.name(), packetId: r.varint() }); break;
      case OP_CODES.pubrel: out.push({ op: 'pubrel', clientId: r.name(), packetId: r.varint() }); break;
      case OP_CODES.retain: out.push({ op: 'retain', topic: r.name(), messageId: r.messageRef() }); break;
      case OP_CODES.unretain: out.push({ op: 'unretain', topic: r.name() }); break;
      default: throw new RangeError(`unknown journal op code ${code}`);
    }
  }
}

/** The latest op on each row of one session, by table and key, and every op of the session (for a dropSession). */
class SessionRows {
  session = -1;
  readonly subscriptions = new Map<string, number>();
  readonly queue = new Map<number, number>();
  readonly inflight = new Map<number, number>();
  readonly inboundQos2 = new Map<number, number>();
  readonly all: number[] = [];
}

/** Makes op `i` the last one on its row (`rows` keyed by `key`), superseding the one before. */
function setLast<K>(rows: Map<K, number>, key: K, i: number, keep: Uint8Array): void {
  const prev = rows.get(key);
  if (prev !== undefined) keep[prev] = 0;
  rows.set(key, i);
  keep[i] = 1;
}

/**
 * The ops that give the tables the same end state as applying `ops` in order, usually far fewer.
 * Every op but 'message' and 'dropSession' sets one row to a value (or deletes it) whatever the
 * row held, adjusting message references against the row it replaces, so only the last op on a
 * row matters; a 'dropSession' deletes every row of its session, so it supersedes every earlier
 * op of that session. Messages that no remaining op references are not stored at all (their
 * count would end at 0 and they would be deleted in the same transaction). The result lists the
 * needed messages first, then the remaining ops in their original order.
 *
 * A QoS 1 delivery that was sent and acknowledged within one run of ops (message, inflight,
 * complete) comes out as one 'complete' of a row that never reached the table: one cheap delete.
 * Rows are found per session and table (numbers for queue seqs and packet ids), not by a key
 * string per op: this runs over every op the log takes.
 */
export function netOps(ops: readonly StoreOp[]): StoreOp[] {
  const keep = new Uint8Array(ops.length);
  const sessions = new Map<string, SessionRows>();
  const retained = new Map<string, number>();
  const rowsOf = (clientId: string, i: number): SessionRows => {
    let rows = sessions.get(clientId);
    if (rows === undefined) sessions.set(clientId, rows = new SessionRows());
    rows.all.push(i);
    return rows;
  };
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    switch (op.op) {
      case 'message':
        break;
      case 'dropSession': {
        const earlier = sessions.get(op.clientId);
        if (earlier !== undefined) for (const j of earlier.all) keep[j] = 0;
        const rows = new SessionRows();
        rows.all.push(i);
        sessions.set(op.clientId, rows);
        keep[i] = 1;
        break;
      }
      case 'session': {
        const rows = rowsOf(op.session.clientId, i);
        if (rows.session >= 0) keep[rows.session] = 0;
        rows.session = i;
        keep[i] = 1;
        break;
      }
      case 'subscribe': setLast(rowsOf(op.clientId, i).subscriptions, op.subscription.topicFilter, i, keep); break;
      case 'unsubscribe': setLast(rowsOf(op.clientId, i).subscriptions, op.topicFilter, i, keep); break;
      case 'enqueue': setLast(rowsOf(op.entry.clientId, i).queue, op.entry.seq, i, keep); break;
      case 'dequeue': setLast(rowsOf(op.clientId, i).queue, op.seq, i, keep); break;
      case 'inflight': setLast(rowsOf(op.entry.clientId, i).inflight, op.entry.packetId, i, keep); break;
      case 'complete': setLast(rowsOf(op.clientId, i).inflight, op.packetId, i, keep); break;
      case 'pubrec': case 'pubrel': setLast(rowsOf(op.clientId, i).inboundQos2, op.packetId, i, keep); break;
      case 'retain': case 'unretain': setLast(retained, op.topic, i, keep); break;
    }
  }
  const needed = new Set<string>();
  for (let i = 0; i < ops.length; i++) {
    if (keep[i] === 0) continue;
    const op = ops[i]!;
    if (op.op === 'enqueue' || op.op === 'inflight') needed.add(op.entry.messageId);
    else if (op.op === 'retain') needed.add(op.messageId);
  }
  const out: StoreOp[] = [];
  if (needed.size > 0) {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.op !== 'message' || !needed.has(op.message.id)) continue;
      // Once per id: a repeated put of the same message changes nothing.
      needed.delete(op.message.id);
      out.push(op);
    }
  }
  for (let i = 0; i < ops.length; i++) if (keep[i] === 1) out.push(ops[i]!);
  return out;
}
