/**
 * What the encoder pool (pool.ts) takes and reports: its options, the per-channel hint,
 * what each worker receives, faults, and the callback of a batch.
 */
import { fileURLToPath } from 'node:url';
import type { FaultKind } from './attempt.js';
import type { EncodeResult } from './task.js';

/** Path of a built worker module. From sources (tests run `src/*.ts`) the compiled copy in `dist/`. */
export function builtWorker(name: string, extension = 'js'): string {
  const here = fileURLToPath(import.meta.url);
  const relative = here.endsWith('.ts') ? `../../dist/workers/${name}.${extension}` : `../../workers/${name}.${extension}`;
  return fileURLToPath(new URL(relative, import.meta.url));
}

/** Path of the built-in encoder module (the handler each mailbox calls per batch). */
export function defaultWorkerFilename(): string {
  return builtWorker('encode');
}

export interface EncoderPoolOptions {
  poolSize: number;
  maxQueue: number;
  encodeTimeoutMs: number;
  /** Worker module exporting the task handler as default; the built-in encoder unless set. */
  workerFilename?: string;
  /**
   * How often a worker that had a batch in the last 100 ms looks for the next one (ms),
   * so that posting a batch never has to wake it (mailbox.ts); 0: workers sleep until woken.
   */
  workerPollMs?: number;
  /** A submit callback threw (a bug): reported here instead of as an unhandled rejection. */
  onCallbackError?: (error: unknown) => void;
  /** Added to each worker thread's nice value (Linux; see priority.ts); 0 leaves it. */
  workerNice?: number;
  /**
   * Longest the main thread packs one batch for its hand-off in one turn (ms); a channel
   * whose batch took longer is packed in segments over several turns (sliced-handoff.ts).
   * 0: always in one go.
   */
  handoffSliceMs?: number;
}

/**
 * Where the pool keeps, per channel, whether its batches are packed over several turns
 * (the channel's state; pool.ts sets it from what packing the last batch cost).
 */
export interface HandoffHint {
  sliceHandoff: boolean;
}

/** What every worker receives once, as Piscina's `workerData`. */
export interface EncoderWorkerData {
  workerNice: number;
  /** The module whose default export encodes one batch (workers/encode.ts or a replacement). */
  handler: string;
}

/** Reported through the `fault` event for every failed attempt. */
export interface WorkerFault {
  kind: FaultKind;
  channel: string;
  attempt: 1 | 2;
  /** What happens next: another worker, or inline encoding on the main thread. */
  recovery: 'retry' | 'inline';
  error: Error;
}

/**
 * The batch was dropped because the pool was destroyed (shutdown past its deadline) before
 * it finished: not a worker fault, so neither retried nor encoded inline.
 */
export class AbandonedError extends Error {
  constructor() {
    super('the encoder pool was destroyed before this batch finished (shutdown deadline)');
    this.name = 'AbandonedError';
  }
}

/** Receives the finished frame, or the error of a batch that could not be encoded even inline (or was abandoned). */
export type EncodeCallback = (error: Error | null, result: EncodeResult | null) => void;
