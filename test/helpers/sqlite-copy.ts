/** Crash copies of an SQLite store's data directory, for the SQLite store tests. */
import { copyFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore, type SqliteStoreOptions, type StoredState } from '../../src/persistence/index.js';

/**
 * Opens a copy of `dataDir` as it is now (what a crash of the machine would leave, synced writes
 * included; `change` may damage the copy first) and returns what the store reads back from it.
 */
export async function crashCopy(
  dataDir: string, options: Omit<SqliteStoreOptions, 'dataDir'> = {}, change: (copy: string) => void = () => undefined,
): Promise<StoredState> {
  const copy = await mkdtemp(join(tmpdir(), 'petrel-sqlite-copy-'));
  try {
    for (const f of readdirSync(dataDir)) copyFileSync(join(dataDir, f), join(copy, f));
    change(copy);
    const crashed = new SqliteStore({ ...options, dataDir: copy });
    try {
      return await crashed.open();
    } finally {
      await crashed.close();
    }
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}
