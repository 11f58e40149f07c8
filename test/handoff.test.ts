/**
 * The hand-off of a batch to a worker (src/encode/handoff.ts): plain values are
 * packed on the main thread with msgpackr records and moved; the worker rebuilds
 * them and serializes them for the wire. What comes out must be what the codec
 * would have made of the original values.
 */
import { Packr, unpack } from 'msgpackr';
import { Piscina } from 'piscina';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeBatch } from '../src/encode/encode-batch.js';
import { prepareHandoff } from '../src/encode/handoff.js';
import { defaultWorkerFilename } from '../src/encode/pool.js';
import type { EncodeResult, EncodeTask } from '../src/encode/task.js';
import { decodeFrame } from '../src/protocol/decode.js';
import { readEnvelopeHeader } from '../src/protocol/envelope.js';
import { trade, zlibInflate } from './helpers/harness.js';

const base: Omit<EncodeTask, 'items' | 'serialized'> = {
  channel: 'c', codec: 'json', compressionThreshold: 1 << 30, compressionLevel: 0, maxMessageBytes: 1 << 24, validateSerialized: true,
  compressionWindowBits: 15, smallWindowBits: 0, adler32: false,
};

/** The body of the frame the worker makes from the handed-off task. */
function bodyAfterHandoff(items: unknown[], codec: 'json' | 'msgpack' = 'json'): { body: Uint8Array; moved: boolean } {
  const handoff = prepareHandoff({ ...base, codec, items, serialized: null });
  const result = encodeBatch(handoff.task);
  const envelope = new Uint8Array(result.frame, result.envelopeOffset);
  const header = readEnvelopeHeader(envelope);
  if (typeof header === 'string') throw new Error(header);
  return { body: envelope.subarray(header.bodyOffset), moved: handoff.transferList !== undefined };
}

function jsonAfterHandoff(items: unknown[]): { text: string; moved: boolean } {
  const { body, moved } = bodyAfterHandoff(items);
  return { text: Buffer.from(body).toString(), moved };
}

/** Small seeded PRNG (mulberry32) so a failure names a reproducible seed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ['id', 'price', 'size', '', '0', '17', 'constructor', 'toString', 'ключ', 'a.b', 'émoji😀', 'k'];
const STRINGS = ['', 'plain', 'quote " and \\ backslash', 'line\nbreak\ttab', 'ünïcödé 中文 😀', '\u0000\u001f', 'x'.repeat(300)];
const NUMBERS = [0, -0, 1, -1, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, -(2 ** 31) - 1, -(2 ** 40), 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 60, 1e21, 0.1, -3.75, 1732550000000.125, 5e-324, Number.MAX_VALUE, NaN, Infinity, -Infinity];

/** A random value JSON can carry, plus the members JSON.stringify drops (undefined, functions). */
function randomValue(next: () => number, depth: number): unknown {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const kind = Math.floor(next() * (depth > 3 ? 5 : 9));
  switch (kind) {
    case 0: return pick(NUMBERS);
    case 1: return pick(STRINGS);
    case 2: return next() < 0.5;
    case 3: return null;
    case 4: return Math.round((next() - 0.5) * 1e6) / 100;
    case 5: return Array.from({ length: Math.floor(next() * 6) }, () => randomValue(next, depth + 1));
    case 6: return new Date(Math.floor(next() * 4e12));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = Math.floor(next() * 6); i > 0; i--) object[pick(KEYS)] = randomValue(next, depth + 1);
      if (next() < 0.1) object.skipped = undefined;
      if (next() < 0.05) object.method = () => 1;
      return object;
    }
  }
}

describe('hand-off of plain values (msgpackr records, moved)', () => {
  it('gives the JSON codec exactly what JSON.stringify gives, over 300 random batches', () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const next = rng(seed);
    for (let batch = 0; batch < 300; batch++) {
      const items = Array.from({ length: 1 + Math.floor(next() * 40) }, () => randomValue(next, 0));
      const { text, moved } = jsonAfterHandoff(items);
      expect(moved, `seed ${seed}, batch ${batch}`).toBe(true);
      expect(text, `seed ${seed}, batch ${batch}`).toBe(JSON.stringify(items));
    }
  });

  it('gives the msgpack codec the same values as packing the originals, over 300 random batches', () => {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const next = rng(seed);
    const plain = new Packr({ useRecords: false });
    for (let batch = 0; batch < 300; batch++) {
      const items = Array.from({ length: 1 + Math.floor(next() * 40) }, () => randomValue(next, 0));
      const { body, moved } = bodyAfterHandoff(items, 'msgpack');
      expect(moved).toBe(true);
      expect(unpack(body), `seed ${seed}, batch ${batch}`).toEqual(unpack(plain.pack(items)));
    }
  });

  it('keeps many shapes and wide objects apart within one batch', () => {
    const items = Array.from({ length: 3000 }, (_, i) => ({ [`k${i % 700}`]: i, [`j${i % 13}`]: 'x' }));
    items.push(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`wide${i}`, i])));
    expect(jsonAfterHandoff(items).text).toBe(JSON.stringify(items));
  });

  it('uses toJSON of class instances, as JSON.stringify does, and writes own fields of others', () => {
    class Price {
      constructor(readonly units: number, readonly scale: number) {}
      toJSON(): string {
        return (this.units / 10 ** this.scale).toFixed(this.scale);
      }
    }
    class Point {
      constructor(readonly x: number, readonly y: number) {}
      get length(): number {
        return Math.hypot(this.x, this.y);
      }
    }
    const items = [{ price: new Price(4312550, 2), at: new Point(3, 4), when: new Date(0) }];
    expect(jsonAfterHandoff(items).text).toBe('[{"price":"43125.50","at":{"x":3,"y":4},"when":"1970-01-01T00:00:00.000Z"}]');
  });

  it('keeps "__proto__" keys that JSON.parse made own properties (those batches are cloned instead)', () => {
    const items = [JSON.parse('{"__proto__":{"x":1},"a":1}'), trade(1)];
    const { text, moved } = jsonAfterHandoff(items);
    expect(moved).toBe(false);
    expect(text).toBe(JSON.stringify(items));
  });

  it('falls back to structured clone for what msgpackr cannot pack, and the worker names the culprit', () => {
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    for (const bad of [circular, { big: 2n ** 70n }]) {
      const items = [trade(0), bad, trade(2)];
      const handoff = prepareHandoff({ ...base, items, serialized: null });
      expect(handoff.transferList).toBeUndefined();
      const result = encodeBatch(handoff.task);
      expect(result.rejected?.map((r) => [r.index, r.code])).toEqual([[1, 'BATCHCAST_INVALID_MESSAGE']]);
      const frame = decodeFrame(new Uint8Array(result.frame, result.envelopeOffset), zlibInflate);
      expect(frame.kind === 'batch' && frame.messages).toEqual([trade(0), trade(2)]);
    }
  });

});

describe('hand-off through a real Piscina worker', () => {
  const piscina = new Piscina<EncodeTask, EncodeResult>({ filename: defaultWorkerFilename(), minThreads: 1, maxThreads: 1 });
  afterAll(() => piscina.destroy());

  it('moves the packed batch to the worker (the buffer is detached here, not copied) and gets the frame back', async () => {
    const items = Array.from({ length: 500 }, (_, i) => trade(i));
    const handoff = prepareHandoff({ ...base, items, serialized: null });
    const [buffer] = handoff.transferList!;
    expect(buffer!.byteLength).toBeGreaterThan(1000);
    const result = await piscina.run(handoff.task, { transferList: handoff.transferList });
    expect(buffer!.byteLength).toBe(0);
    const frame = decodeFrame(new Uint8Array(result.frame, result.envelopeOffset), zlibInflate);
    expect(frame.kind === 'batch' && frame.messages).toEqual(items);
  });

  it('gives values JSON has no form for the documented shapes (Set: array; byte arrays: index-keyed object; Map: {})', async () => {
    const items = [new Set([1, 2]), new Uint8Array([1, 2]), Buffer.from('hi'), new Map([['a', 1]])];
    const handoff = prepareHandoff({ ...base, items, serialized: null });
    const result = await piscina.run(handoff.task, { transferList: handoff.transferList });
    const envelope = new Uint8Array(result.frame, result.envelopeOffset);
    const header = readEnvelopeHeader(envelope);
    if (typeof header === 'string') throw new Error(header);
    expect(Buffer.from(envelope.subarray(header.bodyOffset)).toString()).toBe('[[1,2],{"0":1,"1":2},{"0":104,"1":105},{}]');
  });
});
