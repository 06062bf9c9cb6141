// Petrel's client: dial a URL, subscribe, publish, ask and answer. Run: node examples/client.mjs
import { createBroker } from 'petrel';
import { connect } from 'petrel/client';

const broker = createBroker();
const { port } = await broker.listen({ port: 0, host: '127.0.0.1' });
const url = `mqtt://127.0.0.1:${port}`; // also mqtts://, ws://host/mqtt, wss://

// Reconnects with backoff by default; publishes made while offline wait in a bounded queue.
const client = await connect(url, { clientId: 'sensor', reconnect: { initialDelay: 500, maxDelay: 10_000 } });
const inbox = client.messages('sensors/#');
await client.subscribe('sensors/#', { qos: 1 });
await client.publish('sensors/temp', '21.5', { qos: 1 });
const { value } = await inbox.next();
console.log('got', value.topic, value.payload.toString());

// Request / response (MQTT 5.0 Response Topic + Correlation Data).
const service = await connect(url, { clientId: 'clock' });
await service.subscribe('svc/time');
service.on('message', (m) => service.publish(m.properties.responseTopic, 'noon', { properties: { correlationData: m.properties.correlationData } }));
const answer = await client.request('svc/time', 'what time is it?', { timeout: 5000 });
console.log('answer', answer.payload.toString());

await Promise.all([client.end(), service.end()]);
await broker.close();
