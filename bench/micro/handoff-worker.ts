// Piscina worker for bench/micro/handoff.ts.
//
// Does the real per-batch work for each hand-off form (serialize or splice,
// then zlib.deflateRawSync level 6) and returns an exact-size ArrayBuffer
// through Piscina.move(), so the main thread receives it by transfer.
//
// Task shapes (see HandoffTask):
//   ArrayBuffer                       body already encoded on main (JSON UTF-8 or a
//                                     complete msgpack array) -> deflate only
//   { k: 'json-objects', batch }      JSON.stringify in the worker
//   { k: 'json-string', body }        body string -> deflate
//   { k: 'json-parts', parts }        '[' + parts.join(',') + ']' in the worker
//   { k: 'mp-objects', batch }        msgpackr pack in the worker
//   { k: 'mp-parts', parts }          msgpack array header + concat of packed messages
//   { k: 'noop' }                     fixed-cost baseline: returns an 8-byte buffer
//   { k: 'stats' }                    returns (and resets) the worker's own timings

import { move } from 'piscina';
import { deflateRawSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { Packr, Unpackr } from 'msgpackr';

export interface Trade {
  type: 'trade';
  symbol: string;
  price: number;
  size: number;
  side: 'buy' | 'sell';
  ts: number;
  id: string;
  exchange: string;
  seq: number;
}

export type HandoffTask =
  | ArrayBuffer
  | { k: 'json-objects'; batch: Trade[] }
  | { k: 'json-string'; body: string }
  | { k: 'json-parts'; parts: string[] }
  | { k: 'mp-objects'; batch: Trade[] }
  | { k: 'mp-parts'; parts: Uint8Array[] }
  | { k: 'json-records' | 'mp-records'; packed: ArrayBuffer }
  | { k: 'noop' }
  | { k: 'stats' };

export interface WorkerStats {
  n: number;
  medianUs: number;
}

export const DEFLATE_LEVEL = 6;

// useRecords:false -> plain msgpack maps, so pack(batch) is byte-identical to
// arrayHeader(n) + concat(pack(msg) for each msg).
const packr = new Packr({ useRecords: false });
// What batchcast moves for plain values: msgpackr records, each shape written once per batch.
export const recordPackr = new Packr({ useRecords: true });
const recordUnpackr = new Unpackr({ useRecords: true, mapsAsObjects: false });

/** msgpack array header for n elements. */
export function msgpackArrayHeader(n: number): Uint8Array {
  if (n < 16) return Uint8Array.of(0x90 | n);
  if (n < 0x10000) return Uint8Array.of(0xdc, n >>> 8, n & 0xff);
  return Uint8Array.of(0xdd, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** Splice pre-packed msgpack messages into one msgpack array (header + concat). */
export function spliceMsgpack(parts: readonly Uint8Array[]): Uint8Array {
  const header = msgpackArrayHeader(parts.length);
  let total = header.length;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  out.set(header, 0);
  let off = header.length;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Copy a view into a fresh ArrayBuffer of exactly its length (safe to transfer). */
export function copyToExactArrayBuffer(view: Uint8Array): ArrayBuffer {
  const ab = new ArrayBuffer(view.byteLength);
  new Uint8Array(ab).set(view);
  return ab;
}

let durations: number[] = [];

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

function body(task: Exclude<HandoffTask, { k: 'noop' } | { k: 'stats' }>): Uint8Array | string {
  if (task instanceof ArrayBuffer) return new Uint8Array(task);
  switch (task.k) {
    case 'json-objects':
      return JSON.stringify(task.batch);
    case 'json-string':
      return task.body;
    case 'json-parts':
      return '[' + task.parts.join(',') + ']';
    case 'mp-objects':
      return packr.pack(task.batch); // view into packr's shared buffer: only read here
    case 'mp-parts':
      return spliceMsgpack(task.parts);
    case 'json-records':
      return JSON.stringify(recordUnpackr.unpack(new Uint8Array(task.packed)));
    case 'mp-records':
      return packr.pack(recordUnpackr.unpack(new Uint8Array(task.packed)));
  }
}

export default function handoff(task: HandoffTask): unknown {
  if (!(task instanceof ArrayBuffer)) {
    if (task.k === 'stats') {
      const stats: WorkerStats = { n: durations.length, medianUs: median(durations) * 1000 };
      durations = [];
      return stats;
    }
    if (task.k === 'noop') return move(new ArrayBuffer(8));
  }
  const t0 = performance.now();
  const compressed = deflateRawSync(body(task), { level: DEFLATE_LEVEL });
  // zlib's output may be a view into a larger chunk: always copy to an exact-size
  // ArrayBuffer before transferring (~1 µs for ~10 KB).
  const out = copyToExactArrayBuffer(compressed);
  durations.push(performance.now() - t0);
  return move(out);
}
