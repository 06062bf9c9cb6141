/**
 * What an embedder (or a plugin, or a built-in auth provider) plugs into the broker: hooks that
 * decide who connects and what they may publish, subscribe and receive, and interceptors that
 * transform messages. Hooks may be synchronous or async (async ones run under `hookTimeout`);
 * whatever they throw or return that is not an answer is logged, reported as an `error` event
 * and answered as a failure (0x80), never sent to the client.
 */
import type { Buffer } from 'node:buffer';
import type { Properties, QoS } from '../protocol/index.js';
import type { ConnectionMeta } from '../transport/types.js';
import type { ClientInfo } from './events.js';

/** Topic filters a client may publish to and subscribe to, attached by `authenticate`. */
export interface ClientAcl {
  /** Topic filters the client may publish to (a topic must match one). Undefined: no limit. */
  publish?: readonly string[];
  /** Topic filters the client may subscribe within (a filter must be covered by one). Undefined: no limit. */
  subscribe?: readonly string[];
}

/** Who a hook is asked about: identity, protocol, how the client came in, what authenticate attached. */
export interface ClientContext {
  clientId: string;
  username: string | undefined;
  protocolVersion: number;
  remoteAddress: string | undefined;
  /** Listener, remote port, TLS peer certificate, WebSocket headers, PROXY source. */
  connection: ConnectionMeta;
}

export interface AuthenticateContext extends ClientContext {
  password: Buffer | undefined;
}

/**
 * An authenticate answer: true (or 0) accepts, false refuses with 0x86 Bad User Name or Password,
 * a number is the CONNACK reason code (a 3.1.1 return code 1 to 5 is mapped), or an object that
 * accepts (unless `reasonCode` refuses) and may change the client's identity and attach an ACL and
 * data that later hook contexts carry (`client.acl`, `client.data`).
 */
export type AuthenticateResult = boolean | number | {
  reasonCode?: number;
  /** Replaces the username for events, logs and later hooks. */
  username?: string;
  /** Replaces the client identifier before the session is opened (5.0 clients are told in CONNACK). */
  clientId?: string;
  /** Enforced by the broker for this connection: PUBLISH outside `publish` gets 0x87, SUBSCRIBE outside `subscribe` 0x87. */
  acl?: ClientAcl;
  /** Anything; handed back as `client.data` in later hook contexts. */
  data?: unknown;
};

/** true (or 0x00) accepts; false refuses with Bad User Name or Password; a number is the CONNACK reason code. */
export type AuthenticateHook = (ctx: AuthenticateContext) => AuthenticateResult | Promise<AuthenticateResult>;

export interface SubscribeContext extends ClientContext {
  topicFilter: string;
  qos: QoS;
  /** The connected client (with `data` and `acl` from authenticate). */
  client: ClientInfo;
}

/**
 * A subscribe answer, per filter: true allows, false refuses with 0x87 Not Authorized (3.1.1:
 * 0x80); a number 0 to 2 grants at most that QoS (a downgrade); a number 0x80 or above refuses
 * with that SUBACK code; or `{ qos }` / `{ reasonCode }`.
 */
export type SubscribeResult = boolean | number | { qos?: QoS; reasonCode?: number };
export type AuthorizeSubscribeHook = (ctx: SubscribeContext) => SubscribeResult | Promise<SubscribeResult>;

export interface PublishContext extends ClientContext {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties: Properties | undefined;
  /** True when this is the client's will being published. */
  will: boolean;
  /** The client; for a will, the client whose connection ended (its ClientInfo as it was). */
  client: ClientInfo | undefined;
}

/**
 * A publish answer: true allows, false refuses (5.0: 0x87 on PUBACK / PUBREC; 3.1.1: acknowledged
 * and dropped); a number is the acknowledgement's reason code (0 allows); or an object that allows
 * (unless `reasonCode` refuses) with the message rewritten: topic, payload, QoS, retain, properties.
 * Synchronous answers keep the publish path free of promises.
 */
export type PublishResult = boolean | number | {
  reasonCode?: number;
  topic?: string;
  payload?: Buffer | Uint8Array | string;
  qos?: QoS;
  retain?: boolean;
  properties?: Properties;
};
export type AuthorizePublishHook = (ctx: PublishContext) => PublishResult | Promise<PublishResult>;

/** A message about to be delivered: read-only, shared by every receiver. */
export interface DeliveredMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties: Properties | undefined;
  /** The publisher's client id; undefined for messages the broker itself published. */
  readonly senderId: string | undefined;
}

/**
 * The last check per receiver, on the delivery path: synchronous only, and it should be cheap
 * (cache what it can). `client` is undefined when the receiver is offline (the message is
 * queued for its session). false: this receiver does not get the message (not counted as a drop).
 */
export type AuthorizeDeliveryHook = (clientId: string, message: DeliveredMessage, client: ClientInfo | undefined) => boolean;

export interface BrokerHooks {
  authenticate?: AuthenticateHook;
  authorizeSubscribe?: AuthorizeSubscribeHook;
  authorizePublish?: AuthorizePublishHook;
  authorizeDelivery?: AuthorizeDeliveryHook;
}

export type HookName = keyof BrokerHooks;

// ---- interceptors ------------------------------------------------------------------------------

/** A message an interceptor may change: a fresh object per message, the interceptor may mutate it. */
export interface InterceptedMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties: Properties | undefined;
}

/**
 * Inbound PUBLISH (after authorization, before routing) and will interceptors: return the message
 * (changed or not) to go on, a new topic to re-route, or null to drop it (the publisher still gets
 * its acknowledgement). May be async (under `hookTimeout`; a failure drops the message).
 */
export type PublishInterceptor = (message: InterceptedMessage, client: ClientContext | undefined) =>
  InterceptedMessage | null | Promise<InterceptedMessage | null>;

/**
 * Delivery interceptor, per receiver, synchronous: return the message as is, a changed copy for
 * this receiver (encoded for it alone), or null to skip this receiver.
 */
export type DeliveryInterceptor = (message: DeliveredMessage, clientId: string, client: ClientInfo | undefined) =>
  DeliveredMessage | InterceptedMessage | null;

export interface Interceptors {
  publish: PublishInterceptor;
  delivery: DeliveryInterceptor;
  will: PublishInterceptor;
}

export type InterceptorKind = keyof Interceptors;

export interface InterceptOptions {
  /** Lower runs first; equal orders run in the order they were added. Default 0. */
  order?: number;
  /** Shown in logs and `error` events when the interceptor fails. */
  name?: string;
}
