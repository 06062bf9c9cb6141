/** Petrel's MQTT client: `connect(stream | () => Promise<Duplex>, options)` → `MqttClient`. */
export { connect, MqttClient, type ClientEvents, type EndOptions, type PublishOptions, type Transport } from './client.js';
export {
  ClientClosedError, ConnackError, ConnectTimeoutError, KeepaliveTimeoutError, PublishError, SubscribeError,
} from './errors.js';
export { TopicAliasInvalidError } from './inbound.js';
export { MessageStream, type ReceivedMessage } from './messages.js';
export type { ClientOptions, ConnectProperties, WillOptions } from './options.js';
export type { PublishResult } from './outbound.js';
export { MemoryStore, type InflightStore, type OutgoingEntry } from './store.js';
export type { SubackResult, SubscribeOptions, SubscriptionRequest } from './subscriptions.js';
export { realTimers, type ClientTimers } from './timers.js';
