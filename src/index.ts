/** Petrel's public surface. */
export { Broker, createBroker } from './petrel.js';
export { BrokerCore, type PublishOptions, type SubscriptionInfo } from './broker/broker.js';
export type { BrokerOptions } from './broker/options.js';
export type { BrokerEvents, ClientInfo, PublishedMessage } from './broker/events.js';
export type { AuthenticateContext, AuthenticateHook, AuthorizeSubscribeHook, SubscribeContext } from './broker/hooks.js';
export type { Listener, ListenOptions } from './transport/tcp.js';
export { ManualClock, type Clock } from './session/clock.js';
export { createLogger, silentLogger, type Logger, type LogLevel } from './observability/logger.js';
export * as protocol from './protocol/index.js';
export type { AuthMechanism, AuthExchange, AuthStep, AuthStartContext } from './broker/auth-mechanism.js';
export { createScramSha256, scramCredential, ScramClient, type ScramCredential, type ScramOptions } from './auth/index.js';
