/**
 * The encoder pool: one Piscina task per batch. A task that throws, whose worker
 * dies, or that runs past `encodeTimeoutMs` is retried once on the pool (a crashed
 * or timed-out worker is replaced by a fresh one), then encoded inline on the main
 * thread as the last resort, so no batch is lost to a worker fault.
 *
 * Batches wait for a free worker in a queue of our own, not Piscina's: the
 * `encodeTimeoutMs` clock starts when a batch is handed to a worker, so batches
 * queued behind slow (but healthy) work are never mistaken for hung ones. Retries
 * go to the front of that queue, since later batches of the channel wait for them.
 */
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { encodeBatch } from './encode-batch.js';
import { prepareHandoff } from './handoff.js';
import type { EncodeResult, EncodeTask } from './task.js';

/** Path of the built worker. From sources (tests run `src/*.ts`) use the compiled copy in `dist/`. */
export function defaultWorkerFilename(): string {
  const here = fileURLToPath(import.meta.url);
  const relative = here.endsWith('.ts') ? '../../dist/workers/encode.js' : '../../workers/encode.js';
  return fileURLToPath(new URL(relative, import.meta.url));
}

export interface EncoderPoolOptions {
  poolSize: number;
  maxQueue: number;
  encodeTimeoutMs: number;
  /** Worker module exporting the task handler as default; the built-in encoder unless set. */
  workerFilename?: string;
}

/** How one attempt at a batch failed. */
export type FaultKind = 'error' | 'crash' | 'timeout';

/** Reported through the `fault` event for every failed attempt. */
export interface WorkerFault {
  kind: FaultKind;
  channel: string;
  attempt: 1 | 2;
  /** What happens next: another worker, or inline encoding on the main thread. */
  recovery: 'retry' | 'inline';
  error: Error;
}

/** Runs encode tasks on a Piscina pool, with retry and inline fallback. */
export class EncoderPool extends EventEmitter<{ fault: [WorkerFault] }> {
  readonly #pool: Piscina<EncodeTask, EncodeResult>;
  readonly #poolSize: number;
  readonly #maxQueue: number;
  readonly #timeoutMs: number;
  /** Attempts waiting for a free worker, in dispatch order. */
  readonly #waiting: (() => void)[] = [];
  /** Batches accepted and not finished (waiting, running, or between attempts). */
  #inFlight = 0;
  /** Attempts handed to Piscina and not settled: at most one per worker. */
  #running = 0;
  #faults = { error: 0, crash: 0, timeout: 0, inline: 0 };
  /** Batches encoded inline because a message could not be copied to a worker (not a worker fault). */
  #uncloneable = 0;

  constructor(options: EncoderPoolOptions) {
    super();
    this.#poolSize = options.poolSize;
    this.#maxQueue = options.maxQueue;
    this.#timeoutMs = options.encodeTimeoutMs;
    this.#pool = new Piscina<EncodeTask, EncodeResult>({
      filename: options.workerFilename ?? defaultWorkerFilename(),
      minThreads: options.poolSize,
      maxThreads: options.poolSize,
      // min = max: threads are never reaped, so a burst after a quiet spell finds warm workers.
      idleTimeout: 60_000,
      // We hand Piscina at most one task per worker; its queue only holds tasks while a worker is replaced.
      maxQueue: options.poolSize * 2,
      concurrentTasksPerWorker: 1,
    });
    // Piscina emits 'error' for worker crashes outside a task; those are reported per task below.
    this.#pool.on('error', () => {});
  }

  /** Whether another batch can be submitted without exceeding the queue bound. */
  hasCapacity(): boolean {
    return this.#inFlight < this.#maxQueue + this.#poolSize;
  }

  /** Batches submitted and not yet finished. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Pool figures for stats. */
  snapshot() {
    return {
      threads: this.#pool.threads.length,
      utilization: this.#pool.utilization,
      queueSize: this.#waiting.length + this.#pool.queueSize,
      inFlight: this.#inFlight,
      faults: { ...this.#faults },
      uncloneable: this.#uncloneable,
    };
  }

  /** Encodes a batch; resolves with the finished frame. Rejects only if inline encoding throws too. */
  async encode(task: EncodeTask): Promise<EncodeResult> {
    this.#inFlight++;
    try {
      for (const attempt of [1, 2] as const) {
        try {
          return await this.#attempt(task, attempt === 2);
        } catch (caught) {
          if (isDataCloneError(caught)) {
            // A message holds a value structured clone cannot copy (a function, a symbol...): no worker
            // can see this batch, and none failed. Encode it here, exactly as a worker would have.
            this.#uncloneable++;
            return encodeBatch(task);
          }
          const error = caught instanceof Error ? caught : new Error(`worker failed with a non-Error value: ${String(caught)}`);
          const kind = classify(error);
          this.#faults[kind]++;
          this.emit('fault', { kind, channel: task.channel, attempt, recovery: attempt === 1 ? 'retry' : 'inline', error });
        }
      }
      this.#faults.inline++;
      return encodeBatch(task);
    } finally {
      this.#inFlight--;
    }
  }

  /** Runs one attempt as soon as a worker is free; a retry goes ahead of the waiting batches. */
  #attempt(task: EncodeTask, retry: boolean): Promise<EncodeResult> {
    return new Promise((resolve, reject) => {
      const start = (): void => {
        this.#running++;
        this.#runWithTimeout(task).then(resolve, reject).finally(() => {
          this.#running--;
          this.#waiting.shift()?.();
        });
      };
      if (this.#running < this.#poolSize) start();
      else if (retry) this.#waiting.unshift(start);
      else this.#waiting.push(start);
    });
  }

  async #runWithTimeout(task: EncodeTask): Promise<EncodeResult> {
    const controller = new AbortController();
    // Aborting a running Piscina task terminates its worker; Piscina starts a fresh one.
    const timer = setTimeout(() => controller.abort(new EncodeTimeout(this.#timeoutMs)), this.#timeoutMs);
    try {
      const handoff = prepareHandoff(task);
      return await this.#pool.run(handoff.task, { signal: controller.signal, transferList: handoff.transferList });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for running tasks, then stops every worker. */
  async destroy(): Promise<void> {
    await this.#pool.destroy();
  }
}

class EncodeTimeout extends Error {
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
function classify(error: unknown): FaultKind {
  if (error instanceof EncodeTimeout || (error as { cause?: unknown } | null)?.cause instanceof EncodeTimeout) return 'timeout';
  const message = error instanceof Error ? error.message : '';
  if (/^worker exited with code: -?\d+$/.test(message) || message === 'Terminating worker thread') return 'crash';
  return 'error';
}

function isDataCloneError(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === 'DataCloneError';
}
