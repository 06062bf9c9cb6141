export { createHttpApi, DEFAULT_HTTP_PORT, type HttpApi, type HttpApiOptions } from './http-api.js';
export { ApiAuth, AuthConfigError, hashApiKey, newApiKey, type ApiKeyConfig, type AuthOptions, type Principal, type Role, type UserConfig } from './auth.js';
export type { MetricsSource } from './route.js';
