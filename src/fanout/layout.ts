/**
 * Lays out a batch in every wire form from its canonical frame, by copying: the
 * worker compressed the body once (protocol/deflate-layout.ts), and each form puts its
 * own literal header (an envelope header, a JSON prefix, a zlib header) around that
 * same compressed core. Runs on the main thread at release, once per batch per form a
 * subscriber needs (a few µs for a 10 KB frame), and in replays from history.
 *
 * Only two cases need the uncompressed body, inflated here once per batch: `json`
 * clients without transport compression, and transport-compressing clients whose
 * window is smaller than any deflate of the batch (they get uncompressed frames).
 */
import { inflateRawSync } from 'node:zlib';
import type { DeflateInfo, SmallDeflate } from '../encode/task.js';
import { ZLIB_HEADER, adler32, coreOfEnvelopeStream, writeStoredBlockHeader, STORED_HEADER_BYTES } from '../protocol/deflate-layout.js';
import { FLAG_COMPRESSED, HEADER_BYTES } from '../protocol/envelope.js';
import { JSON_BATCH_SUFFIX, jsonBatchPrefix } from '../protocol/formats.js';
import { OPCODE_BINARY, OPCODE_TEXT, wsFrameHeaderLength, wsPayloadOffset, writeWsFrameHeader } from '../protocol/ws-frame.js';
import { CANONICAL_FORM, FORM_KEYS, formatOf, windowOf, type FormKey } from './forms.js';

/** A batch as released: its canonical frame (seq stamped) and how its body was deflated. */
export interface CanonicalBatch {
  readonly firstSeq: number;
  readonly count: number;
  /** The complete WebSocket frame of the envelope. */
  readonly frame: Buffer;
  readonly deflate: DeflateInfo | null;
}

/** Layout counters, for stats. */
export interface LayoutCounters {
  /** Frames laid out in a form other than the canonical one. */
  formsLaidOut: number;
  /** Bodies inflated on the main thread to lay out an uncompressed form. */
  bodiesInflated: number;
}

// `}` as the one byte of a stored block that continues the core's open one (LEN 1, NLEN ~1), then the
// header byte of the empty stored block a permessage-deflate receiver completes with 00 00 ff ff.
const JSON_CLOSE_AFTER_CORE = Uint8Array.of(0x01, 0x00, 0xfe, 0xff, JSON_BATCH_SUFFIX.charCodeAt(0), 0x00);

/** The frames of one batch, laid out per form on first request and kept while the batch is. */
export class BatchFrames {
  readonly #channel: string;
  readonly #batch: CanonicalBatch;
  readonly #small: SmallDeflate | null;
  readonly #counters: LayoutCounters;
  #forms: (Buffer | undefined)[] | null = null;
  #raw: Uint8Array | null = null;
  /** Bytes laid out or inflated for this batch beyond the canonical frame. */
  bytes = 0;

  constructor(channel: string, batch: CanonicalBatch, small: SmallDeflate | null, counters: LayoutCounters) {
    this.#channel = channel;
    this.#batch = batch;
    this.#small = small;
    this.#counters = counters;
  }

  /** The canonical frame. */
  get canonical(): Buffer {
    return this.#batch.frame;
  }

  /** The frame for subscribers of form `key`. */
  for(key: FormKey): Buffer {
    if (key === CANONICAL_FORM) return this.#batch.frame;
    const forms = (this.#forms ??= new Array<Buffer | undefined>(FORM_KEYS));
    let frame = forms[key];
    if (frame === undefined) {
      frame = this.#layout(key);
      forms[key] = frame;
      if (frame !== this.#batch.frame) {
        this.#counters.formsLaidOut++;
        this.bytes += frame.byteLength;
      }
    }
    return frame;
  }

  #layout(key: FormKey): Buffer {
    const { frame, deflate } = this.#batch;
    const envelope = wsPayloadOffset(frame);
    const bodyOffset = envelope + HEADER_BYTES + this.#channel.length;
    const body = frame.subarray(bodyOffset);
    const compressed = (frame[envelope + 3]! & FLAG_COMPRESSED) !== 0;
    const window = windowOf(key);
    const core = compressed && deflate !== null ? this.#coreFor(window, body, deflate) : null;
    switch (formatOf(key)) {
      case 'batchcast': {
        if (!compressed) return frame;
        const header = frame.subarray(envelope, bodyOffset);
        return core === null ? envelopeFrame(header, this.#rawBody(body)) : pmdFrame(OPCODE_BINARY, header, core, null, true);
      }
      case 'json': {
        const prefix = Buffer.from(jsonBatchPrefix(this.#channel, this.#batch.firstSeq), 'latin1');
        if (core !== null) return pmdFrame(OPCODE_TEXT, prefix, core, JSON_CLOSE_AFTER_CORE, false);
        return concatFrame(OPCODE_TEXT, prefix, compressed ? this.#rawBody(body) : body, Buffer.from(JSON_BATCH_SUFFIX));
      }
      case 'seed': {
        if (!compressed) return concatFrame(OPCODE_BINARY, body);
        const check = Buffer.allocUnsafe(4);
        check.writeUInt32BE(deflate?.adler32 ?? adler32(this.#rawBody(body)));
        return concatFrame(OPCODE_BINARY, ZLIB_HEADER, body, check);
      }
    }
  }

  /** The compressed core a client with `window` may get (the canonical's, or the smaller-window one), or null. */
  #coreFor(window: number, body: Uint8Array, deflate: DeflateInfo): Uint8Array | null {
    if (window === 0) return null;
    if (deflate.windowBits <= window) return coreOfEnvelopeStream(body);
    const small = this.#small;
    return small !== null && small.windowBits <= window ? small.core : null;
  }

  /** The uncompressed body (inflated once per batch). */
  #rawBody(body: Uint8Array): Uint8Array {
    if (this.#raw === null) {
      this.#raw = inflateRawSync(body);
      this.#counters.bodiesInflated++;
      this.bytes += this.#raw.byteLength;
    }
    return this.#raw;
  }
}

/**
 * A permessage-deflate message (RSV1 set when `rsv1`): `literal` in a stored block, then
 * the compressed core, then `tail` (null: the core's own ending is the message's end).
 */
function pmdFrame(opcode: number, literal: Uint8Array, core: Uint8Array, tail: Uint8Array | null, clearCompressedFlag: boolean): Buffer {
  const payloadLength = STORED_HEADER_BYTES + literal.byteLength + core.byteLength + (tail?.byteLength ?? 0);
  const headerLength = wsFrameHeaderLength(payloadLength);
  const out = Buffer.allocUnsafe(headerLength + payloadLength);
  writeWsFrameHeader(out, payloadLength, opcode, true);
  let offset = writeStoredBlockHeader(out, headerLength, literal.byteLength);
  out.set(literal, offset);
  // The envelope inside says "not compressed": the transport inflates it, the client reads the body as is.
  if (clearCompressedFlag) out[offset + 3]! &= ~FLAG_COMPRESSED;
  offset += literal.byteLength;
  out.set(core, offset);
  if (tail !== null) out.set(tail, offset + core.byteLength);
  return out;
}

/** The envelope with an uncompressed body, as a plain binary frame. */
function envelopeFrame(header: Uint8Array, raw: Uint8Array): Buffer {
  const out = concatFrame(OPCODE_BINARY, header, raw);
  out[wsPayloadOffset(out) + 3]! &= ~FLAG_COMPRESSED;
  return out;
}

/** A plain (uncompressed-transport) frame whose payload is `parts` back to back. */
function concatFrame(opcode: number, ...parts: Uint8Array[]): Buffer {
  let payloadLength = 0;
  for (const part of parts) payloadLength += part.byteLength;
  const headerLength = wsFrameHeaderLength(payloadLength);
  const out = Buffer.allocUnsafe(headerLength + payloadLength);
  writeWsFrameHeader(out, payloadLength, opcode);
  let offset = headerLength;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/**
 * Replayed batches in forms other than the canonical one, kept for the next replays of
 * the same batches (a reconnect storm replays the same frames to many clients) within
 * a byte budget, least recently used out first.
 */
export class ReplayForms {
  readonly #budget: number;
  readonly #counters: LayoutCounters;
  readonly #cache = new Map<CanonicalBatch, BatchFrames>();
  #bytes = 0;

  constructor(budgetBytes: number, counters: LayoutCounters) {
    this.#budget = budgetBytes;
    this.#counters = counters;
  }

  /** The frame of `batch` (of `channel`) for form `key`. */
  frame(channel: string, batch: CanonicalBatch, key: FormKey): Buffer {
    if (key === CANONICAL_FORM) return batch.frame;
    let frames = this.#cache.get(batch);
    if (frames === undefined) frames = new BatchFrames(channel, batch, null, this.#counters);
    else this.#cache.delete(batch);
    this.#cache.set(batch, frames);
    const before = frames.bytes;
    const frame = frames.for(key);
    this.#bytes += frames.bytes - before;
    for (const [oldest, kept] of this.#cache) {
      if (this.#bytes <= this.#budget || oldest === batch) break;
      this.#cache.delete(oldest);
      this.#bytes -= kept.bytes;
    }
    return frame;
  }

  /** Forgets everything (shutdown). */
  clear(): void {
    this.#cache.clear();
    this.#bytes = 0;
  }
}
