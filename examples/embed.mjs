// Embedding Petrel: a broker on a free port, a server-side publish, and events.
// Run after `npm install`: node examples/embed.mjs
import { createBroker } from 'petrel';

const broker = createBroker({ maxInflight: 100 });
broker.on('clientConnected', (client) => console.log('connected', client.clientId));
broker.on('published', (msg) => console.log('published', msg.topic, msg.payload.toString()));

const listener = await broker.listen({ port: 0, host: '127.0.0.1' }); // port 0: any free port
console.log(`listening on ${listener.port}`);

const receivers = await broker.publish({ topic: 'greetings', payload: 'hello', qos: 1, retain: true });
console.log('receivers', receivers);

await broker.close();
