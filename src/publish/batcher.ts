/**
 * Per-channel open batches. `append` is the publish hot path: one array push, and
 * a timer armed only for a batch's first message. A batch closes at `batchSize`
 * messages (or `maxPendingMessages`, if smaller) or `batchDelayMs` after its first
 * message. While the encoder cannot take more work, batches stay open and keep
 * growing (coalescing) up to `maxPendingMessages`, past which the oldest messages
 * are dropped and counted. The open batch lives on the channel's {@link ChannelState}.
 */
import type { ChannelState, ChannelTable } from '../channels.js';

/** A closed batch, ready to encode. */
export interface Batch {
  state: ChannelState;
  items: unknown[];
  /** Indices of pre-serialized items; `null` when none, `true` when all. */
  serialized: number[] | true | null;
  /** Messages dropped from this channel since the previous batch (gap in sequence numbers). */
  droppedBefore: number;
  /** performance.now() at its first message. */
  openedAt: number;
}

export interface BatcherOptions {
  channels: ChannelTable;
  /** Read live: the adaptive controller may change them; a change applies from the next message on. */
  batching: { batchSize: number; batchDelayMs: number };
  maxPendingMessages: number;
  /** Whether the encoder can take another batch now. */
  hasCapacity: () => boolean;
  /** Receives every closed batch, in order per channel. */
  onBatch: (batch: Batch) => void;
}

/** Collects messages into per-channel batches and closes them by size or delay. */
export class Batcher {
  readonly #options: BatcherOptions;
  /** Channels whose batch is due but waits for encoder capacity, oldest first. */
  readonly #waiting = new Set<ChannelState>();
  #droppedTotal = 0;

  constructor(options: BatcherOptions) {
    this.#options = options;
  }

  /** Messages dropped because a channel exceeded `maxPendingMessages`. */
  get droppedMessages(): number {
    return this.#droppedTotal;
  }

  /** Messages in open batches, over all channels. */
  get pendingMessages(): number {
    let total = 0;
    for (const state of this.#options.channels.values()) total += state.items.length;
    return total;
  }

  /** Appends a message; `serialized` marks a pre-serialized string or byte array. */
  append(state: ChannelState, message: unknown, serialized: boolean): void {
    const items = state.items;
    if (serialized) {
      (state.serialized ??= []).push(items.length);
      state.rawCount++;
    }
    items.push(message);
    const length = items.length;
    // One clock read per batch, not per message: the start of its broadcast delay.
    if (length === 1) state.openedAt = performance.now();
    if (state.waiting) {
      // Coalescing while the encoder is busy: bounded by maxPendingMessages, oldest out first.
      if (length > this.#options.maxPendingMessages) this.#dropOldest(state);
    } else if (length >= this.#options.batching.batchSize || length >= this.#options.maxPendingMessages) {
      // Full (a batch never holds more than the pending bound, whatever batchSize says).
      this.#close(state);
    } else if (length === 1) {
      state.timer = setTimeout(this.#onTimer, this.#options.batching.batchDelayMs, state);
    }
  }

  /** Closes every open batch that has encoder capacity; with `force`, closes all. */
  flushAll(force = false): void {
    for (const state of [...this.#options.channels.values()]) {
      if (state.items.length > 0) this.#close(state, force);
    }
  }

  /** Called when the encoder frees capacity: closes batches that were held back. */
  drain(): void {
    for (const state of this.#waiting) {
      if (!this.#options.hasCapacity()) return;
      this.#waiting.delete(state);
      state.waiting = false;
      if (state.items.length > 0) this.#close(state);
      else this.#options.channels.dropIfIdle(state);
    }
  }

  /** Stops every timer; open batches are discarded. */
  clear(): void {
    for (const state of [...this.#options.channels.values()]) {
      if (state.timer !== null) clearTimeout(state.timer);
      state.timer = null;
      state.waiting = false;
      state.items = [];
      state.serialized = null;
      state.rawCount = 0;
      this.#options.channels.dropIfIdle(state);
    }
    this.#waiting.clear();
  }

  readonly #onTimer = (state: ChannelState): void => {
    state.timer = null;
    if (state.items.length > 0) this.#close(state);
  };

  #close(state: ChannelState, force = false): void {
    if (state.timer !== null) {
      clearTimeout(state.timer);
      state.timer = null;
    }
    if (!force && !this.#options.hasCapacity()) {
      // Coalesce: keep the batch open and growing until a worker frees up.
      if (!state.waiting) {
        state.waiting = true;
        this.#waiting.add(state);
      }
      return;
    }
    if (state.waiting) {
      state.waiting = false;
      this.#waiting.delete(state);
    }
    const { items, rawCount } = state;
    const closed: Batch = {
      state,
      items,
      serialized: rawCount === 0 ? null : rawCount === items.length ? true : state.serialized,
      droppedBefore: state.dropped,
      openedAt: state.openedAt,
    };
    state.items = [];
    state.serialized = null;
    state.rawCount = 0;
    state.dropped = 0;
    this.#options.onBatch(closed);
  }

  #dropOldest(state: ChannelState): void {
    // Drop the older half in one splice so overload costs O(1) amortized per message.
    const drop = Math.ceil(state.items.length / 2);
    state.items.splice(0, drop);
    if (state.serialized !== null) {
      const kept = state.serialized.filter((index) => index >= drop).map((index) => index - drop);
      state.rawCount = kept.length;
      state.serialized = kept;
    }
    state.dropped += drop;
    this.#droppedTotal += drop;
  }
}
