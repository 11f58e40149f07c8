/**
 * A typed event emitter for the client that runs in browsers and Node alike
 * (node:events is Node-only) and behaves like Node's where users rely on it:
 * `on`/`addListener`, `once`, `off`/`removeListener` (also of a `once` listener),
 * `removeAllListeners`, `listenerCount`; listeners run in the order added, the same
 * listener may be added twice, and an emit calls the listeners present when it
 * began. So `events.once(client, 'open')` and `for await (… of events.on(client,
 * 'message'))` work.
 *
 * Two deliberate differences: a listener that throws (or rejects) does not stop the
 * other listeners or the caller (the rest of a batch is still delivered); its error
 * goes to the `onListenerError` hook. And emitting 'error' with no listener is not
 * thrown: a browser client has no process to crash, and a Node one should not crash
 * for a server's bad frame.
 */
import { invokeGuarded } from '../callback.js';

type Listener = (...args: never[]) => unknown;
/** A `once` wrapper remembers the listener it wraps, so removeListener(original) finds it. */
type Wrapper = Listener & { listener?: Listener };

export class Emitter<Events extends Record<string, unknown[]>> {
  readonly #listeners = new Map<keyof Events, Wrapper[]>();

  /** Adds a listener. */
  on<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): this {
    // Copy on write: an emit in progress does not call a listener added during it.
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener as Listener]);
    return this;
  }

  /** Alias of {@link on}. */
  addListener<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): this {
    return this.on(event, listener);
  }

  /** Adds a listener that is removed before its first call. */
  once<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): this {
    const wrapper: Wrapper = (...args: never[]) => {
      this.removeListener(event, wrapper as never);
      return (listener as Listener)(...args);
    };
    wrapper.listener = listener as Listener;
    return this.on(event, wrapper as never);
  }

  /** Removes the most recently added instance of `listener` (or of a `once` wrapping it). */
  removeListener<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): this {
    const list = this.#listeners.get(event);
    if (list === undefined) return this;
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i] === listener || list[i]!.listener === listener) {
        // Copy on write: an emit in progress keeps iterating the list it started with.
        const next = list.slice();
        next.splice(i, 1);
        if (next.length === 0) this.#listeners.delete(event);
        else this.#listeners.set(event, next);
        break;
      }
    }
    return this;
  }

  /** Alias of {@link removeListener}. */
  off<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): this {
    return this.removeListener(event, listener);
  }

  /** Removes every listener of `event`, or of every event. */
  removeAllListeners(event?: keyof Events): this {
    if (event === undefined) this.#listeners.clear();
    else this.#listeners.delete(event);
    return this;
  }

  /** Adds a listener before the others. */
  prependListener<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): this {
    this.#listeners.set(event, [listener as Listener, ...(this.#listeners.get(event) ?? [])]);
    return this;
  }

  /** Adds a once listener before the others. */
  prependOnceListener<K extends keyof Events>(event: K, listener: (...args: Events[K]) => void): this {
    this.once(event, listener);
    const list = this.#listeners.get(event)!;
    this.#listeners.set(event, [list.at(-1)!, ...list.slice(0, -1)]);
    return this;
  }

  /** Number of listeners of `event`. */
  listenerCount(event: keyof Events): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /** The listeners of `event` (a `once` listener as the function given). */
  listeners<K extends keyof Events>(event: K): ((...args: Events[K]) => void)[] {
    return (this.#listeners.get(event) ?? []).map((listener) => (listener.listener ?? listener) as never);
  }

  /** The listeners of `event` as stored (a `once` listener as its wrapper). */
  rawListeners<K extends keyof Events>(event: K): ((...args: Events[K]) => void)[] {
    return [...(this.#listeners.get(event) ?? [])] as never[];
  }

  /** Events with listeners. */
  eventNames(): (keyof Events)[] {
    return [...this.#listeners.keys()];
  }

  /** Accepted for compatibility with Node's EventEmitter; there is no listener limit to warn about. */
  setMaxListeners(_n: number): this {
    return this;
  }

  /** Always 0: no limit. */
  getMaxListeners(): number {
    return 0;
  }

  /** Whether anyone listens to `event` (lets hot paths skip building arguments). */
  listens(event: keyof Events): boolean {
    return this.#listeners.has(event);
  }

  /** Calls each listener present now, guarded. Returns whether there were any. */
  emit<K extends keyof Events>(event: K, ...args: Events[K]): boolean {
    const list = this.#listeners.get(event);
    if (list === undefined) return false;
    for (const listener of list) invokeGuarded(listener, this, args, (error) => this.onListenerError(event, error));
    return true;
  }

  /** A listener of `event` threw or rejected; subclasses report it. */
  protected onListenerError(_event: keyof Events, _error: unknown): void {}
}
