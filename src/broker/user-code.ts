/**
 * Running code the embedder injected (hooks, authentication mechanisms, event listeners) without
 * letting it hurt the broker. Invariants:
 * - a hook that throws or rejects never escapes into the broker: its call site gets the
 *   `failed` answer (for authorization hooks, a refusal with 0x80), the error is logged and
 *   reported as a `hookError` event;
 * - an async hook answers within `hookTimeout` ms or counts as `denied` (0x87), logged;
 * - a result of the wrong type is an error, not a crash (`undefined.then`);
 * - the synchronous path allocates nothing: only a promise result gets a deadline.
 * Deadlines live on the broker's timer wheel, so they follow the injected clock.
 */
import type { Logger } from '../observability/logger.js';
import type { TimerWheel } from '../session/timer-wheel.js';
import type { Clock } from '../session/clock.js';
import type { LatencyHistogram } from './counters.js';

/** A pending hook's deadline on the timer wheel. */
export class HookDeadline {
  done = false;
  constructor(readonly at: number, readonly expire: () => void) {}
}

/** Where user code failed: hook or listener name and the client concerned. */
export interface UserCodeFailure {
  /** 'authenticate', 'authorizePublish', 'authorizeSubscribe', 'authMechanism' or 'listener:<event>'. */
  source: string;
  clientId: string | undefined;
  /** True when the hook did not answer within `hookTimeout`. */
  timedOut: boolean;
}

export type FailureSink = (error: Error, failure: UserCodeFailure) => void;

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

export const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

export class UserCode {
  readonly #wheel: TimerWheel<unknown>;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #logger: Logger;
  /** Set by the broker once its emitter exists: reports failures as `hookError` events. */
  report: FailureSink | undefined;

  constructor(wheel: TimerWheel<unknown>, clock: Clock, timeoutMs: number, logger: Logger) {
    this.#wheel = wheel;
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
    this.#logger = logger;
  }

  /** Logs and reports a failure of user code; never throws. */
  failed(err: unknown, source: string, clientId: string | undefined, timedOut = false): void {
    const error = asError(err);
    try {
      if (timedOut) this.#logger.warn({ source, clientId, timeoutMs: this.#timeoutMs }, 'hook timed out; answered as denied');
      else this.#logger.error({ err: error, source, clientId }, 'user code failed');
    } catch {
      // A broken logger must not break the broker either.
    }
    const report = this.report;
    if (report === undefined) return;
    try {
      report(error, { source, clientId, timedOut });
    } catch (reportErr) {
      try {
        this.#logger.error({ err: asError(reportErr), source: 'listener:hookError' }, 'user code failed');
      } catch {
        // ignore
      }
    }
  }

  /**
   * Calls `hook(arg)` and checks its answer (see `settle`); a synchronous throw is `failed` too.
   * The one way the broker calls user code that answers. With `latency`, the time until the
   * answer (settled, failed or timed out) is recorded there.
   */
  run<A, T>(
    source: string, clientId: string | undefined, hook: (arg: A) => unknown, arg: A, accept: (v: unknown) => T | undefined, denied: T, failed: T,
    latency?: LatencyHistogram,
  ): T | Promise<T> {
    const start = latency === undefined ? 0 : performance.now();
    let r: unknown;
    try {
      r = hook(arg);
    } catch (err) {
      if (latency !== undefined) latency.observe((performance.now() - start) / 1000);
      this.failed(err, source, clientId);
      return failed;
    }
    if (latency !== undefined && !isThenable(r)) latency.observe((performance.now() - start) / 1000);
    return this.settle(source, clientId, r, accept, denied, failed, latency, start);
  }

  /**
   * A hook's raw answer, checked: a synchronous answer that `accept` recognises passes as is;
   * a promise is settled within the time limit; anything else (a wrong type, an error) is
   * `failed`. `accept` returns undefined for a value it does not recognise.
   */
  settle<T>(
    source: string, clientId: string | undefined, value: unknown, accept: (v: unknown) => T | undefined, denied: T, failed: T,
    latency?: LatencyHistogram, start = 0,
  ): T | Promise<T> {
    if (!isThenable(value)) {
      const v = accept(value);
      if (v !== undefined) return v;
      this.failed(new TypeError(`${source} hook returned ${describe(value)}`), source, clientId);
      return failed;
    }
    return new Promise<T>((resolve) => {
      const deadline = new HookDeadline(this.#clock.now() + this.#timeoutMs, () => {
        if (latency !== undefined) latency.observe((performance.now() - start) / 1000);
        this.failed(new Error(`${source} hook timed out`), source, clientId, true);
        resolve(denied);
      });
      if (this.#timeoutMs > 0) this.#wheel.schedule(deadline, deadline.at);
      value.then((v) => {
        if (deadline.done) return;
        deadline.done = true;
        if (latency !== undefined) latency.observe((performance.now() - start) / 1000);
        const ok = accept(v);
        if (ok !== undefined) resolve(ok);
        else {
          this.failed(new TypeError(`${source} hook resolved to ${describe(v)}`), source, clientId);
          resolve(failed);
        }
      }, (err: unknown) => {
        if (deadline.done) return;
        deadline.done = true;
        if (latency !== undefined) latency.observe((performance.now() - start) / 1000);
        this.failed(err, source, clientId);
        resolve(failed);
      });
    });
  }

  /** Fires an expired deadline (called by the timer wheel). */
  expire(d: HookDeadline, now: number): void {
    if (d.done) return;
    if (now < d.at) {
      this.#wheel.schedule(d, d.at);
      return;
    }
    d.done = true;
    d.expire();
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object of the wrong shape';
  return typeof v === 'string' ? 'a string' : String(v);
}

/** Accepts booleans only (authorization answers). */
export const acceptBoolean = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
