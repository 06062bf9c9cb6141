/** Durable state: the `Store` seam and its implementations. */
export type * from './types.js';
export { StoreError, type StoreErrorCode } from './errors.js';
export { MemoryStore } from './memory.js';
export { SqliteStore, type SqliteStoreOptions, type SqliteStoreStats } from './sqlite/index.js';
export { RedisStore, type RedisStoreOptions, type RedisStoreStats } from './redis/index.js';
