/**
 * Wire forms laid out from one compression: every form decodes with standard tools
 * (node:zlib with the receiver's window, pako), the test vectors in test/vectors/forms/
 * still come out byte for byte, and each form costs what it should (laid out once,
 * inflated only when a client needs the uncompressed body).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { constants, deflateRawSync, inflateRawSync, inflateSync } from 'node:zlib';
import { Inflate as PakoInflate, Z_SYNC_FLUSH, inflate as pakoZlibInflate } from 'pako';
import { describe, expect, it } from 'vitest';
import { encodeBatch } from '../../src/encode/encode-batch.js';
import type { EncodeTask } from '../../src/encode/task.js';
import { formKey, smallWindowNeeded, seedNeeded, type FormKey } from '../../src/fanout/forms.js';
import { BatchFrames, type LayoutCounters } from '../../src/fanout/layout.js';
import { decodeFrame } from '../../src/protocol/decode.js';
import { writeFirstSeq } from '../../src/protocol/envelope.js';
import { wsPayloadOffset } from '../../src/protocol/ws-frame.js';
import { zlibInflate } from '../helpers/harness.js';

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const ticks = Array.from({ length: 40 }, (_, i) => ({ s: 'ETH-USD', p: 2300 + i / 4, q: i % 5, side: i % 2 ? 'b' : 'a' }));
const task = (items: unknown[], extra: Partial<EncodeTask> = {}): EncodeTask => ({
  channel: 'ticker.ETH-USD', codec: 'json', compressionThreshold: 1000, compressionLevel: 6, compressionWindowBits: 12, maxMessageBytes: 1 << 20,
  validateSerialized: true, items, serialized: null, smallWindowBits: 0, adler32: true, ...extra,
});

function framesOf(t: EncodeTask, firstSeq: number, counters: LayoutCounters = { formsLaidOut: 0, bodiesInflated: 0 }) {
  const result = encodeBatch(t);
  writeFirstSeq(new DataView(result.frame), result.envelopeOffset, firstSeq);
  const batch = { firstSeq, count: result.count, frame: Buffer.from(result.frame), deflate: result.deflate };
  return { frames: new BatchFrames(t.channel, batch, result.small, counters), batch, counters, result };
}

/** A server frame: FIN, RSV1, opcode and payload. */
function parse(frame: Buffer) {
  expect(frame[0]! & 0x80).toBe(0x80);
  expect(frame[1]! & 0x80).toBe(0); // unmasked
  return { rsv1: (frame[0]! & 0x40) !== 0, opcode: frame[0]! & 0x0f, payload: frame.subarray(wsPayloadOffset(frame)) };
}

/**
 * What a permessage-deflate receiver with `windowBits` reads (RFC 7692 7.2.2: append
 * 00 00 ff ff, inflate), twice: node:zlib, and pako writing 256-byte chunks so that it
 * keeps only its window of history (one big output buffer would let any distance through).
 */
function receive(payload: Uint8Array, rsv1: boolean, windowBits: number): Buffer {
  if (!rsv1) return Buffer.from(payload);
  const data = Buffer.concat([payload, TAIL]);
  const zlib = inflateRawSync(data, { windowBits, finishFlush: constants.Z_SYNC_FLUSH });
  const strict = new PakoInflate({ raw: true, windowBits, chunkSize: 256 });
  const chunks: Uint8Array[] = [];
  strict.onData = (chunk: Uint8Array) => chunks.push(chunk);
  strict.push(data, Z_SYNC_FLUSH);
  if (strict.err !== 0) throw new Error(`pako, window ${windowBits}: ${strict.msg}`);
  expect(Buffer.concat(chunks).equals(zlib)).toBe(true);
  return zlib;
}

describe('wire-form test vectors (test/vectors/forms)', () => {
  const dir = new URL('../vectors/forms/', import.meta.url);
  const names = readdirSync(dir).filter((file) => file.endsWith('.hex')).map((file) => file.slice(0, -4));

  it('cover every form: batchcast over permessage-deflate (three windows), json plain and compressed, seed zlib and plain', () => {
    expect(names.sort()).toEqual(['batchcast-pmd', 'batchcast-pmd-window10', 'batchcast-pmd-window9', 'json-plain', 'json-pmd', 'json-small-pmd', 'seed-plain', 'seed-zlib']);
  });

  it.for(names)('%s reads, with standard inflaters and the smallest window it declares, as what its .json says', (name) => {
    const payload = Buffer.from(readFileSync(new URL(`${name}.hex`, dir), 'utf8').trim(), 'hex');
    const meta = JSON.parse(readFileSync(new URL(`${name}.json`, dir), 'utf8')) as {
      opcode: number; rsv1: boolean; windowBits: number; envelope?: unknown; json?: unknown; seed?: unknown;
    };
    expect(meta.rsv1).toBe(meta.windowBits > 0);
    const bytes = receive(payload, meta.rsv1, meta.windowBits || 15);
    if (meta.envelope !== undefined) {
      expect(meta.opcode).toBe(2);
      const decoded = decodeFrame(new Uint8Array(bytes));
      expect(decoded).toMatchObject(meta.envelope as object);
    } else if (meta.json !== undefined) {
      expect(meta.opcode).toBe(1);
      expect(JSON.parse(bytes.toString('utf8'))).toEqual(meta.json);
    } else {
      expect(meta.opcode).toBe(2);
      const text = bytes[0] === 0x78 ? new TextDecoder().decode(pakoZlibInflate(bytes)) : bytes.toString('utf8');
      if (bytes[0] === 0x78) expect(inflateSync(bytes).toString('utf8')).toBe(text); // zlib checks the Adler-32 too
      expect(JSON.parse(text)).toEqual(meta.seed);
    }
  });

  it('still come out of the encoder and the layout byte for byte', () => {
    const big = framesOf(task(ticks, { smallWindowBits: 10 }), 1000).frames;
    const small = framesOf(task([{ hello: 'world' }, 42], { channel: 'greetings' }), 7).frames;
    const made: Record<string, Buffer> = {
      'batchcast-pmd': big.for(formKey('batchcast', 15)), 'batchcast-pmd-window10': big.for(formKey('batchcast', 10)),
      'batchcast-pmd-window9': big.for(formKey('batchcast', 9)), 'json-plain': big.for(formKey('json', 0)), 'json-pmd': big.for(formKey('json', 15)),
      'seed-zlib': big.for(formKey('seed', 0)), 'seed-plain': small.for(formKey('seed', 0)), 'json-small-pmd': small.for(formKey('json', 15)),
    };
    for (const name of names) expect(parse(made[name]!).payload.toString('hex'), name).toBe(readFileSync(new URL(`${name}.hex`, dir), 'utf8').trim());
  });
});

describe('laying out the forms of one batch', () => {
  it('serves every permessage-deflate window from the same deflate (or the small one), laid out once per form, nothing inflated', () => {
    const { frames, counters, batch } = framesOf(task(ticks, { smallWindowBits: 10 }), 5);
    expect(frames.for(formKey('batchcast', 0))).toBe(batch.frame);
    const keys: [FormKey, number][] = [[formKey('batchcast', 15), 12], [formKey('batchcast', 12), 12], [formKey('batchcast', 11), 10], [formKey('batchcast', 10), 10], [formKey('json', 13), 12], [formKey('json', 10), 10]];
    for (const [key, window] of keys) {
      const { rsv1, payload } = parse(frames.for(key));
      expect(rsv1).toBe(true);
      // The receiver's own window: a stream that reached further back would not inflate.
      const bytes = receive(payload, true, window);
      if (key >> 4 === 0) expect(decodeFrame(new Uint8Array(bytes))).toMatchObject({ firstSeq: 5, compressed: false, messages: ticks });
      else expect(JSON.parse(bytes.toString())).toEqual({ channel: 'ticker.ETH-USD', seq: 5, messages: ticks });
      expect(frames.for(key)).toBe(frames.for(key));
    }
    expect(counters).toEqual({ formsLaidOut: keys.length, bodiesInflated: 0 });
    // A window no deflate fits (9 < 10), and json without transport compression: the uncompressed body, inflated once.
    const narrow = parse(frames.for(formKey('batchcast', 9)));
    expect(narrow.rsv1).toBe(false);
    expect(decodeFrame(new Uint8Array(narrow.payload))).toMatchObject({ firstSeq: 5, compressed: false, messages: ticks });
    expect(JSON.parse(parse(frames.for(formKey('json', 0))).payload.toString())).toEqual({ channel: 'ticker.ETH-USD', seq: 5, messages: ticks });
    expect(counters.bodiesInflated).toBe(1);
  });

  it('honours each window: a repeat 3 000 bytes back breaks a 1 KiB-window receiver unless its own deflate is used', () => {
    let seed = 7;
    const noise = Array.from({ length: 3000 }, () => String.fromCharCode(97 + ((seed = (seed * 48271) % 2147483647) % 26))).join('');
    const { frames } = framesOf(task([noise, noise], { smallWindowBits: 10 }), 0);
    const wide = parse(frames.for(formKey('batchcast', 15)));
    expect(() => receive(wide.payload, true, 10)).toThrow(/too far back/);
    expect(decodeFrame(new Uint8Array(receive(wide.payload, true, 12)))).toMatchObject({ messages: [noise, noise] });
    const narrow = parse(frames.for(formKey('batchcast', 10)));
    expect(decodeFrame(new Uint8Array(receive(narrow.payload, true, 10)))).toMatchObject({ messages: [noise, noise] });
  });

  it('keeps the canonical envelope a complete raw DEFLATE stream that pako and zlib read', () => {
    const { batch } = framesOf(task(ticks), 0);
    expect(decodeFrame(new Uint8Array(batch.frame.subarray(wsPayloadOffset(batch.frame))), zlibInflate)).toMatchObject({ compressed: true, messages: ticks });
  });

  it('produces messages valid for a receiver that keeps its context across messages (no takeover needed)', () => {
    const inflater = new PakoInflate({ raw: true, windowBits: 15 });
    const chunks: Uint8Array[] = [];
    inflater.onData = (chunk: Uint8Array) => chunks.push(chunk);
    for (let seq = 0; seq < 3; seq++) {
      const { frames } = framesOf(task(ticks.map((t) => ({ ...t, seq }))), seq * 40);
      const { payload } = parse(frames.for(formKey('json', 15)));
      chunks.length = 0;
      inflater.push(Buffer.concat([payload, TAIL]), Z_SYNC_FLUSH);
      expect(inflater.err).toBe(0);
      const text = Buffer.concat(chunks).toString();
      expect(JSON.parse(text)).toMatchObject({ seq: seq * 40, messages: ticks.map((t) => ({ ...t, seq })) });
    }
  });

  it('sends small batches as they are: no form needs a deflate or an inflate', () => {
    const { frames, counters, batch } = framesOf(task([{ hello: 'world' }, 42]), 7);
    expect(frames.for(formKey('batchcast', 15))).toBe(batch.frame);
    expect(parse(frames.for(formKey('json', 15)))).toMatchObject({ rsv1: false, opcode: 1 });
    expect(parse(frames.for(formKey('seed', 0))).payload.toString()).toBe('[{"hello":"world"},42]');
    expect(counters.bodiesInflated).toBe(0);
  });

  it('computes the seed checksum itself when the worker did not (a frame from another node), and falls back for a foreign stream', () => {
    const { batch } = framesOf(task(ticks, { adler32: false }), 0);
    expect(batch.deflate).toEqual({ windowBits: 12, adler32: null });
    const counters = { formsLaidOut: 0, bodiesInflated: 0 };
    const frames = new BatchFrames('ticker.ETH-USD', batch, null, counters);
    expect(JSON.parse(inflateSync(parse(frames.for(formKey('seed', 0))).payload).toString())).toEqual(ticks);
    expect(counters.bodiesInflated).toBe(1);
    // A body deflated by someone else (no sync-flush core): transport-compressing clients get it uncompressed.
    const body = Buffer.from(JSON.stringify(ticks));
    const foreign = Buffer.from(batch.frame);
    const envelope = wsPayloadOffset(foreign);
    const header = foreign.subarray(envelope, envelope + 18 + 'ticker.ETH-USD'.length);
    const other = deflateRawSync(body);
    const rebuilt = Buffer.concat([Buffer.from([0x82, 126, 0, 0]), header, other]);
    rebuilt.writeUInt16BE(header.byteLength + other.byteLength, 2);
    const fallback = new BatchFrames('ticker.ETH-USD', { firstSeq: 0, count: 40, frame: rebuilt, deflate: { windowBits: 12, adler32: null } }, null, counters);
    const { rsv1, payload } = parse(fallback.for(formKey('batchcast', 15)));
    expect(rsv1).toBe(false);
    expect(decodeFrame(new Uint8Array(payload))).toMatchObject({ compressed: false, messages: ticks });
  });
});

describe('what a batch asks of the worker', () => {
  it('a smaller deflate only for windows below the canonical one, the Adler-32 only for seed subscribers', () => {
    expect(smallWindowNeeded(null, 12)).toBe(0);
    expect(smallWindowNeeded(new Map([[formKey('batchcast', 15), 3], [formKey('json', 12), 1]]), 12)).toBe(0);
    expect(smallWindowNeeded(new Map([[formKey('batchcast', 11), 1], [formKey('json', 10), 1], [formKey('json', 0), 1]]), 12)).toBe(10);
    expect(smallWindowNeeded(new Map([[formKey('batchcast', 8), 1]]), 12)).toBe(0); // 8 bits: uncompressed transport
    expect(seedNeeded(new Map([[formKey('json', 15), 1]]))).toBe(false);
    expect(seedNeeded(new Map([[formKey('seed', 15), 1]]))).toBe(true);
  });
});
