/**
 * The part of Node's `EventEmitter` that the client uses, for the browser build of
 * `petrel/client` (scripts/build-browser.mjs puts it in place of `node:events`; Node itself never
 * loads this file): on / addListener, once, off / removeListener, removeAllListeners, emit,
 * listenerCount and listeners, with Node's rule that an 'error' nobody listens to is thrown.
 */
type Listener = (...args: never[]) => void;

interface Entry {
  fn: Listener;
  once: boolean;
}

export class EventEmitter {
  readonly #events = new Map<string | symbol, Entry[]>();

  on(event: string | symbol, fn: Listener): this {
    return this.#add(event, fn, false);
  }

  addListener(event: string | symbol, fn: Listener): this {
    return this.#add(event, fn, false);
  }

  once(event: string | symbol, fn: Listener): this {
    return this.#add(event, fn, true);
  }

  off(event: string | symbol, fn: Listener): this {
    const list = this.#events.get(event);
    if (list === undefined) return this;
    // The most recently added registration goes first, as in Node.
    for (let i = list.length - 1; i >= 0; i--) {
      if ((list[i] as Entry).fn === fn) {
        list.splice(i, 1);
        break;
      }
    }
    if (list.length === 0) this.#events.delete(event);
    return this;
  }

  removeListener(event: string | symbol, fn: Listener): this {
    return this.off(event, fn);
  }

  removeAllListeners(event?: string | symbol): this {
    if (event === undefined) this.#events.clear();
    else this.#events.delete(event);
    return this;
  }

  emit(event: string | symbol, ...args: unknown[]): boolean {
    const list = this.#events.get(event);
    if (list === undefined || list.length === 0) {
      if (event === 'error') throw args[0] instanceof Error ? args[0] : new Error(`unhandled 'error' event: ${String(args[0])}`);
      return false;
    }
    for (const entry of [...list]) {
      if (entry.once) this.off(event, entry.fn);
      (entry.fn as (...a: unknown[]) => void).apply(this, args);
    }
    return true;
  }

  listenerCount(event: string | symbol): number {
    return this.#events.get(event)?.length ?? 0;
  }

  listeners(event: string | symbol): Listener[] {
    return (this.#events.get(event) ?? []).map((e) => e.fn);
  }

  #add(event: string | symbol, fn: Listener, once: boolean): this {
    const list = this.#events.get(event);
    if (list === undefined) this.#events.set(event, [{ fn, once }]);
    else list.push({ fn, once });
    return this;
  }
}
