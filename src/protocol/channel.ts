/** Channel names: 1–128 characters of [A-Za-z0-9_.:@/-]; ASCII only, so length is byte length. */
const CHANNEL_PATTERN = /^[A-Za-z0-9_.:@/-]{1,128}$/;

/** Longest channel name in characters (and bytes). */
export const MAX_CHANNEL_LENGTH = 128;

/** True when `name` is a valid channel name. */
export function isValidChannel(name: unknown): name is string {
  return typeof name === 'string' && CHANNEL_PATTERN.test(name);
}

/** Most channels one control message may name (the server refuses more with `BATCHCAST_BAD_CONTROL`). */
export const MAX_CHANNELS_PER_CONTROL = 1000;

/**
 * Largest control message the client sends, in bytes: it splits longer channel lists
 * into several messages. Servers accept at least this much (`maxPayload` >= 8 KiB).
 */
export const MAX_CONTROL_BYTES = 8192;

/**
 * Longest `channels=` list the client puts in its connect URL, in characters (URL-encoded);
 * the rest follow as control messages. Proxies and servers commonly refuse request
 * lines over 8 KiB.
 */
export const MAX_URL_CHANNELS_LENGTH = 2048;
