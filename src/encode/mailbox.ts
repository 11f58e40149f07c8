/**
 * A mailbox per encoder thread: the main thread posts a batch on a MessagePort and bumps a
 * counter in shared memory; the worker (workers/serve.ts) finds it on its next poll.
 *
 * Why not one Piscina task per batch: Piscina wakes a sleeping worker with
 * `Atomics.notify` on every task, and on a VM waking an idle vCPU costs the *caller*
 * ~250 µs (BENCHMARKS.md, "Why goal 1 is not met"): as much as the rest of the hand-off.
 * A worker that has had work in the last PARK_AFTER_MS instead sleeps in `Atomics.wait`
 * with a `pollMs` timeout and wakes itself; nobody has to wake it. Once idle that long it
 * parks (an untimed wait, so an idle pool costs no CPU) and says so in shared memory: the
 * next post wakes it as Piscina would. Posting a message to a thread blocked in
 * `Atomics.wait` wakes nothing (its event loop is not polling the port), and the worker
 * reads it with `receiveMessageOnPort`.
 *
 * Right after an answer the worker polls finely (every FINE_POLL_STEP_MS for FINE_POLL_MS):
 * when batches queue, the next one is posted as soon as the main thread has the answer, and
 * a thread left to sleep a whole `pollMs` would idle up to that long per batch (one thread
 * with a backlog: 415 batches/s against 578, BENCHMARKS.md, *Pool size and encoder
 * priority*). If the main thread comes later than that (busy writing), the worker is in its
 * `pollMs` sleep, and a batch that had waited in the pool's queue wakes it ("nudges");
 * spaced batches never wake a polling worker.
 *
 * Piscina still creates, replaces and destroys the threads: a mailbox starts as one short
 * Piscina task on an idle thread, which answers with its thread id and keeps serving the
 * mailbox after the task (serve.ts). To Piscina the thread is idle and unreferenced, so an
 * idle pool never keeps the process alive; the port is referenced only while a batch is out.
 */
import { MessageChannel, type MessagePort, type Transferable, type Worker } from 'node:worker_threads';
import type { EncodeResult, EncodeTask } from './task.js';

/** Index in the control array: batches posted so far (the worker waits on it). */
export const POSTED = 0;
/** Index in the control array: how the worker sleeps (AWAKE, POLLING or PARKED). */
export const SLEEP = 1;
/** Working, or polling finely after an answer: a post is seen within FINE_POLL_STEP_MS. */
export const AWAKE = 0;
/** In a `pollMs` sleep: a post is seen within pollMs. */
export const POLLING = 1;
/** Sleeping without a timeout: the poster must wake it. */
export const PARKED = 2;
/** A worker parks after this long without a batch. */
export const PARK_AFTER_MS = 100;
/** How long after an answer the worker polls finely... */
export const FINE_POLL_MS = 0.5;
/** ...and how often it looks meanwhile. */
export const FINE_POLL_STEP_MS = 0.05;

/** The Piscina task that starts a mailbox on a worker (workers/serve.ts). */
export interface ServeTask {
  port: MessagePort;
  control: Int32Array;
  /** Worker sleep between polls while busy (ms); 0: park at once (every post wakes the worker). */
  pollMs: number;
}

/** What the serve task answers: the thread that now serves the mailbox. */
export interface ServeStarted {
  threadId: number;
}

/** A batch as posted to a worker. */
export interface MailboxRequest {
  id: number;
  task: EncodeTask;
}

/** A worker's answer to one request: the result, or what the handler threw. */
export type MailboxReply = { id: number; result: EncodeResult; error?: undefined } | { id: number; result?: undefined; error: unknown };

/** The main thread's end of one worker's mailbox; `J` is what the pool posts (its job). */
export class Mailbox<J> {
  /** The job in the worker's hands, if any (one at a time). */
  job: J | null = null;
  /** Set once its worker ended or is being ended: nothing more is posted here. */
  closed = false;
  /** Posts that found the worker parked and had to wake it. */
  wakeups = 0;
  /** Posts of a batch that had waited for a free worker, which woke the worker from its `pollMs` sleep. */
  nudges = 0;
  /** The Piscina thread serving it, once the serve task has answered. */
  #worker: Worker | null = null;
  readonly #port: MessagePort;
  readonly #control = new Int32Array(new SharedArrayBuffer(8));
  readonly #serve: ServeTask;
  /** Id of the last request posted: an answer to any other is stale and dropped. */
  #sent = 0;

  /** `onReply` gets the answer to each job posted, until the mailbox closes. */
  constructor(pollMs: number, onReply: (job: J, reply: MailboxReply) => void) {
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    port1.on('message', (reply: MailboxReply) => {
      const job = this.job;
      if (job !== null && reply.id === this.#sent) onReply(job, reply);
    });
    port1.unref();
    this.#serve = { port: port2, control: this.#control, pollMs };
  }

  /** The Piscina task that starts serving this mailbox, and what it transfers. */
  serveTask(): { task: ServeTask; transferList: Transferable[] } {
    return { task: this.#serve, transferList: [this.#serve.port] };
  }

  /** The thread now serving the mailbox; `onExit` is called when it ends, however it ends. */
  attach(worker: Worker, onExit: (code: number) => void): void {
    this.#worker = worker;
    worker.once('exit', onExit);
    // Ended before its thread was known (a timeout): end the thread now.
    if (this.closed) void worker.terminate();
  }

  /** Whether a job can be posted here. */
  get free(): boolean {
    return this.job === null && !this.closed;
  }

  /**
   * Posts `job`'s task; `queued` says it waited for a free worker (a backlog), which is worth
   * waking a polling worker for. Throws (a DataCloneError) when a message cannot be copied,
   * before anything reaches the worker.
   */
  post(job: J, task: EncodeTask, transferList: readonly Transferable[], queued: boolean): void {
    this.#port.postMessage({ id: this.#sent + 1, task } satisfies MailboxRequest, transferList as Transferable[]);
    this.#sent++;
    this.job = job;
    // A batch out keeps the process alive until it is back, as a running Piscina task would.
    this.#port.ref();
    Atomics.add(this.#control, POSTED, 1);
    // Checked after the count went up: a worker that goes to sleep after this load sees the new count and does not sleep (see serve.ts).
    const sleep = Atomics.load(this.#control, SLEEP);
    if (sleep === PARKED) {
      this.wakeups++;
      Atomics.notify(this.#control, POSTED, 1);
    } else if (sleep === POLLING && queued) {
      this.nudges++;
      Atomics.notify(this.#control, POSTED, 1);
    }
  }

  /** The job is over: the mailbox can take the next one. */
  settle(): void {
    this.job = null;
    this.#port.unref();
  }

  /** Stops taking replies and ends its thread (Piscina replaces it); nothing more is posted here. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.job = null;
    this.#port.close();
    void this.#worker?.terminate();
  }
}
