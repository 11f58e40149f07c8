/**
 * Decodes one batchcast frame (the WebSocket message payload) into its messages.
 * Browser-safe: pako inflates and msgpackr unpacks; no Node-only APIs.
 */
import { Unpackr } from 'msgpackr';
import { inflateRaw } from 'pako';
import { ProtocolError } from '../errors.js';
import { KIND_BATCH, readEnvelopeHeader } from './envelope.js';

const unpackr = new Unpackr({ useRecords: false });
const utf8 = new TextDecoder();

/** A decoded frame: a batch of messages, or a notice from the server. */
export type DecodedFrame =
  | { kind: 'batch'; channel: string; firstSeq: number; codec: 'json' | 'msgpack'; compressed: boolean; messages: unknown[]; wireBytes: number; rawBytes: number }
  | { kind: 'notice'; channel: string; notice: Record<string, unknown> };

/** Inflates a raw DEFLATE body; callers may pass a faster native implementation (node:zlib). */
export type Inflate = (body: Uint8Array) => Uint8Array;

const pakoInflate: Inflate = (body) => inflateRaw(body);

/**
 * Decodes a binary frame. Throws {@link ProtocolError} naming what is wrong when the
 * bytes are not a valid batchcast v1 frame.
 */
export function decodeFrame(frame: Uint8Array, inflate: Inflate = pakoInflate): DecodedFrame {
  const header = readEnvelopeHeader(frame);
  if (typeof header === 'string') throw new ProtocolError(header);
  let body = frame.subarray(header.bodyOffset);
  if (header.kind !== KIND_BATCH) {
    return { kind: 'notice', channel: header.channel, notice: JSON.parse(utf8.decode(body)) as Record<string, unknown> };
  }
  if (header.compressed) {
    try {
      body = inflate(body);
    } catch (error) {
      throw new ProtocolError(`channel "${header.channel}": compressed body does not inflate (${(error as Error).message})`);
    }
  }
  let messages: unknown;
  try {
    messages = header.codec === 'json' ? JSON.parse(utf8.decode(body)) : unpackr.unpack(body);
  } catch (error) {
    throw new ProtocolError(`channel "${header.channel}": ${header.codec} body does not parse (${(error as Error).message})`);
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
