import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SharedGroup } from '../../../src/router/shared-groups.js';

function groupOf(...keys: string[]): SharedGroup<string> {
  const group = new SharedGroup<string>('g1', 'sensors/+');
  for (const key of keys) group.add(key, key);
  return group;
}

function picks(group: SharedGroup<string>, n: number, available?: (m: string) => boolean): (string | undefined)[] {
  return Array.from({ length: n }, () => group.pick('round-robin', available));
}

describe('SharedGroup membership', () => {
  it('add, replace, get, remove and size', () => {
    const group = new SharedGroup<{ id: number }>('g', 'a/#');
    assert.equal(group.group, 'g');
    assert.equal(group.filter, 'a/#');
    assert.equal(group.add('c1', { id: 1 }), true);
    assert.equal(group.add('c2', { id: 2 }), true);
    assert.equal(group.add('c1', { id: 3 }), false);
    assert.equal(group.size, 2);
    assert.deepEqual(group.get('c1'), { id: 3 });
    assert.deepEqual([...group.members()], [{ id: 3 }, { id: 2 }]);
    assert.equal(group.remove('c1'), true);
    assert.equal(group.remove('c1'), false);
    assert.equal(group.get('c1'), undefined);
    assert.equal(group.size, 1);
  });

  it('an empty group picks nothing with any strategy', () => {
    const group = groupOf();
    assert.equal(group.pick('round-robin'), undefined);
    assert.equal(group.pick('random'), undefined);
    assert.equal(group.pick('least-inflight'), undefined);
    group.add('a', 'a');
    group.remove('a');
    assert.equal(group.pick('round-robin'), undefined);
  });

  it('keeps its state plain and serialisable', () => {
    const group = groupOf('a', 'b', 'c');
    group.pick('round-robin');
    const state = JSON.parse(JSON.stringify(group)) as unknown;
    assert.deepEqual(state, { group: 'g1', filter: 'sensors/+', keys: ['a', 'b', 'c'], cursor: 1 });
  });
});

describe('SharedGroup round robin (§4.8.2)', () => {
  it('cycles through members in join order', () => {
    assert.deepEqual(picks(groupOf('a', 'b', 'c'), 7), ['a', 'b', 'c', 'a', 'b', 'c', 'a']);
  });

  it('a replaced member keeps its turn', () => {
    const group = groupOf('a', 'b', 'c');
    group.pick('round-robin');
    group.add('b', 'B');
    assert.deepEqual(picks(group, 3), ['B', 'c', 'a']);
  });

  it('stays fair as members join and leave', () => {
    const group = groupOf('a', 'b', 'c');
    assert.deepEqual(picks(group, 2), ['a', 'b']);
    group.remove('a'); // before the cursor: 'c' is still next
    assert.deepEqual(picks(group, 1), ['c']);
    group.add('d', 'd'); // joins at the end of the rotation
    assert.deepEqual(picks(group, 4), ['b', 'c', 'd', 'b']);
    group.remove('c'); // the next member leaves: its successor takes the turn
    assert.deepEqual(picks(group, 2), ['d', 'b']);
    group.remove('d'); // the last member leaves while the cursor points at it: wrap around
    assert.deepEqual(picks(group, 2), ['b', 'b']);
  });

  it('gives every member an equal share over many picks with churn', () => {
    const group = groupOf('a', 'b', 'c', 'd');
    const counts = new Map<string, number>();
    for (let round = 0; round < 100; round++) {
      for (const m of picks(group, 4)) counts.set(m as string, (counts.get(m as string) ?? 0) + 1);
      // Churn: a member leaves and rejoins under the same key, landing at the end of the rotation.
      const leaving = ['a', 'b', 'c', 'd'][round % 4] as string;
      group.remove(leaving);
      group.add(leaving, leaving);
    }
    const values = [...counts.values()];
    assert.equal(values.reduce((s, v) => s + v, 0), 400);
    assert.ok(Math.max(...values) - Math.min(...values) <= 4, `unfair: ${JSON.stringify([...counts])}`);
  });

  it('skips members that are not available and resumes after the chosen one', () => {
    const group = groupOf('a', 'b', 'c');
    const offline = new Set(['b']);
    const online = (m: string): boolean => !offline.has(m);
    assert.deepEqual(picks(group, 4, online), ['a', 'c', 'a', 'c']);
    offline.clear();
    assert.deepEqual(picks(group, 3, online), ['a', 'b', 'c']);
    assert.deepEqual(picks(group, 1, () => false), [undefined]);
  });
});

describe('SharedGroup random', () => {
  it('uses the injected random source over the available members', () => {
    const group = groupOf('a', 'b', 'c', 'd');
    assert.equal(group.pick('random', undefined, undefined, () => 0), 'a');
    assert.equal(group.pick('random', undefined, undefined, () => 0.5), 'c');
    assert.equal(group.pick('random', undefined, undefined, () => 0.99), 'd');
    assert.equal(group.pick('random', undefined, undefined, () => 1), 'd');
    const notA = (m: string): boolean => m !== 'a';
    assert.equal(group.pick('random', notA, undefined, () => 0), 'b');
    assert.equal(group.pick('random', () => false, undefined, () => 0), undefined);
  });
});

describe('SharedGroup least-inflight', () => {
  it('picks the available member with the lowest load', () => {
    const group = groupOf('a', 'b', 'c');
    const load = new Map([['a', 5], ['b', 1], ['c', 3]]);
    const loadOf = (m: string): number => load.get(m) ?? 0;
    assert.equal(group.pick('least-inflight', undefined, loadOf), 'b');
    assert.equal(group.pick('least-inflight', (m) => m !== 'b', loadOf), 'c');
    load.set('a', 0);
    assert.equal(group.pick('least-inflight', undefined, loadOf), 'a');
    assert.equal(group.pick('least-inflight', () => false, loadOf), undefined);
  });

  it('rotates among equally loaded members', () => {
    const group = groupOf('a', 'b', 'c');
    const loadOf = (m: string): number => (m === 'c' ? 9 : 2);
    const got = Array.from({ length: 4 }, () => group.pick('least-inflight', undefined, loadOf));
    assert.deepEqual(got, ['a', 'b', 'a', 'b']);
    // Without a load function every member counts as idle, which is plain round robin.
    assert.deepEqual(Array.from({ length: 3 }, () => group.pick('least-inflight')), ['c', 'a', 'b']);
  });
});
