import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/persistence/index.js';
import { storeContract } from './store.contract.js';

for (const durability of ['commit', 'interval'] as const) {
  storeContract(`SqliteStore (${durability})`, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'petrel-store-'));
    return {
      store: new SqliteStore({ dataDir, durability }),
      reopen: () => Promise.resolve(new SqliteStore({ dataDir, durability })),
      cleanup: () => rm(dataDir, { recursive: true, force: true }),
    };
  });
}
