/**
 * One attempt at a batch on a worker: the abort signal Piscina watches (for the
 * encode timeout), and how a failed attempt is classified.
 */

/** How one attempt at a batch failed. */
export type FaultKind = 'error' | 'crash' | 'timeout';

/**
 * The abort signal Piscina watches for one attempt. Piscina accepts any object with
 * `once`/`off` (its EventEmitter form); this one costs two fields, where an
 * AbortController builds an EventTarget and `addEventListener` validates options.
 */
export class AttemptSignal {
  aborted = false;
  reason: unknown = undefined;
  #listener: (() => void) | null = null;

  once(_event: 'abort', listener: () => void): void {
    this.#listener = listener;
  }

  /** Piscina 5 calls `removeListener` when a task settles (its types say `off`). */
  removeListener(): void {
    this.#listener = null;
  }

  off(): void {
    this.#listener = null;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listener = this.#listener;
    this.#listener = null;
    listener?.();
  }
}

/** The abort reason of an attempt that ran past `encodeTimeoutMs`. */
export class EncodeTimeout extends Error {
  constructor(ms: number) {
    super(`encode task ran past encodeTimeoutMs (${ms} ms); its worker was terminated`);
  }
}

/**
 * What kind of fault an attempt's error shows. Piscina rejects with an AbortError
 * whose `cause` is our abort reason on timeout, and with exactly
 * "worker exited with code: N" when the worker exits mid-task; anything else was
 * thrown by the task itself (a message such as "connection terminated" is not a crash).
 */
export function classify(error: unknown): FaultKind {
  if (error instanceof EncodeTimeout || (error as { cause?: unknown } | null)?.cause instanceof EncodeTimeout) return 'timeout';
  const message = error instanceof Error ? error.message : '';
  if (/^worker exited with code: -?\d+$/.test(message) || message === 'Terminating worker thread') return 'crash';
  return 'error';
}

/** A message could not be copied to a worker (a function, a symbol...): no worker failed. */
export function isDataCloneError(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'DataCloneError';
}
