/**
 * Reading history for applications (`broadcaster.history()`, `GET /history/:channel`):
 * the held frames decoded back into messages. Frames are decoded on the main thread,
 * so a read is bounded by `limit` (at most 100 000 messages).
 */
import { inflateRawSync } from 'node:zlib';
import type { ChannelState } from '../channels.js';
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

/**
 * Reads `state`'s history (null: a channel with no live state, so nothing held; its
 * stream is at `idleNextSeq`). Throws InvalidConfigError for a bad query.
 */
export function readHistory(state: ChannelState | null, channel: string, epoch: string, idleNextSeq: number, query: HistoryQuery): HistoryPage {
  const limit = query.limit ?? 1000;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
    throw new InvalidConfigError('limit', `${String(limit)} is out of range; expected an integer 1..${MAX_HISTORY_LIMIT}`);
  }
  if (query.since !== undefined && (!Number.isSafeInteger(query.since) || query.since < 0)) {
    throw new InvalidConfigError('since', `${String(query.since)} is not a sequence number; expected an integer >= 0`);
  }
  const nextSeq = state?.nextSeq ?? idleNextSeq;
  const history = state?.history ?? null;
  const earliestSeq = history === null ? nextSeq : history.earliest(nextSeq);
  const since = query.since ?? earliestSeq;
  const page: HistoryPage = { channel, epoch: state?.epoch ?? epoch, nextSeq, earliestSeq, complete: since >= earliestSeq, messages: [], more: false };
  if (history === null) return page;
  for (let entry = history.find(since); entry !== undefined; entry = history.find(entry.firstSeq + entry.count)) {
    const frame = entry.frame;
    const decoded = decodeFrame(frame.subarray(wsPayloadOffset(frame)), inflate);
    if (decoded.kind !== 'batch') continue;
    for (let i = 0; i < decoded.messages.length; i++) {
      const seq = entry.firstSeq + i;
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
