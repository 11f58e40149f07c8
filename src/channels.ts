/**
 * One state object per active channel, so the publish hot path looks a channel up
 * once: the open batch (publish → batch), the order tickets (release), the next
 * sequence number, and the subscribers (fan-out).
 *
 * Position: a channel's stream is at `(epoch, nextSeq)`. The epoch names the history
 * the sequence numbers belong to; it changes when that history starts over. Without a
 * broker, history lives in this process: one epoch per process, made at start.
 *
 * Lifetime: a channel's state lives while it has subscribers, history, or work in the
 * pipeline (an open batch, batches in the pool or held back for order). Once it has none
 * it is dropped, and only its next sequence number is kept (a Map entry: the name and a
 * number), so a client that comes back later sees a gap, not a restart.
 */
import { randomBytes } from 'node:crypto';
import type { EncodeResult } from './encode/task.js';
import type { ClusterLink } from './broker/relay.js';
import type { ChannelHistory } from './history/history.js';
import type { FormKey } from './fanout/forms.js';
import type { Connection } from './server/connection.js';

/** What the release step gets for one batch, in order. */
export interface Released {
  /** The finished frame, or null when the batch could not be encoded at all (its messages become a gap). */
  result: EncodeResult | null;
  /** Messages the batch held when it closed. */
  messages: number;
  /** Messages dropped from the channel (pending bound) just before this batch. */
  droppedBefore: number;
  /** performance.now() at the batch's first publish (broadcast delay). */
  openedAt: number;
  /** Not encoded: nobody would read the frame (no subscriber, no history, no broker); `result` is null. */
  unheard?: true;
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
  /** performance.now() at the open batch's first message. */
  openedAt = 0;
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
  /** The history the sequence numbers belong to (see the module comment); in a cluster, Redis names it. */
  epoch: string;
  // history
  history: ChannelHistory | null = null;
  /** In a cluster: this node's link to the channel in Redis (broker/relay.ts); null otherwise. */
  cluster: ClusterLink | null = null;
  // fan-out
  readonly subscribers = new Set<Connection>();
  /** Subscribers per wire form other than the canonical one (fanout/forms.ts); null when there are none. */
  forms: Map<FormKey, number> | null = null;
  /** Batches of this channel whose fan-out goes on over several turns (fanout/slices.ts). */
  fanoutPending = 0;
  // encode
  /** Its batches are packed for the hand-off over several turns: the last one was slow to pack (encode/pool.ts). */
  sliceHandoff = false;

  constructor(name: string, nextSeq: number, epoch: string) {
    this.name = name;
    this.nextSeq = nextSeq;
    this.epoch = epoch;
  }

  /** No subscribers, no history and nothing in the pipeline: the state can go. */
  get idle(): boolean {
    return this.subscribers.size === 0 && this.history === null && this.cluster === null && this.items.length === 0 && this.timer === null && !this.waiting && this.nextRelease === this.nextTicket && this.fanoutPending === 0;
  }
}

/** The live channel states, and the sequence counters of channels that went idle. */
export class ChannelTable {
  /** This process's epoch: 8 URL-safe characters, random. */
  readonly epoch = randomBytes(6).toString('base64url');
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
    state = new ChannelState(name, nextSeq ?? 0, this.epoch);
    this.#live.set(name, state);
    return state;
  }

  /** The next sequence number of `name`, live or idle (0 for a channel never published). */
  nextSeq(name: string): number {
    return this.#live.get(name)?.nextSeq ?? this.#idleSeq.get(name) ?? 0;
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
