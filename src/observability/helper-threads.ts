/**
 * The event loop's thread before V8's helpers. A process starts with V8's platform threads
 * (background compilation, concurrent marking and sweeping, the delayed-task scheduler). Where they
 * share a core with the event loop (a broker pinned to one core, a container with one CPU), a
 * woken event loop can wait a scheduler slice, 1–2 ms, behind a compile job, and every
 * message in that turn waits with it. Lowering those threads' priority (a higher nice value)
 * lets the loop preempt them at once; they still run whenever the loop is idle.
 *
 * Linux only (threads are listed in /proc/self/task; setpriority on a thread id changes that
 * thread alone). libuv's pool is lowered too: the ES module loader has started it before any
 * module runs, and no thread can be told from another here. The pool runs the SQLite store's
 * fdatasync, so a saturated broker waits longer for its commits; hence it is opt-in.
 */
import fs from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';

export interface HelperPriorityResult {
  /** Threads whose nice value was raised to `nice`. */
  lowered: number;
  /** Threads that could not be changed (gone meanwhile, or not permitted). */
  failed: number;
}

/** Raises the nice value of every thread of this process but the main one to `nice` (1..19); 0 or another OS: nothing. */
export function lowerHelperThreads(nice: number): HelperPriorityResult {
  const result: HelperPriorityResult = { lowered: 0, failed: 0 };
  if (!(nice >= 1 && nice <= 19) || process.platform !== 'linux') return result;
  let tids: string[];
  try {
    tids = fs.readdirSync('/proc/self/task');
  } catch {
    return result;
  }
  for (const t of tids) {
    const tid = Number(t);
    if (!Number.isInteger(tid) || tid === process.pid) continue;
    try {
      // Only ever lower: a thread already at or below this priority keeps its own.
      if (os.getPriority(tid) < nice) os.setPriority(tid, nice);
      result.lowered++;
    } catch {
      result.failed++;
    }
  }
  return result;
}

/** The `parallelScavenge` setting: 'auto' decides by the CPUs this process may run on. */
export type ParallelScavenge = 'auto' | 'on' | 'off';

/**
 * Whether young-generation collections (scavenges) use V8's helper threads, and makes it so; `cpus`:
 * how many CPUs the process may run on (its affinity mask). V8 splits a scavenge into parallel
 * tasks on its helper threads. On one CPU (a process pinned to a core, a one-CPU cpuset) those
 * threads cannot run beside the event loop: they take turns with it on that core, and a scavenge
 * copying a few MB takes 2–3 times as long as on the main thread alone. 'auto' therefore turns
 * parallel scavenges off there and leaves them on everywhere else; 'on' / 'off' force either.
 * Only the standalone server calls this (a library leaves its embedding process's flags alone).
 */
export function applyParallelScavenge(mode: ParallelScavenge, cpus: number = os.availableParallelism()): boolean {
  const parallel = mode === 'on' || (mode === 'auto' && cpus > 1);
  // V8 reads the flag at each scavenge, so setting it at run time takes effect from the next one.
  v8.setFlagsFromString(parallel ? '--parallel-scavenge' : '--no-parallel-scavenge');
  return parallel;
}
