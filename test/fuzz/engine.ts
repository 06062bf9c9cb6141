/**
 * Decoder fuzzing: valid encodings of random packets, mutated (bit flips, byte changes,
 * truncations, insertions, deletions, length field changes, splices) or replaced by random
 * bytes, fed in random chunks to a Decoder with a random maximum packet size. Invariants:
 * - push returns packets or throws an MqttError subclass, never anything else;
 * - after an error the decoder is dead: the next push throws the same error;
 * - bufferedBytes never exceeds maxPacketSize;
 * - every decoded packet encodes, and that encoding decodes to the same packet.
 * Every iteration has its own seed (subSeed), so one failure can be replayed alone.
 */
import { Buffer } from 'node:buffer';
import { Decoder, encode, MqttError, type Packet, PacketType } from '../../src/protocol/index.js';
import { normalize, randomPacket } from '../helpers/codec-gen.js';
import { toHex } from '../helpers/codec-hex.js';
import { Rng, subSeed } from '../helpers/codec-prng.js';
import { isDeepStrictEqual } from 'node:util';

export interface FuzzStats {
  iterations: number;
  inputBytes: number;
  packets: number;
  /** Errors thrown by the decoder, by reason code. */
  errors: Map<number, number>;
}

export class FuzzFailure extends Error {
  constructor(readonly seed: number, readonly iteration: number, readonly input: Buffer, problem: string, cause?: unknown) {
    super(`fuzz failure (seed ${seed}, iteration ${iteration}): ${problem}\ninput: ${toHex(input.subarray(0, 400))}${input.length > 400 ? ' ...' : ''}`, { cause });
  }
}

export function newStats(): FuzzStats {
  return { iterations: 0, inputBytes: 0, packets: 0, errors: new Map() };
}

const INTERESTING = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, 0xc0, 0x30, 0x23, 0x2b, 0x2f];

function mutate(rng: Rng, input: Buffer): Buffer {
  let b: Buffer = Buffer.from(input);
  const rounds = rng.int(1, 3);
  for (let r = 0; r < rounds; r++) {
    if (b.length === 0) b = rng.bytes(rng.int(1, 8));
    const at = rng.int(0, b.length - 1);
    switch (rng.int(0, 8)) {
      case 0: b[at] = (b[at] as number) ^ (1 << rng.int(0, 7)); break; // bit flip
      case 1: b[at] = rng.chance(0.5) ? rng.pick(INTERESTING) : rng.int(0, 255); break; // byte change
      case 2: b = b.subarray(0, rng.int(0, b.length - 1)); break; // truncation
      case 3: b = Buffer.concat([b.subarray(0, at), rng.bytes(rng.int(1, 8)), b.subarray(at)]); break; // insertion
      case 4: b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + rng.int(1, 8)))]); break; // deletion
      case 5: { // remaining length change: rewrite the fixed header's length field
        const len = rng.chance(0.5) ? rng.int(0, 300) : rng.int(0, 268_435_455);
        const out: number[] = [];
        let n = len;
        do { let x = n % 128; n = Math.floor(n / 128); if (n > 0) x |= 0x80; out.push(x); } while (n > 0);
        let end = 1;
        while (end < b.length && end < 5 && ((b[end] as number) & 0x80) !== 0) end++;
        b = Buffer.concat([b.subarray(0, 1), Buffer.from(out), b.subarray(Math.min(b.length, end + 1))]);
        break;
      }
      case 6: { // a two-byte length (string, binary, packet identifier) made off by some
        if (b.length < 2) break;
        const pos = rng.int(0, b.length - 2);
        const v = (b.readUInt16BE(pos) + rng.pick([-1, 1, 2, 255, 0x8000])) & 0xffff;
        b.writeUInt16BE(v, pos);
        break;
      }
      case 7: { // splice a piece of itself somewhere else
        const from = rng.int(0, b.length - 1);
        const piece = b.subarray(from, Math.min(b.length, from + rng.int(1, 16)));
        b = Buffer.concat([b.subarray(0, at), piece, b.subarray(at)]);
        break;
      }
      default: b = Buffer.concat([b, rng.bytes(rng.int(1, 16))]); // garbage after
    }
  }
  return b;
}

function makeInput(rng: Rng, version: 3 | 4 | 5): Buffer {
  if (rng.chance(0.05)) return rng.bytes(rng.int(0, 64)); // pure noise
  const count = rng.int(1, 3);
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) parts.push(encode(randomPacket(rng, version), version));
  const valid = Buffer.concat(parts);
  return rng.chance(0.1) ? valid : mutate(rng, valid);
}

function split(rng: Rng, input: Buffer): Buffer[] {
  if (input.length > 1 && input.length < 64 && rng.chance(0.05)) return [...input].map((x) => Buffer.from([x]));
  const cuts = new Set<number>();
  const n = rng.int(0, 5);
  for (let i = 0; i < n && input.length > 1; i++) cuts.add(rng.int(1, input.length - 1));
  const sorted = [...cuts].sort((a, c) => a - c);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const c of sorted) { chunks.push(input.subarray(prev, c)); prev = c; }
  chunks.push(input.subarray(prev));
  if (rng.chance(0.05)) chunks.splice(rng.int(0, chunks.length), 0, Buffer.alloc(0)); // an empty chunk
  return chunks;
}

/** Decoding `p`'s encoding gives `p` back (up to the omissible 5.0 reason code). */
function reencodes(p: Packet, version: number): boolean {
  const bytes = encode(p, version);
  const again = new Decoder(version === 0 ? {} : { protocolVersion: version as 3 | 4 | 5 }).push(bytes);
  return again.length === 1 && isDeepStrictEqual(normalize(again[0] as Packet, version), normalize(p, version));
}

/** Runs iteration `i` of the run seeded `seed`; throws FuzzFailure when an invariant breaks. */
export function fuzzOne(seed: number, i: number, stats: FuzzStats): void {
  const rng = new Rng(subSeed(seed, i));
  const version = rng.pick([3, 4, 5] as const);
  const input = makeInput(rng, version);
  // A limit below 5 could not even hold an incomplete 5-byte fixed header, so none is chosen.
  const r = rng.next();
  const maxPacketSize = r < 0.3 ? rng.int(5, 300) : r < 0.6 ? rng.int(300, 40_000) : undefined;
  const decoder = new Decoder({ maxPacketSize, protocolVersion: rng.chance(0.15) ? undefined : version });
  const limit = decoder.maxPacketSize;
  stats.iterations++;
  stats.inputBytes += input.length;
  for (const chunk of split(rng, input)) {
    const decoded: Array<{ packet: Packet; version: number }> = [];
    try {
      decoder.feed(chunk, (packet) => decoded.push({ packet, version: decoder.protocolVersion }));
    } catch (err) {
      if (!(err instanceof MqttError)) throw new FuzzFailure(seed, i, input, `decoder threw a non-MqttError: ${String(err)}`, err);
      stats.errors.set(err.reasonCode, (stats.errors.get(err.reasonCode) ?? 0) + 1);
      let again: unknown;
      try { decoder.push(Buffer.from([PacketType.Pingreq << 4, 0])); } catch (e) { again = e; }
      if (again !== err) throw new FuzzFailure(seed, i, input, 'decoder did not stay dead after an error');
      checkPackets(seed, i, input, decoded, stats);
      return;
    }
    if (decoder.bufferedBytes > limit) {
      throw new FuzzFailure(seed, i, input, `bufferedBytes ${decoder.bufferedBytes} exceeds maxPacketSize ${limit}`);
    }
    checkPackets(seed, i, input, decoded, stats);
  }
}

function checkPackets(seed: number, i: number, input: Buffer, decoded: Array<{ packet: Packet; version: number }>, stats: FuzzStats): void {
  for (const { packet, version } of decoded) {
    stats.packets++;
    let ok: boolean;
    try {
      ok = reencodes(packet, version);
    } catch (err) {
      throw new FuzzFailure(seed, i, input, `a decoded ${packet.type} packet does not re-encode: ${String(err)}`, err);
    }
    if (!ok) throw new FuzzFailure(seed, i, input, `a decoded packet of type ${packet.type} changes when re-encoded: ${JSON.stringify(packet)}`);
  }
}

export interface RunOptions {
  seed: number;
  iterations: number;
  /** Stop early (without failing) when this many milliseconds have passed. */
  timeBudgetMs?: number;
  progressEvery?: number;
  onProgress?: (stats: FuzzStats, elapsedMs: number) => void;
}

export function runFuzz(options: RunOptions): FuzzStats {
  const stats = newStats();
  const start = performance.now();
  const every = options.progressEvery ?? 10_000;
  for (let i = 0; i < options.iterations; i++) {
    fuzzOne(options.seed, i, stats);
    if ((i + 1) % every === 0) {
      const elapsed = performance.now() - start;
      options.onProgress?.(stats, elapsed);
      if (options.timeBudgetMs !== undefined && elapsed > options.timeBudgetMs) break;
    }
  }
  return stats;
}
