/**
 * Which connections listen to which channel, kept in step from both sides: each
 * channel's subscribers live on its {@link ChannelState}, each connection lists its channels.
 */
import type { ChannelState, ChannelTable } from '../channels.js';
import type { Connection } from '../server/connection.js';
import { CANONICAL_FORM } from './forms.js';

/** The channel ⇄ subscriber index used by fan-out. */
export class Subscriptions {
  readonly #channels: ChannelTable;
  /** A channel lost its last local subscriber (in a cluster the node then unlinks it from Redis). */
  readonly #emptied: (state: ChannelState) => void;
  #total = 0;

  constructor(channels: ChannelTable, emptied: (state: ChannelState) => void = () => {}) {
    this.#channels = channels;
    this.#emptied = emptied;
  }

  /** Subscriptions over all connections. */
  get total(): number {
    return this.#total;
  }

  /**
   * Adds `connection` to `channel` (a valid name). Returns false when it was already
   * subscribed, or is closed or closing: a dead connection must not be kept by a channel.
   */
  add(connection: Connection, channel: string): boolean {
    if (!connection.open || connection.channels.has(channel)) return false;
    const state = this.#channels.open(channel);
    state.subscribers.add(connection);
    if (connection.form !== CANONICAL_FORM) {
      const forms = (state.forms ??= new Map());
      forms.set(connection.form, (forms.get(connection.form) ?? 0) + 1);
    }
    connection.channels.add(channel);
    this.#total++;
    return true;
  }

  /** Removes `connection` from `channel`; returns false when it was not subscribed. */
  remove(connection: Connection, channel: string): boolean {
    if (!connection.channels.delete(channel)) return false;
    this.#total--;
    connection.lags?.delete(channel);
    const state = this.#channels.get(channel);
    if (state !== undefined) {
      state.subscribers.delete(connection);
      if (connection.form !== CANONICAL_FORM && state.forms !== null) {
        const left = (state.forms.get(connection.form) ?? 1) - 1;
        if (left > 0) state.forms.set(connection.form, left);
        else state.forms.delete(connection.form);
        if (state.forms.size === 0) state.forms = null;
      }
      if (state.subscribers.size === 0) this.#emptied(state);
      this.#channels.dropIfIdle(state);
    }
    return true;
  }

  /** Removes `connection` from every channel. */
  removeAll(connection: Connection): void {
    for (const channel of [...connection.channels]) this.remove(connection, channel);
    connection.lags = null;
  }

  /** Subscriber count per channel with subscribers. */
  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const state of this.#channels.values()) if (state.subscribers.size > 0) counts[state.name] = state.subscribers.size;
    return counts;
  }
}
