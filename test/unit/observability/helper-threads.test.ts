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

/**
 * In a fresh Node process with --trace-gc-nvp: applyParallelScavenge(mode, cpus), then a workload
 * that keeps a few MB alive through young collections; returns the decision and, per scavenge,
 * the time V8's helper threads spent on it.
 */
function scavengesInChild(mode: string, cpus: number): { parallel: boolean; background: number[] } {
  const script = `
    const { applyParallelScavenge } = await import(${JSON.stringify(MODULE)});
    const parallel = applyParallelScavenge(${JSON.stringify(mode)}, ${cpus});
    let keep = [];
    for (let r = 0; r < 30; r++) {
      for (let i = 0; i < 40000; i++) keep.push({ a: i, b: [i], c: 'x' + i });
      if (keep.length > 300000) keep = keep.slice(150000);
    }
    process.stdout.write('\\nRESULT ' + JSON.stringify({ parallel, kept: keep.length }) + '\\n');`;
  const out = execFileSync(process.execPath, ['--trace-gc-nvp', '--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const result = out.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(result !== undefined, 'the child reported');
  const background: number[] = [];
  for (const line of out.split('\n')) {
    if (!line.includes(' gc=s ')) continue;
    const m = /background\.scavenge\.parallel=([0-9.]+)/.exec(line);
    if (m !== null) background.push(Number(m[1]));
  }
  return { parallel: (JSON.parse(result.slice(7)) as { parallel: boolean }).parallel, background };
}

describe('applyParallelScavenge', () => {
  test('auto: off on one CPU, on with more; on and off force it', () => {
    assert.equal(scavengesInChild('auto', 1).parallel, false);
    assert.equal(scavengesInChild('auto', 2).parallel, true);
    assert.equal(scavengesInChild('on', 1).parallel, true);
    assert.equal(scavengesInChild('off', 8).parallel, false);
  });

  test('off: no scavenge uses the helper threads; on: scavenges of the same workload do', () => {
    const off = scavengesInChild('off', 8);
    assert.ok(off.background.length >= 3, `young collections ran (${off.background.length})`);
    for (const ms of off.background) assert.equal(ms, 0);
    const on = scavengesInChild('on', 1);
    assert.ok(on.background.length >= 3, `young collections ran (${on.background.length})`);
    assert.ok(on.background.some((ms) => ms > 0), `helper threads took part: ${on.background.join(', ')}`);
  });
});
