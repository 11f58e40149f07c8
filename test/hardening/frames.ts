/** Hand-built server frames (envelopes) for client tests: what a batchcast server, or a hostile one, would send. */
import { KIND_BATCH, KIND_NOTICE, envelopeHeaderLength, writeEnvelopeHeader } from '../../src/protocol/envelope.js';

/** An uncompressed JSON batch envelope. */
export function batchEnvelope(channel: string, firstSeq: number, messages: unknown[]): Uint8Array {
  const body = Buffer.from(JSON.stringify(messages));
  const frame = new Uint8Array(envelopeHeaderLength(channel) + body.byteLength);
  const offset = writeEnvelopeHeader(frame, 0, KIND_BATCH, 'json', false, messages.length, firstSeq, channel);
  frame.set(body, offset);
  return frame;
}

/** A notice envelope whose body is `text` (not necessarily a valid notice). */
export function noticeEnvelope(text: string, channel = ''): Uint8Array {
  const body = Buffer.from(text);
  const frame = new Uint8Array(envelopeHeaderLength(channel) + body.byteLength);
  const offset = writeEnvelopeHeader(frame, 0, KIND_NOTICE, 'json', false, 0, 0, channel);
  frame.set(body, offset);
  return frame;
}
