// Custom authentication and authorization in code: who may connect, what they may publish,
// subscribe and receive. Run after `npm install`: node examples/custom-auth.mjs
import { createBroker } from 'petrel';

const users = new Map([['alice', 'wonderland'], ['bob', 'builder']]);

const broker = createBroker({
  // Accept known users; attach an ACL (enforced by the broker) and data for later hooks.
  authenticate: ({ username, password }) => {
    if (username === undefined || users.get(username) !== password?.toString()) return false; // 0x86
    return { acl: { publish: [`users/${username}/#`], subscribe: ['users/#'] }, data: { since: Date.now() } };
  },
  // Rewrite: everything published under users/<name>/shout/ is upper-cased.
  authorizePublish: ({ topic, payload }) =>
    topic.includes('/shout/') ? { payload: payload.toString().toUpperCase() } : true,
  // Nobody but alice receives alice's private topic.
  authorizeDelivery: (clientId, message, client) =>
    !message.topic.startsWith('users/alice/private') || client?.username === 'alice',
});

const refused = await broker.connectLocal({ clientId: 'mallory', username: 'mallory', password: 'guess' })
  .then(() => 'connected', (err) => `refused with 0x${err.reasonCode.toString(16)}`);
console.log('mallory', refused);

const alice = await broker.connectLocal({ clientId: 'alice', username: 'alice', password: 'wonderland' });
const bob = await broker.connectLocal({ clientId: 'bob', username: 'bob', password: 'builder' });
await bob.subscribe('users/#', { qos: 1 });
const inbox = bob.messages();

await alice.publish('users/alice/shout/hello', 'hello', { qos: 1 });
await alice.publish('users/alice/private/diary', 'secret', { qos: 1 });
await alice.publish('users/alice/news', 'public', { qos: 1 });
const outside = await alice.publish('users/bob/inbox', 'not mine', { qos: 1 }).then(() => 'accepted', (err) => `0x${err.reasonCode.toString(16)}`);
console.log('alice publishing to bob\'s topic:', outside);

for (let i = 0; i < 2; i++) {
  const { value } = await inbox.next();
  console.log('bob got', value.topic, value.payload.toString());
}
await alice.end();
await bob.end();
await broker.close();
