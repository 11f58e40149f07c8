/** The messages passed between the main thread and the encoder workers. */
import type { ERROR_CODES } from '../errors.js';
import { seedNeeded, smallWindowNeeded } from '../fanout/forms.js';
import type { Batch } from '../publish/batcher.js';
import type { Codec } from '../protocol/envelope.js';
import type { PackedItems } from './handoff.js';

/** Settings that shape an encoded batch; fixed per broadcaster. */
export interface EncodeSettings {
  codec: Codec;
  compressionThreshold: number;
  compressionLevel: number;
  /** DEFLATE window of the canonical frame (9..15). */
  compressionWindowBits: number;
  maxMessageBytes: number;
  validateSerialized: boolean;
}

/** One batch of one channel, as handed to a worker. */
export interface EncodeTask extends EncodeSettings {
  channel: string;
  /** Messages in publish order: plain values, or pre-serialized strings/bytes at `serialized` indices. */
  items: unknown[];
  /** Indices of pre-serialized items; `null` when there are none, `true` when all are. */
  serialized: number[] | true | null;
  /** Set when the messages travel as one moved buffer instead of `items` (see handoff.ts). */
  packed?: PackedItems;
  /** Also deflate with this smaller window (subscribers allow no more); 0: no. */
  smallWindowBits: number;
  /** Return the Adler-32 of the body when compressed (for the `seed` format's zlib frames). */
  adler32: boolean;
}

/** How the canonical frame's body was deflated, so the other forms can be laid out from it. */
export interface DeflateInfo {
  windowBits: number;
  /** Adler-32 of the uncompressed body; null when not computed. */
  adler32: number | null;
}

/** The body deflated again with a smaller window: its core (see protocol/deflate-layout.ts). */
export interface SmallDeflate {
  windowBits: number;
  core: Uint8Array;
}

/** A message the encoder left out of its batch, and why. */
export interface RejectedMessage {
  index: number;
  code: typeof ERROR_CODES.INVALID_MESSAGE | typeof ERROR_CODES.MESSAGE_TOO_LARGE;
  reason: string;
  bytes?: number;
}

/** The finished batch: a complete WebSocket frame wrapping an envelope. */
export interface EncodeResult {
  /** WebSocket frame header + envelope; exact size, transferred (never copied) from the worker. */
  frame: ArrayBuffer;
  /** Offset of the envelope inside `frame` (the WebSocket header length). */
  envelopeOffset: number;
  /** Messages in the frame (the batch less rejected ones). */
  count: number;
  /** Serialized body size before compression. */
  rawBytes: number;
  compressed: boolean;
  /** Set when compressed: the body is core + sync tail + final empty block (protocol/deflate-layout.ts). */
  deflate: DeflateInfo | null;
  /** Set when asked for (`smallWindowBits`) and compressed. */
  small: SmallDeflate | null;
  /** Worker time spent on this batch, in microseconds. */
  encodeMicros: number;
  rejected: RejectedMessage[] | null;
}

/**
 * The task for a closed batch. What the channel's subscribers take decides the extras:
 * a deflate of their own for those that allow only a smaller window, and the Adler-32
 * for seed's zlib frames (in a cluster always: other nodes' subscribers are unknown here).
 */
export function encodeTask(settings: EncodeSettings, batch: Batch, clustered: boolean): EncodeTask {
  const { state } = batch;
  return {
    ...settings,
    channel: state.name,
    items: batch.items,
    serialized: batch.serialized,
    smallWindowBits: smallWindowNeeded(state.forms, settings.compressionWindowBits),
    adler32: clustered || seedNeeded(state.forms),
  };
}
