/**
 * The wire formats a connection can ask for (`format` URL parameter), and the text
 * layout of the `json` format. Browser-safe.
 *
 *   batchcast  binary envelopes (envelope.ts): positions, notices, recovery.
 *   json       text frames `{"channel":…,"seq":…,"messages":[…]}` and notices as
 *              `{"op":…}` objects; any client reads them with JSON.parse.
 *   seed       the reference design's frames: a binary JSON array of the batch's
 *              messages, zlib-compressed (RFC 1950) past the compression threshold;
 *              no notices, no positions.
 */

export const FORMATS = ['batchcast', 'json', 'seed'] as const;
export type Format = (typeof FORMATS)[number];

/** Whether `value` names a format. */
export function isFormat(value: unknown): value is Format {
  return typeof value === 'string' && (FORMATS as readonly string[]).includes(value);
}

/**
 * The text a `json` batch frame starts with, up to its messages array. Channel names
 * are ASCII without quotes or backslashes, so they need no escaping.
 */
export function jsonBatchPrefix(channel: string, firstSeq: number): string {
  return `{"channel":"${channel}","seq":${firstSeq},"messages":`;
}

/** The text a `json` batch frame ends with, after its messages array. */
export const JSON_BATCH_SUFFIX = '}';
