/**
 * A broadcaster as a node of a cluster. The node that publishes a message batches and
 * encodes it as always, then hands the finished frame to Redis instead of delivering it:
 * Redis gives it its sequence numbers, keeps it in the channel's stream and publishes it.
 * Every node (the publisher too) delivers what its subscription receives, stamping the
 * sequence number into the very bytes that were encoded once: nothing is parsed or
 * re-encoded anywhere.
 *
 * Per channel, a node is linked to Redis (subscribed, position known) while it has local
 * subscribers. Frames arrive in sequence order; a jump (a reconnect to Redis, a slow
 * subscription) is filled from the stream before anything after it is delivered; an
 * epoch change (Redis lost its data) is announced to the channel's subscribers.
 */
import type { ChannelState, ChannelTable } from '../channels.js';
import { BrokerError } from '../errors.js';
import { writeFirstSeq } from '../protocol/envelope.js';
import type { Position } from '../protocol/position.js';
import { wsPayloadOffset } from '../protocol/ws-frame.js';
import { checkQuery, pageOf, readHistory, type HistoryPage, type HistoryQuery } from '../history/read.js';
import type { DeflateInfo } from '../encode/task.js';
import type { CanonicalBatch } from '../fanout/layout.js';
import type { BrokerFrame, RedisBroker } from './redis.js';

const EMPTY = Buffer.alloc(0);

/** A node's link to one channel in Redis (on its ChannelState). */
export interface ClusterLink {
  /** Subscribed in Redis and the position is known. */
  ready: boolean;
  syncing: Promise<void>;
  /** Frames received while syncing or while a gap is being filled, in arrival order; null otherwise. */
  held: BrokerFrame[] | null;
}

/** A frame read back from a stream, its seq stamped. */
export type StoredFrame = CanonicalBatch;

export interface RelayOptions {
  broker: RedisBroker;
  channels: ChannelTable;
  /** Drops a channel's local history (it would go stale, or belongs to an old epoch). */
  forgetHistory: (state: ChannelState) => void;
  /** Stamps, keeps in history and fans out a frame at `firstSeq` (ReleaseStep.deliver). */
  deliver: (state: ChannelState, firstSeq: number, count: number, frame: Buffer, deflate: DeflateInfo | null) => void;
  /** The channel's history started over in Redis (new epoch): its subscribers are told, local history dropped. */
  epochChanged: (state: ChannelState, oldEpoch: string, oldNextSeq: number) => void;
  /** A batch of `messages` on `channel` did not reach Redis; its numbers are taken by the next publish. */
  dropped: (channel: string, messages: number, error: BrokerError) => void;
}

/** Relay counters, for stats. */
export interface RelayCounters {
  /** Messages that never reached Redis. */
  messagesDropped: number;
  /** Frames read from a stream to fill a jump in the live subscription. */
  framesFilled: number;
  /** Sequence numbers a fill could not read from the stream (never reached Redis, or trimmed): a gap for this node's subscribers. */
  messagesLost: number;
  epochChanges: number;
}

/** Connects the local pipeline to Redis for one node. */
export class ClusterRelay {
  readonly counters: RelayCounters = { messagesDropped: 0, framesFilled: 0, messagesLost: 0, epochChanges: 0 };
  readonly #options: RelayOptions;
  /** Messages lost on the way to Redis, by channel: the next publish of the channel takes their numbers. */
  readonly #carry = new Map<string, number>();

  constructor(options: RelayOptions) {
    this.#options = options;
    options.broker.on('frame', this.#onFrame);
    options.broker.on('up', () => {
      // Messages dropped while Redis was away take their numbers now, not at the channel's next publish.
      for (const [channel, dropped] of [...this.#carry]) {
        this.#carry.delete(channel);
        options.broker.publish(channel, 0, dropped, EMPTY, null).catch(() => this.#carry.set(channel, (this.#carry.get(channel) ?? 0) + dropped));
      }
      // Frames published while this node was cut off never came through pub/sub: compare positions.
      for (const state of options.channels.values()) if (state.cluster?.ready === true) void this.#resync(state, state.cluster);
    });
  }

  /** Sends a finished batch to Redis (the release step, in channel order); resolves false if it did not get there (counted, reported). */
  readonly publish = (state: ChannelState, count: number, dropped: number, frame: Buffer, deflate: DeflateInfo | null): Promise<boolean> => {
    const channel = state.name;
    const carried = this.#carry.get(channel) ?? 0;
    this.#carry.delete(channel);
    return this.#options.broker.publish(channel, count, dropped + carried, frame, deflate).then(() => true, (error: BrokerError) => {
      this.#carry.set(channel, (this.#carry.get(channel) ?? 0) + count + dropped + carried);
      this.counters.messagesDropped += count;
      this.#options.dropped(channel, count, error);
      return false;
    });
  };

  /**
   * Links the channel to Redis if it is not: subscribes, then reads its position. Resolves
   * once the node delivers the channel live from that position on.
   */
  sync(state: ChannelState): Promise<void> {
    if (state.cluster !== null) return state.cluster.syncing;
    const link: ClusterLink = { ready: false, held: [], syncing: Promise.resolve() };
    state.cluster = link;
    link.syncing = this.#link(state, link);
    link.syncing.catch(() => {
      if (state.cluster === link) this.release(state);
    });
    return link.syncing;
  }

  /** Unlinks a channel that has no local subscribers left; its local history would go stale, so it goes. */
  release(state: ChannelState): void {
    if (state.cluster === null) return;
    state.cluster = null;
    this.#options.broker.unsubscribe(state.name);
    this.#options.forgetHistory(state);
    this.#options.channels.dropIfIdle(state);
  }

  /** Releases the link of a channel that ended up with no local subscriber (a refused or abandoned subscribe). */
  releaseIfUnused(state: ChannelState): void {
    if (state.subscribers.size === 0) this.release(state);
  }

  /**
   * Before a subscription is admitted: links the channel, and for a recovery from `since`
   * reads from the stream what local history does not hold (null: nothing needed).
   */
  async prepare(state: ChannelState, since: Position | undefined): Promise<StoredFrame[] | null> {
    // While Redis is away the link waits for it; the client gets an answer (an error notice) within the timeout.
    await withTimeout(this.sync(state), this.#options.broker.timeoutMs, `Redis did not answer within ${this.#options.broker.timeoutMs} ms`);
    if (since === undefined || since.epoch !== state.epoch) return null;
    const local = state.history === null ? state.nextSeq : state.history.earliest(state.nextSeq);
    return since.seq < local ? this.read(state, since.seq, local) : null;
  }

  /**
   * A page of the channel's history for an application (`history()` in a cluster): from
   * this node's local history when it is linked and holds `since`, else from the stream.
   */
  async history(state: ChannelState | undefined, channel: string, query: HistoryQuery): Promise<HistoryPage> {
    const limit = checkQuery(query);
    const local = state?.cluster?.ready === true ? state.history?.earliest(state.nextSeq) ?? state.nextSeq : Number.POSITIVE_INFINITY;
    if (state !== undefined && query.since !== undefined && query.since >= local) return readHistory(state, channel, state.epoch, state.nextSeq, query);
    const { broker } = this.#options;
    const { epoch, nextSeq } = await broker.position(channel);
    const [first] = await broker.read(channel, 0, nextSeq, 1);
    const earliestSeq = first?.firstSeq ?? nextSeq;
    const frames = await broker.read(channel, query.since ?? earliestSeq, nextSeq, limit);
    return pageOf({ channel, epoch, nextSeq, earliestSeq }, query, frames);
  }

  /** Frames `from`..`to − 1` of the channel's stream, seqs stamped, for a recovery that needs more than local history. */
  async read(state: ChannelState, from: number, to: number): Promise<StoredFrame[]> {
    const frames = await this.#options.broker.read(state.name, from, to);
    return frames.map((stored) => {
      const frame = Buffer.from(stored.frame);
      writeFirstSeq(new DataView(frame.buffer, frame.byteOffset, frame.byteLength), wsPayloadOffset(frame), stored.firstSeq);
      return { firstSeq: stored.firstSeq, count: stored.count, frame, deflate: stored.deflate };
    });
  }

  async #link(state: ChannelState, link: ClusterLink): Promise<void> {
    const { broker } = this.#options;
    await broker.subscribe(state.name);
    // Subscribed first, position second: every frame numbered from that position on comes through the subscription.
    const { epoch, nextSeq } = await broker.position(state.name);
    if (state.cluster !== link) return;
    if (epoch !== state.epoch) this.#options.forgetHistory(state);
    state.epoch = epoch;
    state.nextSeq = nextSeq;
    link.ready = true;
    this.#drain(state, link, []);
  }

  readonly #onFrame = (frame: BrokerFrame): void => {
    const state = this.#options.channels.get(frame.channel);
    const link = state?.cluster;
    if (state === undefined || link === null || link === undefined) return;
    if (link.held !== null) link.held.push(frame);
    else this.#accept(state, link, frame);
  };

  #accept(state: ChannelState, link: ClusterLink, frame: BrokerFrame): void {
    if (frame.epoch !== state.epoch) this.#newEpoch(state, frame.epoch, frame.firstSeq);
    if (frame.firstSeq + frame.count <= state.nextSeq) return; // delivered already (read from the stream)
    if (frame.firstSeq > state.nextSeq) {
      link.held = [frame];
      void this.#fill(state, link, state.nextSeq, frame.firstSeq);
      return;
    }
    // A copy of exact size: ours to stamp and keep, not a view of the client's read buffer.
    this.#options.deliver(state, frame.firstSeq, frame.count, Buffer.from(frame.frame), frame.deflate);
  }

  /**
   * Reads what the subscription missed (`from`..`to − 1`) from the stream, delivers it,
   * then what was held meanwhile. Numbers the stream does not hold are gone for good
   * (messages that never reached Redis, or entries trimmed away): the channel moves past
   * them, so its subscribers see the jump as a gap instead of the node waiting forever
   * for frames that cannot come.
   */
  async #fill(state: ChannelState, link: ClusterLink, from: number, to: number): Promise<void> {
    let stored: StoredFrame[] = [];
    try {
      stored = await this.read(state, from, to);
    } catch {
      // Redis went away again: what is held goes out with its jump; the next reconnect compares positions.
    }
    if (state.cluster !== link) return;
    this.counters.framesFilled += stored.length;
    this.#drain(state, link, stored, to);
  }

  /**
   * Delivers `stored` frames, moves the channel on to `lostUntil` (what the stream could not
   * give is a gap), then delivers the frames held meanwhile (which may start another fill).
   */
  #drain(state: ChannelState, link: ClusterLink, stored: StoredFrame[], lostUntil = 0): void {
    for (const frame of stored) if (frame.firstSeq >= state.nextSeq) this.#options.deliver(state, frame.firstSeq, frame.count, frame.frame, frame.deflate);
    if (state.nextSeq < lostUntil) {
      this.counters.messagesLost += lostUntil - state.nextSeq;
      state.nextSeq = lostUntil;
    }
    const held = link.held ?? [];
    link.held = null;
    for (let i = 0; i < held.length; i++) {
      this.#accept(state, link, held[i]!);
      // #accept may have started another fill (TypeScript cannot see it change `held`).
      const waiting = link.held as BrokerFrame[] | null;
      if (waiting !== null) {
        waiting.push(...held.slice(i + 1));
        return;
      }
    }
  }

  /** Redis started the channel's history over: the channel moves to it, local history goes, subscribers are told. */
  #newEpoch(state: ChannelState, epoch: string, nextSeq: number): void {
    const old = { epoch: state.epoch, nextSeq: state.nextSeq };
    state.epoch = epoch;
    state.nextSeq = nextSeq;
    this.#options.forgetHistory(state);
    this.counters.epochChanges++;
    this.#options.epochChanged(state, old.epoch, old.nextSeq);
  }

  /** After a reconnect to Redis: fill what was missed, or announce a new epoch. */
  async #resync(state: ChannelState, link: ClusterLink): Promise<void> {
    if (link.held !== null) return;
    link.held = [];
    let position: { epoch: string; nextSeq: number };
    try {
      position = await this.#options.broker.position(state.name);
    } catch {
      this.#drain(state, link, []);
      return;
    }
    if (state.cluster !== link) return;
    if (position.epoch !== state.epoch) {
      this.#newEpoch(state, position.epoch, position.nextSeq);
      this.#drain(state, link, []);
      return;
    }
    if (position.nextSeq > state.nextSeq) await this.#fill(state, link, state.nextSeq, position.nextSeq);
    else this.#drain(state, link, []);
  }
}

/** `promise`, or a BrokerError once `ms` have passed. */
function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new BrokerError(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
