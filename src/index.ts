/** Petrel's public surface. */
export { Broker, BrokerClosedError, createBroker } from './petrel.js';
export { BrokerCore, type PublishOptions, type SubscriptionInfo } from './broker/broker.js';
export { type BrokerOptions, OptionsError } from './broker/options.js';
export { ConfigError } from './config/schema.js';
export type { BrokerEvents, ClientInfo, PublishedMessage } from './broker/events.js';
export type { AuthenticateContext, AuthenticateHook, AuthorizeSubscribeHook, SubscribeContext } from './broker/hooks.js';
export type { Listener, ListenOptions } from './transport/tcp.js';
export { ManualClock, ManualTicker, type Clock, type Ticker } from './session/clock.js';
export { createLogger, silentLogger, type Logger, type LogLevel } from './observability/logger.js';
export * as protocol from './protocol/index.js';
export type { AuthMechanism, AuthExchange, AuthStep, AuthStartContext } from './broker/auth-mechanism.js';
export { createScramSha256, scramCredential, ScramClient, type ScramCredential, type ScramOptions } from './auth/index.js';
