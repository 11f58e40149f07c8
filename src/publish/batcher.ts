/**
 * Per-channel open batches. `append` is the publish hot path: one array push, and
 * a timer armed only for a batch's first message. A batch closes at `batchSize`
 * messages (or `maxPendingMessages`, if smaller) or `batchDelayMs` after its first
 * message. While the encoder cannot take more work, batches stay open and keep
 * growing (coalescing) up to `maxPendingMessages`, past which the oldest messages
 * are dropped and counted.
 */

/** A closed batch, ready to encode. */
export interface Batch {
  channel: string;
  items: unknown[];
  /** Indices of pre-serialized items; `null` when none, `true` when all. */
  serialized: number[] | true | null;
  /** Messages dropped from this channel since the previous batch (gap in sequence numbers). */
  droppedBefore: number;
}

export interface BatcherOptions {
  batchSize: number;
  batchDelayMs: number;
  maxPendingMessages: number;
  /** Whether the encoder can take another batch now. */
  hasCapacity: () => boolean;
  /** Receives every closed batch, in order per channel. */
  onBatch: (batch: Batch) => void;
}

class OpenBatch {
  items: unknown[] = [];
  serialized: number[] | null = null;
  rawCount = 0;
  dropped = 0;
  timer: NodeJS.Timeout | null = null;
  waiting = false;

  constructor(readonly channel: string) {}
}

/** Collects messages into per-channel batches and closes them by size or delay. */
export class Batcher {
  readonly #options: BatcherOptions;
  readonly #open = new Map<string, OpenBatch>();
  /** Channels whose batch is due but waits for encoder capacity, oldest first. */
  readonly #waiting = new Set<OpenBatch>();
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
    for (const batch of this.#open.values()) total += batch.items.length;
    return total;
  }

  /** Appends a message; `serialized` marks a pre-serialized string or byte array. */
  append(channel: string, message: unknown, serialized: boolean): void {
    let batch = this.#open.get(channel);
    if (batch === undefined) {
      batch = new OpenBatch(channel);
      this.#open.set(channel, batch);
    }
    const items = batch.items;
    if (serialized) {
      (batch.serialized ??= []).push(items.length);
      batch.rawCount++;
    }
    items.push(message);
    const length = items.length;
    if (batch.waiting) {
      // Coalescing while the encoder is busy: bounded by maxPendingMessages, oldest out first.
      if (length > this.#options.maxPendingMessages) this.#dropOldest(batch);
    } else if (length >= this.#options.batchSize || length >= this.#options.maxPendingMessages) {
      // Full (a batch never holds more than the pending bound, whatever batchSize says).
      this.#close(batch);
    } else if (length === 1) {
      batch.timer = setTimeout(this.#onTimer, this.#options.batchDelayMs, batch);
    }
  }

  /** Closes every open batch that has encoder capacity; with `force`, closes all. */
  flushAll(force = false): void {
    for (const batch of [...this.#open.values()]) {
      if (batch.items.length > 0) this.#close(batch, force);
    }
  }

  /** Called when the encoder frees capacity: closes batches that were held back. */
  drain(): void {
    for (const batch of this.#waiting) {
      if (!this.#options.hasCapacity()) return;
      this.#waiting.delete(batch);
      batch.waiting = false;
      if (batch.items.length > 0) this.#close(batch);
    }
  }

  /** Stops every timer; open batches are discarded. */
  clear(): void {
    for (const batch of this.#open.values()) if (batch.timer !== null) clearTimeout(batch.timer);
    this.#open.clear();
    this.#waiting.clear();
  }

  readonly #onTimer = (batch: OpenBatch): void => {
    batch.timer = null;
    if (batch.items.length > 0) this.#close(batch);
  };

  #close(batch: OpenBatch, force = false): void {
    if (batch.timer !== null) {
      clearTimeout(batch.timer);
      batch.timer = null;
    }
    if (!force && !this.#options.hasCapacity()) {
      // Coalesce: keep the batch open and growing until a worker frees up.
      if (!batch.waiting) {
        batch.waiting = true;
        this.#waiting.add(batch);
      }
      return;
    }
    if (batch.waiting) {
      batch.waiting = false;
      this.#waiting.delete(batch);
    }
    const closed: Batch = {
      channel: batch.channel,
      items: batch.items,
      serialized: batch.rawCount === 0 ? null : batch.rawCount === batch.items.length ? true : batch.serialized,
      droppedBefore: batch.dropped,
    };
    // A fresh OpenBatch per batch: idle channels leave nothing behind.
    this.#open.delete(batch.channel);
    this.#options.onBatch(closed);
  }

  #dropOldest(batch: OpenBatch): void {
    // Drop the older half in one splice so overload costs O(1) amortized per message.
    const drop = Math.ceil(batch.items.length / 2);
    batch.items.splice(0, drop);
    if (batch.serialized !== null) {
      const kept = batch.serialized.filter((index) => index >= drop).map((index) => index - drop);
      batch.rawCount = kept.length;
      batch.serialized = kept;
    }
    batch.dropped += drop;
    this.#droppedTotal += drop;
  }
}
