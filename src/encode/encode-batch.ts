/**
 * Serializes one batch, compresses it past the threshold and lays out the finished
 * WebSocket frame (the canonical form: an envelope; the other wire forms are laid out
 * from it by copying, see protocol/deflate-layout.ts). Runs on a worker thread; the pool also calls it inline as the
 * last resort when workers keep failing, so it must stay free of worker-only state.
 */
import { performance } from 'node:perf_hooks';
import { constants, deflateRawSync } from 'node:zlib';
import { Packr, Unpackr } from 'msgpackr';
import { ERROR_CODES } from '../errors.js';
import { FINAL_EMPTY_BLOCK, SYNC_TAIL, adler32 } from '../protocol/deflate-layout.js';
import { KIND_BATCH, envelopeHeaderLength, writeEnvelopeHeader } from '../protocol/envelope.js';
import { OPCODE_BINARY, wsFrameHeaderLength, writeWsFrameHeader } from '../protocol/ws-frame.js';
import { receiveHandoff } from './handoff.js';
import type { EncodeResult, EncodeTask, RejectedMessage, SmallDeflate } from './task.js';

// Plain maps, not msgpackr records: any msgpack decoder must read the frames.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

/** Encodes `task` into a finished frame. Bad messages are left out and listed in `rejected`. */
export function encodeBatch(handedOff: EncodeTask): EncodeResult {
  const started = performance.now();
  const { task, spliced } = receiveHandoff(handedOff);
  const rejected: RejectedMessage[] = [];
  const body = task.codec === 'json' ? jsonBody(task, rejected) : msgpackBody(task, rejected, spliced);
  const count = task.items.length - rejected.length;

  const deflated = deflateBody(task, body);
  const payloadLength = deflated === null ? body.byteLength : deflated.byteLength + FINAL_EMPTY_BLOCK.byteLength;
  const envelopeLength = envelopeHeaderLength(task.channel) + payloadLength;
  const envelopeOffset = wsFrameHeaderLength(envelopeLength);
  // A fresh exact-size ArrayBuffer: Node's pooled Buffers cannot be transferred (DataCloneError on Node 21+).
  const frame = new Uint8Array(new ArrayBuffer(envelopeOffset + envelopeLength));
  writeWsFrameHeader(frame, envelopeLength, OPCODE_BINARY);
  const bodyOffset = writeEnvelopeHeader(frame, envelopeOffset, KIND_BATCH, task.codec, deflated !== null, count, 0, task.channel);
  if (deflated === null) frame.set(body, bodyOffset);
  else {
    frame.set(deflated, bodyOffset);
    frame.set(FINAL_EMPTY_BLOCK, bodyOffset + deflated.byteLength);
  }

  return {
    frame: frame.buffer,
    envelopeOffset,
    count,
    rawBytes: body.byteLength,
    compressed: deflated !== null,
    deflate: deflated === null ? null : { windowBits: task.compressionWindowBits, adler32: task.adler32 ? adler32(body) : null },
    small: deflated === null || task.smallWindowBits === 0 ? null : smallCore(task.smallWindowBits, task.compressionLevel, body),
    encodeMicros: Math.round((performance.now() - started) * 1000),
    rejected: rejected.length === 0 ? null : rejected,
  };
}

/**
 * The body deflated as a fresh stream, sync-flushed (see protocol/deflate-layout.ts), when
 * it is over the threshold and comes out smaller (counting the final block); else null.
 */
function deflateBody(task: EncodeTask, body: Buffer): Buffer | null {
  if (task.compressionLevel === 0 || body.byteLength <= task.compressionThreshold) return null;
  const flushed = deflateRawSync(body, { level: task.compressionLevel, windowBits: task.compressionWindowBits, finishFlush: constants.Z_SYNC_FLUSH });
  return flushed.byteLength + FINAL_EMPTY_BLOCK.byteLength < body.byteLength && endsWithSyncTail(flushed) ? flushed : null;
}

/** The core of the body deflated for clients that allow a smaller window than the canonical frame's. */
function smallCore(windowBits: number, level: number, body: Buffer): SmallDeflate {
  const flushed = deflateRawSync(body, { level, windowBits, finishFlush: constants.Z_SYNC_FLUSH });
  // Structured clone carries it (one buffer moves per result); exact size, not a view of zlib's output.
  return { windowBits, core: Uint8Array.prototype.slice.call(flushed, 0, flushed.byteLength - SYNC_TAIL.byteLength) };
}

function endsWithSyncTail(bytes: Uint8Array): boolean {
  const at = bytes.byteLength - SYNC_TAIL.byteLength;
  return at >= 0 && SYNC_TAIL.every((byte, i) => bytes[at + i] === byte);
}

function isSerialized(task: EncodeTask, index: number, cursor: { next: number }): boolean {
  const serialized = task.serialized;
  if (serialized === null) return false;
  if (serialized === true) return true;
  if (serialized[cursor.next] === index) {
    cursor.next++;
    return true;
  }
  return false;
}

function jsonBody(task: EncodeTask, rejected: RejectedMessage[]): Buffer {
  const { items } = task;
  if (task.serialized === null) {
    // Fast path: one stringify for the whole batch; per-message work only if it fails or may be oversized.
    try {
      const text = JSON.stringify(items);
      if (text.length <= task.maxMessageBytes / 3 || Buffer.byteLength(text) <= task.maxMessageBytes) return Buffer.from(text);
    } catch {
      // fall through to find the culprits
    }
  }
  const parts: string[] = [];
  const cursor = { next: 0 };
  for (let i = 0; i < items.length; i++) {
    const serialized = isSerialized(task, i, cursor);
    const part = serialized ? checkSerializedJson(task, items[i], i, rejected) : stringifyOne(items[i], i, rejected);
    if (part === undefined) continue;
    const bytes = part.length * 3 <= task.maxMessageBytes ? part.length : Buffer.byteLength(part);
    if (bytes > task.maxMessageBytes) {
      rejected.push({ index: i, code: ERROR_CODES.MESSAGE_TOO_LARGE, reason: `${bytes} bytes, over maxMessageBytes (${task.maxMessageBytes})`, bytes });
      continue;
    }
    parts.push(part);
  }
  return Buffer.from(`[${parts.join(',')}]`);
}

function stringifyOne(value: unknown, index: number, rejected: RejectedMessage[]): string | undefined {
  try {
    const text = JSON.stringify(value);
    if (text !== undefined) return text;
    rejected.push({ index, code: ERROR_CODES.INVALID_MESSAGE, reason: `${typeof value} has no JSON representation` });
  } catch (error) {
    rejected.push({ index, code: ERROR_CODES.INVALID_MESSAGE, reason: (error as Error).message });
  }
  return undefined;
}

function checkSerializedJson(task: EncodeTask, value: unknown, index: number, rejected: RejectedMessage[]): string | undefined {
  if (typeof value !== 'string') {
    rejected.push({ index, code: ERROR_CODES.INVALID_MESSAGE, reason: 'pre-serialized message for the JSON codec must be a string' });
    return undefined;
  }
  if (task.validateSerialized) {
    try {
      JSON.parse(value);
    } catch (error) {
      rejected.push({ index, code: ERROR_CODES.INVALID_MESSAGE, reason: `pre-serialized message is not valid JSON (${(error as Error).message})` });
      return undefined;
    }
  }
  return value;
}

function msgpackBody(task: EncodeTask, rejected: RejectedMessage[], spliced?: Uint8Array): Buffer {
  const { items } = task;
  if (spliced !== undefined) {
    // Already contiguous: one validation pass over the whole run, per message only if it fails.
    const header = msgpackArrayHeader(items.length);
    const body = Buffer.allocUnsafeSlow(header.length + spliced.byteLength);
    body.set(header, 0);
    body.set(spliced, header.length);
    if (!task.validateSerialized || holdsArrayOf(body, items.length)) return body;
  } else if (task.serialized === null) {
    try {
      const packed = packr.pack(items);
      if (packed.byteLength <= task.maxMessageBytes) return Buffer.from(packed);
    } catch {
      // fall through to find the culprits
    }
  }
  const parts: Uint8Array[] = [];
  const cursor = { next: 0 };
  let total = 0;
  for (let i = 0; i < items.length; i++) {
    const serialized = isSerialized(task, i, cursor);
    const part = serialized ? checkSerializedMsgpack(task, items[i], i, rejected) : packOne(items[i], i, rejected);
    if (part === undefined) continue;
    if (part.byteLength > task.maxMessageBytes) {
      rejected.push({ index: i, code: ERROR_CODES.MESSAGE_TOO_LARGE, reason: `${part.byteLength} bytes, over maxMessageBytes (${task.maxMessageBytes})`, bytes: part.byteLength });
      continue;
    }
    parts.push(part);
    total += part.byteLength;
  }
  // A msgpack array is its header followed by its encoded elements: splice without re-encoding.
  const header = msgpackArrayHeader(parts.length);
  const body = Buffer.allocUnsafeSlow(header.length + total);
  body.set(header, 0);
  let offset = header.length;
  for (const part of parts) {
    body.set(part, offset);
    offset += part.byteLength;
  }
  return body;
}

function packOne(value: unknown, index: number, rejected: RejectedMessage[]): Uint8Array | undefined {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
    rejected.push({ index, code: ERROR_CODES.INVALID_MESSAGE, reason: `${typeof value} has no msgpack representation` });
    return undefined;
  }
  try {
    // pack() returns a view of msgpackr's reusable buffer: copy before the next call overwrites it.
    return Uint8Array.prototype.slice.call(packr.pack(value));
  } catch (error) {
    rejected.push({ index, code: ERROR_CODES.INVALID_MESSAGE, reason: (error as Error).message });
    return undefined;
  }
}

function checkSerializedMsgpack(task: EncodeTask, value: unknown, index: number, rejected: RejectedMessage[]): Uint8Array | undefined {
  if (!(value instanceof Uint8Array)) {
    rejected.push({ index, code: ERROR_CODES.INVALID_MESSAGE, reason: 'pre-serialized message for the msgpack codec must be a Uint8Array' });
    return undefined;
  }
  if (task.validateSerialized) {
    try {
      // Exactly one msgpack value, with nothing left over.
      if (unpackr.unpackMultiple(value).length !== 1) throw new Error('holds more than one msgpack value');
    } catch (error) {
      rejected.push({ index, code: ERROR_CODES.INVALID_MESSAGE, reason: `pre-serialized message is not one msgpack value (${(error as Error).message})` });
      return undefined;
    }
  }
  return value;
}

function holdsArrayOf(body: Uint8Array, count: number): boolean {
  try {
    const values = unpackr.unpackMultiple(body);
    return values.length === 1 && Array.isArray(values[0]) && values[0].length === count;
  } catch {
    return false;
  }
}

function msgpackArrayHeader(length: number): Uint8Array {
  if (length < 16) return Uint8Array.of(0x90 | length);
  if (length < 65536) return Uint8Array.of(0xdc, length >>> 8, length & 0xff);
  return Uint8Array.of(0xdd, length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
}
