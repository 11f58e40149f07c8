import { inflateRaw } from 'pako';
import { inflateRawSync } from 'node:zlib';
import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { encodeBatch } from '../src/encode/encode-batch.js';
import { prepareHandoff } from '../src/encode/handoff.js';
import type { EncodeTask } from '../src/encode/task.js';
import { decodeFrame } from '../src/protocol/decode.js';
import { readEnvelopeHeader, writeFirstSeq } from '../src/protocol/envelope.js';
import { loadVectors } from './helpers/vectors.js';
import { trade, zlibInflate } from './helpers/harness.js';

const base: Omit<EncodeTask, 'items' | 'serialized'> = {
  channel: 'c', codec: 'json', compressionThreshold: 1000, compressionLevel: 6, maxMessageBytes: 1 << 20, validateSerialized: true,
  compressionWindowBits: 15, smallWindowBits: 0, adler32: false,
};

function envelope(task: EncodeTask): { bytes: Uint8Array; compressed: boolean; rawBytes: number } {
  const result = encodeBatch(task);
  return { bytes: new Uint8Array(result.frame, result.envelopeOffset), compressed: result.compressed, rawBytes: result.rawBytes };
}

describe('encodeBatch (the code each worker runs)', () => {
  it('leaves a body of exactly compressionThreshold bytes uncompressed and compresses one byte more', () => {
    // ["xxx…"] is the string length + 4 bytes of JSON.
    const at = envelope({ ...base, items: ['x'.repeat(996)], serialized: null });
    expect(at.rawBytes).toBe(1000);
    expect(at.compressed).toBe(false);
    const over = envelope({ ...base, items: ['x'.repeat(997)], serialized: null });
    expect(over.rawBytes).toBe(1001);
    expect(over.compressed).toBe(true);
    expect(decodeFrame(over.bytes, zlibInflate).kind === 'batch' && decodeFrame(over.bytes, zlibInflate)).toMatchObject({ messages: ['x'.repeat(997)] });
  });

  it('never compresses with level 0', () => {
    expect(envelope({ ...base, compressionLevel: 0, items: ['y'.repeat(5000)], serialized: null }).compressed).toBe(false);
  });

  it('produces raw DEFLATE that pako and node:zlib both inflate to the serialized body', () => {
    const items = Array.from({ length: 500 }, (_, i) => trade(i));
    const { bytes, compressed } = envelope({ ...base, items, serialized: null });
    expect(compressed).toBe(true);
    const header = readEnvelopeHeader(bytes);
    if (typeof header === 'string') throw new Error(header);
    const body = bytes.subarray(header.bodyOffset);
    const viaPako = new TextDecoder().decode(inflateRaw(body));
    expect(viaPako).toBe(JSON.stringify(items));
    expect(inflateRawSync(body).toString()).toBe(viaPako);
    expect(body.byteLength).toBeLessThan(viaPako.length / 3);
  });

  it('encodes msgpack batches that any msgpack decoder reads as plain arrays of maps', () => {
    const items = [{ a: 1, nested: { b: [1, 2, 3] } }, 'text', 12345678901234n];
    const { bytes } = envelope({ ...base, codec: 'msgpack', items, serialized: null });
    const header = readEnvelopeHeader(bytes);
    if (typeof header === 'string') throw new Error(header);
    expect(header.codec).toBe('msgpack');
    expect(unpack(bytes.subarray(header.bodyOffset))).toEqual(items);
  });

  it('splices pre-serialized JSON strings verbatim, mixed with plain values in publish order', () => {
    const raw = '{"pre":"serialized","n":1}';
    const task: EncodeTask = { ...base, items: [{ plain: 0 }, raw, { plain: 2 }, '{"pre":3}'], serialized: [1, 3] };
    const frame = decodeFrame(envelope(task).bytes, zlibInflate);
    expect(frame.kind === 'batch' && frame.messages).toEqual([{ plain: 0 }, { pre: 'serialized', n: 1 }, { plain: 2 }, { pre: 3 }]);
  });

  it('splices pre-serialized JSON byte for byte: whitespace and key order survive, nothing is re-serialized', () => {
    const texts = ['{ "b":1,  "a" : 2 }', '[ 1 ,2 ]', '"\\u00e9"'];
    const { bytes } = envelope({ ...base, compressionLevel: 0, items: texts, serialized: true });
    const header = readEnvelopeHeader(bytes);
    if (typeof header === 'string') throw new Error(header);
    expect(Buffer.from(bytes.subarray(header.bodyOffset)).toString()).toBe(`[${texts.join(',')}]`);
  });

  it('splices pre-serialized msgpack bytes without re-encoding', () => {
    const items = Array.from({ length: 20 }, (_, i) => pack({ i, s: 'v'.repeat(i) }));
    const frame = decodeFrame(envelope({ ...base, codec: 'msgpack', items, serialized: true }).bytes, zlibInflate);
    expect(frame.kind === 'batch' && frame.messages).toEqual(Array.from({ length: 20 }, (_, i) => ({ i, s: 'v'.repeat(i) })));
  });

  it('moves all-pre-serialized msgpack batches as one transferable buffer and still finds a bad message', () => {
    const items = [pack({ a: 1 }), Uint8Array.of(0x82, 0xa1), pack('ok'), Uint8Array.of(0x01, 0x02)]; // truncated map; two values
    const handoff = prepareHandoff({ ...base, codec: 'msgpack', items, serialized: true });
    expect(handoff.transferList).toHaveLength(1);
    expect(handoff.task.items).toEqual([]);
    const result = encodeBatch(handoff.task);
    expect(result.rejected?.map((r) => r.index)).toEqual([1, 3]);
    const frame = decodeFrame(new Uint8Array(result.frame, result.envelopeOffset), zlibInflate);
    expect(frame.kind === 'batch' && frame.messages).toEqual([{ a: 1 }, 'ok']);
    const clean = encodeBatch(prepareHandoff({ ...base, codec: 'msgpack', items: [pack(1), pack([2])], serialized: true }).task);
    expect(clean.rejected).toBeNull();
    expect(clean.count).toBe(2);
  });

  it('writes arrays of 16+ and 65536+ msgpack elements with the right array headers', () => {
    for (const length of [15, 16, 65535, 65536]) {
      const items = Array.from({ length }, () => pack(1));
      const frame = decodeFrame(envelope({ ...base, codec: 'msgpack', compressionLevel: 0, items, serialized: true }).bytes, zlibInflate);
      expect(frame.kind === 'batch' && frame.messages.length).toBe(length);
    }
  });

  it('returns an exact-size ArrayBuffer holding a complete WebSocket frame', () => {
    for (const count of [1, 50, 5000]) {
      const result = encodeBatch({ ...base, compressionLevel: 0, items: Array.from({ length: count }, (_, i) => trade(i)), serialized: null });
      const frame = new Uint8Array(result.frame);
      expect(frame[0]).toBe(0x82); // FIN + binary
      const payloadLength = frame[1]! < 126 ? frame[1]! : frame[1] === 126 ? (frame[2]! << 8) | frame[3]! : Number(new DataView(result.frame).getBigUint64(2));
      expect(result.envelopeOffset + payloadLength).toBe(result.frame.byteLength);
    }
  });
});

describe('protocol test vectors (server side)', () => {
  const vectors = loadVectors();

  it('has vectors for both codecs, compressed and plain, and a notice', () => {
    expect(vectors.map((v) => v.name).sort()).toEqual(['json-deflate', 'json-plain', 'msgpack-deflate', 'msgpack-plain', 'notice-recovery']);
  });

  it.each(vectors.map((v) => [v.name, v] as const))('%s decodes to its expected content', (_name, vector) => {
    const frame = decodeFrame(vector.bytes, zlibInflate);
    if (frame.kind === 'notice') expect({ kind: 'notice', channel: frame.channel, notice: frame.notice }).toEqual(vector.expected);
    else {
      const { kind, channel, firstSeq, codec, compressed, messages } = frame;
      expect({ kind, channel, firstSeq, codec, compressed, messages }).toEqual(vector.expected);
    }
  });

  it.each(vectors.filter((v) => v.expected.kind === 'batch' && !v.expected.compressed).map((v) => [v.name, v] as const))(
    'the encoder reproduces %s byte for byte',
    (_name, vector) => {
      const { channel, codec, firstSeq, messages } = vector.expected;
      const result = encodeBatch({ ...base, channel, codec: codec as 'json' | 'msgpack', items: messages!, serialized: null });
      writeFirstSeq(new DataView(result.frame), result.envelopeOffset, firstSeq!);
      expect(Buffer.from(result.frame, result.envelopeOffset).toString('hex')).toBe(Buffer.from(vector.bytes).toString('hex'));
    },
  );

  it('rejects frames that are not batchcast v1 with a ProtocolError naming the problem', () => {
    const good = loadVectors().find((v) => v.name === 'json-plain')!.bytes;
    expect(() => decodeFrame(good.subarray(0, 10), zlibInflate)).toThrow(/shorter than the 18-byte header/);
    expect(() => decodeFrame(Uint8Array.of(0, ...good.subarray(1)), zlibInflate)).toThrow(/bad magic byte/);
    expect(() => decodeFrame(Uint8Array.of(0xbc, 9, ...good.subarray(2)), zlibInflate)).toThrow(/unsupported protocol version 9/);
    expect(() => decodeFrame(good.subarray(0, good.length - 3), zlibInflate)).toThrow(/json body does not parse/);
    const thrown = (() => {
      try {
        decodeFrame(good.subarray(0, 5), zlibInflate);
      } catch (error) {
        return error;
      }
    })();
    expect(thrown).toMatchObject({ code: 'BATCHCAST_PROTOCOL', name: 'ProtocolError' });
  });
});
