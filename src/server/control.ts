/**
 * Control messages from clients: JSON text frames
 * `{"op":"subscribe"|"unsubscribe","channels":["a","b"]}`; a subscribe may add
 * `"since": {"a": {"epoch": "...", "seq": N}}` to recover channels from a position.
 */
import { ERROR_CODES, InvalidChannelError } from '../errors.js';
import { isValidChannel, MAX_CHANNELS_PER_CONTROL } from '../protocol/channel.js';

export type ControlMessage =
  | { op: 'subscribe'; channels: string[]; since: Record<string, unknown> | null }
  | { op: 'unsubscribe'; channels: string[] };

/** A control message the server refuses, with the code sent back in the error notice. */
export interface ControlError {
  code: typeof ERROR_CODES.BAD_CONTROL | typeof ERROR_CODES.INVALID_CHANNEL;
  message: string;
}

/** Parses and validates a control message; returns a {@link ControlError} describing the first problem. */
export function parseControl(text: string): ControlMessage | ControlError {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { code: ERROR_CODES.BAD_CONTROL, message: 'control message is not valid JSON' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { code: ERROR_CODES.BAD_CONTROL, message: 'control message must be a JSON object with "op" and "channels"' };
  }
  const { op, channels, since } = value as { op?: unknown; channels?: unknown; since?: unknown };
  if (op !== 'subscribe' && op !== 'unsubscribe') {
    return { code: ERROR_CODES.BAD_CONTROL, message: `unknown op ${JSON.stringify(op) ?? 'undefined'}: expected "subscribe" or "unsubscribe"` };
  }
  if (!Array.isArray(channels) || channels.length === 0 || channels.length > MAX_CHANNELS_PER_CONTROL) {
    return { code: ERROR_CODES.BAD_CONTROL, message: `"channels" must be an array of 1..${MAX_CHANNELS_PER_CONTROL} channel names` };
  }
  for (const channel of channels) {
    if (!isValidChannel(channel)) {
      return { code: ERROR_CODES.INVALID_CHANNEL, message: new InvalidChannelError(channel).message };
    }
  }
  if (op === 'unsubscribe') return { op, channels: channels as string[] };
  // Each position is checked where it is used, so one bad entry refuses only its channel.
  if (since !== undefined && (since === null || typeof since !== 'object' || Array.isArray(since))) {
    return { code: ERROR_CODES.BAD_CONTROL, message: '"since" must be an object of positions by channel: {"channel": {"epoch": "...", "seq": N}}' };
  }
  return { op, channels: channels as string[], since: (since as Record<string, unknown> | undefined) ?? null };
}

/** Channels named in a `?channels=a,b` query parameter (unvalidated). */
export function channelsFromUrl(url: string | undefined): string[] {
  const list = queryParameter(url, 'channels');
  return list === null || list === '' ? [] : list.split(',');
}

/** The value of query parameter `name` of a request URL, or null when absent. */
export function queryParameter(url: string | undefined, name: string): string | null {
  if (url === undefined) return null;
  const query = url.indexOf('?');
  return query === -1 ? null : new URLSearchParams(url.slice(query + 1)).get(name);
}
