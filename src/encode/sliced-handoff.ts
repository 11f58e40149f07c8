/**
 * Packs large batches for their hand-off over several event-loop turns: at most
 * `sliceMs` per turn (then setImmediate, so I/O and timers run in between), one batch
 * at a time, in the order they came. The pool sends a channel's batches here once one
 * of them took `sliceMs` or more to pack in one go, and goes back to packing them at
 * once when a batch packs in a single turn under `sliceMs` (pool.ts).
 */
import { movedHandoff, type Handoff } from './handoff.js';
import { SegmentWriter, segmentScratch } from './segments.js';
import type { EncodeTask } from './task.js';

/** Called once per batch with its hand-off, the turns it took and the packing time in all of them (ms). */
export type SlicedDone = (handoff: Handoff, turns: number, packMs: number) => void;

interface Packing {
  task: EncodeTask;
  writer: SegmentWriter;
  done: SlicedDone;
  turns: number;
  packMs: number;
}

/** Counters of sliced hand-offs, for stats. */
export interface SlicedHandoffCounters {
  /** Batches packed in segments. */
  batches: number;
  /** Of those, batches whose packing went on over more than one turn. */
  spread: number;
  /** Turns spent packing them. */
  turns: number;
}

/** A queue of batches being packed in segments. */
export class SlicedHandoffs {
  readonly counters: SlicedHandoffCounters = { batches: 0, spread: 0, turns: 0 };
  readonly #sliceMs: number;
  readonly #queue: Packing[] = [];
  /** Shared by the writers: only the one at the head of the queue writes. */
  readonly #scratch = segmentScratch();
  #turn: NodeJS.Immediate | null = null;
  /** #run is on the stack (a `done` callback may add a batch). */
  #running = false;

  constructor(sliceMs: number) {
    this.#sliceMs = sliceMs;
  }

  /** Batches queued or being packed. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Packs `task`'s messages (plain values only) and calls `done` with its hand-off;
   * the first slice runs now. A batch records cannot carry (a value msgpackr cannot
   * pack, a `"__proto__"` key) is handed off for structured clone, as handoff.ts does.
   */
  add(task: EncodeTask, done: SlicedDone): void {
    this.#queue.push({ task, writer: new SegmentWriter(task.items, this.#scratch), done, turns: 0, packMs: 0 });
    if (this.#turn === null && !this.#running) this.#run();
  }

  /** Drops every batch still queued; their `done` is never called (shutdown). */
  stop(): void {
    if (this.#turn !== null) clearImmediate(this.#turn);
    this.#turn = null;
    this.#queue.length = 0;
  }

  readonly #run = (): void => {
    this.#turn = null;
    this.#running = true;
    try {
      this.#turnOfWork(performance.now() + this.#sliceMs);
    } finally {
      this.#running = false;
    }
  };

  #turnOfWork(deadline: number): void {
    this.counters.turns++;
    while (this.#queue.length > 0) {
      const packing = this.#queue[0]!;
      packing.turns++;
      const started = performance.now();
      const outcome = this.#step(packing, deadline);
      const now = performance.now();
      packing.packMs += now - started;
      if (outcome === 'more') break;
      this.#queue.shift();
      this.counters.batches++;
      if (packing.turns > 1) this.counters.spread++;
      packing.done(outcome, packing.turns, packing.packMs);
      if (now >= deadline) break;
    }
    if (this.#queue.length > 0) this.#turn = setImmediate(this.#run);
  }

  /** One turn's packing of one batch: `more`, or its finished hand-off. */
  #step(packing: Packing, deadline: number): Handoff | 'more' {
    let outcome;
    try {
      outcome = packing.writer.step(deadline);
    } catch {
      // Circular structures, symbols, BigInts past 64 bits: as in handoff.ts, structured clone carries them.
      return { task: packing.task, transferList: undefined };
    }
    if (outcome === 'more') return 'more';
    if (outcome === 'clone') return { task: packing.task, transferList: undefined };
    return movedHandoff(packing.task, packing.writer.finish());
  }
}
