/**
 * Piscina worker: encodes one batch per task and returns the finished frame by
 * transfer. The result object travels by structured clone; its `frame`
 * ArrayBuffer is moved, so the main thread receives it without a copy.
 */
import { Piscina } from 'piscina';
import { encodeBatch } from '../src/encode/encode-batch.js';
import type { EncodeTask } from '../src/encode/task.js';
import { lowerThreadPriority } from '../src/encode/priority.js';
import type { EncoderWorkerData } from '../src/encode/pool.js';

// Once per thread, before the first task (see src/encode/priority.ts).
lowerThreadPriority((Piscina.workerData as EncoderWorkerData | undefined)?.workerNice ?? 0);

/** Encodes `task`; the frame buffer is transferred, never copied. */
export default function encode(task: EncodeTask): unknown {
  const result = encodeBatch(task);
  // Piscina.move() only sees the top level of a result: this wrapper names the one buffer to transfer.
  const movable = { [Piscina.transferableSymbol]: result.frame, [Piscina.valueSymbol]: result };
  return Piscina.move(movable as unknown as Parameters<typeof Piscina.move>[0]);
}
