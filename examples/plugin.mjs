// Using a plugin in code. Run after `npm install`: node examples/plugin.mjs
import { createBroker } from 'petrel';
import topicRewrite from './topic-rewrite-plugin.mjs';

const broker = createBroker();
await broker.use(topicRewrite, { from: 'legacy/', to: 'v2/' });

const device = await broker.connectLocal({ clientId: 'old-device' });
const app = await broker.connectLocal({ clientId: 'new-app' });
await app.subscribe('v2/#', { qos: 1 });
const inbox = app.messages();
await device.publish('legacy/temperature', '20', { qos: 1 });
const { value } = await inbox.next();
console.log('new-app got', value.topic, value.payload.toString());

await device.end();
await app.end();
await broker.close(); // closes the plugin too
