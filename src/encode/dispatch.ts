/**
 * Hands closed batches to the encoder pool: takes the channel's order ticket, builds the
 * task from the settings in force (the adaptive controller may change compression
 * between batches), and when the batch comes back completes the ticket (so the channel
 * moves on whatever happened) before anything is reported to user code.
 */
import { EncodeError, type InvalidMessageError, type MessageTooLargeError } from '../errors.js';
import type { Batch } from '../publish/batcher.js';
import { messageErrors } from '../release/release.js';
import type { Sequencer } from '../release/sequencer.js';
import { AbandonedError, type EncoderPool } from './pool.js';
import { encodeTask, type EncodeSettings } from './task.js';

export interface DispatchOptions {
  pool: EncoderPool;
  sequencer: Sequencer;
  /** Read for every batch: changes apply to the next batch dispatched. */
  settings: EncodeSettings;
  clustered: boolean;
  /** Whether a batch of the channel needs its frame: someone subscribes, history keeps it, or a broker takes it. */
  needsFrame: (state: Batch['state']) => boolean;
  /** Messages a worker left out of a batch (one error each). */
  onRejected: (errors: (InvalidMessageError | MessageTooLargeError)[]) => void;
  /** A batch no thread could encode (its messages became a gap). */
  onEncodeError: (error: EncodeError) => void;
  /** A batch the pool took finished (the pool has room again). */
  onDone: () => void;
}

/** Sends batches to the pool in ticket order and knows when none is left. */
export class EncodeDispatch {
  /** Messages workers rejected. */
  messagesRejected = 0;
  readonly #options: DispatchOptions;
  /** Resolved when the last batch in the pool finishes (see settled). */
  readonly #idle: (() => void)[] = [];

  constructor(options: DispatchOptions) {
    this.#options = options;
  }

  /** Encodes one closed batch (the batcher's `onBatch`). */
  readonly encode = (batch: Batch): void => {
    const { pool, sequencer, settings } = this.#options;
    const { state } = batch;
    const ticket = sequencer.ticket(state);
    if (!this.#options.needsFrame(state)) {
      // Nobody would read it: skip the hand-off and the worker, but in channel order, so the messages still take their numbers.
      // The pool's capacity did not change, so there is nothing for onDone to drain.
      sequencer.complete(state, ticket, { result: null, messages: batch.items.length, droppedBefore: batch.droppedBefore, openedAt: batch.openedAt, unheard: true });
      return;
    }
    pool.submit(encodeTask(settings, batch, this.#options.clustered), (error, result) => {
      // Release first (the channel moves on whatever happened), then tell user code.
      sequencer.complete(state, ticket, { result, messages: batch.items.length, droppedBefore: batch.droppedBefore, openedAt: batch.openedAt });
      if (result?.rejected) {
        this.messagesRejected += result.rejected.length;
        this.#options.onRejected(messageErrors(state.name, result.rejected, settings.maxMessageBytes));
      }
      if (result === null && !(error instanceof AbandonedError)) this.#options.onEncodeError(new EncodeError(state.name, error!.message, { cause: error }));
      if (pool.inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
      this.#options.onDone();
    }, state);
  };

  /** Resolves once no batch is being encoded. */
  settled(): Promise<void> {
    if (this.#options.pool.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}
