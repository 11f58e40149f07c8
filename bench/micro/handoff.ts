// Micro-benchmark: what does it cost the MAIN thread to hand one batch of 500
// trade messages to a Piscina worker (which serializes/splices + deflateRaw
// level 6 and transfers the result back), per hand-off form and codec?
//
// Two measurements per form:
//   sync   performance.now() around "prepare on main + pool.run(...)" with the
//          worker idle (one task at a time), median over many samples.
//   ELU    main-thread event-loop utilization over a steady run of N batches with
//          <= 2 in flight; busy µs per batch (includes receiving the result).
// Plus reference inline costs of the individual operations on the main thread.
//
// Run (see README.md):  node <outDir>/handoff.js [--samples=400] [--batches=2000]

import { Piscina, move } from 'piscina';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { Packr } from 'msgpackr';
import {
  copyToExactArrayBuffer,
  recordPackr,
  spliceMsgpack,
  DEFLATE_LEVEL,
} from './handoff-worker.js';
import type { HandoffTask, Trade, WorkerStats } from './handoff-worker.js';
import { argNum, f1, f2, median, pct, table } from './format.js';

// ---------------------------------------------------------------- parameters


const BATCH_SIZE = 500;
const DISTINCT_BATCHES = 32; // rotate through these so caches/JIT see varied data
const SYNC_WARMUP = argNum('warmup', 100);
const SYNC_SAMPLES = argNum('samples', 400);
const STEADY_BATCHES = argNum('batches', 2000);
const REF_SAMPLES = argNum('ref-samples', 300);

// ---------------------------------------------------------------- workload

function makeRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYMBOLS = ['BTC-USD', 'ETH-USD', 'SOL-USD'] as const;

function makeBatch(b: number): Trade[] {
  const rnd = makeRng(1000 + b);
  const out: Trade[] = [];
  for (let i = 0; i < BATCH_SIZE; i++) {
    const seq = 1_000_000 + b * BATCH_SIZE + i;
    out.push({
      type: 'trade',
      symbol: SYMBOLS[seq % SYMBOLS.length] ?? 'BTC-USD',
      price: Math.round((43125.5 + i * 0.01 + rnd() * 20) * 100) / 100,
      size: Math.round(rnd() * 2 * 1e6) / 1e6,
      side: rnd() < 0.5 ? 'buy' : 'sell',
      ts: 1732550000000 + seq * 3 + Math.floor(rnd() * 3),
      id: 'T' + (seq * 7919).toString(36).toUpperCase() + '-' + Math.floor(rnd() * 1e6),
      exchange: 'coinbase',
      seq,
    });
  }
  return out;
}

const packr = new Packr({ useRecords: false });

interface BatchData {
  objects: Trade[];
  jsonParts: string[]; // pre-serialized: one JSON string per message
  mpParts: Uint8Array[]; // pre-serialized: one packed message each, own exact ArrayBuffer
  jsonBody: Buffer; // expected UTF-8 of JSON.stringify(objects)
  mpBody: Uint8Array; // expected msgpack of the whole array
}

const batches: BatchData[] = [];
for (let b = 0; b < DISTINCT_BATCHES; b++) {
  const objects = makeBatch(b);
  const jsonParts = objects.map((o) => JSON.stringify(o));
  const mpParts = objects.map((o) => new Uint8Array(copyToExactArrayBuffer(packr.pack(o))));
  batches.push({
    objects,
    jsonParts,
    mpParts,
    jsonBody: Buffer.from(JSON.stringify(objects)),
    mpBody: new Uint8Array(copyToExactArrayBuffer(packr.pack(objects))),
  });
}

function batch(b: number): BatchData {
  const d = batches[b % DISTINCT_BATCHES];
  if (!d) throw new Error('no batch');
  return d;
}

// ---------------------------------------------------------------- stats helpers

// ---------------------------------------------------------------- forms

type Codec = 'json' | 'msgpack' | '-';

interface Form {
  key: string;
  codec: Codec;
  input: 'objects' | 'pre-serialized' | '-';
  label: string;
  /** main-thread preparation; returns the task to hand to pool.run */
  prep: (b: number) => HandoffTask;
  /** hand the (ArrayBuffer) task over with Piscina.move (transfer) */
  transfer: boolean;
}

/** Buffer.from(largeString) owns an exact-size ArrayBuffer (not the 8 KB pool) -> transfer it as is. */
function ownedOrCopy(buf: Buffer): ArrayBuffer {
  const ab = buf.buffer;
  if (ab instanceof ArrayBuffer && buf.byteOffset === 0 && buf.byteLength === ab.byteLength) return ab;
  ownedOrCopyFallbacks++;
  return copyToExactArrayBuffer(buf);
}
let ownedOrCopyFallbacks = 0;

const joinJson = (parts: readonly string[]): string => '[' + parts.join(',') + ']';

const forms: Form[] = [
  { key: 'a', codec: 'json', input: 'objects', label: 'objects (clone), stringify in worker', transfer: false,
    prep: (b) => ({ k: 'json-objects', batch: batch(b).objects }) },
  { key: 'b', codec: 'json', input: 'objects', label: 'stringify on main, pass string', transfer: false,
    prep: (b) => ({ k: 'json-string', body: JSON.stringify(batch(b).objects) }) },
  { key: 'c', codec: 'json', input: 'objects', label: 'stringify+Buffer.from+copy, move AB', transfer: true,
    prep: (b) => copyToExactArrayBuffer(Buffer.from(JSON.stringify(batch(b).objects))) },
  { key: 'c2', codec: 'json', input: 'objects', label: 'stringify+Buffer.from, move its own AB', transfer: true,
    prep: (b) => ownedOrCopy(Buffer.from(JSON.stringify(batch(b).objects))) },
  { key: 'd', codec: 'json', input: 'pre-serialized', label: 'string[] (clone), join in worker', transfer: false,
    prep: (b) => ({ k: 'json-parts', parts: batch(b).jsonParts }) },
  { key: 'e', codec: 'json', input: 'pre-serialized', label: 'join on main, pass string', transfer: false,
    prep: (b) => ({ k: 'json-string', body: joinJson(batch(b).jsonParts) }) },
  { key: 'f', codec: 'json', input: 'pre-serialized', label: 'join+Buffer.from+copy, move AB', transfer: true,
    prep: (b) => copyToExactArrayBuffer(Buffer.from(joinJson(batch(b).jsonParts))) },
  { key: 'f2', codec: 'json', input: 'pre-serialized', label: 'join+Buffer.from, move its own AB', transfer: true,
    prep: (b) => ownedOrCopy(Buffer.from(joinJson(batch(b).jsonParts))) },
  { key: 'g', codec: 'msgpack', input: 'objects', label: 'objects (clone), pack in worker', transfer: false,
    prep: (b) => ({ k: 'mp-objects', batch: batch(b).objects }) },
  { key: 'h', codec: 'msgpack', input: 'objects', label: 'Packr.pack on main + copy, move AB', transfer: true,
    prep: (b) => copyToExactArrayBuffer(packr.pack(batch(b).objects)) },
  { key: 'i', codec: 'msgpack', input: 'pre-serialized', label: 'Uint8Array[] (clone), splice in worker', transfer: false,
    prep: (b) => ({ k: 'mp-parts', parts: batch(b).mpParts }) },
  { key: 'j', codec: 'msgpack', input: 'pre-serialized', label: 'header+concat on main, move AB', transfer: true,
    prep: (b) => spliceMsgpack(batch(b).mpParts).buffer as ArrayBuffer },
  { key: 'k', codec: 'json', input: 'objects', label: 'records on main + copy, move AB (batchcast)', transfer: false,
    prep: (b) => ({ k: 'json-records', packed: copyToExactArrayBuffer(recordPackr.pack(batch(b).objects)) }) },
  { key: 'l', codec: 'msgpack', input: 'objects', label: 'records on main + copy, move AB (batchcast)', transfer: false,
    prep: (b) => ({ k: 'mp-records', packed: copyToExactArrayBuffer(recordPackr.pack(batch(b).objects)) }) },
  { key: 'z', codec: '-', input: '-', label: 'baseline: no-op task, 8-byte result', transfer: false,
    prep: () => ({ k: 'noop' }) },
];

// ---------------------------------------------------------------- pool

const workerUrl = new URL('./handoff-worker.js', import.meta.url);
const pool = new Piscina({
  filename: workerUrl.href,
  minThreads: 1,
  maxThreads: 1,
  idleTimeout: 60 * 60 * 1000,
});

/** Runs one form's task: moved whole (Piscina.move), with its packed buffer moved, or cloned. */
function runTask(f: Form, task: HandoffTask): Promise<unknown> {
  if (f.transfer) return pool.run(move(task as ArrayBuffer));
  if (typeof task === 'object' && 'packed' in task) return pool.run(task, { transferList: [task.packed] });
  return pool.run(task);
}

function runForm(f: Form, b: number): Promise<unknown> {
  const task = f.prep(b);
  return runTask(f, task);
}

// ---------------------------------------------------------------- 0. verification

async function verify(): Promise<void> {
  let checked = 0;
  for (const f of forms) {
    if (f.codec === '-') continue;
    for (let b = 0; b < 3; b++) {
      const res = await runForm(f, b);
      if (!(res instanceof ArrayBuffer)) throw new Error(`form ${f.key}: result is not an ArrayBuffer`);
      const d = batch(b);
      const expectedBody = f.codec === 'json' ? d.jsonBody : d.mpBody;
      const inflated = inflateRawSync(new Uint8Array(res));
      if (Buffer.compare(inflated, expectedBody) !== 0) throw new Error(`form ${f.key}: body mismatch`);
      const expectedDeflate = deflateRawSync(expectedBody, { level: DEFLATE_LEVEL });
      if (Buffer.compare(Buffer.from(res), expectedDeflate) !== 0) throw new Error(`form ${f.key}: deflate bytes differ`);
      checked++;
    }
  }
  console.log(`verified: ${checked} results (${forms.length - 1} forms x 3 batches) inflate to the expected body and are byte-identical to main-thread deflateRawSync level ${DEFLATE_LEVEL}`);
}

// ---------------------------------------------------------------- 1. sync cost

interface SyncResult { prep: number[]; run: number[]; total: number[]; notPosted: number }

async function measureSync(): Promise<Map<string, SyncResult>> {
  const res = new Map<string, SyncResult>();
  for (const f of forms) res.set(f.key, { prep: [], run: [], total: [], notPosted: 0 });
  // interleave forms round-robin so slow drift (other load on the box) hits all forms alike
  for (let r = 0; r < SYNC_WARMUP + SYNC_SAMPLES; r++) {
    for (const f of forms) {
      const t0 = performance.now();
      const task = f.prep(r);
      const t1 = performance.now();
      const p = runTask(f, task);
      const t2 = performance.now();
      const queued = pool.queueSize; // 0 => the task was posted to the worker inside run()
      await p;
      if (r >= SYNC_WARMUP) {
        const s = res.get(f.key);
        if (!s) throw new Error('unreachable');
        s.prep.push((t1 - t0) * 1000);
        s.run.push((t2 - t1) * 1000);
        s.total.push((t2 - t0) * 1000);
        if (queued !== 0) s.notPosted++;
      }
    }
  }
  return res;
}

// ---------------------------------------------------------------- 2. steady ELU

interface SteadyResult { active: number; n: number; wall: number; workerUs: number[] }

function steadyRun(f: Form, n: number): Promise<{ activeMs: number; wallMs: number }> {
  return new Promise((resolve, reject) => {
    let issued = 0;
    let done = 0;
    const e0 = performance.eventLoopUtilization();
    const w0 = performance.now();
    const onDone = (r: unknown): void => {
      if (!(r instanceof ArrayBuffer)) {
        reject(new Error(`form ${f.key}: bad result`));
        return;
      }
      done++;
      if (issued < n) issue();
      else if (done === n) {
        const e = performance.eventLoopUtilization(e0);
        resolve({ activeMs: e.active, wallMs: performance.now() - w0 });
      }
    };
    const issue = (): void => {
      const b = issued++;
      runForm(f, b).then(onDone, reject);
    };
    issue();
    if (n > 1) issue(); // <= 2 in flight: one running in the worker, one queued
  });
}

async function measureSteady(): Promise<Map<string, SteadyResult>> {
  const res = new Map<string, SteadyResult>();
  for (const f of forms) res.set(f.key, { active: 0, n: 0, wall: 0, workerUs: [] });
  const half = Math.ceil(STEADY_BATCHES / 2);
  // two passes, forward then reverse order, to cancel drift between forms
  for (const order of [forms, [...forms].reverse()]) {
    for (const f of order) {
      await steadyRun(f, 50); // warm
      await pool.run({ k: 'stats' }); // reset worker timings
      const { activeMs, wallMs } = await steadyRun(f, half);
      const ws = (await pool.run({ k: 'stats' })) as WorkerStats;
      const s = res.get(f.key);
      if (!s) throw new Error('unreachable');
      s.active += activeMs;
      s.wall += wallMs;
      s.n += half;
      if (Number.isFinite(ws.medianUs)) s.workerUs.push(ws.medianUs);
    }
  }
  return res;
}

// ---------------------------------------------------------------- 3. reference inline costs

function timeOp(samples: number, op: (b: number) => unknown): number {
  const xs: number[] = [];
  let sink = 0;
  for (let i = 0; i < Math.min(50, samples); i++) op(i); // warm
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    const r = op(i);
    const t1 = performance.now();
    if (r != null) sink++;
    xs.push((t1 - t0) * 1000);
  }
  if (sink < 0) console.log(sink);
  return median(xs);
}

function reference(): void {
  const cheap = REF_SAMPLES * 3;
  const rows: [string, number][] = [
    ['JSON.stringify(batch of 500 objects)', timeOp(cheap, (b) => JSON.stringify(batch(b).objects))],
    ["'[' + parts.join(',') + ']' (500 pre-serialized)", timeOp(cheap, (b) => joinJson(batch(b).jsonParts))],
    ['Buffer.from(jsonBody string)', (() => {
      const strs = batches.map((d) => d.jsonBody.toString());
      return timeOp(cheap, (b) => Buffer.from(strs[b % strs.length] ?? ''));
    })()],
    ['copy JSON body into exact ArrayBuffer', timeOp(cheap, (b) => copyToExactArrayBuffer(batch(b).jsonBody))],
    ['msgpackr Packr.pack(batch) (view, no copy)', timeOp(cheap, (b) => packr.pack(batch(b).objects))],
    ['msgpackr Packr.pack(batch) + copy to exact AB', timeOp(cheap, (b) => copyToExactArrayBuffer(packr.pack(batch(b).objects)))],
    ['msgpack header + concat 500 packed parts', timeOp(cheap, (b) => spliceMsgpack(batch(b).mpParts))],
    ['deflateRawSync JSON body, level 1', timeOp(REF_SAMPLES, (b) => deflateRawSync(batch(b).jsonBody, { level: 1 }))],
    ['deflateRawSync JSON body, level 6', timeOp(REF_SAMPLES, (b) => deflateRawSync(batch(b).jsonBody, { level: 6 }))],
    ['deflateRawSync msgpack body, level 1', timeOp(REF_SAMPLES, (b) => deflateRawSync(batch(b).mpBody, { level: 1 }))],
    ['deflateRawSync msgpack body, level 6', timeOp(REF_SAMPLES, (b) => deflateRawSync(batch(b).mpBody, { level: 6 }))],
  ];
  console.log('\n### Reference: inline cost on the main thread (median µs per batch of 500)\n');
  console.log(table(['operation', 'median µs'], rows.map(([n, v]) => [n, f1(v)]), 1));

  const sizes = (pick: (d: BatchData) => Uint8Array): [number, number, number] => {
    const raw = median(batches.map((d) => pick(d).length));
    const l1 = median(batches.map((d) => deflateRawSync(pick(d), { level: 1 }).length));
    const l6 = median(batches.map((d) => deflateRawSync(pick(d), { level: 6 }).length));
    return [raw, l1, l6];
  };
  const [jr, j1, j6] = sizes((d) => d.jsonBody);
  const [mr, m1, m6] = sizes((d) => d.mpBody);
  console.log('\n### Sizes per batch of 500 (median over the distinct batches, bytes)\n');
  console.log(table(['body', 'raw', 'deflate L1', 'ratio L1', 'deflate L6', 'ratio L6'], [
    ['JSON', String(jr), String(j1), f2(jr / j1) + 'x', String(j6), f2(jr / j6) + 'x'],
    ['msgpack', String(mr), String(m1), f2(mr / m1) + 'x', String(m6), f2(mr / m6) + 'x'],
  ], 1));
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const lens = batches.flatMap((d) => d.jsonParts.map((p) => Buffer.byteLength(p)));
  const mpLens = batches.flatMap((d) => d.mpParts.map((p) => p.length));
  console.log(`# handoff micro-benchmark`);
  console.log(`node ${process.version}, ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'}), loadavg ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`batch: ${BATCH_SIZE} trades; JSON per message min/mean/max = ${Math.min(...lens)}/${(lens.reduce((a, b) => a + b, 0) / lens.length).toFixed(1)}/${Math.max(...lens)} bytes; msgpack per message mean ${(mpLens.reduce((a, b) => a + b, 0) / mpLens.length).toFixed(1)} bytes`);
  console.log(`pool: piscina ${Piscina.version}, 1 thread (min=max=1), worker = serialize/splice + deflateRawSync level ${DEFLATE_LEVEL}, result via Piscina.move`);
  console.log(`sync: ${SYNC_WARMUP} warm-up + ${SYNC_SAMPLES} samples per form (round-robin over forms); steady: ${STEADY_BATCHES} batches per form, <= 2 in flight\n`);

  const tStart = performance.now();
  await verify();

  const sync = await measureSync();
  const steady = await measureSteady();

  const get = <T>(m: Map<string, T>, k: string): T => {
    const v = m.get(k);
    if (v === undefined) throw new Error('missing ' + k);
    return v;
  };
  const best = new Map<Codec, { sync: number; busy: number }>();
  for (const f of forms) {
    const s = median(get(sync, f.key).total);
    const st = get(steady, f.key);
    const busy = (st.active * 1000) / st.n;
    const cur = best.get(f.codec) ?? { sync: Infinity, busy: Infinity };
    best.set(f.codec, { sync: Math.min(cur.sync, s), busy: Math.min(cur.busy, busy) });
  }

  const rows = forms.map((f) => {
    const s = get(sync, f.key);
    const st = get(steady, f.key);
    const total = median(s.total);
    const busy = (st.active * 1000) / st.n;
    const b = best.get(f.codec) ?? { sync: NaN, busy: NaN };
    return [
      `(${f.key}) ${f.label}`,
      f.codec,
      f.input,
      f1(median(s.prep)),
      f1(median(s.run)),
      f1(total),
      f1(pct(s.total, 0.9)),
      f.codec === '-' ? '' : f2(total / b.sync) + 'x',
      f1(busy),
      f.codec === '-' ? '' : f2(busy / b.busy) + 'x',
      f1(median(st.workerUs)),
      f1((st.wall * 1000) / st.n),
    ];
  });
  console.log('\n### Main-thread hand-off cost per batch (µs). sync = prep + pool.run() with idle worker (median, p90); busy = event-loop-active µs per batch in steady state (<= 2 in flight, includes receiving the result); ratios vs cheapest form of the same codec\n');
  console.log(table(
    ['form', 'codec', 'input', 'prep', 'pool.run', 'sync total', 'p90', 'ratio', 'ELU busy', 'ratio', 'worker', 'wall/batch'],
    rows,
    3,
  ));
  const notPosted = forms.reduce((a, f) => a + get(sync, f.key).notPosted, 0);
  console.log(`\nchecks: sync samples where run() queued instead of posting = ${notPosted}; owned-AB fallbacks to copy (c2/f2) = ${ownedOrCopyFallbacks}`);

  reference();
  console.log(`\nelapsed ${((performance.now() - tStart) / 1000).toFixed(1)} s`);
  await pool.destroy();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
