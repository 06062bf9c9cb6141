/** The broker's typed events. Names are past-tense camelCase. */
import { EventEmitter } from 'node:events';
import type { Buffer } from 'node:buffer';
import type { Properties, QoS, Subscription } from '../protocol/index.js';
import type { UserCodeFailure } from './user-code.js';
import type { ConnectionMeta } from '../transport/types.js';
import type { ClientAcl } from './hooks.js';

export interface ClientInfo {
  clientId: string;
  protocolVersion: number;
  username: string | undefined;
  remoteAddress: string | undefined;
  keepalive: number;
  cleanStart: boolean;
  /** How the client came in: listener, remote port, TLS certificate, WebSocket headers, PROXY source. */
  connection: ConnectionMeta;
  /** Topic filters the authenticate hook limited this client to (enforced by the broker). */
  acl?: ClientAcl;
  /** What the authenticate hook attached. */
  data?: unknown;
}

export interface PublishedMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties: Properties | undefined;
  /** Publisher's client id; undefined for messages published by the broker itself. */
  clientId: string | undefined;
}

/**
 * Why a message did not reach a session: its queue was full, it expired, it was larger than the
 * client allows, no member of its shared group was left, or the session stopped reading and its
 * queue overflowed after the slow-subscriber timeout.
 */
export type DropReason = 'queue-full' | 'expired' | 'too-large' | 'no-receiver' | 'slow-subscriber';

export interface BrokerEvents {
  clientConnected: [client: ClientInfo];
  /** The client ended its connection with DISCONNECT. */
  clientDisconnected: [client: ClientInfo, reasonCode: number];
  /** The connection ended without a DISCONNECT from the client (network loss, keep alive, protocol error, takeover). */
  connectionLost: [client: ClientInfo, error: Error | undefined];
  published: [message: PublishedMessage];
  subscribed: [clientId: string, subscriptions: Subscription[]];
  unsubscribed: [clientId: string, topicFilters: string[]];
  messageDropped: [clientId: string, topic: string, reason: DropReason];
  sessionExpired: [clientId: string];
  /** A new session was opened for a client (clean start, or none to resume). */
  sessionCreated: [clientId: string];
  /** A client resumed its existing session (Clean Start 0 and a session was there). */
  sessionResumed: [clientId: string];
  /**
   * A client id connected more than flapThreshold times in flapWindow seconds: it is refused
   * (CONNACK 0x8A Banned; 3.1.1: 5) until `until`, in the broker clock's milliseconds.
   */
  clientBanned: [clientId: string, remoteAddress: string | undefined, until: number];
  /**
   * User code failed: a hook threw, rejected, answered with the wrong type or timed out, or an
   * event listener threw. The broker carried on; this event only reports it.
   */
  error: [error: Error, failure: UserCodeFailure];
}

type Listener = (...args: unknown[]) => unknown;

/**
 * EventEmitter with the event map above. The broker emits through `fire`, which runs every
 * listener even when one throws (or returns a rejected promise): the failure goes to `onFailure`
 * (log and `error` event) and never back into the broker.
 */
export class BrokerEmitter extends EventEmitter<BrokerEvents> {
  onFailure: ((err: unknown, event: string) => void) | undefined;

  fire<E extends keyof BrokerEvents>(event: E, ...args: BrokerEvents[E]): void {
    const listeners = this.rawListeners(event as never) as Listener[];
    for (let i = 0; i < listeners.length; i++) {
      const listener = listeners[i] as Listener;
      try {
        const r = listener.apply(this, args);
        if (typeof r === 'object' && r !== null && typeof (r as Promise<unknown>).then === 'function') {
          (r as Promise<unknown>).then(undefined, (err: unknown) => this.#failed(err, event));
        }
      } catch (err) {
        this.#failed(err, event);
      }
    }
  }

  #failed(err: unknown, event: string): void {
    const sink = this.onFailure;
    if (sink !== undefined) sink(err, event);
  }
}
