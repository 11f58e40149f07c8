/**
 * Catch-up: a connection that is behind on a channel gets that channel's frames from
 * history, in order, until it reaches the live stream; then it is live again. Two
 * things put a connection behind: a recovery (it asked for frames since a position)
 * and the `drop` policy (its socket went over `maxBufferedBytes`).
 *
 * While behind on a channel, fan-out passes the connection by; every frame released
 * meanwhile is in history (release appends before it fans out), so the connection
 * reads it from there. It goes live in the same tick its cursor reaches the channel's
 * next sequence number: nothing is lost or sent twice between replay and live.
 *
 * Replay is spread: each turn writes for at most `sliceMs` (then yields to the event
 * loop), and a connection's socket never holds more than `lowWaterBytes` of it; a
 * connection over that waits for its socket to drain. A connection's frames of one turn
 * are written corked: one writev system call for all of them. If history no longer holds the
 * cursor (evicted meanwhile), the connection gets a `gap` notice for what is lost and
 * carries on from the oldest frame still held.
 */
import type { ChannelState } from '../channels.js';
import type { StoredFrame } from '../broker/relay.js';
import type { Connection, Lag } from '../server/connection.js';
import { writeFrame, type FanoutCounters, type FanoutOptions } from './fanout.js';
import type { CanonicalBatch, ReplayForms } from './layout.js';
import { noticeFrame } from './notice.js';

export interface CatchUpOptions {
  maxBufferedBytes: number;
  counters: FanoutCounters;
  /** Lays out replayed batches in the forms their clients take. */
  forms: ReplayForms;
  onSendError: FanoutOptions['onSendError'];
  /** Longest a turn writes before yielding to the event loop (default 4 ms). */
  sliceMs?: number;
}

/** Catch-up counters, for stats. */
export interface CatchUpCounters {
  framesReplayed: number;
  bytesReplayed: number;
  /** Messages announced lost to a connection because history no longer held them. */
  messagesEvicted: number;
}

/** Replays history to connections that are behind. */
export class CatchUp {
  readonly counters: CatchUpCounters = { framesReplayed: 0, bytesReplayed: 0, messagesEvicted: 0 };
  readonly #options: CatchUpOptions;
  readonly #sliceMs: number;
  readonly #lowWater: number;
  /** Connections with lags, ready to be written to. */
  readonly #ready = new Set<Connection>();
  /** Connections with lags whose socket holds too much, with their 'drain' listener; also checked by #poll. */
  readonly #parked = new Map<Connection, () => void>();
  #turn: NodeJS.Immediate | null = null;
  #poll: NodeJS.Timeout | null = null;

  constructor(options: CatchUpOptions) {
    this.#options = options;
    this.#sliceMs = options.sliceMs ?? 4;
    this.#lowWater = Math.min(Math.floor(options.maxBufferedBytes / 2), 1024 * 1024);
  }

  /** Connections behind on at least one channel. */
  get lagging(): number {
    return this.#ready.size + this.#parked.size;
  }

  /**
   * Puts `connection` behind on `state`'s channel from `cursor` on; returns false if it
   * already was (its cursor stays). Call it in the same tick as the subscription (or the
   * skipped write) so no release falls in between.
   */
  start(connection: Connection, state: ChannelState, cursor: number, prefix: StoredFrame[] | null = null): boolean {
    const lags = (connection.lags ??= new Map<string, Lag>());
    if (lags.has(state.name)) return false;
    lags.set(state.name, { state, cursor, prefix: prefix !== null && prefix.length > 0 ? prefix : null });
    if (!this.#parked.has(connection)) this.#ready.add(connection);
    this.#schedule();
    return true;
  }

  /** Resolves once no connection is behind (polls; used at shutdown, under a deadline). */
  whenCaughtUp(intervalMs = 5): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.lagging > 0) return;
        clearInterval(timer);
        resolve();
      };
      const timer = setInterval(check, intervalMs);
      check();
    });
  }

  /** Forgets a connection that closed. */
  forget(connection: Connection): void {
    connection.lags = null;
    this.#ready.delete(connection);
    this.#unpark(connection);
  }

  /** Stops every replay (shutdown). */
  stop(): void {
    if (this.#turn !== null) clearImmediate(this.#turn);
    if (this.#poll !== null) clearInterval(this.#poll);
    this.#turn = null;
    this.#poll = null;
    this.#ready.clear();
    this.#parked.clear();
  }

  #schedule(): void {
    this.#turn ??= setImmediate(this.#run);
  }

  readonly #run = (): void => {
    this.#turn = null;
    const deadline = performance.now() + this.#sliceMs;
    for (const connection of this.#ready) {
      this.#ready.delete(connection);
      const lags = connection.lags;
      if (lags === null || lags.size === 0 || !connection.open) {
        connection.lags = null;
        continue;
      }
      // Replay writes many frames to one socket in a row: corked, they leave in one writev, not one write(2) each.
      const socket = connection.socket;
      socket.cork();
      try {
        for (const [channel, lag] of lags) {
          if (!this.#advance(connection, lag, deadline)) break;
          lags.delete(channel);
          // A batch of the channel still on its way to subscribers (sliced fan-out) may be one it just replayed.
          if (lag.state.fanoutPending > 0) (connection.liveFrom ??= new Map()).set(channel, lag.cursor);
        }
      } finally {
        socket.uncork();
      }
      if (lags.size === 0) connection.lags = null;
      else if (connection.socket.writableLength > this.#lowWater) this.#park(connection);
      else this.#ready.add(connection); // to the back of the line: turns go round
      if (performance.now() >= deadline) break;
    }
    if (this.#ready.size > 0) this.#schedule();
  };

  /** Writes `lag`'s frames until it is live (true) or the socket is full or the turn is over (false). */
  #advance(connection: Connection, lag: Lag, deadline: number): boolean {
    const { state } = lag;
    while (lag.cursor < state.nextSeq) {
      if (!connection.open) return true;
      if (connection.socket.writableLength > this.#lowWater || performance.now() >= deadline) return false;
      if (lag.prefix !== null) {
        this.#sendPrefix(connection, lag);
        continue;
      }
      const history = state.history;
      const earliest = history === null ? state.nextSeq : history.earliest(state.nextSeq);
      if (lag.cursor < earliest) {
        // Gone from history: say exactly what is lost, then go on from what is left.
        this.counters.messagesEvicted += earliest - lag.cursor;
        const gap = noticeFrame({ op: 'gap', channel: state.name, from: lag.cursor, to: earliest, reason: 'evicted' }, connection.format);
        if (gap !== null) writeFrame(connection, gap, this.#options.onSendError);
        lag.cursor = earliest;
        continue;
      }
      // Between entries means messages the server dropped: the jump in sequence numbers shows it.
      const entry = history!.find(lag.cursor)!;
      this.#replay(connection, state.name, entry);
      lag.cursor = entry.firstSeq + entry.count;
    }
    return true;
  }

  /** Sends the next frame read from the stream (older than local history); drops the prefix once spent. */
  #sendPrefix(connection: Connection, lag: Lag): void {
    const prefix = lag.prefix!;
    const frame = prefix.shift()!;
    if (prefix.length === 0) lag.prefix = null;
    if (frame.firstSeq + frame.count <= lag.cursor) return;
    this.#replay(connection, lag.state.name, frame);
    lag.cursor = frame.firstSeq + frame.count;
  }

  /** Writes one held batch to `connection`, in its form. */
  #replay(connection: Connection, channel: string, batch: CanonicalBatch): void {
    const frame = this.#options.forms.frame(channel, batch, connection.form);
    if (writeFrame(connection, frame, this.#options.onSendError)) {
      this.#options.counters.framesSent++;
      this.#options.counters.bytesSent += frame.byteLength;
      this.counters.framesReplayed++;
      this.counters.bytesReplayed += frame.byteLength;
    }
  }

  #park(connection: Connection): void {
    // 'drain' comes only after a write that returned false; the poll covers the rest.
    const drained = (): void => this.#unpark(connection);
    this.#parked.set(connection, drained);
    connection.socket.once('drain', drained);
    this.#poll ??= setInterval(this.#checkParked, 10);
  }

  #unpark(connection: Connection): void {
    const drained = this.#parked.get(connection);
    if (drained === undefined) return;
    this.#parked.delete(connection);
    connection.socket.off('drain', drained);
    if (connection.lags !== null) {
      this.#ready.add(connection);
      this.#schedule();
    }
    if (this.#parked.size === 0 && this.#poll !== null) {
      clearInterval(this.#poll);
      this.#poll = null;
    }
  }

  readonly #checkParked = (): void => {
    for (const connection of this.#parked.keys()) {
      if (!connection.open || connection.socket.writableLength <= this.#lowWater) this.#unpark(connection);
    }
  };
}
