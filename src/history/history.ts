/**
 * History: per channel, a ring of the finished frames (the same bytes sent live, so
 * keeping them costs no encoding), bounded per channel by messages, bytes and age,
 * and by one byte bound over all channels (oldest evicted first). Recovery and slow
 * clients replay from it (see catch-up.ts); `history()` and `GET /history` read it.
 */
import type { ChannelState } from '../channels.js';
import type { CanonicalBatch } from '../fanout/layout.js';
import { Deque } from './deque.js';

/**
 * What a held frame costs beyond its bytes (its entry, the Buffer over it, the
 * ArrayBuffer's backing store, two queue slots): measured ~290 bytes
 * (`npm run bench -- --scenarios history`). Bounds count it, so many small frames
 * cannot hold far more memory than `bytes` / `totalBytes` say.
 */
export const FRAME_OVERHEAD_BYTES = 256;

/** One finished batch kept for replay: its canonical frame, exactly as written live (other forms are laid out from it). */
export interface HistoryEntry extends CanonicalBatch {
  readonly channel: ChannelState;
  /** When it was released (`Date.now()`). */
  readonly at: number;
  evicted: boolean;
}

/** The bounds of history; any of them 0 turns history off. */
export interface HistoryLimits {
  /** Messages kept per channel. */
  messages: number;
  /** Bytes kept per channel: frame bytes plus {@link FRAME_OVERHEAD_BYTES} per frame. */
  bytes: number;
  /** Age after which a frame is evicted, in ms. */
  ttlMs: number;
  /** Bytes kept over all channels, counted the same way. */
  totalBytes: number;
}

/** One channel's ring, oldest first. */
export class ChannelHistory {
  readonly entries = new Deque<HistoryEntry>();
  messages = 0;
  bytes = 0;

  /** The first sequence number still held, or `nextSeq` when nothing is. */
  earliest(nextSeq: number): number {
    return this.entries.peek()?.firstSeq ?? nextSeq;
  }

  /** The oldest entry holding `seq` or, if `seq` falls between entries (dropped messages), the next one. */
  find(seq: number): HistoryEntry | undefined {
    const entries = this.entries;
    let low = 0;
    let high = entries.length - 1;
    let found: HistoryEntry | undefined;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const entry = entries.at(middle)!;
      if (entry.firstSeq + entry.count <= seq) low = middle + 1;
      else {
        found = entry;
        high = middle - 1;
      }
    }
    return found;
  }
}

/** History counters, for stats. */
export interface HistoryCounters {
  frames: number;
  messages: number;
  bytes: number;
  evictedFrames: number;
  evictedMessages: number;
}

/** All channels' rings and the bounds over them. */
export class HistoryStore {
  readonly enabled: boolean;
  readonly counters: HistoryCounters = { frames: 0, messages: 0, bytes: 0, evictedFrames: 0, evictedMessages: 0 };
  readonly #limits: HistoryLimits;
  /** Every live entry in release order: the oldest over all channels is first. */
  readonly #all = new Deque<HistoryEntry>();
  readonly #emptied: (state: ChannelState) => void;
  readonly #sweeper: NodeJS.Timeout | null = null;

  /** `emptied` hears of a channel whose ring became empty (it may now be idle). */
  constructor(limits: HistoryLimits, emptied: (state: ChannelState) => void) {
    this.#limits = limits;
    this.#emptied = emptied;
    this.enabled = limits.messages > 0 && limits.bytes > 0 && limits.ttlMs > 0 && limits.totalBytes > 0;
    if (this.enabled) {
      // Frames also age out on channels that went quiet; at most a tenth of the TTL late (and at most 1 s).
      this.#sweeper = setInterval(() => this.expire(Date.now()), Math.max(10, Math.min(1_000, Math.round(limits.ttlMs / 10))));
      this.#sweeper.unref();
    }
  }

  /** Keeps a released batch of `state`'s channel, then evicts what the bounds require. */
  append(state: ChannelState, batch: CanonicalBatch, now: number): void {
    if (!this.enabled) return;
    const history = (state.history ??= new ChannelHistory());
    const { firstSeq, count, frame, deflate } = batch;
    const entry: HistoryEntry = { channel: state, firstSeq, count, frame, deflate, at: now, evicted: false };
    history.entries.push(entry);
    const cost = frame.byteLength + FRAME_OVERHEAD_BYTES;
    history.messages += count;
    history.bytes += cost;
    this.#all.push(entry);
    const c = this.counters;
    c.frames++;
    c.messages += count;
    c.bytes += cost;
    const limits = this.#limits;
    while (state.history !== null && (history.messages > limits.messages || history.bytes > limits.bytes)) this.#evictOldest(history);
    this.expire(now);
    while (c.bytes > limits.totalBytes && this.#all.length > 0) this.#evictGlobalOldest();
  }

  /** Evicts every frame older than the TTL. */
  expire(now: number): void {
    const oldest = now - this.#limits.ttlMs;
    for (let entry = this.#all.peek(); entry !== undefined && (entry.evicted || entry.at < oldest); entry = this.#all.peek()) {
      this.#all.shift();
      if (!entry.evicted) this.#evictEntry(entry);
    }
  }

  /** Drops a channel's history at once (a cluster node unlinking the channel, or a new epoch). */
  forget(state: ChannelState): void {
    const history = state.history;
    if (history === null) return;
    const c = this.counters;
    for (let entry = history.entries.shift(); entry !== undefined; entry = history.entries.shift()) {
      entry.evicted = true;
      c.frames--;
      c.messages -= entry.count;
      c.bytes -= entry.frame.byteLength + FRAME_OVERHEAD_BYTES;
      c.evictedFrames++;
      c.evictedMessages += entry.count;
    }
    state.history = null;
  }

  /** Drops everything (shutdown). */
  clear(): void {
    if (this.#sweeper !== null) clearInterval(this.#sweeper);
    while (this.#all.length > 0) {
      const entry = this.#all.shift()!;
      if (!entry.evicted) this.#evictEntry(entry);
    }
  }

  #evictGlobalOldest(): void {
    const entry = this.#all.shift()!;
    if (!entry.evicted) this.#evictEntry(entry);
  }

  #evictOldest(history: ChannelHistory): void {
    const entry = history.entries.peek()!;
    this.#evictEntry(entry);
  }

  /** Removes `entry`, which is the oldest of its channel (release order is per-channel order). */
  #evictEntry(entry: HistoryEntry): void {
    const state = entry.channel;
    const history = state.history!;
    const cost = entry.frame.byteLength + FRAME_OVERHEAD_BYTES;
    history.entries.shift();
    history.messages -= entry.count;
    history.bytes -= cost;
    entry.evicted = true;
    const c = this.counters;
    c.frames--;
    c.messages -= entry.count;
    c.bytes -= cost;
    c.evictedFrames++;
    c.evictedMessages += entry.count;
    if (history.entries.length === 0) {
      state.history = null;
      this.#emptied(state);
    }
  }
}
