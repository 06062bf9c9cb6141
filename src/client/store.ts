/**
 * Where the client keeps its QoS 1/2 state: the outgoing messages not yet complete and the
 * inbound QoS 2 identifiers not yet released. The store is the one owner of that state, so a
 * session resumed on a later connection (or after a restart, with a durable store) finds it here.
 *
 * The interface is synchronous on purpose: the client consults it on every acknowledgement. A
 * durable implementation keeps a memory copy and writes behind (a journal with a commit point),
 * as the broker's store does; `MemoryStore` is that copy alone.
 */
import type { PublishPacket } from '../protocol/index.js';
import { RotatingMap, RotatingSet } from '../session/rotating.js';

export interface OutgoingEntry {
  /** The PUBLISH as sent (with its packet identifier), for a resend with DUP [MQTT-4.4.0-1]. */
  packet: PublishPacket;
  /** 'publish': waiting for PUBACK / PUBREC; 'pubrel': PUBREL sent, waiting for PUBCOMP. */
  phase: 'publish' | 'pubrel';
}

export interface InflightStore {
  getOutgoing(packetId: number): OutgoingEntry | undefined;
  putOutgoing(packetId: number, entry: OutgoingEntry): void;
  deleteOutgoing(packetId: number): void;
  /** In the order they were first put (the resend order [MQTT-4.6.0-1]). */
  outgoing(): IterableIterator<[number, OutgoingEntry]>;
  /** Inbound QoS 2 identifiers delivered to the application and not yet released by PUBREL. */
  hasIncoming(packetId: number): boolean;
  addIncoming(packetId: number): void;
  deleteIncoming(packetId: number): void;
  /** Forgets everything (a clean start, or a CONNACK without a session). */
  clear(): void;
}

export class MemoryStore implements InflightStore {
  readonly #outgoing = new RotatingMap<number, OutgoingEntry>();
  readonly #incoming = new RotatingSet<number>();

  getOutgoing(packetId: number): OutgoingEntry | undefined {
    return this.#outgoing.get(packetId);
  }

  putOutgoing(packetId: number, entry: OutgoingEntry): void {
    this.#outgoing.set(packetId, entry);
  }

  deleteOutgoing(packetId: number): void {
    this.#outgoing.delete(packetId);
  }

  outgoing(): IterableIterator<[number, OutgoingEntry]> {
    return this.#outgoing.entries();
  }

  hasIncoming(packetId: number): boolean {
    return this.#incoming.has(packetId);
  }

  addIncoming(packetId: number): void {
    this.#incoming.add(packetId);
  }

  deleteIncoming(packetId: number): void {
    this.#incoming.delete(packetId);
  }

  /** The inbound QoS 2 identifiers held, in the order they arrived. */
  incomingIds(): number[] {
    return [...this.#incoming];
  }

  clear(): void {
    this.#outgoing.clear();
    this.#incoming.clear();
  }
}
