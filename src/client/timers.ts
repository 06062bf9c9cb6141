/**
 * Time as an input. The client reads `now()` and arms deadlines with `setTimer`; tests inject a
 * fake that moves only when told to, so keep alive is tested without waiting.
 */

export interface ClientTimers {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Runs `fn` once after `ms`; the returned function cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

/**
 * Real time: `performance.now()` and `setTimeout`, unref'd in Node so that a client never keeps a
 * process alive (a browser's timer is a number, with nothing to unref).
 */
export const realTimers: ClientTimers = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    const t: ReturnType<typeof setTimeout> | number = setTimeout(fn, ms);
    if (typeof t === 'object') t.unref();
    return () => clearTimeout(t);
  },
};
