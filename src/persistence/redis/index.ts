export { RedisStore, type RedisStoreOptions, type RedisStoreStats } from './store.js';
export { connectRedis, parseRedisUrl, type RedisConnection, type RedisConnectOptions } from './connection.js';
