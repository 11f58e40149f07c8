/**
 * How the broadcaster tells user code what happened, from inside its pipeline: every
 * listener is called guarded (a throw or a rejection is reported, the other listeners
 * still run), events raised during a pipeline step are queued and emitted once the step
 * has finished, and every failure of user code is counted and reported as
 * `callbackError` (whose own listeners' failures are only counted).
 */
import { emitGuarded } from './callback.js';
import { CallbackError } from './errors.js';

/** The part of an EventEmitter this needs. */
interface Target {
  rawListeners(event: string): ((...args: never[]) => unknown)[];
  listenerCount(event: string): number;
}

/** Emits to the listeners of one emitter; `Events` maps event names to their arguments. */
export class UserEvents<Events extends Record<keyof Events, unknown[]> & { callbackError: [CallbackError] }> {
  /** User code that threw or rejected. */
  callbackErrors = 0;
  readonly #target: Target;
  #deferred: [string, readonly unknown[]][] = [];

  constructor(target: Target) {
    this.#target = target;
  }

  /** Emits now, to every listener, guarded. */
  emit<K extends keyof Events & string>(event: K, ...args: Events[K]): void {
    emitGuarded(this.#target, event, args, (error) => this.failed(`${event} listener`, error));
  }

  /** Queues an event raised inside a pipeline step; the queue is emitted once the step has finished (a microtask). */
  defer<K extends keyof Events & string>(event: K, ...args: Events[K]): void {
    if (this.#target.listenerCount(event) === 0) return;
    if (this.#deferred.length === 0) queueMicrotask(this.#emitDeferred);
    this.#deferred.push([event, args]);
  }

  /** User code (`callback` says which) failed: counted, and reported as `callbackError`. */
  readonly failed = (callback: string, error: unknown): void => {
    this.callbackErrors++;
    if (callback === 'callbackError listener' || this.#target.listenerCount('callbackError') === 0) return;
    this.emit('callbackError', ...([new CallbackError(callback, error)] as Events['callbackError']));
  };

  readonly #emitDeferred = (): void => {
    const events = this.#deferred;
    this.#deferred = [];
    for (const [event, args] of events) emitGuarded(this.#target, event, args, (error) => this.failed(`${event} listener`, error));
  };
}
