/** BrokerOptions: the embedded API's configuration, with defaults. */
import type { Logger } from '../observability/logger.js';
import type { ShareStrategy } from '../router/index.js';
import type { Clock } from '../session/clock.js';
import type { BrokerHooks } from './hooks.js';
import type { AuthMechanism } from './auth-mechanism.js';

export interface BrokerOptions extends BrokerHooks {
  /** Structured logger (pino-compatible). Default: silent. */
  logger?: Logger;
  /** Time source; tests inject a manual clock. Default: performance.now(). */
  clock?: Clock;
  /** Largest inbound packet in bytes; larger ones are refused with 0x95. Default 1 MiB. */
  maxPacketSize?: number;
  /** QoS 1/2 messages in flight to one client at a time (capped by its Receive Maximum). Default 100. */
  maxInflight?: number;
  /** Messages queued per session beyond the inflight window; QoS 0 is dropped first when full. Default 1000. */
  maxQueuedMessages?: number;
  /** Bytes (payload, topic, properties) queued per session, like maxQueuedMessages; 0: no limit. Default 16 MiB. */
  maxQueuedBytes?: number;
  /** Queue QoS 0 messages for offline persistent sessions. Default false. */
  queueQos0Offline?: boolean;
  /** Seconds after which unacknowledged QoS 1/2 messages to 3.1/3.1.1 clients are resent with DUP; 0 disables. Default 0. */
  retryInterval?: number;
  /** Receive Maximum the broker advertises to 5.0 clients (inbound QoS 1/2 window). Default 65535. */
  receiveMaximum?: number;
  /** Topic Alias Maximum the broker accepts from 5.0 clients. Default 10. */
  topicAliasMaximum?: number;
  /** Bytes of topic names one connection's alias table holds, per direction (inbound: 0x97 beyond). Default 16 KiB. */
  maxTopicAliasBytes?: number;
  /** Assign topic aliases to 5.0 clients that allow them. Default true. */
  outboundTopicAliases?: boolean;
  /** Largest keep alive (seconds) granted to 5.0 clients via Server Keep Alive; 0 = no limit. Default 0. */
  maxKeepalive?: number;
  /** Longest session expiry interval (seconds) granted; default 0xFFFFFFFF (no limit). */
  maxSessionExpiryInterval?: number;
  /** Highest QoS accepted (5.0 Maximum QoS). Default 2. */
  maximumQoS?: 0 | 1 | 2;
  retainAvailable?: boolean;
  wildcardSubscriptionAvailable?: boolean;
  subscriptionIdentifiersAvailable?: boolean;
  sharedSubscriptionsAvailable?: boolean;
  /** How a shared subscription group picks its receiver. Default 'round-robin'. */
  sharedSubscriptionStrategy?: ShareStrategy;
  /** Response Information sent to 5.0 clients that request it. */
  responseInformation?: string;
  /** Entries in the router's match cache. Default 10,000. */
  matchCacheSize?: number;
  /** Bytes the router's match cache may hold; 0 disables it. Default 8 MiB. */
  matchCacheBytes?: number;
  /**
   * Most levels in a topic name or filter. Deeper subscriptions get SUBACK 0x8F (3.1.1: 0x80);
   * deeper PUBLISH topics are refused (5.0: 0x90 on the acknowledgement) and not routed. 0: no limit. Default 128.
   */
  maxTopicLevels?: number;
  /** Seconds a new connection has to complete CONNECT (enhanced authentication included); 0: no limit. Default 30. */
  connectTimeout?: number;
  /**
   * Seconds an async hook (authenticate, authorizePublish, authorizeSubscribe, an enhanced
   * authentication step) may take; after it the broker answers as if it refused (0x87) and logs
   * it. 0: no limit. Default 5.
   */
  hookTimeout?: number;
  /** Most retained messages kept; a new one beyond it is refused (5.0: 0x97 Quota Exceeded). Default 0: no limit. */
  maxRetainedMessages?: number;
  /** Bytes (payload, topic, properties) of retained messages kept; beyond it as maxRetainedMessages. 0: no limit. Default 256 MiB. */
  maxRetainedBytes?: number;
  /** Redirect every 5.0 client to this server (CONNACK 0x9C, or 0x9D when `serverMoved`). */
  serverReference?: string;
  /** With `serverReference`: the move is permanent (0x9D Server Moved) rather than temporary (0x9C). */
  serverMoved?: boolean;
  /** Enhanced authentication mechanisms (5.0 AUTH), by Authentication Method. */
  authMechanisms?: AuthMechanism[];
}

type Optional = 'responseInformation' | 'serverReference' | 'authMechanisms';
export type ResolvedOptions = Required<Omit<BrokerOptions, Optional | keyof BrokerHooks>> & {
  responseInformation: string | undefined;
  serverReference: string | undefined;
  authMechanisms: ReadonlyMap<string, AuthMechanism>;
};

export function resolveOptions(o: BrokerOptions, defaults: { logger: Logger; clock: Clock }): ResolvedOptions {
  return {
    logger: o.logger ?? defaults.logger,
    clock: o.clock ?? defaults.clock,
    maxPacketSize: o.maxPacketSize ?? 1024 * 1024,
    maxInflight: o.maxInflight ?? 100,
    maxQueuedMessages: o.maxQueuedMessages ?? 1000,
    maxQueuedBytes: o.maxQueuedBytes ?? 16 * 1024 * 1024,
    queueQos0Offline: o.queueQos0Offline ?? false,
    retryInterval: o.retryInterval ?? 0,
    receiveMaximum: o.receiveMaximum ?? 65535,
    topicAliasMaximum: o.topicAliasMaximum ?? 10,
    maxTopicAliasBytes: o.maxTopicAliasBytes ?? 16 * 1024,
    outboundTopicAliases: o.outboundTopicAliases ?? true,
    maxKeepalive: o.maxKeepalive ?? 0,
    maxSessionExpiryInterval: o.maxSessionExpiryInterval ?? 0xffffffff,
    maximumQoS: o.maximumQoS ?? 2,
    retainAvailable: o.retainAvailable ?? true,
    wildcardSubscriptionAvailable: o.wildcardSubscriptionAvailable ?? true,
    subscriptionIdentifiersAvailable: o.subscriptionIdentifiersAvailable ?? true,
    sharedSubscriptionsAvailable: o.sharedSubscriptionsAvailable ?? true,
    sharedSubscriptionStrategy: o.sharedSubscriptionStrategy ?? 'round-robin',
    responseInformation: o.responseInformation,
    matchCacheSize: o.matchCacheSize ?? 10_000,
    matchCacheBytes: o.matchCacheBytes ?? 8 * 1024 * 1024,
    maxRetainedMessages: o.maxRetainedMessages ?? 0,
    maxRetainedBytes: o.maxRetainedBytes ?? 256 * 1024 * 1024,
    maxTopicLevels: o.maxTopicLevels ?? 128,
    connectTimeout: o.connectTimeout ?? 30,
    hookTimeout: o.hookTimeout ?? 5,
    serverReference: o.serverReference,
    serverMoved: o.serverMoved ?? false,
    authMechanisms: new Map((o.authMechanisms ?? []).map((m) => [m.method, m])),
  };
}
