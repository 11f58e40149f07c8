/**
 * Encoder threads run at a lower scheduling priority than the event loop. On a box with
 * as many busy threads as cores, a worker that wakes for a batch otherwise takes the
 * core from the main thread in the middle of its fan-out, and the event loop waits
 * (BENCHMARKS.md, "Where batchcast's extra time per subscriber write goes"); a batch
 * that waits a little longer for its worker costs far less than a stalled loop.
 *
 * Linux only: there the nice value belongs to the thread, so `os.setPriority(0, n)` on a
 * worker lowers just that worker. Elsewhere it would lower the whole process.
 */
import { getPriority, setPriority } from 'node:os';

/** Whether this platform can lower one thread's priority without lowering the whole process. */
export const THREAD_PRIORITY_SUPPORTED = process.platform === 'linux';

/**
 * Adds `increment` to the calling thread's nice value (capped at 19). Returns the nice
 * value now in force, or null when nothing was changed (increment 0, another platform,
 * or the system refused).
 */
export function lowerThreadPriority(increment: number): number | null {
  if (!THREAD_PRIORITY_SUPPORTED || !(increment > 0)) return null;
  try {
    const nice = Math.min(19, getPriority(0) + increment);
    setPriority(0, nice);
    return nice;
  } catch {
    // A sandbox may forbid setpriority(2): the encoder then runs at the event loop's priority, as it would elsewhere.
    return null;
  }
}
