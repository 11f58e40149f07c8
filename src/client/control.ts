/**
 * How the client asks for channels: a prefix of them in the connect URL, the rest
 * in control messages, each list cut to the limits servers hold to (count per
 * message, bytes per message, URL length); and the checks of what the application
 * gives (URL, channel names, positions), done before anything is sent. Browser-safe.
 */
import { InvalidChannelError, InvalidConfigError } from '../errors.js';
import { isValidChannel, MAX_CHANNELS_PER_CONTROL, MAX_CONTROL_BYTES, MAX_URL_CHANNELS_LENGTH } from '../protocol/channel.js';
import { parsePosition } from '../protocol/position.js';
import type { Position } from './positions.js';

/** Throws {@link InvalidChannelError} for the first name that is not a valid channel (a `,` included), before anything is sent. */
export function checkChannels(channels: readonly unknown[]): asserts channels is readonly string[] {
  for (const channel of channels) if (!isValidChannel(channel)) throw new InvalidChannelError(channel);
}

/**
 * The control messages (JSON text) that ask for `op` on `channels`, each within the
 * per-message limits. A subscribe carries the position of every channel `positionOf`
 * knows, so the server replays what was missed.
 */
export function controlMessages(
  op: 'subscribe' | 'unsubscribe',
  channels: readonly string[],
  positionOf: (channel: string) => Position | undefined = () => undefined,
): string[] {
  const messages: string[] = [];
  const overhead = JSON.stringify({ op, channels: [], since: {} }).length;
  let chunk: string[] = [];
  let since: Record<string, Position> = {};
  let bytes = overhead;
  const flush = () => {
    messages.push(JSON.stringify(Object.keys(since).length > 0 ? { op, channels: chunk, since } : { op, channels: chunk }));
    chunk = [];
    since = {};
    bytes = overhead;
  };
  for (const channel of channels) {
    const position = op === 'subscribe' ? positionOf(channel) : undefined;
    // Channel names are ASCII: length is bytes. Each adds its quotes and a comma, and its position if any.
    const cost = channel.length + 3 + (position === undefined ? 0 : channel.length + 4 + JSON.stringify(position).length);
    if (chunk.length === MAX_CHANNELS_PER_CONTROL || (chunk.length > 0 && bytes + cost > MAX_CONTROL_BYTES)) flush();
    chunk.push(channel);
    if (position !== undefined) since[channel] = position;
    bytes += cost;
  }
  if (chunk.length > 0) flush();
  return messages;
}

/** The longest prefix of `channels` whose `channels=` URL parameter stays within {@link MAX_URL_CHANNELS_LENGTH}. */
export function urlChannels(channels: readonly string[]): string[] {
  const prefix: string[] = [];
  let length = 0;
  for (const channel of channels) {
    // URLSearchParams writes ',' as %2C and ':', '@', '/' percent-encoded too.
    length += encodeURIComponent(channel).length + (prefix.length === 0 ? 0 : 3);
    if (length > MAX_URL_CHANNELS_LENGTH) break;
    prefix.push(channel);
  }
  return prefix;
}

/** Throws InvalidConfigError for a URL a WebSocket cannot connect to. */
export function checkUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new InvalidConfigError('url', `${JSON.stringify(url)} is not an absolute URL; expected ws://host:port/path or wss://…`);
  }
  if (!['ws:', 'wss:', 'http:', 'https:'].includes(protocol)) {
    throw new InvalidConfigError('url', `${JSON.stringify(url)} has protocol ${protocol}; expected ws:, wss:, http: or https:`);
  }
}

/** Checks a position given by the application (`since`); throws InvalidConfigError naming the channel. */
export function checkPosition(channel: string, position: unknown): Position {
  const parsed = parsePosition(position);
  if (typeof parsed === 'string') throw new InvalidConfigError(`since.${channel}`, parsed);
  return parsed;
}
