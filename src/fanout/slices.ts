/**
 * Time-sliced fan-out. Writing one batch to 5 000 subscribers at ~10 µs a write is a
 * 50 ms stall: the blocking batchcast exists to remove. So a batch is written for at most
 * `sliceMs` in the turn it is released; the subscribers it has not reached by then are
 * kept, in order, and written in the following turns (setImmediate: I/O and timers run in
 * between). Small audiences finish in their own turn as before, with nothing allocated.
 *
 * One slice per loop iteration: a batch is usually released from a worker's reply (the
 * poll phase), and an immediate queued then would run in the same iteration's check phase,
 * so the rest of a batch that used up its slice is written from the next iteration on.
 * Until then, and while a later turn has the rest of a slice that ran out, batches
 * released meanwhile queue whole, and those of channels with nothing else on its way are
 * written first in the next turn (a small channel does not wait behind a crowd's rest);
 * batches released back to back share one slice.
 *
 * Order: per channel, batches go out in release order; once a channel has a batch in
 * progress, its later batches queue behind it whole. A queued batch is for the
 * subscribers of the moment it was released (a later subscriber starts after it), and is
 * written only to those still subscribed when their turn comes. A subscriber that caught
 * up from history meanwhile (catch-up.ts records where it went live, `liveFrom`) is not
 * sent what history already gave it; one still behind is passed by, as in fanout.ts.
 */
import type { ChannelState } from '../channels.js';
import { Deque } from '../history/deque.js';
import type { Connection } from '../server/connection.js';
import { sendBatch, type FanoutCounters, type FanoutOptions } from './fanout.js';
import type { BatchFrames } from './layout.js';

/** Subscribers written between two clock reads. */
const CHECK_EVERY = 32;

/** A batch whose fan-out did not finish in its turn. */
interface Pending {
  state: ChannelState;
  frames: BatchFrames;
  firstSeq: number;
  /** Its subscribers when it was released, in order; `next` is the first not written yet. */
  subscribers: Connection[];
  next: number;
}

/** Counters of sliced fan-outs, for stats. */
export interface SliceCounters {
  /** Batches whose fan-out went on over more than one turn. */
  batchesSliced: number;
  /** Turns that wrote the rest of such batches. */
  turns: number;
}

/** Writes batches to their subscribers, `sliceMs` at a time. */
export class FanoutSlices {
  readonly counters: SliceCounters = { batchesSliced: 0, turns: 0 };
  readonly #options: FanoutOptions;
  readonly #fanoutCounters: FanoutCounters;
  readonly #sliceMs: number;
  readonly #pending = new Deque<Pending>();
  /** Batches released while a slice had run out, of channels with nothing else on its way: written first. */
  readonly #fresh = new Deque<Pending>();
  /** Subscribers visited in the current turn of `#run`, for the clock read every CHECK_EVERY. */
  #written = 0;
  readonly #idle: (() => void)[] = [];
  #turn: NodeJS.Immediate | null = null;
  /** When the slice that releases write in ends: shared by batches released back to back. */
  #releaseSliceEnd = 0;
  /** A slice ran out: releases queue whole until the next turn of `#run` (next iteration). */
  #sliceSpent = false;

  constructor(options: FanoutOptions, counters: FanoutCounters, sliceMs: number) {
    this.#options = options;
    this.#fanoutCounters = counters;
    this.#sliceMs = sliceMs;
  }

  /** Batches whose fan-out is still going on. */
  get pending(): number {
    return this.#pending.length + this.#fresh.length;
  }

  /** Sends one batch to every subscriber of `state`'s channel (see the module comment). */
  fanOut(state: ChannelState, frames: BatchFrames, firstSeq: number): void {
    if (state.fanoutPending > 0 || this.#sliceSpent) {
      // Behind its own channel's batches; otherwise ahead of the rest of other channels' (no waiting 60 ms behind a crowd).
      const queue = state.fanoutPending > 0 ? this.#pending : this.#fresh;
      this.#queue({ state, frames, firstSeq, subscribers: [...state.subscribers], next: 0 }, queue);
      return;
    }
    const options = this.#options;
    const counters = this.#fanoutCounters;
    const now = performance.now();
    if (now >= this.#releaseSliceEnd) this.#releaseSliceEnd = now + this.#sliceMs;
    const deadline = this.#releaseSliceEnd;
    const iterator = state.subscribers.values();
    let written = 0;
    for (let item = iterator.next(); !item.done; item = iterator.next()) {
      sendBatch(item.value, state, frames, firstSeq, options, counters);
      if (++written % CHECK_EVERY === 0 && performance.now() >= deadline) {
        const rest = [...iterator];
        if (rest.length > 0) {
          this.#queue({ state, frames, firstSeq, subscribers: rest, next: 0 }, this.#pending);
          this.#nextIteration();
        }
        return;
      }
    }
  }

  /** Resolves once no fan-out is going on (shutdown). */
  whenIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Drops every pending fan-out (shutdown, past its deadline). */
  stop(): void {
    if (this.#turn !== null) clearImmediate(this.#turn);
    this.#turn = null;
    this.#sliceSpent = false;
    for (const queue of [this.#fresh, this.#pending]) {
      for (let job = queue.shift(); job !== undefined; job = queue.shift()) job.state.fanoutPending--;
    }
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  #queue(job: Pending, queue: Deque<Pending>): void {
    job.state.fanoutPending++;
    this.counters.batchesSliced++;
    queue.push(job);
    this.#turn ??= setImmediate(this.#run);
  }

  /**
   * Moves the next turn past this loop iteration: after a slice spent in the poll phase, an
   * immediate would run in this iteration's check phase, a second slice with no timers or
   * I/O in between. An immediate queued from an immediate runs in the next iteration.
   */
  #nextIteration(): void {
    this.#sliceSpent = true;
    if (this.#turn !== null) clearImmediate(this.#turn);
    this.#turn = setImmediate(this.#hop);
  }

  readonly #hop = (): void => {
    this.#turn = setImmediate(this.#run);
  };

  readonly #run = (): void => {
    this.#turn = null;
    this.#sliceSpent = false;
    this.counters.turns++;
    this.#written = 0;
    const deadline = performance.now() + this.#sliceMs;
    if (!this.#drain(this.#fresh, deadline) || !this.#drain(this.#pending, deadline)) {
      // Queued from the check phase: runs in the next iteration; releases meanwhile queue.
      this.#sliceSpent = true;
      this.#turn = setImmediate(this.#run);
      return;
    }
    for (const resolve of this.#idle.splice(0)) resolve();
  };

  /** Writes `queue`'s batches in order until `deadline`; false if the deadline came first. */
  #drain(queue: Deque<Pending>, deadline: number): boolean {
    for (let job = queue.peek(); job !== undefined; job = queue.peek()) {
      const { state, frames, firstSeq, subscribers } = job;
      while (job.next < subscribers.length) {
        const connection = subscribers[job.next++]!;
        if (state.subscribers.has(connection) && !this.#replayedAlready(connection, state.name, firstSeq)) {
          sendBatch(connection, state, frames, firstSeq, this.#options, this.#fanoutCounters);
        }
        if (++this.#written % CHECK_EVERY === 0 && performance.now() >= deadline) return false;
      }
      queue.shift();
      state.fanoutPending--;
    }
    return true;
  }

  /** Whether the connection caught up from history past this batch while it waited here. */
  #replayedAlready(connection: Connection, channel: string, firstSeq: number): boolean {
    const liveFrom = connection.liveFrom?.get(channel);
    if (liveFrom === undefined) return false;
    if (firstSeq < liveFrom) return true;
    connection.liveFrom!.delete(channel);
    return false;
  }
}
