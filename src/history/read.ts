/**
 * Reading history for applications (`broadcaster.history()`, `GET /history/:channel`):
 * the held frames decoded back into messages. Frames are decoded on the main thread,
 * so a read is bounded by `limit` (at most 100 000 messages).
 */
import { inflateRawSync } from 'node:zlib';
import type { ChannelState } from '../channels.js';
import type { ChannelHistory } from './history.js';
import { InvalidConfigError } from '../errors.js';
import { decodeFrame } from '../protocol/decode.js';
import { wsPayloadOffset } from '../protocol/ws-frame.js';

/** What to read: messages from `since` on (default: the oldest held), at most `limit` (default 1000). */
export interface HistoryQuery {
  since?: number;
  limit?: number;
}

/** A page of history and where the stream stands. */
export interface HistoryPage {
  channel: string;
  epoch: string;
  /** The sequence number the next published message will get. */
  nextSeq: number;
  /** The oldest sequence number history still holds (`nextSeq` when it holds none). */
  earliestSeq: number;
  /** Whether history held everything from `since` on (false: some of it was evicted). */
  complete: boolean;
  messages: { seq: number; data: unknown }[];
  /** More messages follow the last one returned (ask again with `since` = its seq + 1). */
  more: boolean;
}

export const MAX_HISTORY_LIMIT = 100_000;
const inflate = (body: Uint8Array, maxBytes: number) => inflateRawSync(body, { maxOutputLength: maxBytes });

/** Checks a query; returns its limit. Throws InvalidConfigError naming the bad field. */
export function checkQuery(query: HistoryQuery): number {
  const limit = query.limit ?? 1000;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
    throw new InvalidConfigError('limit', `${String(limit)} is out of range; expected an integer 1..${MAX_HISTORY_LIMIT}`);
  }
  if (query.since !== undefined && (!Number.isSafeInteger(query.since) || query.since < 0)) {
    throw new InvalidConfigError('since', `${String(query.since)} is not a sequence number; expected an integer >= 0`);
  }
  return limit;
}

/** A held frame: where its messages start, how many, and the WebSocket frame itself. */
export interface HeldFrame {
  firstSeq: number;
  count: number;
  frame: Buffer;
}

/**
 * A page from held frames (oldest first, from the one holding `since`): their messages
 * from `since` on, at most `limit`, decoded.
 */
export function pageOf(
  where: { channel: string; epoch: string; nextSeq: number; earliestSeq: number },
  query: HistoryQuery,
  frames: Iterable<HeldFrame>,
): HistoryPage {
  const limit = checkQuery(query);
  const since = query.since ?? where.earliestSeq;
  const page: HistoryPage = { ...where, complete: since >= where.earliestSeq, messages: [], more: false };
  for (const held of frames) {
    const decoded = decodeFrame(held.frame.subarray(wsPayloadOffset(held.frame)), inflate);
    if (decoded.kind !== 'batch') continue;
    for (let i = 0; i < decoded.messages.length; i++) {
      const seq = held.firstSeq + i;
      if (seq < since) continue;
      if (page.messages.length === limit) {
        page.more = true;
        return page;
      }
      page.messages.push({ seq, data: decoded.messages[i] });
    }
  }
  return page;
}

/**
 * Reads this process's history of a channel (`state` null: no live state, so nothing
 * held; its stream is at `idleNextSeq`). Throws InvalidConfigError for a bad query.
 */
export function readHistory(state: ChannelState | null, channel: string, epoch: string, idleNextSeq: number, query: HistoryQuery): HistoryPage {
  checkQuery(query);
  const nextSeq = state?.nextSeq ?? idleNextSeq;
  const history = state?.history ?? null;
  const earliestSeq = history === null ? nextSeq : history.earliest(nextSeq);
  return pageOf({ channel, epoch: state?.epoch ?? epoch, nextSeq, earliestSeq }, query, history === null ? [] : held(history, query.since ?? earliestSeq));
}

function* held(history: ChannelHistory, since: number): Generator<HeldFrame> {
  for (let entry = history.find(since); entry !== undefined; entry = history.find(entry.firstSeq + entry.count)) yield entry;
}
