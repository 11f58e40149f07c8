/**
 * The release step: runs once per batch, in channel order. It gives the batch its
 * sequence numbers (stamped into the frame here, in release order, so messages a
 * worker rejected leave no gap), counts it, keeps the frame in history, then hands it
 * to fan-out (history first: a subscriber that fan-out passes by reads it there). A batch
 * that could not be encoded at all still moves the channel's sequence on, so
 * subscribers see its messages as a gap instead of losing them without a trace.
 */
import type { ChannelState, Released } from '../channels.js';
import type { FanoutSlices } from '../fanout/slices.js';
import type { DeflateInfo, RejectedMessage, SmallDeflate } from '../encode/task.js';
import { BatchFrames, type CanonicalBatch, type LayoutCounters } from '../fanout/layout.js';
import { ERROR_CODES, InvalidMessageError, MessageTooLargeError } from '../errors.js';
import type { HistoryStore } from '../history/history.js';
import { writeFirstSeq } from '../protocol/envelope.js';
import { wsPayloadOffset } from '../protocol/ws-frame.js';
import type { Observer } from '../observe/observer.js';

/** Counters the release step keeps. */
export interface ReleaseCounters {
  batches: number;
  rawBytes: number;
  wireBytes: number;
  encodeMicros: number;
  messagesDelivered: number;
  /** Batches that could not be encoded at all, and the messages they held. */
  batchesFailed: number;
  messagesFailed: number;
  /** Batches the worker also deflated with a smaller window (subscribers that allow no more). */
  smallDeflates: number;
  /** Batches not encoded because nobody would read them (no subscriber, no history, no broker), and their messages. */
  batchesUnheard: number;
  messagesUnheard: number;
}

/** Releases finished batches to their channel's subscribers. */
export class ReleaseStep {
  readonly counters: ReleaseCounters = {
    batches: 0, rawBytes: 0, wireBytes: 0, encodeMicros: 0, messagesDelivered: 0, batchesFailed: 0, messagesFailed: 0, smallDeflates: 0, batchesUnheard: 0, messagesUnheard: 0,
  };

  readonly #slices: FanoutSlices;
  readonly #observer: Observer;
  readonly #history: HistoryStore;
  readonly #layoutCounters: LayoutCounters;
  /** In a cluster: where finished batches go instead (Redis assigns the seq; every node delivers what it receives). */
  readonly #publish: PublishToBroker | null;

  constructor(
    slices: FanoutSlices,
    layoutCounters: LayoutCounters,
    observer: Observer,
    history: HistoryStore,
    publish: PublishToBroker | null = null,
  ) {
    this.#slices = slices;
    this.#layoutCounters = layoutCounters;
    this.#observer = observer;
    this.#history = history;
    this.#publish = publish;
  }

  /** Releases one batch of `state`'s channel; called in ticket order. */
  readonly release = (state: ChannelState, { result, messages, droppedBefore, openedAt, unheard }: Released): void => {
    const c = this.counters;
    if (unheard === true) {
      c.batchesUnheard++;
      c.messagesUnheard += messages;
      state.nextSeq += droppedBefore + messages;
      return;
    }
    if (result === null) {
      c.batchesFailed++;
      c.messagesFailed += messages;
      // Its messages still take their numbers: a gap of exactly them.
      if (this.#publish !== null) void this.#publish(state, 0, droppedBefore + messages, EMPTY, null);
      else state.nextSeq += droppedBefore + messages;
      return;
    }
    c.batches++;
    c.rawBytes += result.rawBytes;
    c.wireBytes += result.frame.byteLength;
    c.encodeMicros += result.encodeMicros;
    if (result.small !== null) c.smallDeflates++;
    const observer = this.#observer;
    observer.encoded(result.encodeMicros);
    // A Buffer over the transferred memory (no copy): socket.write converts any other Uint8Array per call, i.e. per subscriber.
    const frame = Buffer.from(result.frame);
    const { name } = state;
    const count = result.count;
    if (this.#publish !== null) {
      // In a cluster the frame reaches the sockets (of every node) once Redis has it: that ends its delay here.
      void this.#publish(state, count, droppedBefore, frame, result.deflate).then((ok) => {
        if (ok) observer.delivered(name, count, performance.now() - openedAt);
      });
    } else if (count === 0) state.nextSeq += droppedBefore;
    else {
      this.deliver(state, state.nextSeq + droppedBefore, count, frame, result.deflate, result.small);
      observer.delivered(name, count, performance.now() - openedAt);
    }
  };

  /**
   * Delivers a finished frame of `state`'s channel at `firstSeq`: stamps the sequence
   * number into it, moves the channel's position on, keeps the frame in history, fans it
   * out (laid out in each form its subscribers take).
   */
  deliver(state: ChannelState, firstSeq: number, count: number, frame: Buffer, deflate: DeflateInfo | null, small: SmallDeflate | null = null): void {
    writeFirstSeq(new DataView(frame.buffer, frame.byteOffset, frame.byteLength), wsPayloadOffset(frame), firstSeq);
    state.nextSeq = firstSeq + count;
    const batch: CanonicalBatch = { firstSeq, count, frame, deflate };
    this.#history.append(state, batch, Date.now());
    this.counters.messagesDelivered += count * state.subscribers.size;
    this.#slices.fanOut(state, new BatchFrames(state.name, batch, small, this.#layoutCounters), firstSeq);
  }
}

/** Hands a finished batch to the broker (cluster): Redis numbers it, every node delivers it. Resolves false if it did not reach Redis. */
export type PublishToBroker = (state: ChannelState, count: number, dropped: number, frame: Buffer, deflate: DeflateInfo | null) => Promise<boolean>;

const EMPTY = Buffer.alloc(0);

/** The `messageError` events for the messages a worker left out of a batch of `channel`. */
export function messageErrors(channel: string, rejected: readonly RejectedMessage[], maxMessageBytes: number): (InvalidMessageError | MessageTooLargeError)[] {
  return rejected.map((message) => message.code === ERROR_CODES.MESSAGE_TOO_LARGE
    ? new MessageTooLargeError(channel, message.bytes ?? 0, maxMessageBytes, message.index)
    : new InvalidMessageError(channel, message.reason, message.index));
}
