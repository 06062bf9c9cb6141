/** Async hooks the embedder injects: authentication and subscribe authorization. */
import type { Buffer } from 'node:buffer';
import type { QoS } from '../protocol/index.js';
import type { ConnectionMeta } from '../transport/types.js';

export interface AuthenticateContext {
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  protocolVersion: number;
  remoteAddress: string | undefined;
  /** How the client came in: listener, remote port, TLS peer certificate, WebSocket headers, PROXY source. */
  connection: ConnectionMeta;
}

/** true (or 0x00) accepts; false refuses with Bad User Name or Password; a number is the CONNACK reason code. */
export type AuthenticateHook = (ctx: AuthenticateContext) => boolean | number | Promise<boolean | number>;

export interface SubscribeContext {
  clientId: string;
  topicFilter: string;
  qos: QoS;
  connection: ConnectionMeta;
}

/** true allows the subscription; false answers 0x87 Not Authorized for that filter. */
export type AuthorizeSubscribeHook = (ctx: SubscribeContext) => boolean | Promise<boolean>;

export interface PublishContext {
  clientId: string;
  topic: string;
  qos: QoS;
  retain: boolean;
}

/**
 * true allows the message; false refuses it (5.0: 0x87 on PUBACK / PUBREC; 3.1.1: acknowledged
 * and dropped). Synchronous answers keep the publish path free of promises.
 */
export type AuthorizePublishHook = (ctx: PublishContext) => boolean | Promise<boolean>;

export interface BrokerHooks {
  authenticate?: AuthenticateHook;
  authorizeSubscribe?: AuthorizeSubscribeHook;
  authorizePublish?: AuthorizePublishHook;
}
