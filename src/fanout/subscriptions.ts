/** Which connections listen to which channel, kept in step from both sides. */
import type { Connection } from '../server/connection.js';

const EMPTY: ReadonlySet<Connection> = new Set();

/** The channel → subscribers index used by fan-out. */
export class Subscriptions {
  readonly #byChannel = new Map<string, Set<Connection>>();

  /** Subscribers of `channel` (a live set: do not mutate). */
  of(channel: string): ReadonlySet<Connection> {
    return this.#byChannel.get(channel) ?? EMPTY;
  }

  /** Adds `connection` to `channel`; returns false when it was already subscribed. */
  add(connection: Connection, channel: string): boolean {
    if (connection.channels.has(channel)) return false;
    let set = this.#byChannel.get(channel);
    if (set === undefined) {
      set = new Set();
      this.#byChannel.set(channel, set);
    }
    set.add(connection);
    connection.channels.add(channel);
    return true;
  }

  /** Removes `connection` from `channel`; returns false when it was not subscribed. */
  remove(connection: Connection, channel: string): boolean {
    if (!connection.channels.delete(channel)) return false;
    const set = this.#byChannel.get(channel);
    if (set !== undefined) {
      set.delete(connection);
      if (set.size === 0) this.#byChannel.delete(channel);
    }
    connection.skipped?.delete(channel);
    return true;
  }

  /** Removes `connection` from every channel. */
  removeAll(connection: Connection): void {
    for (const channel of [...connection.channels]) this.remove(connection, channel);
  }

  /** Subscriber count per channel. */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [channel, set] of this.#byChannel) counts[channel] = set.size;
    return counts;
  }
}
