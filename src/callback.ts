/**
 * Calling user code from inside the pipeline. A listener or hook that throws, or
 * returns a promise that rejects, must not stop a channel, skip the other listeners,
 * or surface as an unhandled rejection: its failure goes to `onError` and the caller
 * carries on. Browser-safe (the client's emitter uses it too).
 */

/** Calls `fn` with `args`; a throw or a rejected returned promise is passed to `onError`, never out. */
export function invokeGuarded(
  fn: (...args: never[]) => unknown,
  thisArg: unknown,
  args: readonly unknown[],
  onError: (error: unknown) => void,
): void {
  try {
    const result = (fn as (...args: unknown[]) => unknown).apply(thisArg, args as unknown[]);
    if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
      // An async listener: without this catch its rejection would be unhandled.
      Promise.resolve(result).catch(onError);
    }
  } catch (error) {
    onError(error);
  }
}

/** The part of Node's EventEmitter that {@link emitGuarded} needs. */
interface ListenerSource {
  rawListeners(event: string | symbol): ((...args: never[]) => unknown)[];
}

/**
 * Emits `event` to every listener of `emitter`, each guarded by {@link invokeGuarded}:
 * a listener that throws neither stops the others nor reaches the caller. `once`
 * listeners are called through their wrappers, which remove them first.
 */
export function emitGuarded(emitter: ListenerSource, event: string, args: readonly unknown[], onError: (error: unknown) => void): void {
  for (const listener of emitter.rawListeners(event)) invokeGuarded(listener, emitter, args, onError);
}
