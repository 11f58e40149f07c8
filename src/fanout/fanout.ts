/**
 * Fan-out: one prepared frame, one socket write per subscriber, nothing else per
 * client. Every frame batchcast sends goes through {@link writeFrame}, so batches,
 * notices and ws's own control frames share one ordered path to the socket.
 */
import type { SlowClientPolicy } from '../config.js';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import type { Connection } from '../server/connection.js';
import { noticeFrame } from './notice.js';

export interface FanoutOptions {
  maxBufferedBytes: number;
  slowClientPolicy: SlowClientPolicy;
  /** Called for every write that failed (the other subscribers are unaffected). */
  onSendError: (connection: Connection, error: Error) => void;
  /** Called when a client first goes over `maxBufferedBytes` (per skipped run, or at its close). */
  onSlowClient: (connection: Connection, policy: SlowClientPolicy) => void;
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
    if (options.slowClientPolicy === 'close') {
      if (closeSlow(connection)) {
        counters.slowClosed++;
        options.onSlowClient(connection, 'close');
      }
    } else {
      connection.noticesDropped++;
    }
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

/** Sends one batch frame to every subscriber, applying the slow-client policy. */
export function fanOut(
  subscribers: ReadonlySet<Connection>,
  frame: Uint8Array,
  channel: string,
  firstSeq: number,
  count: number,
  options: FanoutOptions,
  counters: FanoutCounters,
): void {
  const { maxBufferedBytes, onSendError } = options;
  for (const connection of subscribers) {
    if (connection.socket.writableLength > maxBufferedBytes) {
      if (options.slowClientPolicy === 'close') {
        if (closeSlow(connection)) {
          counters.slowClosed++;
          options.onSlowClient(connection, 'close');
        }
      } else {
        if (recordSkip(connection, channel, firstSeq, count)) options.onSlowClient(connection, 'drop');
        counters.batchesSkipped++;
      }
      continue;
    }
    if (connection.skipped !== null) flushSkipNotice(connection, channel, onSendError);
    if (writeFrame(connection, frame, onSendError)) {
      counters.framesSent++;
      counters.bytesSent += frame.byteLength;
    }
  }
}

/** Starts closing a slow client; false if it was already closing. */
function closeSlow(connection: Connection): boolean {
  if (!connection.open) return false;
  connection.ws.close(CLOSE_CODES.SLOW_CONSUMER, 'slow consumer: outbound buffer over maxBufferedBytes');
  return true;
}

/** Records a skipped batch; true when it starts a new skipped run for the client. */
function recordSkip(connection: Connection, channel: string, firstSeq: number, count: number): boolean {
  const fresh = connection.skipped === null;
  const skipped = (connection.skipped ??= new Map());
  const range = skipped.get(channel);
  if (range === undefined) skipped.set(channel, { batches: 1, messages: count, fromSeq: firstSeq });
  else {
    range.batches++;
    range.messages += count;
  }
  return fresh;
}

function flushSkipNotice(connection: Connection, channel: string, onSendError: FanoutOptions['onSendError']): void {
  const range = connection.skipped!.get(channel);
  if (range === undefined) return;
  connection.skipped!.delete(channel);
  if (connection.skipped!.size === 0) connection.skipped = null;
  writeFrame(connection, noticeFrame({ op: 'skipped', channel, ...range }), onSendError);
}
