/** The broker's typed events. Names are past-tense camelCase. */
import { EventEmitter } from 'node:events';
import type { Buffer } from 'node:buffer';
import type { Properties, QoS, Subscription } from '../protocol/index.js';

export interface ClientInfo {
  clientId: string;
  protocolVersion: number;
  username: string | undefined;
  remoteAddress: string | undefined;
  keepalive: number;
  cleanStart: boolean;
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

/** Why a message did not reach a session: its queue was full, it expired, it was larger than the client allows, or no member of its shared group was left. */
export type DropReason = 'queue-full' | 'expired' | 'too-large' | 'no-receiver';

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
}

/** EventEmitter with the event map above. */
export class BrokerEmitter extends EventEmitter<BrokerEvents> {}
