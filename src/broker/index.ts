export {
  BrokerCore, type BrokerCounts, type ClientDetails, type Plugin, type PluginHandle, type PublishOptions, type RemoteMessage, type RetainedInfo, type SharedTarget,
  type SessionInfo, type SubscriptionInfo,
} from './broker.js';
export { type BrokerOptions, OptionsError, type SysOptions } from './options.js';
export type { BrokerMetrics, ListenerClients, PacketCount, PacketName } from './metrics-snapshot.js';
export type { HistogramSnapshot, HookKind } from './counters.js';
export type { BrokerEvents, ClientInfo, PublishedMessage } from './events.js';
export type * from './hooks.js';
export type { ClusterLink } from './cluster.js';
