export { SqliteStore, type SqliteStoreOptions, type SqliteStoreStats } from './store.js';
