import { MemoryStore } from '../../src/persistence/index.js';
import { storeContract } from './store.contract.js';

storeContract('MemoryStore', () => Promise.resolve({ store: new MemoryStore(), cleanup: () => Promise.resolve() }));
