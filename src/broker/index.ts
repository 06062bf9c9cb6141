export { BrokerCore, type PublishOptions, type SubscriptionInfo } from './broker.js';
export { type BrokerOptions, OptionsError } from './options.js';
export type { BrokerEvents, ClientInfo, PublishedMessage } from './events.js';
export type { AuthenticateContext, AuthenticateHook, AuthorizeSubscribeHook, SubscribeContext } from './hooks.js';
