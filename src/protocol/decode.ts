/**
 * Decodes one batchcast frame (the WebSocket message payload) into its messages.
 * Browser-safe: msgpackr unpacks; no Node-only APIs. Envelope-compressed bodies need
 * an inflater from the caller (node:zlib, or pako from pako-inflate.ts): the browser
 * client loads pako only when such a frame arrives, and over permessage-deflate none does.
 */
import { Unpackr } from 'msgpackr';
import { ProtocolError } from '../errors.js';
import { KIND_BATCH, readEnvelopeHeader } from './envelope.js';

const unpackr = new Unpackr({ useRecords: false });
const utf8 = new TextDecoder();

/** A decoded frame: a batch of messages, or a notice from the server. */
export type DecodedFrame =
  | { kind: 'batch'; channel: string; firstSeq: number; codec: 'json' | 'msgpack'; compressed: boolean; messages: unknown[]; wireBytes: number; rawBytes: number }
  | { kind: 'notice'; channel: string; notice: Record<string, unknown> };

/**
 * Inflates a raw DEFLATE body, producing at most `maxBytes` (throw past that: a small
 * frame can inflate to gigabytes). Callers may pass a faster native implementation
 * (node:zlib with `maxOutputLength`).
 */
export type Inflate = (body: Uint8Array, maxBytes: number) => Uint8Array;

/** Default bound on an inflated body: far above any batch the server's defaults produce. */
export const DEFAULT_MAX_BODY_BYTES = 256 * 1024 * 1024;

/**
 * Decodes a binary frame (`inflate` is needed only for envelope-compressed bodies). Throws {@link ProtocolError} naming what is wrong, and
 * nothing else, for any bytes that are not a valid batchcast v1 frame: a hostile
 * or broken server cannot make it throw anything a client does not expect.
 */
export function decodeFrame(frame: Uint8Array, inflate?: Inflate, maxBodyBytes = DEFAULT_MAX_BODY_BYTES): DecodedFrame {
  if (!(frame instanceof Uint8Array)) throw new ProtocolError(`a frame must be a Uint8Array, got ${Object.prototype.toString.call(frame)}`);
  const header = readEnvelopeHeader(frame);
  if (typeof header === 'string') throw new ProtocolError(header);
  let body = frame.subarray(header.bodyOffset);
  if (header.kind !== KIND_BATCH) return { kind: 'notice', channel: header.channel, notice: parseNotice(body) };
  if (header.compressed) {
    if (inflate === undefined) throw new ProtocolError(`channel "${header.channel}": the body is compressed and no inflater was given (pakoInflate, or node:zlib inflateRawSync)`);
    try {
      body = inflate(body, maxBodyBytes);
    } catch (error) {
      throw new ProtocolError(`channel "${header.channel}": compressed body does not inflate (${describeError(error)})`);
    }
    if (!(body instanceof Uint8Array)) throw new ProtocolError(`channel "${header.channel}": the inflater returned no bytes`);
    // A custom inflater may not honour the bound.
    if (body.byteLength > maxBodyBytes) throw new ProtocolError(`channel "${header.channel}": inflated body of ${body.byteLength} bytes passes ${maxBodyBytes}`);
  }
  let messages: unknown;
  try {
    messages = header.codec === 'json' ? JSON.parse(utf8.decode(body)) : unpackr.unpack(body);
  } catch (error) {
    throw new ProtocolError(`channel "${header.channel}": ${header.codec} body does not parse (${describeError(error)})`);
  }
  if (!Array.isArray(messages) || messages.length !== header.count) {
    throw new ProtocolError(`channel "${header.channel}": header says ${header.count} messages, body holds ${Array.isArray(messages) ? messages.length : 'no array'}`);
  }
  return {
    kind: 'batch',
    channel: header.channel,
    firstSeq: header.firstSeq,
    codec: header.codec,
    compressed: header.compressed,
    messages,
    wireBytes: frame.byteLength,
    rawBytes: body.byteLength,
  };
}

/** A notice body: a JSON object with a string `op`. */
function parseNotice(body: Uint8Array): Record<string, unknown> {
  let notice: unknown;
  try {
    notice = JSON.parse(utf8.decode(body));
  } catch (error) {
    throw new ProtocolError(`notice body is not JSON (${describeError(error)})`);
  }
  if (notice === null || typeof notice !== 'object' || Array.isArray(notice) || typeof (notice as { op?: unknown }).op !== 'string') {
    throw new ProtocolError('notice body is not a JSON object with a string "op"');
  }
  return notice as Record<string, unknown>;
}

/** The message of whatever a parser or inflater threw (it may not be an Error). */
function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
