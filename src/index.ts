/** Petrel's public surface. */
export { Broker, BrokerClosedError, createBroker } from './petrel.js';
export {
  BrokerCore, type Plugin, type PluginHandle, type PublishOptions, type RetainedInfo, type SessionInfo, type SubscriptionInfo,
} from './broker/broker.js';
export { type BrokerOptions, OptionsError, type SysOptions } from './broker/options.js';
export type { BrokerMetrics, ListenerClients, PacketCount, PacketName } from './broker/metrics-snapshot.js';
export type { HistogramSnapshot, HookKind } from './broker/counters.js';
export { ConfigError } from './config/schema.js';
export type { BrokerEvents, ClientInfo, PublishedMessage } from './broker/events.js';
export type {
  AuthenticateContext, AuthenticateHook, AuthenticateResult, AuthorizeDeliveryHook, AuthorizePublishHook, AuthorizeSubscribeHook,
  BrokerHooks, ClientAcl, ClientContext, DeliveredMessage, DeliveryInterceptor, HookName, InterceptedMessage, InterceptOptions,
  InterceptorKind, Interceptors, PublishContext, PublishInterceptor, PublishResult, SubscribeContext, SubscribeResult,
} from './broker/hooks.js';
export { DEFAULT_PORTS, type Listener, type ListenOptions, type ListenerType } from './transport/listener.js';
export type {
  ConnectionMeta, ListenerInfo, ListenerLimits, PeerCertificate, ProxySource, TlsInfo, TransportType,
} from './transport/types.js';
export type { TlsCredentials } from './transport/tls.js';
export { ManualClock, ManualTicker, type Clock, type Ticker } from './session/clock.js';
export { createLogger, silentLogger, type Logger, type LogLevel } from './observability/logger.js';
export * as protocol from './protocol/index.js';
export type { AuthMechanism, AuthExchange, AuthStep, AuthStartContext } from './broker/auth-mechanism.js';
export { createScramSha256, scramCredential, ScramClient, type ScramCredential, type ScramOptions } from './auth/index.js';
