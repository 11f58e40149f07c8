/**
 * One state object per active channel, so the publish hot path looks a channel up
 * once: the open batch (publish → batch), the order tickets (release), the next
 * sequence number, and the subscribers (fan-out).
 *
 * Lifetime: a channel's state lives while it has subscribers or work in the pipeline
 * (an open batch, batches in the pool or held back for order). Once it has neither it
 * is dropped, and only its next sequence number is kept (a Map entry: the name and a
 * number), so a client that comes back later sees a gap, not a restart.
 */
import type { EncodeResult } from './encode/task.js';
import type { Connection } from './server/connection.js';

/** What the release step gets for one batch, in order. */
export interface Released {
  /** The finished frame, or null when the batch could not be encoded at all (its messages become a gap). */
  result: EncodeResult | null;
  /** Messages the batch held when it closed. */
  messages: number;
  /** Messages dropped from the channel (pending bound) just before this batch. */
  droppedBefore: number;
}

/** Everything the pipeline keeps about one channel. */
export class ChannelState {
  readonly name: string;
  // publish → batch: the open batch
  /** Messages of the open batch, in publish order. */
  items: unknown[] = [];
  /** Indices of pre-serialized items in `items`; null when none. */
  serialized: number[] | null = null;
  rawCount = 0;
  /** Messages dropped (pending bound) since the last batch closed. */
  dropped = 0;
  /** Fires `batchDelayMs` after the open batch's first message. */
  timer: NodeJS.Timeout | null = null;
  /** The batch is due but waits for encoder capacity (coalescing). */
  waiting = false;
  // order / release
  nextTicket = 0;
  nextRelease = 0;
  /** Batches finished ahead of an earlier one of this channel, by ticket. */
  held: Map<number, Released> | null = null;
  /** Sequence number of the next message released. */
  nextSeq: number;
  // fan-out
  readonly subscribers = new Set<Connection>();

  constructor(name: string, nextSeq: number) {
    this.name = name;
    this.nextSeq = nextSeq;
  }

  /** No subscribers and nothing in the pipeline: the state can go. */
  get idle(): boolean {
    return this.subscribers.size === 0 && this.items.length === 0 && this.timer === null && !this.waiting && this.nextRelease === this.nextTicket;
  }
}

/** The live channel states, and the sequence counters of channels that went idle. */
export class ChannelTable {
  readonly #live = new Map<string, ChannelState>();
  readonly #idleSeq = new Map<string, number>();

  /** The state of `name` if it is live. */
  get(name: string): ChannelState | undefined {
    return this.#live.get(name);
  }

  /** The state of `name`, made live if it was not (`name` must be a valid channel name). */
  open(name: string): ChannelState {
    let state = this.#live.get(name);
    if (state !== undefined) return state;
    const nextSeq = this.#idleSeq.get(name);
    if (nextSeq !== undefined) this.#idleSeq.delete(name);
    state = new ChannelState(name, nextSeq ?? 0);
    this.#live.set(name, state);
    return state;
  }

  /** Drops `state` if it is idle, keeping only its sequence counter. */
  dropIfIdle(state: ChannelState): void {
    if (!state.idle || this.#live.get(state.name) !== state) return;
    this.#live.delete(state.name);
    if (state.nextSeq > 0) this.#idleSeq.set(state.name, state.nextSeq);
  }

  /** Live channel states. */
  values(): IterableIterator<ChannelState> {
    return this.#live.values();
  }

  /** Live channels. */
  get size(): number {
    return this.#live.size;
  }

  /** Idle channels whose sequence counter is kept. */
  get idleCounters(): number {
    return this.#idleSeq.size;
  }
}
