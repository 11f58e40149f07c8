/**
 * Restores per-channel order after the pool: batches may finish out of order when
 * several workers run, but each channel's frames must reach sockets in the order
 * their batches closed. Each batch gets a ticket at close; results are released
 * strictly by ticket.
 *
 * A channel's order must survive anything its release does: the ticket counter moves
 * on before `release` runs, and a throw from it is reported, not propagated, so one
 * bad batch can never hold back every later batch of its channel.
 */
import type { ChannelState, Released } from '../channels.js';

export interface SequencerOptions {
  /** Receives results in ticket order per channel. */
  release: (state: ChannelState, released: Released) => void;
  /** A channel has no batch in flight any more (it may have become idle). */
  caughtUp: (state: ChannelState) => void;
  /** `release` threw (a bug): the channel went on with its next batch. */
  onError: (error: unknown, state: ChannelState) => void;
  /**
   * Two or more batches of the channel are about to be released in one go (an earlier
   * one finished after them): hold the writes to its subscribers; the returned function
   * lets them go (fanout.ts `corkSubscribers`: one writev per socket).
   */
  holdWrites?: (state: ChannelState) => () => void;
}

/** Hands out tickets per channel and releases completed work in ticket order. */
export class Sequencer {
  readonly #options: SequencerOptions;
  #reordered = 0;

  constructor(options: SequencerOptions) {
    this.#options = options;
  }

  /** Batches that completed before an earlier batch of their channel and had to wait. */
  get reordered(): number {
    return this.#reordered;
  }

  /** Takes the next ticket for a channel. */
  ticket(state: ChannelState): number {
    return state.nextTicket++;
  }

  /** Records the result for a ticket and releases what is now in order. */
  complete(state: ChannelState, ticket: number, released: Released): void {
    if (ticket !== state.nextRelease) {
      (state.held ??= new Map()).set(ticket, released);
      this.#reordered++;
      return;
    }
    const flush = state.held?.has(ticket + 1) === true ? this.#options.holdWrites?.(state) : undefined;
    try {
      let next: Released | undefined = released;
      while (next !== undefined) {
        state.nextRelease++;
        this.#release(state, next);
        next = state.held?.get(state.nextRelease);
        if (next !== undefined) state.held!.delete(state.nextRelease);
      }
    } finally {
      flush?.();
    }
    if (state.held?.size === 0) state.held = null;
    if (state.nextRelease === state.nextTicket) this.#options.caughtUp(state);
  }

  #release(state: ChannelState, released: Released): void {
    try {
      this.#options.release(state, released);
    } catch (error) {
      this.#options.onError(error, state);
    }
  }
}
