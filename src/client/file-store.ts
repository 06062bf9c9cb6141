/**
 * FileStore: the client's QoS 1/2 state in a directory, so that a process that restarts with the
 * same client id and a persistent session resends what the server had not acknowledged.
 *
 * Layout: one append-only journal (`inflight.log`), one JSON record per line. Invariants:
 * - every change is written and fsync'd before the call returns (the client calls the store
 *   before it writes the packet, so a crash never loses a message the server might not have);
 * - a torn last line (a crash in the middle of a write) is ignored on load;
 * - the journal is bounded: past `maxJournalBytes`, and at least twice its live content, it is
 *   rewritten as a snapshot (write a temporary file, fsync, rename, fsync the directory);
 * - reads come from the memory copy; the file is read once, when the store is opened.
 * One process at a time may use a directory.
 */
import { Buffer } from 'node:buffer';
import {
  closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync, existsSync,
} from 'node:fs';
import { join } from 'node:path';
import type { PublishPacket } from '../protocol/index.js';
import { MemoryStore, type InflightStore, type OutgoingEntry } from './store.js';

export interface FileStoreOptions {
  /** fsync after every change. Default true; false trusts the page cache (faster, loses data on power loss). */
  fsync?: boolean;
  /** Journal size that triggers a compaction. Default 4 MiB. */
  maxJournalBytes?: number;
}

type Row =
  | { o: 'put'; id: number; phase: OutgoingEntry['phase']; packet: StoredPacket }
  | { o: 'del'; id: number }
  | { o: 'in'; id: number }
  | { o: 'rel'; id: number }
  | { o: 'clear' };

interface StoredPacket extends Omit<PublishPacket, 'payload'> {
  payload: string;
}

const FILE = 'inflight.log';

export class FileStore implements InflightStore {
  readonly #memory = new MemoryStore();
  readonly #dir: string;
  readonly #path: string;
  readonly #fsync: boolean;
  readonly #maxBytes: number;
  #fd: number;
  #bytes = 0;
  #threshold = 0;

  constructor(dir: string, options: FileStoreOptions = {}) {
    this.#dir = dir;
    this.#path = join(dir, FILE);
    this.#fsync = options.fsync ?? true;
    this.#maxBytes = options.maxJournalBytes ?? 4 * 1024 * 1024;
    mkdirSync(dir, { recursive: true });
    if (existsSync(this.#path)) this.#load(readFileSync(this.#path, 'utf8'));
    // Start from a snapshot: drops a torn tail and whatever the last run left uncompacted.
    this.#fd = -1;
    this.#compact();
  }

  /** Size of the journal now, in bytes. */
  get journalBytes(): number {
    return this.#bytes;
  }

  getOutgoing(packetId: number): OutgoingEntry | undefined {
    return this.#memory.getOutgoing(packetId);
  }

  putOutgoing(packetId: number, entry: OutgoingEntry): void {
    this.#memory.putOutgoing(packetId, entry);
    this.#append({ o: 'put', id: packetId, phase: entry.phase, packet: storedPacket(entry.packet) });
  }

  deleteOutgoing(packetId: number): void {
    if (this.#memory.getOutgoing(packetId) === undefined) return;
    this.#memory.deleteOutgoing(packetId);
    this.#append({ o: 'del', id: packetId });
  }

  outgoing(): IterableIterator<[number, OutgoingEntry]> {
    return this.#memory.outgoing();
  }

  hasIncoming(packetId: number): boolean {
    return this.#memory.hasIncoming(packetId);
  }

  addIncoming(packetId: number): void {
    this.#memory.addIncoming(packetId);
    this.#append({ o: 'in', id: packetId });
  }

  deleteIncoming(packetId: number): void {
    if (!this.#memory.hasIncoming(packetId)) return;
    this.#memory.deleteIncoming(packetId);
    this.#append({ o: 'rel', id: packetId });
  }

  clear(): void {
    this.#memory.clear();
    this.#compact();
  }

  /** Closes the journal; the store must not be used afterwards. */
  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }

  #append(row: Row): void {
    if (this.#fd < 0) throw new Error('the FileStore is closed');
    const line = Buffer.from(`${JSON.stringify(row)}\n`, 'utf8');
    writeSync(this.#fd, line);
    if (this.#fsync) fsyncSync(this.#fd);
    this.#bytes += line.length;
    if (this.#bytes > this.#threshold) this.#compact();
  }

  /** Rewrites the journal as the live state: temporary file, fsync, rename, fsync the directory. */
  #compact(): void {
    const lines: string[] = [];
    for (const [id, entry] of this.#memory.outgoing()) {
      lines.push(JSON.stringify({ o: 'put', id, phase: entry.phase, packet: storedPacket(entry.packet) } satisfies Row));
    }
    for (const id of this.#memory.incomingIds()) lines.push(JSON.stringify({ o: 'in', id } satisfies Row));
    const text = lines.length === 0 ? '' : `${lines.join('\n')}\n`;
    const tmp = `${this.#path}.tmp`;
    const fd = openSync(tmp, 'w');
    writeSync(fd, text);
    if (this.#fsync) fsyncSync(fd);
    closeSync(fd);
    if (this.#fd >= 0) closeSync(this.#fd);
    renameSync(tmp, this.#path);
    if (this.#fsync) syncDir(this.#dir);
    this.#fd = openSync(this.#path, 'a');
    this.#bytes = Buffer.byteLength(text);
    // A journal whose live content is itself large compacts again only once it doubled.
    this.#threshold = Math.max(this.#maxBytes, this.#bytes * 2);
  }

  #load(text: string): void {
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string;
      if (line.length === 0) continue;
      let row: Row;
      try {
        row = JSON.parse(line, revive) as Row;
      } catch (err) {
        // Only the last line may be torn.
        if (i >= lines.length - 2) break;
        throw new Error(`${this.#path}: line ${i + 1} is corrupt`, { cause: err });
      }
      switch (row.o) {
        case 'put': this.#memory.putOutgoing(row.id, { phase: row.phase, packet: loadedPacket(row.packet) }); break;
        case 'del': this.#memory.deleteOutgoing(row.id); break;
        case 'in': this.#memory.addIncoming(row.id); break;
        case 'rel': this.#memory.deleteIncoming(row.id); break;
        case 'clear': this.#memory.clear(); break;
      }
    }
  }
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Some platforms cannot fsync a directory; the rename is then as durable as they make it.
  }
}

function storedPacket(p: PublishPacket): StoredPacket {
  return { ...p, payload: p.payload.toString('base64') };
}

function loadedPacket(p: StoredPacket): PublishPacket {
  return { ...p, payload: Buffer.from(p.payload, 'base64') } as PublishPacket;
}

/** Buffers inside properties (Correlation Data) were written by Buffer#toJSON. */
function revive(_key: string, value: unknown): unknown {
  if (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'Buffer'
    && Array.isArray((value as { data?: unknown }).data)) {
    return Buffer.from((value as { data: number[] }).data);
  }
  return value;
}
