/**
 * The encoder pool: Piscina threads, each serving one mailbox (mailbox.ts), one batch at
 * a time. A batch whose handler throws, whose worker dies, or that runs past
 * `encodeTimeoutMs` is retried once on another worker, then encoded inline on the main
 * thread as the last resort, so no batch is lost to a worker fault. A worker that threw
 * is terminated too (its state may be what broke); Piscina replaces every worker that
 * ended, and the pool opens a new mailbox on the replacement.
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
 * batch. So: one watchdog interval for all batches, no Piscina task per batch (a
 * post to the thread's mailbox), and callbacks instead of promise chains.
 */
import { EventEmitter } from 'node:events';
import { Piscina } from 'piscina';
import { Mailbox, type MailboxReply, type ServeStarted, type ServeTask } from './mailbox.js';
import { encodeBatch } from './encode-batch.js';
import { packsAsRecords, prepareHandoff, type Handoff } from './handoff.js';
import { SlicedHandoffs } from './sliced-handoff.js';
import { EncodeTimeout, classify, isDataCloneError } from './attempt.js';
export type { FaultKind } from './attempt.js';
import { AbandonedError, builtWorker, defaultWorkerFilename, type EncodeCallback, type EncoderPoolOptions, type EncoderWorkerData, type HandoffHint, type WorkerFault } from './pool-api.js';
export { AbandonedError, defaultWorkerFilename, type EncodeCallback, type EncoderPoolOptions, type EncoderWorkerData, type HandoffHint, type WorkerFault } from './pool-api.js';

import type { EncodeResult, EncodeTask } from './task.js';

/** Piscina's load-balancer signature (the package root does not export it by name). */
type LoadBalancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>;

/** One batch on its way through the pool. */
class Job {
  attempt: 1 | 2 = 1;
  /** `performance.now()` when the current attempt was posted to a worker. */
  startedAt = 0;
  /** The mailbox of the worker running the current attempt. */
  mailbox: Mailbox<Job> | null = null;
  /** Its messages are being packed over several turns (not yet posted). */
  packing = false;

  constructor(
    readonly task: EncodeTask,
    readonly callback: EncodeCallback,
    readonly hint: HandoffHint | undefined,
  ) {}
}

/** Runs encode tasks on a Piscina pool, with retry and inline fallback. */
export class EncoderPool extends EventEmitter<{ fault: [WorkerFault] }> {
  readonly #pool: Piscina<ServeTask, ServeStarted>;
  readonly #poolSize: number;
  readonly #maxQueue: number;
  readonly #timeoutMs: number;
  readonly #onCallbackError: (error: unknown) => void;
  /** Jobs waiting for a free worker, in dispatch order. */
  readonly #waiting: Job[] = [];
  /** Attempts being packed or posted and not settled: at most one per worker. */
  readonly #running = new Set<Job>();
  /** One per worker (a closed one is replaced at once; its new worker may still be starting). */
  readonly #mailboxes: Mailbox<Job>[] = [];
  /** Threads a mailbox was placed on: Piscina counts them idle, but they are ours for life. */
  readonly #hosting = new Set<number>();
  /** Posts that had to wake a parked worker, over mailboxes closed so far. */
  #closedWakeups = 0;
  /** Posts that woke a worker from its poll sleep (a backlog), over mailboxes closed so far. */
  #closedNudges = 0;
  readonly #pollMs: number;
  readonly #watchdog: NodeJS.Timeout;
  /** Batches accepted and not finished (waiting, running, or between attempts). */
  #inFlight = 0;
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
    this.#pollMs = options.workerPollMs ?? 0;
    this.#pool = new Piscina<ServeTask, ServeStarted>({
      filename: builtWorker('serve-entry', 'cjs'), // CommonJS: keeps Piscina's require() out of the ES module graph
      minThreads: options.poolSize,
      maxThreads: options.poolSize,
      // Threads are never reaped: each serves its mailbox until it ends.
      idleTimeout: Number.POSITIVE_INFINITY,
      // Once a serve task is answered the thread must return to its event loop, where serve.ts keeps it.
      atomics: 'disabled',
      // One serve task per thread; the queue holds one only while a thread is replaced.
      maxQueue: options.poolSize * 2,
      concurrentTasksPerWorker: 1,
      recordTiming: false,
      loadBalancer: this.#place,
      workerData: { workerNice: options.workerNice ?? 0, handler: options.workerFilename ?? defaultWorkerFilename() } satisfies EncoderWorkerData,
    });
    // Piscina emits 'error' for worker crashes outside a task; those are reported per task below.
    this.#pool.on('error', () => {});
    // A task is aborted between encodeTimeoutMs and 1.1 × encodeTimeoutMs after it started.
    this.#watchdog = setInterval(this.#checkTimeouts, Math.max(1, Math.round(this.#timeoutMs / 10)));
    this.#watchdog.unref();
    for (let i = 0; i < this.#poolSize; i++) this.#open();
  }

  /** Starts serving a new mailbox on an idle thread (a fresh one, after a replacement). */
  #open(): void {
    const mailbox = new Mailbox<Job>(this.#pollMs, this.#onReply);
    this.#mailboxes.push(mailbox);
    const { task, transferList } = mailbox.serveTask();
    const ended = (error: unknown) => this.#ended(mailbox, error);
    try {
      this.#pool.run(task, { transferList }).then((started) => {
        const worker = this.#pool.threads.find((thread) => thread.threadId === started.threadId);
        if (worker === undefined) ended(new Error(`worker exited before serving its mailbox (thread ${started.threadId})`));
        else mailbox.attach(worker, (code) => ended(new Error(`worker exited with code: ${code}`)));
      }, ended);
    } catch (error) {
      // Piscina refuses synchronously only when it is closed; the mailbox is gone as if its worker had died.
      queueMicrotask(() => ended(error));
    }
  }

  /** Piscina's load balancer: an idle thread that serves no mailbox yet (the only tasks we run start mailboxes). */
  readonly #place: LoadBalancer = (_task, workers) => {
    const worker = workers.find((candidate) => candidate.currentUsage === 0 && !this.#hosting.has(candidate.id)) ?? null;
    if (worker !== null) this.#hosting.add(worker.id);
    return worker;
  };

  /** A mailbox's thread ended (crashed, or terminated by us or by destroy): fail its batch, open a new one. */
  #ended(mailbox: Mailbox<Job>, error: unknown): void {
    const index = this.#mailboxes.indexOf(mailbox);
    if (index === -1) return;
    this.#mailboxes.splice(index, 1);
    this.#closedWakeups += mailbox.wakeups;
    this.#closedNudges += mailbox.nudges;
    const job = mailbox.job;
    mailbox.close();
    if (!this.#destroying) this.#open();
    if (job !== null) this.#failed(job, error);
    else this.#startWaiting();
  }

  /** A worker answered: the batch's result, or what its handler threw. */
  readonly #onReply = (job: Job, reply: MailboxReply): void => {
    if (reply.result !== undefined) this.#succeeded(job, reply.result);
    else this.#failed(job, reply.error);
  };

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
      queueSize: this.#waiting.length,
      inFlight: this.#inFlight,
      faults: { ...this.#faults },
      uncloneable: this.#uncloneable,
      abandoned: this.#abandoned,
      wakeups: this.#mailboxes.reduce((sum, mailbox) => sum + mailbox.wakeups, this.#closedWakeups),
      nudges: this.#mailboxes.reduce((sum, mailbox) => sum + mailbox.nudges, this.#closedNudges),
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
    this.#startWaiting(false);
  }

  /** {@link submit} as a promise. */
  encode(task: EncodeTask): Promise<EncodeResult> {
    return new Promise((resolve, reject) => {
      this.submit(task, (error, result) => (error === null ? resolve(result!) : reject(error)));
    });
  }

  /** `queued`: the job waited for a free worker (see Mailbox.post). */
  #start(job: Job, queued: boolean): void {
    if (this.#destroying) {
      this.#running.delete(job);
      this.#abandon(job);
      return;
    }
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
        } else this.#run(job, handoff, queued);
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
    this.#run(job, handoff, queued);
  }

  /** Posts an attempt to a free worker (or puts it back in line when none is, while a worker is replaced). */
  #run(job: Job, handoff: Handoff, queued: boolean): void {
    const mailbox = this.#freeMailbox();
    if (mailbox === undefined) {
      this.#running.delete(job);
      this.#waiting.unshift(job);
      return;
    }
    job.startedAt = performance.now();
    job.mailbox = mailbox;
    try {
      mailbox.post(job, handoff.task, handoff.transferList ?? [], queued);
    } catch (error) {
      job.mailbox = null;
      this.#failed(job, error);
    }
  }

  #freeMailbox(): Mailbox<Job> | undefined {
    return this.#mailboxes.find((mailbox) => mailbox.free);
  }

  /** Workers without a batch, less the batches being packed for them. */
  #freeSlots(): number {
    let free = 0;
    for (const mailbox of this.#mailboxes) if (mailbox.free) free++;
    for (const job of this.#running) if (job.packing) free--;
    return free;
  }

  #succeeded(job: Job, result: EncodeResult): void {
    this.#release(job);
    this.#startWaiting();
    this.#finish(job, null, result);
  }

  #failed(job: Job, caught: unknown): void {
    const mailbox = job.mailbox;
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
    // A crashed or timed-out worker is gone already; one that threw is ended here (Piscina starts a fresh one).
    if (kind === 'error') mailbox?.close();
    if (retry) {
      // Ahead of every waiting batch: later batches of its channel wait for it.
      job.attempt = 2;
      this.#waiting.unshift(job);
      this.#startWaiting();
      return;
    }
    this.#faults.inline++;
    this.#startWaiting();
    this.#finishInline(job);
  }

  /** The attempt is over: its worker slot is free. */
  #release(job: Job): void {
    this.#running.delete(job);
    if (job.mailbox !== null && !job.mailbox.closed) job.mailbox.settle();
    job.mailbox = null;
  }

  /** Starts waiting jobs on free workers; `queued` is false only for a job submitted this moment. */
  #startWaiting(queued = true): void {
    while (!this.#destroying && this.#freeSlots() > 0) {
      const next = this.#waiting.shift();
      if (next === undefined) return;
      this.#start(next, queued);
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
    const late: Job[] = [];
    for (const job of this.#running) if (now - job.startedAt >= this.#timeoutMs) late.push(job);
    for (const job of late) {
      const timeout = new EncodeTimeout(this.#timeoutMs);
      // Its thread is terminated; Piscina starts a fresh one and the pool opens a mailbox there.
      job.mailbox?.close();
      this.#failed(job, timeout);
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
    // Posted batches are abandoned as their serve tasks end (#ended).
    await this.#pool.destroy();
    for (const mailbox of this.#mailboxes) mailbox.close();
  }
}
