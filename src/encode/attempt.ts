/** How a failed attempt at a batch on a worker is classified. */

/** How one attempt at a batch failed. */
export type FaultKind = 'error' | 'crash' | 'timeout';

/** The error of an attempt that ran past `encodeTimeoutMs`. */
export class EncodeTimeout extends Error {
  constructor(ms: number) {
    super(`encode task ran past encodeTimeoutMs (${ms} ms); its worker was terminated`);
  }
}

/**
 * What kind of fault an attempt's error shows. The pool's watchdog fails a late attempt
 * with an EncodeTimeout; a thread that exits under a batch fails it with exactly
 * "worker exited with code: N" (the pool's wording, and Piscina's for a task), one
 * Piscina ends while starting up with "Terminating worker thread"; anything else was
 * thrown by the handler itself (a message such as "connection terminated" is not a crash).
 */
export function classify(error: unknown): FaultKind {
  if (error instanceof EncodeTimeout) return 'timeout';
  const message = error instanceof Error ? error.message : '';
  if (/^worker exited with code: -?\d+$/.test(message) || message === 'Terminating worker thread') return 'crash';
  return 'error';
}

/** A message could not be copied to a worker (a function, a symbol...): no worker failed. */
export function isDataCloneError(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'DataCloneError';
}
