/**
 * The client's position on each channel: the epoch of the server's history and the
 * next sequence number it expects. From it the client drops what it already has
 * (replayed frames are whole batches), names every gap with its reason, tells when a
 * recovery is complete, and asks the server for exactly what it missed on reconnect.
 *
 * Gap reasons: `evicted` (the server said history no longer held it), `epoch` (the
 * server's history is another one, e.g. it restarted: nothing can be related), and
 * `dropped` (a jump the server did not announce: messages it dropped under overload
 * or could not encode). Browser-safe.
 */

import type { Position } from '../protocol/position.js';

export type { Position } from '../protocol/position.js';

export type GapReason = 'dropped' | 'evicted' | 'epoch';

/**
 * Messages the client will not get on a channel: from `expected` up to `received`.
 * `missed` is their count, or null for `epoch` (another history: nothing to count).
 */
export interface Gap {
  channel: string;
  reason: GapReason;
  expected: number;
  received: number;
  missed: number | null;
  /** The epoch of the stream from here on (null if the server never said). */
  epoch: string | null;
}

/** A recovery is complete: `messages` were replayed, everything from `since` up to `to` (minus any gap reported). */
export interface Recovered {
  channel: string;
  epoch: string;
  since: number;
  to: number;
  messages: number;
}

/** What a batch means for the position: drop `skip` leading messages, report `gap` first and `recovered` after. */
export interface BatchVerdict {
  skip: number;
  gap: Gap | null;
  recovered: Recovered | null;
}

interface Tracked {
  /** Null until the server names the epoch (a server that never sends `subscribed`). */
  epoch: string | null;
  seq: number;
}

interface Recovering {
  since: number;
  /** Where the replay starts (after any evicted part). */
  from: number;
  to: number;
  /** Messages of [from, to) delivered so far. */
  delivered: number;
}

/** Positions of all channels of one client. */
export class Positions {
  readonly #tracked = new Map<string, Tracked>();
  readonly #recovering = new Map<string, Recovering>();
  /** Messages dropped because the client already had them. */
  duplicates = 0;

  /** The position of `channel`, if known with its epoch. */
  get(channel: string): Position | undefined {
    const tracked = this.#tracked.get(channel);
    return tracked === undefined || tracked.epoch === null ? undefined : { epoch: tracked.epoch, seq: tracked.seq };
  }

  /** Sets a position (an application's stored one, or the server's). */
  set(channel: string, position: Position): void {
    this.#tracked.set(channel, { epoch: position.epoch, seq: position.seq });
  }

  /** Forgets a channel (unsubscribed). */
  delete(channel: string): void {
    this.#tracked.delete(channel);
    this.#recovering.delete(channel);
  }

  /** Every known position, e.g. to store for the next page load. */
  snapshot(): Record<string, Position> {
    const positions: Record<string, Position> = {};
    for (const channel of this.#tracked.keys()) {
      const position = this.get(channel);
      if (position !== undefined) positions[channel] = position;
    }
    return positions;
  }

  /** A batch of `count` messages from `firstSeq` arrived on `channel`. */
  batch(channel: string, firstSeq: number, count: number): BatchVerdict {
    const tracked = this.#tracked.get(channel);
    if (tracked === undefined) {
      this.#tracked.set(channel, { epoch: null, seq: firstSeq + count });
      return { skip: 0, gap: null, recovered: null };
    }
    let gap: Gap | null = null;
    if (firstSeq > tracked.seq) {
      gap = { channel, reason: 'dropped', expected: tracked.seq, received: firstSeq, missed: firstSeq - tracked.seq, epoch: tracked.epoch };
    }
    const skip = Math.min(count, Math.max(0, tracked.seq - firstSeq));
    this.duplicates += skip;
    tracked.seq = Math.max(tracked.seq, firstSeq + count);
    const recovering = this.#recovering.get(channel);
    if (recovering !== undefined) {
      recovering.delivered += Math.max(0, Math.min(firstSeq + count, recovering.to) - Math.max(firstSeq + skip, recovering.from));
    }
    return { skip, gap, recovered: this.#completed(channel, tracked) };
  }

  /** A notice from the server; returns what to report (gaps, completed recoveries). */
  notice(notice: Record<string, unknown>): (Gap | Recovered)[] {
    const channel = typeof notice.channel === 'string' ? notice.channel : '';
    switch (notice.op) {
      case 'subscribed':
        this.#subscribed(notice.positions);
        return [];
      case 'recovery': return this.#recovery(channel, notice);
      case 'gap': return this.#evicted(channel, notice);
      default: return [];
    }
  }

  #subscribed(positions: unknown): void {
    if (positions === null || typeof positions !== 'object') return;
    for (const [channel, value] of Object.entries(positions as Record<string, unknown>)) {
      const { epoch, seq } = (value ?? {}) as { epoch?: unknown; seq?: unknown };
      if (typeof epoch !== 'string' || typeof seq !== 'number') continue;
      const tracked = this.#tracked.get(channel);
      // A fresh subscription starts here; a recovering one already has its position (set by the recovery notice).
      if (tracked === undefined || tracked.epoch === null) this.#tracked.set(channel, { epoch, seq });
    }
  }

  #recovery(channel: string, notice: Record<string, unknown>): (Gap | Recovered)[] {
    const { status, epoch, since, from, to, missed } = notice as { status?: unknown; epoch?: unknown; since?: unknown; from?: unknown; to?: unknown; missed?: unknown };
    if (typeof epoch !== 'string' || typeof since !== 'number' || typeof from !== 'number' || typeof to !== 'number') return [];
    const tracked = this.#tracked.get(channel);
    const expected = tracked?.seq ?? since;
    if (status === 'epoch') {
      this.#tracked.set(channel, { epoch, seq: to });
      this.#recovering.delete(channel);
      return [{ channel, reason: 'epoch', expected, received: to, missed: null, epoch }];
    }
    const reports: (Gap | Recovered)[] = [];
    if (status === 'evicted' && from > expected) {
      reports.push({ channel, reason: 'evicted', expected, received: from, missed: typeof missed === 'number' ? missed : from - expected, epoch });
    }
    const next = { epoch, seq: Math.max(expected, from) };
    this.#tracked.set(channel, next);
    this.#recovering.set(channel, { since, from, to, delivered: 0 });
    const done = this.#completed(channel, next);
    if (done !== null) reports.push(done);
    return reports;
  }

  #evicted(channel: string, notice: Record<string, unknown>): Gap[] {
    const { from, to } = notice as { from?: unknown; to?: unknown };
    const tracked = this.#tracked.get(channel);
    if (tracked === undefined || typeof from !== 'number' || typeof to !== 'number' || to <= tracked.seq) return [];
    const gap: Gap = { channel, reason: 'evicted', expected: tracked.seq, received: to, missed: to - tracked.seq, epoch: tracked.epoch };
    tracked.seq = to;
    return [gap];
  }

  /** The recovery of `channel` is complete once its position reaches the live start. */
  #completed(channel: string, tracked: Tracked): Recovered | null {
    const recovering = this.#recovering.get(channel);
    if (recovering === undefined || tracked.seq < recovering.to) return null;
    this.#recovering.delete(channel);
    return { channel, epoch: tracked.epoch!, since: recovering.since, to: recovering.to, messages: recovering.delivered };
  }
}
