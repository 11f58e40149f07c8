/**
 * The segmented hand-off (src/encode/segments.ts): a batch packed in pieces, any number
 * of segments per turn, must come out of the worker's encoder byte for byte as the batch
 * packed in one go, in both codecs, with compression on and off.
 */
import { describe, expect, it } from 'vitest';
import { encodeBatch } from '../../src/encode/encode-batch.js';
import { prepareHandoff } from '../../src/encode/handoff.js';
import { SEGMENT_VALUES, SegmentWriter, readSegments, type StepOutcome } from '../../src/encode/segments.js';
import type { EncodeTask } from '../../src/encode/task.js';
import { trade } from '../helpers/harness.js';

const base: Omit<EncodeTask, 'items' | 'serialized' | 'codec' | 'compressionLevel'> = {
  channel: 'snapshots', compressionThreshold: 1000, maxMessageBytes: 1 << 26, validateSerialized: true,
  compressionWindowBits: 15, smallWindowBits: 0, adler32: false,
};

function row(i: number) {
  return { symbol: `SYM${i}`, bid: 100 + i * 0.25, ask: 100.5 + i * 0.25, size: i % 7, at: new Date(1_700_000_000_000 + i), tags: i % 3 === 0 ? ['a', 'ü'] : [] };
}

/** Packs `items` in segments, `segmentsPerStep` at most per step (a deadline in the past packs exactly one). */
function packInSegments(items: unknown[]): { writer: SegmentWriter; steps: number; outcome: StepOutcome } {
  const writer = new SegmentWriter(items);
  let steps = 0;
  let outcome: StepOutcome;
  do {
    outcome = writer.step(Number.NEGATIVE_INFINITY);
    steps++;
  } while (outcome === 'more');
  return { writer, steps, outcome };
}

function frameBytes(task: EncodeTask): Buffer {
  const result = encodeBatch(task);
  return Buffer.from(result.frame);
}

const batches: [string, () => unknown[]][] = [
  ['a snapshot object with two long arrays', () => [{ type: 'snapshot', seq: 7, rows: Array.from({ length: 1000 }, (_, i) => row(i)), ids: Array.from({ length: 300 }, (_, i) => i), note: 'end' }]],
  ['a message that is itself a long array', () => [Array.from({ length: 700 }, (_, i) => row(i))]],
  ['small messages around a large one', () => [
    ...Array.from({ length: 600 }, (_, i) => trade(i)),
    { type: 'book', levels: Array.from({ length: 2 * SEGMENT_VALUES + 1 }, (_, i) => [i, i * 2]) },
    new Map([['k', 1]]),
    ...Array.from({ length: 10 }, (_, i) => trade(i)),
  ]],
  ['values that need no split', () => [1, 'two', null, { a: [1, 2, 3] }, [4, 5], { n: 2n }]],
];

describe('segmented hand-off', () => {
  for (const [name, make] of batches) {
    for (const codec of ['json', 'msgpack'] as const) {
      for (const compressionLevel of [0, 6]) {
        it(`${name}: the same frame as one pack (${codec}, level ${compressionLevel})`, () => {
          const items = make();
          const task: EncodeTask = { ...base, codec, compressionLevel, items, serialized: null };
          const whole = frameBytes(prepareHandoff(task).task);
          const { writer, outcome } = packInSegments(items);
          expect(outcome).toBe('done');
          const packed = writer.finish();
          expect(packed.form).toBe('record-segments');
          expect(frameBytes({ ...task, items: [], packed })).toEqual(whole);
        });
      }
    }
  }

  it('splits long arrays into segments of at most SEGMENT_VALUES and keeps key order', () => {
    const message = { first: 1, rows: Array.from({ length: 1000 }, (_, i) => row(i)), middle: 'm', ids: Array.from({ length: 300 }, (_, i) => i), last: true };
    const { writer, steps } = packInSegments([message]);
    const packed = writer.finish();
    expect(packed.plan).toEqual([{ keys: ['rows', 'ids'], chunks: [4, 2] }]);
    // The skeleton, four pieces of rows, two of ids; one segment per step with the deadline past.
    expect(packed.segments).toHaveLength(7);
    expect(steps).toBe(7);
    const [rebuilt] = readSegments(packed) as [Record<string, unknown>];
    expect(Object.keys(rebuilt)).toEqual(['first', 'rows', 'middle', 'ids', 'last']);
    expect(JSON.stringify(rebuilt)).toBe(JSON.stringify(message));
  });

  it('packs several segments in one step while the deadline is ahead', () => {
    const items = [{ rows: Array.from({ length: 4 * SEGMENT_VALUES }, (_, i) => i) }];
    const writer = new SegmentWriter(items);
    expect(writer.step(Number.POSITIVE_INFINITY)).toBe('done');
    expect(writer.finish().segments).toHaveLength(5);
  });

  it('leaves class instances and deep arrays whole', () => {
    class Book {
      levels = Array.from({ length: 1000 }, (_, i) => i);
    }
    const { writer } = packInSegments([new Book(), { deep: { rows: Array.from({ length: 1000 }, (_, i) => i) } }]);
    expect(writer.finish().plan).toEqual([{ run: 2 }]);
  });

  it('asks for a structured clone when a segment holds a "__proto__" key', () => {
    const message = JSON.parse(`{"__proto__": {"x": 1}, "rows": [${Array.from({ length: 600 }, (_, i) => i).join(',')}]}`) as unknown;
    expect(packInSegments([message]).outcome).toBe('clone');
  });

  it('throws what msgpackr throws for a value it cannot pack', () => {
    const looped: Record<string, unknown> = { id: 1 };
    looped.self = looped;
    const writer = new SegmentWriter([{ rows: [...Array.from({ length: 600 }, (_, i) => i), looped] }]);
    expect(() => {
      while (writer.step(Number.NEGATIVE_INFINITY) === 'more');
    }).toThrow();
  });

  it('refuses segments that do not match their plan, naming what is wrong', () => {
    const { writer } = packInSegments([{ rows: Array.from({ length: 600 }, (_, i) => i) }]);
    const packed = writer.finish();
    expect(() => readSegments({ ...packed, count: 2 })).toThrow(/holds 1 messages in 4 of 4 segments, expected 2/);
    expect(() => readSegments({ ...packed, segments: packed.segments!.slice(0, 2) })).toThrow(/the plan needs more than its 2 segments/);
  });
});
