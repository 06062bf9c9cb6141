import { after, before } from 'node:test';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/persistence/index.js';
import { RedisServer } from '../helpers/redis-server.js';
import { storeContract } from './store.contract.js';

let server: RedisServer;
before(async () => {
  server = await RedisServer.start();
});
after(async () => {
  await server.close();
});

storeContract('RedisStore', async () => {
  // A fresh prefix per test: an empty store on the shared server.
  const prefix = `t${randomBytes(6).toString('hex')}:`;
  return {
    store: new RedisStore({ redis: server.url, prefix }),
    reopen: () => Promise.resolve(new RedisStore({ redis: server.url, prefix })),
    cleanup: async () => {
      const r = new Redis(server.url);
      try {
        const keys = await r.keys(`${prefix}*`);
        if (keys.length > 0) await r.del(...keys);
      } finally {
        r.disconnect();
      }
    },
  };
});
