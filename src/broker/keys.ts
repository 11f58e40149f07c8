/**
 * Redis keys and the publish script of a batchcast cluster. Every key of a channel
 * carries the channel in a hash tag (`{…}`), so on Redis Cluster they live on one
 * shard and the script can touch them all.
 *
 *   bc:{<channel>}:e   the channel's epoch
 *   bc:{<channel>}:n   the last sequence number assigned + 1 (INCRBY)
 *   bc:{<channel>}:s   the stream (history): one entry per batch, id `<firstSeq>-1`,
 *                      fields c (message count), f (the finished frame, seq not stamped)
 *                      and d (how its body was deflated, see {@link deflateToken})
 *   bc:{<channel>}:f   the pub/sub channel frames are published on
 */

import type { DeflateInfo } from '../encode/task.js';

/** Keys of one channel, in the order the publish script takes them. */
export function channelKeys(prefix: string, channel: string): [epoch: string, next: string, stream: string, frames: string] {
  const base = `${prefix}{${channel}}`;
  return [`${base}:e`, `${base}:n`, `${base}:s`, `${base}:f`];
}

/** The channel a frames key belongs to, or null. */
export function channelOfFramesKey(prefix: string, key: string): string | null {
  if (!key.startsWith(`${prefix}{`) || !key.endsWith('}:f')) return null;
  return key.slice(prefix.length + 1, -3);
}

// Both scripts start by making sure the channel has an epoch: when Redis has none (first
// use, or Redis lost its data), a new one is set and the sequence and stream start over.
const ENSURE_EPOCH = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
  redis.call('DEL', KEYS[2], KEYS[3])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
`;

/**
 * One batch, atomically: assign it its sequence numbers (INCRBY by its messages plus
 * any dropped before it), append the frame to the capped stream and publish it. Redis
 * runs scripts one at a time, so sequence order is publish order on every node.
 *
 * KEYS: epoch, next, stream, frames. ARGV: new epoch, key TTL (ms), count, dropped,
 * frame, stream max length (entries, approximate), deflate token. Returns {epoch, firstSeq}.
 * Published payload: `<epoch>:<firstSeq>:<count>:<deflate token>:` followed by the frame bytes. On Redis
 * Cluster the frame goes out with SPUBLISH (sharded pub/sub: only the channel's shard
 * carries it, and the frames key shares the channel's hash tag, so the script may).
 */
export function publishScript(sharded: boolean): string {
  return PUBLISH_SCRIPT.replace("'PUBLISH'", sharded ? "'SPUBLISH'" : "'PUBLISH'");
}

const PUBLISH_SCRIPT = `${ENSURE_EPOCH}
local count = tonumber(ARGV[3])
local last = redis.call('INCRBY', KEYS[2], count + tonumber(ARGV[4]))
local first = last - count
if count > 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], first .. '-1', 'c', count, 'f', ARGV[5], 'd', ARGV[7])
  redis.call('PUBLISH', KEYS[4], epoch .. ':' .. first .. ':' .. count .. ':' .. ARGV[7] .. ':' .. ARGV[5])
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return {epoch, tostring(first)}
`;

/** The position of a channel: {epoch, next seq}; makes the epoch if there is none. KEYS and ARGV as above (first two). */
export const POSITION_SCRIPT = `${ENSURE_EPOCH}
return {epoch, redis.call('GET', KEYS[2]) or '0'}
`;

/**
 * How a frame's body was deflated, as text for Redis, so every node lays out the other
 * wire forms from the frame without re-encoding: `""` (not by us: uncompressed),
 * `<windowBits>` or `<windowBits>.<adler32>`.
 */
export function deflateToken(deflate: DeflateInfo | null): string {
  if (deflate === null) return '';
  return deflate.adler32 === null ? String(deflate.windowBits) : `${deflate.windowBits}.${deflate.adler32}`;
}

/** Reads a {@link deflateToken}; undefined when the text is not one. */
export function parseDeflateToken(token: string): DeflateInfo | null | undefined {
  if (token === '') return null;
  const match = /^(9|1[0-5])(?:\.(\d{1,10}))?$/.exec(token);
  if (match === null) return undefined;
  const adler = match[2] === undefined ? null : Number(match[2]);
  if (adler !== null && adler > 0xffffffff) return undefined;
  return { windowBits: Number(match[1]), adler32: adler };
}
