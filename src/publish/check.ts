/**
 * The checks `publish` and `publishSerialized` make on the calling thread, before a
 * message joins its batch: the cheap ones only (a type, a length); everything that
 * needs serializing happens on a worker, and its failures arrive as `messageError`.
 */
import { InvalidMessageError, MessageTooLargeError } from '../errors.js';
import type { Codec } from '../protocol/envelope.js';

/** Throws InvalidMessageError for a value the codec has no encoding for (function, symbol, undefined; BigInt under JSON). */
export function checkMessage(channel: string, message: unknown, codec: Codec): void {
  const type = typeof message;
  if (type === 'object' || type === 'number' || type === 'string' || type === 'boolean' || (type === 'bigint' && codec === 'msgpack')) return;
  throw new InvalidMessageError(channel, `${type} has no ${codec} representation`);
}

/**
 * Throws for pre-serialized data of the wrong type for the codec (a string for json, a
 * Uint8Array for msgpack), or over `limit` bytes (MessageTooLargeError).
 */
export function checkSerialized(channel: string, data: unknown, codec: Codec, limit: number): void {
  if (codec === 'json') {
    if (typeof data !== 'string') throw new InvalidMessageError(channel, 'pre-serialized messages for the json codec must be strings');
    // UTF-8 takes at most 3 bytes per UTF-16 unit: count bytes only when the length alone cannot settle it.
    if (data.length > limit || (data.length * 3 > limit && Buffer.byteLength(data) > limit)) {
      throw new MessageTooLargeError(channel, Buffer.byteLength(data), limit);
    }
    return;
  }
  if (!(data instanceof Uint8Array)) throw new InvalidMessageError(channel, 'pre-serialized messages for the msgpack codec must be Uint8Arrays');
  if (data.byteLength > limit) throw new MessageTooLargeError(channel, data.byteLength, limit);
}
