// Access control with a Mosquitto-style ACL file, in the library (the server's `auth.aclFile`
// does the same from a file). Run after `npm install`: node examples/acl-file.mjs
import { createBroker } from 'petrel';
import { AclFile, AuthProviders } from 'petrel/auth';

const acl = AclFile.parse(`
# Anonymous clients may read the public feed only.
topic read public/#

user sensor-gateway
topic write sensors/#

# Every client may use its own area.
pattern readwrite clients/%c/#
`);

const broker = createBroker(new AuthProviders({ anonymous: true, acl }).hooks());

const gateway = await broker.connectLocal({ clientId: 'gw-1', username: 'sensor-gateway' });
const viewer = await broker.connectLocal({ clientId: 'viewer' });

const denied = await viewer.subscribe('sensors/#');
console.log('viewer subscribing to sensors/#: SUBACK', denied.reasonCodes.map((c) => `0x${c.toString(16)}`).join(','));
const granted = await viewer.subscribe(['public/#', 'clients/viewer/#'], { qos: 1 });
console.log('viewer subscribing to public/# and its own area: SUBACK', granted.reasonCodes.join(','));

const inbox = viewer.messages();
await gateway.publish('sensors/t1', '21.5', { qos: 1 });
const refused = await gateway.publish('public/news', 'hi', { qos: 1 }).then(() => 'accepted', (err) => `0x${err.reasonCode.toString(16)}`);
console.log('gateway publishing to public/news:', refused);
await viewer.publish('clients/viewer/notes', 'mine', { qos: 1 });
const { value } = await inbox.next();
console.log('viewer got', value.topic, value.payload.toString());

await gateway.end();
await viewer.end();
await broker.close();
