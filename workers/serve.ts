/**
 * Piscina worker entry: starts serving one mailbox (src/encode/mailbox.ts) on this thread
 * and answers with the thread's id; the serving goes on after the task, for as long as the
 * thread lives (Piscina runs with `atomics: 'disabled'`, so once the task is answered the
 * thread is back in its event loop, where the loop below takes it over). Each request is
 * handed to the encoder module (`workerData.handler`: the built-in workers/encode.js or a
 * replacement) and its answer posted back, the frame's buffer transferred. Between
 * requests the thread polls shared memory (finely right after an answer, then every
 * `pollMs`) while work keeps coming, and parks once idle for PARK_AFTER_MS (mailbox.ts).
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { receiveMessageOnPort, threadId, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { AWAKE, FINE_POLL_MS, FINE_POLL_STEP_MS, PARKED, PARK_AFTER_MS, POLLING, POSTED, SLEEP, type MailboxReply, type MailboxRequest, type ServeStarted, type ServeTask } from '../src/encode/mailbox.js';
import type { EncoderWorkerData } from '../src/encode/pool.js';
import type { EncodeResult, EncodeTask } from '../src/encode/task.js';

type Handler = (task: EncodeTask) => unknown;

/** Loads the handler, then serves the mailbox from the next turn on; answers this thread's id. */
export default async function serve({ port, control, pollMs }: ServeTask): Promise<ServeStarted> {
  const { handler: handlerFile } = Piscina.workerData as EncoderWorkerData;
  const handler = ((await import(pathToFileURL(handlerFile).href)) as { default: Handler }).default;
  setImmediate(() => void serveForever(handler, port, control, pollMs));
  return { threadId };
}

/** Never returns: the thread ends when it is terminated (a timeout, a retired worker, destroy). */
async function serveForever(handler: Handler, port: MessagePort, control: Int32Array, pollMs: number): Promise<never> {
  let seen = 0;
  let lastWork = performance.now();
  for (;;) {
    const posted = Atomics.load(control, POSTED);
    if (posted !== seen) {
      // The count goes up after the message is queued, so every request counted is readable now.
      seen = posted;
      for (let entry = receiveMessageOnPort(port); entry !== undefined; entry = receiveMessageOnPort(port)) {
        const reply = await answer(handler, entry.message as MailboxRequest);
        try {
          port.postMessage(reply, reply.result === undefined ? [] : [reply.result.frame]);
        } catch (error) {
          // What the handler returned or threw cannot be copied: report that instead, as the handler's failure.
          port.postMessage({ id: reply.id, error: new Error(`the encoder's answer could not be sent back: ${String(error)}`) } satisfies MailboxReply);
        }
      }
      lastWork = performance.now();
      continue;
    }
    const idleMs = performance.now() - lastWork;
    if (pollMs > 0 && idleMs < FINE_POLL_MS) {
      // Just answered: if batches are queuing, the next comes as soon as the main thread has the answer.
      Atomics.wait(control, POSTED, seen, FINE_POLL_STEP_MS);
      continue;
    }
    // Announce how we sleep first, so a post from here on knows; a post before the store is seen by wait's compare.
    if (pollMs > 0 && idleMs < PARK_AFTER_MS) {
      Atomics.store(control, SLEEP, POLLING);
      Atomics.wait(control, POSTED, seen, pollMs);
    } else {
      Atomics.store(control, SLEEP, PARKED);
      Atomics.wait(control, POSTED, seen);
    }
    Atomics.store(control, SLEEP, AWAKE);
  }
}

/** Runs the handler on one request; a handler may answer synchronously or with a promise. */
async function answer(handler: Handler, { id, task }: MailboxRequest): Promise<MailboxReply> {
  try {
    let out = handler(task);
    if (out instanceof Promise) out = await out;
    return { id, result: unwrapMovable(out) };
  } catch (error) {
    return { id, error };
  }
}

/** A replacement handler may still return its result wrapped for `Piscina.move()`. */
function unwrapMovable(out: unknown): EncodeResult {
  const value = (out as Record<symbol, unknown> | null)?.[Piscina.valueSymbol];
  return (value ?? out) as EncodeResult;
}
