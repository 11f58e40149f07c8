/**
 * Message shapes of the benchmark, as objects and as the JSON text a producer
 * that already holds serialized data would hand over. Every message carries its
 * publish time `t` (epoch ms, `performance.timeOrigin + performance.now()`, which
 * processes on one machine share) and a per-channel `seq`.
 */
import { performance } from 'node:perf_hooks';

export type Shape = 'trade' | 'book' | 'snapshot';
export const SHAPES: readonly Shape[] = ['trade', 'book', 'snapshot'];

/** Epoch milliseconds with sub-millisecond resolution, comparable across processes on one host. */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** A message factory: the same message as an object (`object`) or as JSON text (`json`). */
export interface Workload {
  shape: Shape;
  /** Approximate JSON size of one message. */
  approxBytes: number;
  object(seq: number, t: number): unknown;
  json(seq: number, t: number): string;
}

const SIDES = ['buy', 'sell'] as const;

/** ~160-byte trade: `{"type":"trade","symbol":"BTC-USD","price":…,"t":…,"seq":…}`. */
function tradeWorkload(): Workload {
  return {
    shape: 'trade',
    approxBytes: 160,
    object(seq, t) {
      return {
        type: 'trade', symbol: 'BTC-USD', price: 43125.5 + (seq % 1000) * 0.01, size: 0.0123 + (seq % 7) * 0.001,
        side: SIDES[seq & 1], t, id: `T${seq}`, exchange: 'coinbase', seq,
      };
    },
    // The same text JSON.stringify gives for object(): numbers print identically in both.
    json(seq, t) {
      return `{"type":"trade","symbol":"BTC-USD","price":${43125.5 + (seq % 1000) * 0.01},"size":${0.0123 + (seq % 7) * 0.001},"side":"${SIDES[seq & 1]}","t":${t},"id":"T${seq}","exchange":"coinbase","seq":${seq}}`;
    },
  };
}

/** ~1 KB order-book update: 10 bid and 10 ask levels. */
function bookWorkload(): Workload {
  const levels = (base: number, dir: number) => Array.from({ length: 10 }, (_, i) => [Math.round((base + dir * i * 0.5) * 100) / 100, Math.round((1 + i * 0.37) * 1000) / 1000]);
  const variants = Array.from({ length: 8 }, (_, k) => ({ bids: levels(43125 + k, -1), asks: levels(43125.5 + k, 1) }));
  const texts = variants.map((v) => ({ bids: JSON.stringify(v.bids), asks: JSON.stringify(v.asks) }));
  return {
    shape: 'book',
    approxBytes: 420,
    object(seq, t) {
      const v = variants[seq & 7]!;
      return { type: 'book', symbol: 'BTC-USD', t, seq, bids: v.bids, asks: v.asks };
    },
    json(seq, t) {
      const v = texts[seq & 7]!;
      return `{"type":"book","symbol":"BTC-USD","t":${t},"seq":${seq},"bids":${v.bids},"asks":${v.asks}}`;
    },
  };
}

/** One snapshot row: ~170 bytes of JSON. */
function snapshotRow(i: number, k: number) {
  return {
    symbol: `SYM${String(i).padStart(5, '0')}-PERP`, bid: 100 + ((i * 7 + k) % 997) * 0.25, ask: 100.25 + ((i * 7 + k) % 997) * 0.25,
    bidSize: ((i * 13 + k) % 500) + 0.5, askSize: ((i * 17 + k) % 500) + 0.25, last: 100.125 + ((i * 11 + k) % 997) * 0.25,
    volume: (i * 101 + k * 7) % 1_000_000, openInterest: (i * 37 + k) % 250_000, updated: 1732550000000 + i,
  };
}

/** Rows of JSON per megabyte, measured once: `rowsFor(1 << 20)` ≈ 6000 rows. */
export function rowsFor(bytes: number): number {
  const one = JSON.stringify(snapshotRow(12345, 1)).length + 1;
  return Math.max(1, Math.round(bytes / one));
}

/**
 * A snapshot of `rows` rows (~1 MB at ~6000 rows). Four prebuilt row sets rotate;
 * each message is a fresh top-level object holding one of them, so producing a
 * message costs the same tiny amount for every variant.
 */
function snapshotWorkload(rows: number): Workload {
  const sets = Array.from({ length: 4 }, (_, k) => Array.from({ length: rows }, (_, i) => snapshotRow(i, k)));
  const texts = sets.map((set) => JSON.stringify(set));
  return {
    shape: 'snapshot',
    approxBytes: texts[0]!.length + 40,
    object(seq, t) {
      return { type: 'snapshot', t, seq, rows: sets[seq & 3]! };
    },
    json(seq, t) {
      return `{"type":"snapshot","t":${t},"seq":${seq},"rows":${texts[seq & 3]!}}`;
    },
  };
}

/** Builds the workload for a shape (`rows` applies to `snapshot`). */
export function makeWorkload(shape: Shape, rows = 6000): Workload {
  if (shape === 'trade') return tradeWorkload();
  if (shape === 'book') return bookWorkload();
  return snapshotWorkload(rows);
}
