/** Stream positions as clients send them (`since`): an epoch token and a sequence number. Browser-safe. */

/** Where a channel's stream is: the epoch of its history and the next sequence number. */
export interface Position {
  epoch: string;
  seq: number;
}

/** Epochs are short tokens; anything else is refused, not compared. */
const EPOCH_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Checks a position; returns it, or a string saying what is wrong. */
export function parsePosition(value: unknown): Position | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'a position must be an object {"epoch": "...", "seq": N}';
  const { epoch, seq } = value as { epoch?: unknown; seq?: unknown };
  if (typeof epoch !== 'string' || !EPOCH_PATTERN.test(epoch)) return 'epoch must be 1-64 characters of [A-Za-z0-9_-]';
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return 'seq must be an integer from 0 to 2^53-1';
  return { epoch, seq };
}
