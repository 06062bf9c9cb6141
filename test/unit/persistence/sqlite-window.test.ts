/**
 * The SQLite store's window (window.ts): ops that a later op makes moot are dropped as they come,
 * and what stays nets (journal.ts `netOps`) to the same end state as every op of the window.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryStore, type StoredState, type StoreOp } from '../../../src/persistence/index.js';
import { netOps } from '../../../src/persistence/sqlite/journal.js';
import { OpWindow, type TableRows } from '../../../src/persistence/sqlite/window.js';
import { inflight, msg, queued } from '../../contract/store.contract.js';

/** Tables that hold the given inflight rows ("client/packetId") and queue rows ("client/seq"). */
function tables(inflightRows: string[] = [], queueRows: string[] = []): TableRows {
  return {
    inflight: (c, p) => inflightRows.includes(`${c}/${p}`),
    queue: (c, s) => queueRows.includes(`${c}/${s}`),
  };
}

function windowOf(table: TableRows = tables()): { window: OpWindow; dropped: string[] } {
  const dropped: string[] = [];
  return { window: new OpWindow(table, (id) => dropped.push(id)), dropped };
}

describe('SQLite store window', () => {
  test('a QoS 1 delivery stored, sent and acknowledged nets to nothing, and its message is dropped', () => {
    const { window, dropped } = windowOf();
    window.add([{ op: 'message', message: msg('m1') }, { op: 'inflight', entry: inflight('a', 0, 1, 'm1') }]);
    window.endBatch();
    assert.equal(window.size, 2);
    assert.deepEqual(dropped, []);
    window.add([{ op: 'complete', clientId: 'a', packetId: 1 }]);
    window.endBatch();
    assert.equal(window.size, 0);
    assert.deepEqual(window.ops(), []);
    assert.deepEqual(dropped, ['m1']);
  });

  test('a QoS 2 delivery (PUBLISH, PUBREL, PUBCOMP) and a queued delivery net to nothing', () => {
    const { window, dropped } = windowOf();
    window.add([{ op: 'message', message: msg('m1') }, { op: 'enqueue', entry: queued('a', 3, 'm1', { qos: 2 }) }]);
    window.add([{ op: 'dequeue', clientId: 'a', seq: 3 }, { op: 'inflight', entry: inflight('a', 3, 7, 'm1', { qos: 2 }) }]);
    window.endBatch();
    assert.deepEqual(window.ops().map((o) => o.op), ['message', 'inflight']);
    window.add([{ op: 'inflight', entry: inflight('a', 3, 7, 'm1', { qos: 2, state: 'pubrel' }) }]);
    window.endBatch();
    const ops = window.ops();
    assert.equal(ops.length, 2);
    assert.equal(ops[1]!.op === 'inflight' && ops[1]!.entry.state, 'pubrel');
    window.add([{ op: 'complete', clientId: 'a', packetId: 7 }]);
    window.endBatch();
    assert.equal(window.size, 0);
    assert.deepEqual(dropped, ['m1']);
  });

  test('a delete of a row the tables hold is kept; one of a row they do not hold is not', () => {
    const { window, dropped } = windowOf(tables(['a/1'], ['a/4']));
    window.add([
      { op: 'complete', clientId: 'a', packetId: 1 },
      { op: 'complete', clientId: 'a', packetId: 2 },
      { op: 'dequeue', clientId: 'a', seq: 4 },
      { op: 'dequeue', clientId: 'a', seq: 5 },
    ]);
    window.endBatch();
    assert.deepEqual(window.ops(), [{ op: 'complete', clientId: 'a', packetId: 1 }, { op: 'dequeue', clientId: 'a', seq: 4 }]);
    assert.deepEqual(dropped, []);
  });

  test('a message referenced again later in the same batch stays', () => {
    const { window, dropped } = windowOf();
    window.add([{ op: 'message', message: msg('m1') }, { op: 'inflight', entry: inflight('a', 0, 1, 'm1') }]);
    window.add([{ op: 'complete', clientId: 'a', packetId: 1 }]);
    window.add([{ op: 'enqueue', entry: queued('b', 0, 'm1') }]);
    window.endBatch();
    assert.deepEqual(window.ops().map((o) => o.op), ['message', 'enqueue']);
    assert.deepEqual(dropped, []);
  });

  test('a retained message replaced in the window is dropped; a message in the tables is never "dropped"', () => {
    const { window, dropped } = windowOf();
    window.add([{ op: 'message', message: msg('m1') }, { op: 'retain', topic: 't', messageId: 'm1' }]);
    window.add([{ op: 'retain', topic: 't', messageId: 'old' }]);
    window.add([{ op: 'unretain', topic: 't' }]);
    window.endBatch();
    assert.deepEqual(window.ops(), [{ op: 'unretain', topic: 't' }]);
    assert.deepEqual(dropped, ['m1']);
  });

  test('ops before a dropSession stay for netOps; clear() empties the window', () => {
    const { window } = windowOf();
    window.add([{ op: 'message', message: msg('m1') }, { op: 'inflight', entry: inflight('a', 0, 1, 'm1') }]);
    window.add([{ op: 'dropSession', clientId: 'a' }, { op: 'complete', clientId: 'a', packetId: 1 }]);
    window.endBatch();
    assert.deepEqual(window.ops().map((o) => o.op), ['message', 'inflight', 'dropSession']);
    assert.deepEqual(netOps(window.ops()), [{ op: 'dropSession', clientId: 'a' }]);
    window.clear();
    assert.equal(window.size, 0);
    assert.deepEqual(window.ops(), []);
  });

  test('split holds the young deliveries whose message is in the window, with their messages, from the oldest record they came in', () => {
    const { window } = windowOf();
    window.record(100, 1);
    window.add([{ op: 'message', message: msg('old') }, { op: 'inflight', entry: inflight('a', 0, 1, 'old') }]);
    window.record(200, 5);
    window.add([{ op: 'message', message: msg('m1') }, { op: 'inflight', entry: inflight('a', 1, 2, 'm1') }]);
    window.record(300, 6);
    // m1 to another receiver, a delivery of a message the tables hold, and one of a session dropped later.
    window.add([{ op: 'inflight', entry: inflight('b', 1, 1, 'm1') }, { op: 'inflight', entry: inflight('b', 2, 2, 'table') }]);
    window.add([{ op: 'message', message: msg('m2') }, { op: 'inflight', entry: inflight('c', 1, 1, 'm2') }, { op: 'dropSession', clientId: 'c' }]);
    window.endBatch();
    const split = window.split(5);
    assert.deepEqual(split.held, [
      { op: 'message', message: msg('m1') }, { op: 'inflight', entry: inflight('a', 1, 2, 'm1') }, { op: 'inflight', entry: inflight('b', 1, 1, 'm1') },
    ]);
    assert.deepEqual(split.heldOffsets, [200, 200, 300]);
    assert.equal(split.from, 200);
    // Applied now: everything else, m1's message op included (a message put twice is stored once).
    assert.deepEqual(split.apply.map((o) => (o.op === 'inflight' ? `inflight ${o.entry.clientId}/${o.entry.packetId}` : o.op)), [
      'message', 'inflight a/1', 'message', 'inflight b/2', 'message', 'inflight c/1', 'dropSession',
    ]);
    // Carried into the next window, before its records: a later split does not hold them again.
    window.clear();
    window.carry(split.held, split.heldOffsets);
    window.record(400, 9);
    window.add([{ op: 'complete', clientId: 'a', packetId: 2 }]);
    window.endBatch();
    const next = window.split(0);
    assert.deepEqual(next.held, []);
    assert.equal(next.from, -1);
    assert.deepEqual(next.apply, [{ op: 'message', message: msg('m1') }, { op: 'inflight', entry: inflight('b', 1, 1, 'm1') }]);
    // Nothing young: nothing held.
    assert.deepEqual(window.split(10).held, []);
  });

  test('random workloads: what the window keeps gives the same end state as every op applied in order', async () => {
    // A seeded generator (xorshift): the same sequences every run.
    let seed = 0x2545f491;
    const rnd = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const clients = ['a', 'b', 'c'];
    let dropTotal = 0;
    let kept = 0;
    let total = 0;
    for (let round = 0; round < 25; round++) {
      // What the tables hold before the window: an inflight row and a queue row per client.
      const initial: StoreOp[] = [];
      const inflightRows = new Map<string, string>();
      const queueRows = new Map<string, string>();
      const retainedRows = new Map<string, string>();
      for (const c of clients) {
        const m = `init-${c}`;
        initial.push({ op: 'message', message: msg(m) }, { op: 'inflight', entry: inflight(c, 0, 1, m) }, { op: 'enqueue', entry: queued(c, 1, m) });
        inflightRows.set(`${c}/1`, m);
        queueRows.set(`${c}/1`, m);
      }
      const all = new MemoryStore();
      const netted = new MemoryStore();
      await all.open();
      await netted.open();
      await all.write(initial);
      await netted.write(initial);
      const { window, dropped } = windowOf(tables([...inflightRows.keys()], [...queueRows.keys()]));
      let next = 0;
      for (let batch = 0; batch < 60; batch++) {
        const writes = 1 + rnd(3);
        for (let w = 0; w < writes; w++) {
          // Messages a write may reference without putting them: those some row references now.
          const held = [...new Set([...inflightRows.values(), ...queueRows.values(), ...retainedRows.values()])];
          const ops: StoreOp[] = [];
          const pick = (): string => {
            if (held.length > 0 && rnd(3) === 0) return held[rnd(held.length)]!;
            const id = `m${round}.${next++}`;
            ops.push({ op: 'message', message: msg(id) });
            return id;
          };
          const n = 1 + rnd(3);
          for (let k = 0; k < n; k++) {
            const c = clients[rnd(clients.length)]!;
            const p = 1 + rnd(3);
            const s = rnd(5);
            switch (rnd(9)) {
              case 0: case 1: {
                const m = pick();
                ops.push({ op: 'inflight', entry: inflight(c, s, p, m) });
                inflightRows.set(`${c}/${p}`, m);
                break;
              }
              case 2: case 3:
                ops.push({ op: 'complete', clientId: c, packetId: p });
                inflightRows.delete(`${c}/${p}`);
                break;
              case 4: {
                const m = pick();
                ops.push({ op: 'enqueue', entry: queued(c, s, m) });
                queueRows.set(`${c}/${s}`, m);
                break;
              }
              case 5:
                ops.push({ op: 'dequeue', clientId: c, seq: s });
                queueRows.delete(`${c}/${s}`);
                break;
              case 6: {
                const m = inflightRows.get(`${c}/${p}`);
                if (m !== undefined) ops.push({ op: 'inflight', entry: inflight(c, s, p, m, { state: 'pubrel' }) });
                else ops.push({ op: rnd(2) === 0 ? 'pubrec' : 'pubrel', clientId: c, packetId: p });
                break;
              }
              case 7: {
                const topic = `r${rnd(2)}`;
                if (rnd(3) === 0) {
                  ops.push({ op: 'unretain', topic });
                  retainedRows.delete(topic);
                } else {
                  const m = pick();
                  ops.push({ op: 'retain', topic, messageId: m });
                  retainedRows.set(topic, m);
                }
                break;
              }
              default:
                if (rnd(4) === 0) {
                  ops.push({ op: 'dropSession', clientId: c });
                  for (const rows of [inflightRows, queueRows]) for (const key of [...rows.keys()]) if (key.startsWith(`${c}/`)) rows.delete(key);
                }
            }
          }
          await all.write(ops);
          window.add(ops);
          total += ops.length;
        }
        window.endBatch();
      }
      kept += window.size;
      dropTotal += dropped.length;
      // netOps puts the messages the kept ops need first: the memory store refuses a reference to
      // a message it does not hold, so a kept op naming a dropped message fails here.
      await netted.write(netOps(window.ops()));
      assert.deepEqual(comparable(await netted.open()), comparable(await all.open()), `round ${round}`);
      await all.close();
      await netted.close();
    }
    // The window did drop ops and messages on the way (a window that kept everything passes the
    // equality above too).
    assert.ok(kept < total / 2, `kept ${kept} of ${total}`);
    assert.ok(dropTotal > 0);
  });
});

function comparable(state: StoredState): unknown {
  // Rows in a fixed order (the memory store lists some in the order they were set, and entries of
  // one seq in any order).
  const sorted = <T>(rows: readonly T[]): string[] => rows.map((r) => JSON.stringify(r)).sort();
  return {
    ...state, queue: sorted(state.queue), inflight: sorted(state.inflight), retained: sorted(state.retained), inboundQos2: sorted(state.inboundQos2),
    messages: [...state.messages.keys()].sort() };
}
