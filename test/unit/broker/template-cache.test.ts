/**
 * TemplateCache / templateFor: messages that forward no properties of their own share one 5.0
 * template per topic; messages with forwarded properties get their own; the cache is bounded.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import { createMessage, TemplateCache, templateFor } from '../../../src/broker/message.js';
import { publishTemplate } from '../../../src/protocol/index.js';

const payload = Buffer.from('x');

describe('TemplateCache', () => {
  it('messages on one topic with only a Message Expiry Interval share the template of the topic alone', () => {
    const cache = new TemplateCache();
    const a = createMessage({ topic: 'a/b', payload, qos: 1, retain: false, properties: { messageExpiryInterval: 60 }, now: 0 });
    const b = createMessage({ topic: 'a/b', payload, qos: 0, retain: false, properties: { messageExpiryInterval: 5 }, now: 10 });
    const c = createMessage({ topic: 'a/b', payload, qos: 0, retain: false, now: 10 });
    const ta = templateFor(a, cache);
    assert.equal(templateFor(b, cache), ta);
    assert.equal(templateFor(c, cache), ta);
    assert.equal(templateFor(a, cache), ta, 'kept on the message');
    assert.deepEqual(ta, publishTemplate('a/b', undefined));
    assert.notEqual(templateFor(createMessage({ topic: 'a/c', payload, qos: 0, retain: false, now: 0 }), cache), ta);
    assert.equal(cache.size, 2);
  });

  it('a message with forwarded properties gets its own template, which carries them', () => {
    const cache = new TemplateCache();
    const props = { messageExpiryInterval: 60, contentType: 'text/plain', userProperties: [['k', 'v']] as [string, string][] };
    const m = createMessage({ topic: 'a/b', payload, qos: 1, retain: false, properties: props, now: 0 });
    const t = templateFor(m, cache);
    assert.deepEqual(t, publishTemplate('a/b', props));
    assert.ok(t.propsLength > 0);
    assert.equal(cache.size, 0, 'not cached by topic');
    assert.notEqual(templateFor(createMessage({ topic: 'a/b', payload, qos: 1, retain: false, properties: props, now: 0 }), cache), t);
  });

  it('holds at most TemplateCache.MAX topics', () => {
    const cache = new TemplateCache();
    for (let i = 0; i < TemplateCache.MAX * 3 + 7; i++) {
      const t = cache.get(`t/${i}`);
      assert.deepEqual(t, publishTemplate(`t/${i}`, undefined));
      assert.ok(cache.size <= TemplateCache.MAX);
    }
  });
});
