/**
 * The encoder pool: one Piscina task per batch. A task that throws, whose worker
 * dies, or that runs past `encodeTimeoutMs` is retried once on the pool (a crashed
 * or timed-out worker is replaced by a fresh one), then encoded inline on the main
 * thread as the last resort, so no batch is lost to a worker fault.
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
  readonly #maxQueue: number;
  readonly #timeoutMs: number;
  #inFlight = 0;
  #faults = { error: 0, crash: 0, timeout: 0, inline: 0 };

  constructor(options: EncoderPoolOptions) {
    super();
    this.#maxQueue = options.maxQueue;
    this.#timeoutMs = options.encodeTimeoutMs;
    this.#pool = new Piscina<EncodeTask, EncodeResult>({
      filename: options.workerFilename ?? defaultWorkerFilename(),
      minThreads: options.poolSize,
      maxThreads: options.poolSize,
      // min = max: threads are never reaped, so a burst after a quiet spell finds warm workers.
      idleTimeout: 60_000,
      // We hold batches back (coalescing) before this bound is reached; Piscina's own bound is a backstop.
      maxQueue: options.maxQueue + options.poolSize,
      concurrentTasksPerWorker: 1,
    });
    // Piscina emits 'error' for worker crashes outside a task; those are reported per task below.
    this.#pool.on('error', () => {});
  }

  /** Whether another batch can be submitted without exceeding the queue bound. */
  hasCapacity(): boolean {
    return this.#inFlight < this.#maxQueue + this.#pool.threads.length;
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
      queueSize: this.#pool.queueSize,
      inFlight: this.#inFlight,
      faults: { ...this.#faults },
    };
  }

  /** Encodes a batch; resolves with the finished frame. Rejects only if inline encoding throws too. */
  async encode(task: EncodeTask): Promise<EncodeResult> {
    this.#inFlight++;
    try {
      for (const attempt of [1, 2] as const) {
        try {
          return await this.#runWithTimeout(task);
        } catch (error) {
          const kind = classify(error);
          this.#faults[kind]++;
          this.emit('fault', { kind, channel: task.channel, attempt, recovery: attempt === 1 ? 'retry' : 'inline', error: error as Error });
        }
      }
      this.#faults.inline++;
      return encodeBatch(task);
    } finally {
      this.#inFlight--;
    }
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

function classify(error: unknown): FaultKind {
  if (error instanceof EncodeTimeout || (error as { cause?: unknown })?.cause instanceof EncodeTimeout) return 'timeout';
  const message = String((error as Error)?.message ?? '');
  if (/exited|terminated|worker.*(died|exit)/i.test(message)) return 'crash';
  return 'error';
}
