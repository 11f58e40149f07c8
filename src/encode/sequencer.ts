/**
 * Restores per-channel order after the pool: batches may finish out of order when
 * several workers run, but each channel's frames must reach sockets in the order
 * their batches closed. Each batch gets a ticket at close; results are released
 * strictly by ticket.
 */

interface ChannelOrder<T> {
  nextTicket: number;
  nextRelease: number;
  done: Map<number, T | null>;
}

/** Hands out tickets per channel and releases completed work in ticket order. */
export class Sequencer<T> {
  readonly #channels = new Map<string, ChannelOrder<T>>();
  readonly #release: (channel: string, result: T) => void;
  #reordered = 0;

  /** `release` receives results in ticket order per channel; skipped (null) results are passed over. */
  constructor(release: (channel: string, result: T) => void) {
    this.#release = release;
  }

  /** Batches that completed before an earlier batch of their channel and had to wait. */
  get reordered(): number {
    return this.#reordered;
  }

  /** Batches completed but held back behind an earlier batch of the same channel. */
  get held(): number {
    let held = 0;
    for (const order of this.#channels.values()) held += order.done.size;
    return held;
  }

  /** Takes the next ticket for `channel`. */
  ticket(channel: string): number {
    let order = this.#channels.get(channel);
    if (order === undefined) {
      order = { nextTicket: 0, nextRelease: 0, done: new Map() };
      this.#channels.set(channel, order);
    }
    return order.nextTicket++;
  }

  /** Records the result for a ticket (`null`: nothing to send) and releases what is now in order. */
  complete(channel: string, ticket: number, result: T | null): void {
    const order = this.#channels.get(channel);
    if (order === undefined) return;
    if (ticket !== order.nextRelease) {
      order.done.set(ticket, result);
      this.#reordered++;
      return;
    }
    if (result !== null) this.#release(channel, result);
    order.nextRelease++;
    while (order.done.has(order.nextRelease)) {
      const next = order.done.get(order.nextRelease) as T | null;
      order.done.delete(order.nextRelease);
      order.nextRelease++;
      if (next !== null) this.#release(channel, next);
    }
    if (order.nextRelease === order.nextTicket) this.#channels.delete(channel);
  }
}
