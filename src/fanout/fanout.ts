/**
 * Fan-out: one prepared frame, one socket write per subscriber, nothing else per
 * client (slices.ts spreads a large audience over event-loop turns). Every frame
 * batchcast sends goes through {@link writeFrame}, so batches, notices and ws's own
 * control frames share one ordered path to the socket.
 */
import type { ChannelState } from '../channels.js';
import type { SlowClientPolicy } from '../config.js';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import type { Connection } from '../server/connection.js';
import { CANONICAL_FORM } from './forms.js';
import type { BatchFrames } from './layout.js';

export interface FanoutOptions {
  maxBufferedBytes: number;
  slowClientPolicy: SlowClientPolicy;
  /** Called for every write that failed (the other subscribers are unaffected). */
  onSendError: (connection: Connection, error: Error) => void;
  /** Called when a client first goes over `maxBufferedBytes` (when it falls behind, or at its close). */
  onSlowClient: (connection: Connection, policy: SlowClientPolicy) => void;
  /** Puts a connection behind on a channel from `cursor` on (see catch-up.ts); false if it already was. */
  startLag: (connection: Connection, state: ChannelState, cursor: number) => boolean;
}

/** Per-fan-out counters, accumulated by the caller. */
export interface FanoutCounters {
  framesSent: number;
  bytesSent: number;
  batchesSkipped: number;
  slowClosed: number;
}

/**
 * Writes `frame` to the socket of an open connection. Returns false if the
 * connection is not open or the write threw.
 */
export function writeFrame(connection: Connection, frame: Uint8Array, onSendError: FanoutOptions['onSendError']): boolean {
  if (!connection.open) return false;
  try {
    connection.socket.write(frame);
    return true;
  } catch (error) {
    onSendError(connection, error as Error);
    return false;
  }
}

/**
 * Sends a notice (a reply to a control message) under the same `maxBufferedBytes`
 * bound as batches. Without it a client that sends requests and never reads the
 * replies makes the server queue ~150 bytes per request, without limit. Over the
 * bound, the `close` policy closes the client with 1013; `drop` leaves the notice
 * out and counts it on the connection.
 */
export function sendNotice(connection: Connection, frame: Uint8Array, options: FanoutOptions, counters: FanoutCounters): boolean {
  if (connection.socket.writableLength > options.maxBufferedBytes) {
    if (options.slowClientPolicy === 'close') closeSlow(connection, options, counters);
    else connection.noticesDropped++;
    return false;
  }
  return writeFrame(connection, frame, options.onSendError);
}

/**
 * Resolves once everything queued on the connection's socket has been handed to
 * the kernel, or the socket closed. Polls: a socket emits 'drain' only after a
 * write() that returned false, so a socket holding less than its high-water mark
 * empties without any event.
 */
export function whenFlushed(connection: Connection, intervalMs = 5): Promise<void> {
  const socket = connection.socket;
  return new Promise((resolve) => {
    const check = (): void => {
      if (socket.writableLength > 0 && !socket.destroyed) return;
      clearInterval(timer);
      socket.off('close', check);
      resolve();
    };
    const timer = setInterval(check, intervalMs);
    socket.on('close', check);
    check();
  });
}

/**
 * Sends one batch to one subscriber of `state`'s channel, in its form, applying the
 * slow-client policy. A subscriber behind on this channel (catching up from history)
 * is passed by: it reads this frame from history, in order. Under `drop`, a subscriber
 * over `maxBufferedBytes` falls behind from this frame on (`startLag`), and catches up
 * from history once its socket drains.
 */
export function sendBatch(connection: Connection, state: ChannelState, frames: BatchFrames, firstSeq: number, options: FanoutOptions, counters: FanoutCounters): void {
  if (connection.lags !== null && connection.lags.has(state.name)) {
    counters.batchesSkipped++;
    return;
  }
  if (connection.socket.writableLength > options.maxBufferedBytes) {
    if (options.slowClientPolicy === 'close') closeSlow(connection, options, counters);
    else {
      const fresh = connection.lags === null;
      if (options.startLag(connection, state, firstSeq) && fresh) options.onSlowClient(connection, 'drop');
      counters.batchesSkipped++;
    }
    return;
  }
  // Most subscribers take the canonical frame: one comparison; the others' forms are laid out once per batch.
  const frame = connection.form === CANONICAL_FORM ? frames.canonical : frames.for(connection.form);
  if (writeFrame(connection, frame, options.onSendError)) {
    counters.framesSent++;
    counters.bytesSent += frame.byteLength;
  }
}

/**
 * Corks the socket of every subscriber of `state`'s channel, for several frames written
 * to each in a row; the returned function uncorks exactly those sockets (a subscriber that
 * leaves meanwhile is not left corked), and each sends its frames in one writev.
 */
export function corkSubscribers(state: ChannelState): () => void {
  const sockets: Connection['socket'][] = [];
  for (const connection of state.subscribers) {
    connection.socket.cork();
    sockets.push(connection.socket);
  }
  return () => {
    for (const socket of sockets) socket.uncork();
  };
}

/** Starts closing a slow client with 1013 (counted and reported once: not if it was already closing). */
function closeSlow(connection: Connection, options: FanoutOptions, counters: FanoutCounters): void {
  if (!connection.open) return;
  connection.ws.close(CLOSE_CODES.SLOW_CONSUMER, 'slow consumer: outbound buffer over maxBufferedBytes');
  counters.slowClosed++;
  options.onSlowClient(connection, 'close');
}
