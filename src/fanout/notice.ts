/** Notice frames: server-to-client control information in a batchcast envelope. */
import type { ErrorCode } from '../errors.js';
import type { Position } from '../protocol/position.js';
import { KIND_NOTICE, envelopeHeaderLength, writeEnvelopeHeader } from '../protocol/envelope.js';
import type { Format } from '../protocol/formats.js';
import { OPCODE_BINARY, OPCODE_TEXT, wsFrameHeaderLength, writeWsFrameHeader } from '../protocol/ws-frame.js';

/** Notices the server sends; the protocol document lists their fields. */
export type Notice =
  | { op: 'subscribed'; channels: string[]; positions: Record<string, Position> }
  | { op: 'unsubscribed'; channels: string[] }
  | { op: 'recovery'; channel: string; status: RecoveryStatus; epoch: string; since: number; from: number; to: number; missed: number | null }
  | { op: 'gap'; channel: string; from: number; to: number; reason: 'evicted' }
  | { op: 'error'; code: ErrorCode; message: string; channel?: string };


/** How a recovery went: `ok` (all replayed), `evicted` (part was gone from history), `epoch` (another history). */
export type RecoveryStatus = 'ok' | 'evicted' | 'epoch';

/**
 * Builds a complete WebSocket frame holding `notice` for a client of `format`: an
 * envelope (`batchcast`), a JSON text frame (`json`), or null (`seed` has no notices).
 * Notices are small and rare: never transport-compressed.
 */
export function noticeFrame(notice: Notice, format: Format = 'batchcast'): Buffer | null {
  if (format === 'seed') return null;
  if (format === 'json') {
    const text = Buffer.from(JSON.stringify(notice));
    const headerLength = wsFrameHeaderLength(text.byteLength);
    const frame = Buffer.allocUnsafe(headerLength + text.byteLength);
    writeWsFrameHeader(frame, text.byteLength, OPCODE_TEXT);
    text.copy(frame, headerLength);
    return frame;
  }
  const channel = 'channel' in notice && notice.channel !== undefined ? notice.channel : '';
  const body = Buffer.from(JSON.stringify(notice));
  const envelopeLength = envelopeHeaderLength(channel) + body.byteLength;
  const headerLength = wsFrameHeaderLength(envelopeLength);
  const frame = Buffer.allocUnsafe(headerLength + envelopeLength);
  writeWsFrameHeader(frame, envelopeLength, OPCODE_BINARY);
  const bodyOffset = writeEnvelopeHeader(frame, headerLength, KIND_NOTICE, 'json', false, 0, 0, channel);
  body.copy(frame, bodyOffset);
  return frame;
}
