/** Channel names: 1–128 characters of [A-Za-z0-9_.:@/-]; ASCII only, so length is byte length. */
const CHANNEL_PATTERN = /^[A-Za-z0-9_.:@/-]{1,128}$/;

/** Longest channel name in characters (and bytes). */
export const MAX_CHANNEL_LENGTH = 128;

/** True when `name` is a valid channel name. */
export function isValidChannel(name: unknown): name is string {
  return typeof name === 'string' && CHANNEL_PATTERN.test(name);
}
