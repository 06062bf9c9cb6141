import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AclCache, AclFile, AclFileError } from '../../../src/auth/index.js';
import { matches } from '../../../src/protocol/topic.js';
import { Rng, subSeed } from '../../helpers/codec-prng.js';

// Written the way a Mosquitto user writes one: comments, blank lines, an anonymous section,
// several users, patterns, deny lines after the grants they carve out of.
const FILE = `# Petrel / Mosquitto ACL file
# Anonymous clients (no username): read-only public data and one $SYS topic.
topic read public/#
topic read $SYS/broker/uptime

# alice: all sensors but the secret ones; writes her commands; reads temperatures.
user alice
topic readwrite sensors/#
topic write commands/alice
topic read weather/+/temp
topic deny sensors/secret/#

# bob: no access word means readwrite.
user bob
topic sensors/bob
topic read $SYS/#

user admin
topic #

user carol
topic deny clients/k1/private

user spaced name
topic read with space/x

# Every client.
pattern readwrite clients/%c/#
pattern read users/%u/inbox/#
pattern write users/%u/outbox
pattern deny clients/%c/locked
pattern read dev_%c/status
`;

const acl = AclFile.parse(FILE);

describe('AclFile: Mosquitto acl_file rules', () => {
  it('counts topic and pattern lines, not comments, blank or user lines', () => {
    assert.equal(acl.ruleCount, 16);
  });

  it('topic rules before the first user line apply to anonymous clients only', () => {
    assert.equal(acl.canReceive(undefined, 'anon1', 'public/news'), true);
    assert.equal(acl.canReceive(undefined, 'anon1', 'public'), true, "'#' also matches the parent level [MQTT-4.7.1-2]");
    assert.equal(acl.canPublish(undefined, 'anon1', 'public/news'), false, 'read does not give write');
    // A user with a username does not inherit the anonymous section.
    assert.equal(acl.canReceive('alice', 'a1', 'public/news'), false);
    assert.equal(acl.canReceive('mallory', 'm1', 'public/news'), false);
  });

  it('default deny: anything not granted is refused, for known and unknown users', () => {
    assert.equal(acl.canPublish(undefined, 'anon1', 'anything'), false);
    assert.equal(acl.canPublish('mallory', 'm1', 'sensors/x'), false);
    assert.equal(acl.canReceive('mallory', 'm1', 'sensors/x'), false);
    assert.equal(acl.canPublish('alice', 'a1', 'elsewhere'), false);
    const empty = AclFile.parse('# nothing granted\n\n');
    assert.equal(empty.ruleCount, 0);
    assert.equal(empty.canPublish(undefined, 'c', 'a'), false);
    assert.equal(empty.canReceive('u', 'c', 'a'), false);
    assert.equal(empty.canSubscribe('u', 'c', '#'), false);
  });

  it('read, write and readwrite grant exactly their access; no access word is readwrite', () => {
    assert.equal(acl.canPublish('alice', 'a1', 'commands/alice'), true);
    assert.equal(acl.canReceive('alice', 'a1', 'commands/alice'), false);
    assert.equal(acl.canReceive('alice', 'a1', 'weather/london/temp'), true);
    assert.equal(acl.canPublish('alice', 'a1', 'weather/london/temp'), false);
    assert.equal(acl.canPublish('alice', 'a1', 'sensors/kitchen'), true);
    assert.equal(acl.canReceive('alice', 'a1', 'sensors/kitchen'), true);
    assert.equal(acl.canPublish('bob', 'b1', 'sensors/bob'), true);
    assert.equal(acl.canReceive('bob', 'b1', 'sensors/bob'), true);
    assert.equal(acl.canPublish('bob', 'b1', 'sensors/bob/x'), false);
  });

  it('a user name may contain spaces and so may a topic after an access word', () => {
    assert.equal(acl.canReceive('spaced name', 'c', 'with space/x'), true);
    assert.equal(acl.canPublish('spaced name', 'c', 'with space/x'), false);
  });

  it('wildcards in rules: + is one level, # any number including none', () => {
    assert.equal(acl.canReceive('alice', 'a1', 'weather/paris/temp'), true);
    assert.equal(acl.canReceive('alice', 'a1', 'weather/paris/humidity'), false);
    assert.equal(acl.canReceive('alice', 'a1', 'weather/paris/x/temp'), false);
    assert.equal(acl.canReceive('alice', 'a1', 'weather//temp'), true, 'an empty level is a level');
    assert.equal(acl.canReceive('alice', 'a1', 'sensors/a/b/c'), true);
    assert.equal(acl.canReceive('alice', 'a1', 'sensors'), true);
  });

  it('deny wins over a grant in the same list wherever it is written', () => {
    assert.equal(acl.canPublish('alice', 'a1', 'sensors/secret/door'), false);
    assert.equal(acl.canReceive('alice', 'a1', 'sensors/secret/door'), false);
    assert.equal(acl.canReceive('alice', 'a1', 'sensors/secret'), false);
    assert.equal(acl.canReceive('alice', 'a1', 'sensors/secretive'), true);
    const before = AclFile.parse('topic deny a/b\ntopic a/#\n');
    const after = AclFile.parse('topic a/#\ntopic deny a/b\n');
    for (const file of [before, after]) {
      assert.equal(file.canPublish(undefined, 'c', 'a/b'), false);
      assert.equal(file.canPublish(undefined, 'c', 'a/c'), true);
    }
  });

  it('a topic deny also beats a pattern grant; as in Mosquitto, a topic grant is decided before pattern denies', () => {
    // carol's own list denies clients/k1/private; the pattern would grant it to client k1.
    assert.equal(acl.canPublish('carol', 'k1', 'clients/k1/private'), false);
    assert.equal(acl.canPublish('carol', 'k1', 'clients/k1/public'), true);
    // The pattern deny refuses clients/<id>/locked to everyone decided by patterns ...
    assert.equal(acl.canPublish('carol', 'k1', 'clients/k1/locked'), false);
    assert.equal(acl.canPublish(undefined, 'k1', 'clients/k1/locked'), false);
    // ... but admin's own `topic #` grants before the pattern list is read.
    assert.equal(acl.canPublish('admin', 'k1', 'clients/k1/locked'), true);
  });

  it('$SYS and other $ topics need rules that name them: # and + do not reach them [MQTT-4.7.2-1]', () => {
    assert.equal(acl.canReceive('admin', 'z', 'anything/at/all'), true);
    assert.equal(acl.canReceive('admin', 'z', '$SYS/broker/uptime'), false);
    assert.equal(acl.canSubscribe('admin', 'z', '$SYS/#'), false);
    assert.equal(acl.canReceive('bob', 'b1', '$SYS/broker/load'), true);
    assert.equal(acl.canPublish('bob', 'b1', '$SYS/broker/load'), false);
    assert.equal(acl.canSubscribe('bob', 'b1', '$SYS/broker/+'), true);
    assert.equal(acl.canReceive(undefined, 'anon1', '$SYS/broker/uptime'), true);
    assert.equal(acl.canReceive(undefined, 'anon1', '$SYS/broker/load'), false);
    const wild = AclFile.parse('topic read +/broker/#\n');
    assert.equal(wild.canReceive(undefined, 'c', '$SYS/broker/x'), false);
    assert.equal(wild.canReceive(undefined, 'c', 'any/broker/x'), true);
  });
});

describe('AclFile: subscription filters', () => {
  it('a filter is allowed only when a read rule covers every topic it can match', () => {
    assert.equal(acl.canSubscribe('alice', 'a1', 'sensors/#'), true);
    assert.equal(acl.canSubscribe('alice', 'a1', 'sensors/+/temp'), true);
    assert.equal(acl.canSubscribe('alice', 'a1', 'sensors'), true);
    assert.equal(acl.canSubscribe('alice', 'a1', 'weather/+/temp'), true);
    assert.equal(acl.canSubscribe('alice', 'a1', 'weather/rome/temp'), true);
    assert.equal(acl.canSubscribe('alice', 'a1', 'weather/#'), false);
    assert.equal(acl.canSubscribe('alice', 'a1', 'weather/+/+'), false);
    assert.equal(acl.canSubscribe('alice', 'a1', '+/kitchen'), false);
    assert.equal(acl.canSubscribe('alice', 'a1', '#'), false);
    assert.equal(acl.canSubscribe('alice', 'a1', 'commands/alice'), false, 'write-only rule gives no read');
    // A literal rule covers only itself.
    assert.equal(acl.canSubscribe('bob', 'b1', 'sensors/bob'), true);
    assert.equal(acl.canSubscribe('bob', 'b1', 'sensors/#'), false);
    assert.equal(acl.canSubscribe('bob', 'b1', 'sensors/+'), false);
    // a/+/# covers a/+ but not a/#: a/# also matches a itself.
    const f = AclFile.parse('topic read a/+/#\n');
    assert.equal(f.canSubscribe(undefined, 'c', 'a/+'), true);
    assert.equal(f.canSubscribe(undefined, 'c', 'a/x/#'), true);
    assert.equal(f.canSubscribe(undefined, 'c', 'a/#'), false);
  });

  it('a deny that covers the filter refuses it; a partial deny is left to each delivery', () => {
    assert.equal(acl.canSubscribe('alice', 'a1', 'sensors/secret/#'), false);
    assert.equal(acl.canSubscribe('alice', 'a1', 'sensors/secret/door'), false);
    assert.equal(acl.canSubscribe('alice', 'a1', 'sensors/#'), true);
    assert.equal(acl.canReceive('alice', 'a1', 'sensors/secret/door'), false);
  });

  it('$share/{group}/ is stripped before the check [MQTT-4.8.2-1]', () => {
    assert.equal(acl.canSubscribe('alice', 'a1', '$share/g1/sensors/+/temp'), true);
    assert.equal(acl.canSubscribe('alice', 'a1', '$share/g1/weather/#'), false);
    assert.equal(acl.canSubscribe('alice', 'a1', '$share/g1'), false);
    assert.equal(acl.canSubscribe('admin', 'z', '$share/g/#'), true);
  });
});

describe('AclFile: patterns with %c and %u', () => {
  it('substitute the client id and the username for every client', () => {
    assert.equal(acl.canPublish(undefined, 'c1', 'clients/c1/state'), true);
    assert.equal(acl.canReceive(undefined, 'c1', 'clients/c1'), true);
    assert.equal(acl.canPublish(undefined, 'c1', 'clients/c2/state'), false);
    assert.equal(acl.canPublish('mallory', 'm1', 'clients/m1/x'), true);
    assert.equal(acl.canReceive('alice', 'a1', 'users/alice/inbox/7'), true);
    assert.equal(acl.canPublish('alice', 'a1', 'users/alice/inbox/7'), false);
    assert.equal(acl.canPublish('alice', 'a1', 'users/alice/outbox'), true);
    assert.equal(acl.canReceive('alice', 'a1', 'users/bob/inbox/7'), false);
    assert.equal(acl.canReceive('alice', 'a1', 'dev_a1/status'), true, 'substitution inside a level, as Mosquitto 2.0 does');
    assert.equal(acl.canReceive('alice', 'a1', 'dev_a2/status'), false);
    assert.equal(acl.canSubscribe('alice', 'a1', 'users/alice/inbox/#'), true);
    assert.equal(acl.canSubscribe('alice', 'a1', 'users/+/inbox/#'), false);
    assert.equal(acl.canSubscribe(undefined, 'c1', 'clients/c1/+'), true);
  });

  it('%u rules never apply to clients without a username', () => {
    assert.equal(acl.canReceive(undefined, 'c1', 'users//inbox/x'), false);
    assert.equal(acl.canReceive(undefined, 'c1', 'users/%u/inbox/x'), false);
    assert.equal(acl.canReceive('', 'c1', 'users//inbox/x'), false, 'nor to an empty username');
  });

  it('pattern deny refuses what a pattern grant would give', () => {
    assert.equal(acl.canPublish(undefined, 'c1', 'clients/c1/locked'), false);
    assert.equal(acl.canSubscribe(undefined, 'c1', 'clients/c1/locked'), false);
    assert.equal(acl.canSubscribe(undefined, 'c1', 'clients/c1/#'), true, 'partial deny: left to delivery');
    assert.equal(acl.canReceive(undefined, 'c1', 'clients/c1/locked'), false);
  });

  it('identities with +, # or / get nothing from patterns, so they cannot widen a rule', () => {
    // Username '+' would turn users/%u/inbox/# into users/+/inbox/#.
    assert.equal(acl.canReceive('+', 'c1', 'users/bob/inbox/1'), false);
    assert.equal(acl.canSubscribe('+', 'c1', 'users/+/inbox/#'), false);
    // Client id '#' would turn clients/%c/# into clients/#/#, or dev_%c into a bad filter.
    assert.equal(acl.canPublish(undefined, '#', 'clients/other/x'), false);
    assert.equal(acl.canSubscribe(undefined, '#', 'clients/#'), false);
    // Client id 'c2/x' would reach into client c2's subtree.
    assert.equal(acl.canPublish(undefined, 'c2/x', 'clients/c2/x/y'), false);
    assert.equal(acl.canReceive(undefined, 'c2/x', 'clients/c2/x'), false);
    // A dangerous username blocks its patterns even for %c rules (as Mosquitto does).
    assert.equal(acl.canPublish('a/b', 'ok', 'clients/ok/x'), false);
    // The client's own topic rules still apply.
    assert.equal(acl.canPublish('alice', 'evil/#', 'sensors/kitchen'), true);
    assert.equal(acl.canPublish('alice', 'evil/#', 'clients/evil/x'), false);
  });

  it('placeholders match the identity, never the literal text %c or %u in a topic', () => {
    assert.equal(acl.canReceive('bob', 'b1', 'users/%u/inbox/1'), false);
    assert.equal(acl.canPublish('bob', 'b1', 'clients/%c/x'), false);
    assert.equal(acl.canPublish('bob', 'b1', 'clients/b1x/y'), false, 'the identity must fill the level');
    assert.equal(acl.canPublish('bob', 'b1', 'clients/b/y'), false);
    assert.equal(acl.canPublish('bob', '', 'clients//y'), false, 'an empty client id fills nothing');
  });
});

describe('AclFile.parse', () => {
  it('accepts comments, blank lines, CRLF, extra spaces and tabs', () => {
    const f = AclFile.parse('# c\r\n\r\n   \r\n  topic   read   a/b  \r\nuser\tu1\r\n\ttopic write\tc\r\n');
    assert.equal(f.ruleCount, 2);
    assert.equal(f.canReceive(undefined, 'x', 'a/b'), true);
    assert.equal(f.canPublish('u1', 'x', 'c'), true);
  });

  it('one word after topic is the topic itself, as in Mosquitto', () => {
    const f = AclFile.parse('topic read\n');
    assert.equal(f.canPublish(undefined, 'x', 'read'), true);
    assert.equal(f.canReceive(undefined, 'x', 'read'), true);
  });

  it('repeated user sections for one name add up', () => {
    const f = AclFile.parse('user u\ntopic read a\nuser v\ntopic read b\nuser u\ntopic read c\n');
    assert.equal(f.canReceive('u', 'x', 'a'), true);
    assert.equal(f.canReceive('u', 'x', 'c'), true);
    assert.equal(f.canReceive('u', 'x', 'b'), false);
  });

  const bad: [string, number, RegExp][] = [
    ['topic read a\nfoo bar\n', 2, /unknown keyword "foo"/],
    ['# c\n\ntopic reed a/b\n', 3, /invalid access "reed"/],
    ['topic read a\ntopic read a/#/b\n', 2, /'#' must be the last level/],
    ['topic read a+\n', 1, /'\+' must occupy a whole level/],
    ['pattern write clients/%c#\n', 1, /'#' must be the last level/],
    ['user\n', 1, /missing username/],
    ['topic\n', 1, /empty topic/],
    ['topic read a\n  Topic read b\n', 2, /unknown keyword "Topic"/],
  ];
  for (const [text, line, message] of bad) {
    it(`rejects ${JSON.stringify(text)} naming line ${line}`, () => {
      assert.throws(
        () => AclFile.parse(text),
        (err: unknown) => err instanceof AclFileError && err.line === line && message.test(err.message) && err.message.includes(`line ${line}`),
      );
    });
  }
});

// --- properties over a bounded, seeded random set ---

const LEVELS = ['sensors', 'secret', 'kitchen', 'bob', 'alice', 'clients', 'c1', 'k1', 'users', 'inbox', 'outbox', 'public', '$SYS', 'broker', 'weather', 'temp', 'locked', 'dev_c1', 'status', '', '%u', '%c'];

function randomTopic(rng: Rng): string {
  const n = rng.int(1, 4);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(rng.pick(LEVELS));
  if (out.join('/') === '') out[0] = 'x';
  return out.join('/');
}

function randomFilter(rng: Rng): string {
  const n = rng.int(1, 4);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const last = i === n - 1;
    out.push(last && rng.chance(0.2) ? '#' : rng.chance(0.25) ? '+' : rng.pick(LEVELS));
  }
  const f = out.join('/');
  return f === '' ? '+' : f;
}

const IDENTITIES: [string | undefined, string][] = [
  [undefined, 'c1'],
  ['alice', 'a1'],
  ['bob', 'b1'],
  ['admin', 'k1'],
  ['carol', 'k1'],
  ['mallory', 'c1'],
  ['+', 'c1'],
  [undefined, 'a/#'],
];

describe('AclFile properties (seeded)', () => {
  it('a single non-pattern rule matches a topic exactly when the reference matcher does', () => {
    const seed = 0xac1f11e;
    for (let i = 0; i < 300; i++) {
      const rng = new Rng(subSeed(seed, i));
      const filter = randomFilter(rng).replace(/%[cu]/g, 'p');
      const topic = randomTopic(rng);
      const f = AclFile.parse(`topic read ${filter}\n`);
      assert.equal(f.canReceive(undefined, 'x', topic), matches(filter, topic), `case ${i}: rule ${filter} topic ${topic}`);
    }
  });

  it('coverage is sound: an allowed filter only matches topics the rule matches', () => {
    const seed = 0x5eed;
    let allowed = 0;
    for (let i = 0; i < 300; i++) {
      const rng = new Rng(subSeed(seed, i));
      const rule = randomFilter(rng).replace(/%[cu]/g, 'p');
      const filter = rng.chance(0.5) ? rule.replace(/[^/]+$/, rng.pick(['+', '#', 'temp'])) : randomFilter(rng).replace(/%[cu]/g, 'p');
      const f = AclFile.parse(`topic read ${rule}\n`);
      if (!f.canSubscribe(undefined, 'x', filter)) continue;
      allowed++;
      for (let k = 0; k < 40; k++) {
        const topic = randomTopic(rng);
        if (matches(filter, topic)) assert.ok(matches(rule, topic), `case ${i}: rule ${rule} allowed filter ${filter} but not topic ${topic}`);
      }
    }
    assert.ok(allowed > 30, `too few allowed cases to prove anything (${allowed})`);
  });

  it('AclCache gives the same answers as the uncached calls, across clears', () => {
    const seed = 0xcac4e;
    for (let id = 0; id < IDENTITIES.length; id++) {
      const [username, clientId] = IDENTITIES[id] as [string | undefined, string];
      const cache = new AclCache(acl, username, clientId, 16);
      const rng = new Rng(subSeed(seed, id));
      // A small pool so topics repeat: hits, misses and clears all happen.
      const topics = Array.from({ length: 40 }, () => randomTopic(rng));
      const filters = Array.from({ length: 40 }, () => randomFilter(rng));
      let granted = 0;
      for (let i = 0; i < 600; i++) {
        const topic = rng.pick(topics);
        const filter = rng.pick(filters);
        const pub = acl.canPublish(username, clientId, topic);
        const recv = acl.canReceive(username, clientId, topic);
        const sub = acl.canSubscribe(username, clientId, filter);
        assert.equal(cache.canPublish(topic), pub, `${username}/${clientId} publish ${topic}`);
        assert.equal(cache.canReceive(topic), recv, `${username}/${clientId} receive ${topic}`);
        assert.equal(cache.canSubscribe(filter), sub, `${username}/${clientId} subscribe ${filter}`);
        assert.equal(cache.canSubscribe(`$share/g/${filter}`), sub, `${username}/${clientId} subscribe $share/g/${filter}`);
        if (pub || recv || sub) granted++;
      }
      if (username === 'alice' || username === 'admin') assert.ok(granted > 0, `${username}: the random set never hit a grant`);
    }
  });

  it('AclCache keeps the answers of the file it was made with (reload = new file, new cache)', () => {
    const v1 = AclFile.parse('topic a\n');
    const v2 = AclFile.parse('topic b\n');
    const cache1 = new AclCache(v1, undefined, 'c');
    assert.equal(cache1.canPublish('a'), true);
    const cache2 = new AclCache(v2, undefined, 'c');
    assert.equal(cache2.canPublish('a'), false);
    assert.equal(cache2.canPublish('b'), true);
    assert.equal(cache1.canPublish('a'), true);
  });
});
