/**
 * Petrel's MQTT client for browsers (the `browser` condition of `petrel/client`, bundled by
 * scripts/build-browser.mjs): the same client over the WHATWG WebSocket (`ws://`, `wss://`),
 * with the codec's Buffer, EventEmitter and random bytes from small shims. Everything of
 * `index.ts` except `FileStore` (it writes files); SCRAM-SHA-256 needs node:crypto and throws.
 */
export {
  connect, connectUrl, MqttClient, type ClientEvents, type EndOptions, type PublishOptions, type RequestOptions, type Transport,
} from './client.js';
export { AuthenticationError, type AuthExchange } from './auth.js';
export { Backoff, type ReconnectOptions } from './backoff.js';
export {
  ClientClosedError, ConnackError, ConnectTimeoutError, KeepaliveTimeoutError, OfflineQueueFullError, PublishError, SubscribeError,
} from './errors.js';
export { ReceiveMaximumExceededError, TopicAliasInvalidError } from './inbound.js';
export { MessageStream, type ReceivedMessage } from './messages.js';
export type { OfflineQueueOptions } from './offline-queue.js';
export type { ClientOptions, ConnectProperties, WillOptions } from './options.js';
export type { PublishResult } from './outbound.js';
export { RequestTimeoutError, RequestTimeoutError as TimeoutError } from './request.js';
export { MemoryStore, type InflightStore, type OutgoingEntry } from './store.js';
export type { SubackResult, SubscribeOptions, SubscriptionRequest } from './subscriptions.js';
export { realTimers, type ClientTimers } from './timers.js';
export { DialError, type DialOptions, type WebSocketConstructor, type WebSocketLike } from '../transport/dial-browser.js';
export type { ByteStream } from '../transport/types.js';
