/**
 * The encoder pool: one Piscina task per batch. A task that throws, whose worker
 * dies, or that runs past `encodeTimeoutMs` is retried once on a fresh worker, then
 * encoded inline on the main thread as the last resort, so no batch is lost to a
 * worker fault. A worker that threw is terminated too (its state may be what broke),
 * so Piscina replaces every worker that failed a batch; our load balancer records
 * which thread runs which batch, and never hands work to a thread being replaced.
 *
 * Batches wait for a free worker in a queue of our own, not Piscina's: the
 * `encodeTimeoutMs` clock starts when a batch is handed to a worker, so batches
 * queued behind slow (but healthy) work are never mistaken for hung ones. Retries
 * go to the front of that queue, since later batches of the channel wait for them.
 *
 * This runs once per batch on the main thread, at a few dozen batches a second:
 * too rarely for V8 to optimize it, so it must be cheap cold. Measured with
 * `perf` on the fan-out bench, an AbortController and a timer per task plus four
 * chained promises cost more main-thread time than the structured clone of the
 * batch. So: one watchdog interval for all tasks, a plain object as the abort
 * signal, and callbacks instead of promise chains.
 */
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { encodeBatch } from './encode-batch.js';
import { packsAsRecords, prepareHandoff, type Handoff } from './handoff.js';
import { SlicedHandoffs } from './sliced-handoff.js';
import { AttemptSignal, EncodeTimeout, classify, isDataCloneError, type FaultKind } from './attempt.js';
export type { FaultKind } from './attempt.js';
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
}

/** Piscina's load-balancer signature (the package root does not export it by name). */
type LoadBalancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>;

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

/** One batch on its way through the pool. */
class Job {
  attempt: 1 | 2 = 1;
  signal: AttemptSignal | null = null;
  /** `performance.now()` when the current attempt was handed to Piscina. */
  startedAt = 0;
  /** The worker thread running the current attempt, once Piscina has placed it. */
  threadId: number | undefined = undefined;
  /** Piscina's id for the current attempt while Piscina holds it queued. */
  queuedTaskId: number | undefined = undefined;
  /** Its messages are being packed over several turns (not yet handed to Piscina). */
  packing = false;

  constructor(
    readonly task: EncodeTask,
    readonly callback: EncodeCallback,
    readonly hint: HandoffHint | undefined,
  ) {}
}

/** Runs encode tasks on a Piscina pool, with retry and inline fallback. */
export class EncoderPool extends EventEmitter<{ fault: [WorkerFault] }> {
  readonly #pool: Piscina<EncodeTask, EncodeResult>;
  readonly #poolSize: number;
  readonly #maxQueue: number;
  readonly #timeoutMs: number;
  readonly #onCallbackError: (error: unknown) => void;
  /** Jobs waiting for a free worker, in dispatch order. */
  readonly #waiting: Job[] = [];
  /** Attempts handed to Piscina and not settled: at most one per worker. */
  readonly #running = new Set<Job>();
  readonly #watchdog: NodeJS.Timeout;
  /** Batches accepted and not finished (waiting, running, or between attempts). */
  #inFlight = 0;
  /** The job whose `run()` call is on the stack: Piscina places a task synchronously when a worker is free. */
  #dispatching: Job | null = null;
  /** Jobs Piscina queued instead (no free worker, e.g. during a replacement), by Piscina task id. */
  readonly #queuedTasks = new Map<number, Job>();
  /** Threads being terminated after throwing: no new work for them. */
  readonly #retiring = new Set<number>();
  #faults = { error: 0, crash: 0, timeout: 0, inline: 0 };
  /** Batches encoded inline because a message could not be copied to a worker (not a worker fault). */
  #uncloneable = 0;
  /** Set by destroy(): failures from here on are the pool going away, not faults. */
  #destroying = false;
  #abandoned = 0;
  readonly #handoffSliceMs: number;
  /** Packs the batches of channels whose hand-off is slow over several turns; null when slicing is off. */
  readonly #slices: SlicedHandoffs | null;

  constructor(options: EncoderPoolOptions) {
    super();
    this.#poolSize = options.poolSize;
    this.#maxQueue = options.maxQueue;
    this.#timeoutMs = options.encodeTimeoutMs;
    this.#onCallbackError = options.onCallbackError ?? (() => {});
    this.#handoffSliceMs = options.handoffSliceMs ?? 0;
    this.#slices = this.#handoffSliceMs > 0 ? new SlicedHandoffs(this.#handoffSliceMs) : null;
    this.#pool = new Piscina<EncodeTask, EncodeResult>({
      filename: options.workerFilename ?? defaultWorkerFilename(),
      minThreads: options.poolSize,
      maxThreads: options.poolSize,
      // min = max: threads are never reaped, so a burst after a quiet spell finds warm workers.
      idleTimeout: 60_000,
      // We hand Piscina at most one task per worker; its queue only holds tasks while a worker is replaced.
      maxQueue: options.poolSize * 2,
      concurrentTasksPerWorker: 1,
      // Workers time their own encodes (EncodeResult.encodeMicros); Piscina's histograms would cost every task.
      recordTiming: false,
      loadBalancer: this.#place,
      workerData: { workerNice: options.workerNice ?? 0 } satisfies EncoderWorkerData,
    });
    // Piscina emits 'error' for worker crashes outside a task; those are reported per task below.
    this.#pool.on('error', () => {});
    // A task is aborted between encodeTimeoutMs and 1.1 × encodeTimeoutMs after it started.
    this.#watchdog = setInterval(this.#checkTimeouts, Math.max(1, Math.round(this.#timeoutMs / 10)));
    this.#watchdog.unref();
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
      queueSize: this.#waiting.length + this.#pool.queueSize,
      inFlight: this.#inFlight,
      faults: { ...this.#faults },
      uncloneable: this.#uncloneable,
      abandoned: this.#abandoned,
      slicedHandoffs: this.#slices === null ? { batches: 0, spread: 0, turns: 0 } : { ...this.#slices.counters },
    };
  }

  /**
   * Encodes a batch and calls `callback` once with the finished frame. The error
   * argument is set only if inline encoding, the last resort, throws too. `hint` is
   * the channel's: whether its batches are packed for the hand-off over several turns.
   */
  submit(task: EncodeTask, callback: EncodeCallback, hint?: HandoffHint): void {
    this.#inFlight++;
    const job = new Job(task, callback, hint);
    if (this.#destroying) return this.#abandon(job);
    this.#waiting.push(job);
    this.#startWaiting();
  }

  /** {@link submit} as a promise. */
  encode(task: EncodeTask): Promise<EncodeResult> {
    return new Promise((resolve, reject) => {
      this.submit(task, (error, result) => (error === null ? resolve(result!) : reject(error)));
    });
  }

  #start(job: Job): void {
    if (this.#destroying) {
      this.#running.delete(job);
      this.#abandon(job);
      return;
    }
    job.signal = new AttemptSignal();
    job.threadId = undefined;
    this.#running.add(job);
    const { task, hint } = job;
    const records = packsAsRecords(task);
    if (this.#slices !== null && hint?.sliceHandoff === true && records) {
      job.packing = true;
      job.startedAt = Number.POSITIVE_INFINITY; // the encodeTimeoutMs clock starts at the hand-off
      this.#slices.add(task, (handoff, turns, packMs) => {
        job.packing = false;
        // Back to one pack per batch once a batch fits in one turn.
        hint.sliceHandoff = turns > 1 || packMs >= this.#handoffSliceMs;
        if (this.#destroying) {
          this.#running.delete(job);
          this.#abandon(job);
        } else this.#run(job, handoff);
      });
      return;
    }
    let handoff;
    const started = performance.now();
    try {
      handoff = prepareHandoff(task);
    } catch (error) {
      job.startedAt = started;
      this.#failed(job, error);
      return;
    }
    if (this.#slices !== null && hint !== undefined && records && performance.now() - started >= this.#handoffSliceMs) hint.sliceHandoff = true;
    this.#run(job, handoff);
  }

  /** Hands an attempt to Piscina. */
  #run(job: Job, handoff: Handoff): void {
    const signal = job.signal!;
    job.startedAt = performance.now();
    this.#dispatching = job;
    try {
      this.#pool.run(handoff.task, { signal, transferList: handoff.transferList }).then(
        (result) => this.#succeeded(job, result),
        (error: unknown) => this.#failed(job, error),
      );
    } catch (error) {
      // Piscina refuses synchronously only when it is closed or misconfigured; treat it as a failed attempt.
      this.#failed(job, error);
    } finally {
      this.#dispatching = null;
    }
  }

  /**
   * Piscina's load balancer: an idle worker that is not being retired (we run one task
   * per worker), and a note of which thread got which job.
   */
  readonly #place: LoadBalancer = (task, workers) => {
    const job = this.#dispatching ?? this.#queuedTasks.get(task.taskId);
    const worker = workers.find((candidate) => candidate.currentUsage === 0 && !this.#retiring.has(candidate.id)) ?? null;
    if (job === undefined) return worker;
    if (worker === null) {
      this.#queuedTasks.set(task.taskId, job);
      job.queuedTaskId = task.taskId;
    } else {
      job.threadId = worker.id;
      this.#forgetQueued(job);
    }
    return worker;
  };

  /** Drops the note of a job Piscina had queued (it was placed, or it settled without being placed). */
  #forgetQueued(job: Job): void {
    if (job.queuedTaskId === undefined) return;
    this.#queuedTasks.delete(job.queuedTaskId);
    job.queuedTaskId = undefined;
  }

  #succeeded(job: Job, result: EncodeResult): void {
    this.#release(job);
    this.#startWaiting();
    this.#finish(job, null, result);
  }

  #failed(job: Job, caught: unknown): void {
    this.#release(job);
    if (this.#destroying) {
      this.#abandon(job);
      return;
    }
    if (isDataCloneError(caught)) {
      // A message holds a value structured clone cannot copy (a function, a symbol...): no worker
      // can see this batch, and none failed. Encode it here, exactly as a worker would have.
      this.#uncloneable++;
      this.#startWaiting();
      this.#finishInline(job);
      return;
    }
    const error = caught instanceof Error ? caught : new Error(`worker failed with a non-Error value: ${String(caught)}`);
    const kind = classify(error);
    this.#faults[kind]++;
    const retry = job.attempt === 1;
    this.emit('fault', { kind, channel: job.task.channel, attempt: job.attempt, recovery: retry ? 'retry' : 'inline', error });
    // A crashed or timed-out worker is gone already; one that threw is ended here, and Piscina starts a fresh one.
    const retiring = kind === 'error' ? this.#retire(job.threadId) : null;
    if (retry) {
      // The retry keeps the slot it just freed, ahead of every waiting batch: later batches of its channel wait for it.
      job.attempt = 2;
      this.#running.add(job); // holds the slot while its worker is being retired
      if (retiring === null) this.#start(job);
      else void retiring.then(() => this.#start(job));
      return;
    }
    this.#faults.inline++;
    this.#startWaiting();
    this.#finishInline(job);
  }

  /** Terminates the worker thread `threadId`; resolves once Piscina has let it go. */
  #retire(threadId: number | undefined): Promise<void> | null {
    const worker = threadId === undefined ? undefined : this.#pool.threads.find((thread) => thread.threadId === threadId);
    if (worker === undefined) return null;
    this.#retiring.add(threadId!);
    return worker.terminate().then(
      () => void this.#retiring.delete(threadId!),
      () => void this.#retiring.delete(threadId!),
    );
  }

  /** The attempt is over: its worker slot is free. */
  #release(job: Job): void {
    this.#running.delete(job);
    this.#forgetQueued(job);
    job.signal = null;
  }

  #startWaiting(): void {
    while (!this.#destroying && this.#running.size < this.#poolSize) {
      const next = this.#waiting.shift();
      if (next === undefined) return;
      this.#start(next);
    }
  }

  #finishInline(job: Job): void {
    let result: EncodeResult;
    try {
      result = encodeBatch(job.task);
    } catch (error) {
      this.#finish(job, error instanceof Error ? error : new Error(String(error)), null);
      return;
    }
    this.#finish(job, null, result);
  }

  #finish(job: Job, error: Error | null, result: EncodeResult | null): void {
    this.#inFlight--;
    try {
      job.callback(error, result);
    } catch (callbackError) {
      this.#onCallbackError(callbackError);
    }
  }

  #abandon(job: Job): void {
    this.#abandoned++;
    this.#finish(job, new AbandonedError(), null);
  }

  readonly #checkTimeouts = (): void => {
    if (this.#running.size === 0) return;
    const now = performance.now();
    for (const job of this.#running) {
      // Aborting a running Piscina task terminates its worker; Piscina starts a fresh one.
      if (now - job.startedAt >= this.#timeoutMs) job.signal?.abort(new EncodeTimeout(this.#timeoutMs));
    }
  };

  /**
   * Stops every worker. Batches still waiting or running are abandoned ({@link AbandonedError}):
   * not counted as faults, not retried, not encoded inline.
   */
  async destroy(): Promise<void> {
    this.#destroying = true;
    clearInterval(this.#watchdog);
    for (const job of this.#waiting.splice(0)) this.#abandon(job);
    this.#slices?.stop();
    for (const job of this.#running) {
      if (!job.packing) continue;
      this.#running.delete(job);
      this.#abandon(job);
    }
    await this.#pool.destroy();
  }
}
