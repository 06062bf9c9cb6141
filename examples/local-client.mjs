// An in-process client: the same sessions, QoS, retained messages and wills as a network client,
// without a socket. Run after `npm install`: node examples/local-client.mjs
import { createBroker } from 'petrel';

const broker = createBroker();
const listener = await broker.listen({ port: 0, host: '127.0.0.1' }); // network clients may join too

// A service inside the application, with a will telling others when it goes away.
const service = await broker.connectLocal({
  clientId: 'billing', will: { topic: 'status/billing', payload: 'offline', qos: 1, retain: true },
});
await service.publish('status/billing', 'online', { qos: 1, retain: true });

const monitor = await broker.connectLocal({ clientId: 'monitor', clean: false, properties: { sessionExpiryInterval: 60 } });
const status = monitor.messages('status/#');
await monitor.subscribe('status/#', { qos: 1 });
console.log('retained:', (await status.next()).value.payload.toString());

// Server-side publish to one client only.
await monitor.subscribe('inbox/#', { qos: 1 });
const inbox = monitor.messages('inbox/#');
await broker.publish({ topic: 'inbox/monitor', payload: 'just for you', qos: 1, clientId: 'monitor' });
console.log('inbox:', (await inbox.next()).value.payload.toString());

broker.disconnect('billing'); // the broker ends the service's connection: its will is published
console.log('will:', (await status.next()).value.payload.toString());
console.log('sessions:', broker.sessions().map((s) => `${s.clientId}${s.connected ? '' : ' (offline)'}`).join(', '));
console.log('listening on', listener.port > 0 ? 'a free port' : '?');

await monitor.end();
await broker.close();
