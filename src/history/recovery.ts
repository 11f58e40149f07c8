/**
 * Recovery: a client subscribes with the position it had (epoch and the next sequence
 * number it expects) and gets what it missed from history, then the live stream, with
 * nothing lost or repeated in between (catch-up.ts). What history no longer holds is
 * announced in the `recovery` notice (`evicted`, with the exact count); a position from
 * another history (`epoch`: the server restarted) cannot be related to this one, so the
 * client is told the current position and joins live.
 */
import type { ChannelState } from '../channels.js';
import type { CatchUp } from '../fanout/catch-up.js';
import type { Notice, RecoveryStatus } from '../fanout/notice.js';
import type { Position } from '../protocol/position.js';
import type { StoredFrame } from '../broker/relay.js';
import type { Connection } from '../server/connection.js';

/** The `recovery` notice. */
export type RecoveryNotice = Extract<Notice, { op: 'recovery' }>;

/** Recovery counters, for stats. */
export type RecoveryCounters = Record<RecoveryStatus, number>;

/** Decides recoveries and starts their replay. */
export class Recovery {
  readonly counters: RecoveryCounters = { ok: 0, evicted: 0, epoch: 0 };
  readonly #catchUp: CatchUp;
  readonly #onRecovery: (connection: Connection, notice: RecoveryNotice) => void;

  /** `onRecovery` hears every recovery decided (its notice), after the replay has started. */
  constructor(catchUp: CatchUp, onRecovery: (connection: Connection, notice: RecoveryNotice) => void = () => {}) {
    this.#catchUp = catchUp;
    this.#onRecovery = onRecovery;
  }

  /**
   * Why `since` cannot be a position of `state`'s stream (ahead of its end), or null.
   * A position from another epoch is not refused: it gets an `epoch` recovery.
   */
  static refusal(state: ChannelState, since: Position): string | null {
    if (since.epoch !== state.epoch || since.seq <= state.nextSeq) return null;
    return `position ${since.seq} is past the end of the stream (next seq ${state.nextSeq})`;
  }

  /**
   * For a connection just subscribed to `state`'s channel, in the same tick: starts the
   * replay from `since` (not refused by {@link Recovery.refusal}) and returns the `recovery`
   * notice. `older` holds frames read from the cluster's stream that local history no
   * longer (or never) had, oldest first, ending where local history begins.
   */
  recover(connection: Connection, state: ChannelState, since: Position, older: StoredFrame[] | null = null): Notice {
    const notice = this.#decide(connection, state, since, older);
    this.#onRecovery(connection, notice);
    return notice;
  }

  #decide(connection: Connection, state: ChannelState, since: Position, older: StoredFrame[] | null): RecoveryNotice {
    const { epoch, nextSeq } = state;
    const base = { op: 'recovery' as const, channel: state.name, epoch, since: since.seq, to: nextSeq };
    if (since.epoch !== epoch) {
      this.counters.epoch++;
      return { ...base, status: 'epoch', from: nextSeq, missed: null };
    }
    const local = state.history === null ? nextSeq : state.history.earliest(nextSeq);
    const earliest = older !== null && older.length > 0 ? Math.min(older[0]!.firstSeq, local) : local;
    const from = Math.max(since.seq, earliest);
    if (from < nextSeq) this.#catchUp.start(connection, state, from, older);
    const missed = from - since.seq;
    this.counters[missed === 0 ? 'ok' : 'evicted']++;
    return { ...base, status: missed === 0 ? 'ok' : 'evicted', from, missed };
  }
}
