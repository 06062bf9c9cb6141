/** Petrel's MQTT client: `connect(url | stream | () => Promise<Duplex>, options)` → `MqttClient`. */
export {
  connect, connectUrl, MqttClient, type ClientEvents, type EndOptions, type PublishOptions, type RequestOptions, type Transport,
} from './client.js';
export { AuthenticationError, type AuthExchange } from './auth.js';
export { Backoff, type ReconnectOptions } from './backoff.js';
export {
  ClientClosedError, ConnackError, ConnectTimeoutError, KeepaliveTimeoutError, OfflineQueueFullError, PublishError, SubscribeError,
} from './errors.js';
export { FileStore, type FileStoreOptions } from './file-store.js';
export { ReceiveMaximumExceededError, TopicAliasInvalidError } from './inbound.js';
export { MessageStream, type ReceivedMessage } from './messages.js';
export type { OfflineQueueOptions } from './offline-queue.js';
export type { ClientOptions, ConnectProperties, WillOptions } from './options.js';
export type { PublishResult } from './outbound.js';
export { RequestTimeoutError, RequestTimeoutError as TimeoutError } from './request.js';
export { MemoryStore, type InflightStore, type OutgoingEntry } from './store.js';
export type { SubackResult, SubscribeOptions, SubscriptionRequest } from './subscriptions.js';
export { realTimers, type ClientTimers } from './timers.js';
export { DialError, type DialOptions } from '../transport/dial.js';
export type { ByteStream } from '../transport/types.js';
