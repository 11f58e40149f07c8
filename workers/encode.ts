/**
 * The encoder handler: encodes one batch. workers/serve.ts calls it for each batch its
 * mailbox receives and posts the result back with its `frame` ArrayBuffer transferred,
 * so the main thread receives the frame without a copy.
 */
import { Piscina } from 'piscina';
import { encodeBatch } from '../src/encode/encode-batch.js';
import type { EncodeResult, EncodeTask } from '../src/encode/task.js';
import { lowerThreadPriority } from '../src/encode/priority.js';
import type { EncoderWorkerData } from '../src/encode/pool.js';

// Once per thread, before the first task (see src/encode/priority.ts).
lowerThreadPriority((Piscina.workerData as EncoderWorkerData | undefined)?.workerNice ?? 0);

/** Encodes `task` (serve.ts transfers the frame buffer, never copies it). */
export default function encode(task: EncodeTask): EncodeResult {
  return encodeBatch(task);
}
