/**
 * lowerHelperThreads: every thread of the process but the event loop's gets the nice value, the
 * event loop's keeps its own, and 0 changes nothing. Run in a child process so that the test
 * runner's own threads are left alone.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const MODULE = fileURLToPath(new URL('../../../src/observability/helper-threads.js', import.meta.url));

interface Report { pid: number; result: { lowered: number; failed: number }; nice: Record<string, number> }

/** In a fresh Node process: calls lowerHelperThreads(nice) and reads each thread's nice value back from /proc. */
function inChild(nice: number): Report {
  const script = `
    import fs from 'node:fs';
    const { lowerHelperThreads } = await import(${JSON.stringify(MODULE)});
    const result = lowerHelperThreads(${nice});
    const niceOf = {};
    for (const t of fs.readdirSync('/proc/self/task')) {
      // Field 19 of stat is the nice value; the command name (field 2) may hold spaces, so count after ')'.
      const stat = fs.readFileSync('/proc/self/task/' + t + '/stat', 'utf8');
      niceOf[t] = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    }
    process.stdout.write(JSON.stringify({ pid: process.pid, result, nice: niceOf }));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as Report;
}

describe('lowerHelperThreads', { skip: process.platform !== 'linux' ? 'Linux only' : false }, () => {
  test('raises every helper thread to the nice value and leaves the event loop at its own', () => {
    const r = inChild(12);
    const helpers = Object.entries(r.nice).filter(([tid]) => Number(tid) !== r.pid);
    assert.ok(helpers.length >= 1, 'a Node process has V8 helper threads');
    assert.equal(r.nice[String(r.pid)], 0, 'the event loop keeps nice 0');
    for (const [tid, nice] of helpers) assert.equal(nice, 12, `thread ${tid}`);
    assert.deepEqual(r.result, { lowered: helpers.length, failed: 0 });
  });

  test('0 (and values out of range) change nothing', () => {
    for (const n of [0, 20]) {
      const r = inChild(n);
      assert.deepEqual(r.result, { lowered: 0, failed: 0 });
      for (const [tid, nice] of Object.entries(r.nice)) assert.equal(nice, 0, `thread ${tid} with ${n}`);
    }
  });
});
