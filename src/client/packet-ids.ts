/**
 * Packet identifiers for the client's outgoing PUBLISH (QoS 1/2), SUBSCRIBE and UNSUBSCRIBE.
 * Invariants: an identifier is never handed out while in use [MQTT-2.2.1-3]; allocation walks
 * 1..65535 and wraps, skipping identifiers in use, so a just-freed identifier is reused last.
 */
import { ProtocolError } from '../protocol/index.js';
import { RotatingSet } from '../session/rotating.js';

const MAX_ID = 0xffff;

export class PacketIds {
  readonly #used = new RotatingSet<number>();
  #last = 0;

  get inUse(): number {
    return this.#used.size;
  }

  /** The next free identifier; throws when all 65,535 are in use. */
  take(): number {
    if (this.#used.size >= MAX_ID) throw new ProtocolError('every packet identifier is in use');
    let id = this.#last;
    do {
      id = id === MAX_ID ? 1 : id + 1;
    } while (this.#used.has(id));
    this.#used.add(id);
    this.#last = id;
    return id;
  }

  /** Marks `id` as in use (restored state). */
  reserve(id: number): void {
    this.#used.add(id);
  }

  release(id: number): void {
    this.#used.delete(id);
  }

  has(id: number): boolean {
    return this.#used.has(id);
  }
}
