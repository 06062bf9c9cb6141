/**
 * Keep alive on the client side (§3.1.2.10). Invariants: a PINGREQ goes out when nothing was
 * sent for the interval [MQTT-3.1.2-23]; at most one PINGREQ is outstanding; when its PINGRESP
 * does not come within the interval, `onTimeout` runs once. Writes do not re-arm a timer each:
 * the idle timer fires, looks at the time of the last write, and re-arms for what is left.
 */
import type { ClientTimers } from './timers.js';

export class Keepalive {
  readonly #ms: number;
  readonly #timers: ClientTimers;
  readonly #ping: () => void;
  readonly #onTimeout: () => void;
  #lastSent: number;
  #cancelIdle: (() => void) | undefined;
  #cancelPong: (() => void) | undefined;
  #stopped = false;

  /** `ms` > 0; `ping` writes a PINGREQ (and calls `sent()`); `onTimeout` closes the connection. */
  constructor(ms: number, timers: ClientTimers, ping: () => void, onTimeout: () => void) {
    this.#ms = ms;
    this.#timers = timers;
    this.#ping = ping;
    this.#onTimeout = onTimeout;
    this.#lastSent = timers.now();
    this.#arm(ms);
  }

  /** A packet was written. */
  sent(): void {
    this.#lastSent = this.#timers.now();
  }

  /** A PINGRESP arrived. */
  pong(): void {
    this.#cancelPong?.();
    this.#cancelPong = undefined;
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelIdle?.();
    this.#cancelPong?.();
    this.#cancelIdle = undefined;
    this.#cancelPong = undefined;
  }

  #arm(ms: number): void {
    this.#cancelIdle = this.#timers.setTimer(() => this.#idle(), ms);
  }

  #idle(): void {
    this.#cancelIdle = undefined;
    if (this.#stopped) return;
    const left = this.#lastSent + this.#ms - this.#timers.now();
    if (left > 0) {
      this.#arm(left);
      return;
    }
    if (this.#cancelPong === undefined) {
      this.#cancelPong = this.#timers.setTimer(() => this.#expired(), this.#ms);
      this.#ping();
    }
    if (!this.#stopped) this.#arm(this.#ms);
  }

  #expired(): void {
    this.#cancelPong = undefined;
    if (this.#stopped) return;
    this.stop();
    this.#onTimeout();
  }
}
