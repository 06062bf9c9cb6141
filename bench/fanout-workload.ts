/**
 * The fan-out workload of `bench:store` (parts 5 and 6), as the broker writes it to a store: per
 * turn, `perTurn` messages (128 B payload) each put with its deliveries to `receivers` of
 * `sessions` online persistent sessions in one write, and the completes of those deliveries for
 * a later write. As in the broker, every op of a session carries the session's own client id
 * string, and a message its publisher's; a topic is a string of its own per message there
 * (decoded from the PUBLISH), here one of 128.
 */
import { Buffer } from 'node:buffer';
import type { StoreOp } from '../src/persistence/index.js';

export class FanoutWorkload {
  readonly sessions: number;
  readonly receivers: number;
  readonly perTurn: number;
  readonly #clients: string[];
  readonly #topics = Array.from({ length: 128 }, (_, i) => `sensors/${i}/temp`);
  readonly #senders = Array.from({ length: 10 }, (_, i) => `fanout-pub-${i}`);
  readonly #payload = Buffer.alloc(128, 0x61);
  readonly #packetIds: Uint16Array;
  readonly #seqs: Float64Array;
  /** Messages put so far. */
  messages = 0;
  /** Deliveries put so far. */
  deliveries = 0;

  constructor(sessions = 512, receivers = 4, perTurn = 10) {
    this.sessions = sessions;
    this.receivers = receivers;
    this.perTurn = perTurn;
    this.#clients = Array.from({ length: sessions }, (_, i) => `fanout-sub-${i}`);
    this.#packetIds = new Uint16Array(sessions);
    this.#seqs = new Float64Array(sessions);
  }

  /** The sessions' own records, written once before the first turn. */
  sessionOps(): StoreOp[] {
    return this.#clients.map((clientId): StoreOp => ({ op: 'session', session: { clientId, expiryInterval: 3600, expiresAt: undefined, will: undefined, willAt: undefined } }));
  }

  /** One turn: the write of its messages and deliveries, and the completes of those deliveries. */
  turn(): { ops: StoreOp[]; completes: StoreOp[] } {
    const ops: StoreOp[] = [];
    const completes: StoreOp[] = [];
    for (let m = 0; m < this.perTurn; m++) {
      const n = this.messages++;
      const id = `fanout.${n.toString(36)}`;
      ops.push({ op: 'message', message: { id, topic: this.#topics[n % 128]!, payload: this.#payload, qos: 1, retain: false, properties: undefined, expiresAt: undefined, senderId: this.#senders[n % 10]! } });
      for (let k = 0; k < this.receivers; k++) {
        const s = ((n % 128) * this.receivers + k) % this.sessions;
        const clientId = this.#clients[s]!;
        const packetId = this.#packetIds[s] = (this.#packetIds[s]! % 65535) + 1;
        const seq = this.#seqs[s] = this.#seqs[s]! + 1;
        ops.push({ op: 'inflight', entry: { clientId, seq, messageId: id, qos: 1, retain: false, subscriptionIds: undefined, packetId, state: 'publish' } });
        completes.push({ op: 'complete', clientId, packetId });
        this.deliveries++;
      }
    }
    return { ops, completes };
  }
}
