/**
 * Encode-only scenario, no sockets: batches of `batchSize` messages encoded by
 * batchcast's own encoder (serialize + raw deflate + frame layout), inline on the
 * main thread and through batchcast's EncoderPool at every pool size 1..N, its threads
 * set as the library sets them (`workerNice`, `workerPollMs`; the bench's --worker-nice
 * and --worker-poll-ms change both). Each pool keeps 2 batches per thread in flight.
 * Configurations are measured in interleaved rounds (inline, 1, 2, …, inline, 1, 2, …)
 * so that load from other processes hits all of them alike; the median round is reported.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { deflateRawSync } from 'node:zlib';
import { Packr } from 'msgpackr';
import { encodeBatch } from '../src/encode/encode-batch.js';
import { Piscina } from 'piscina';
import { EncoderPool, defaultWorkerFilename } from '../src/encode/pool.js';
import type { EncodeTask } from '../src/encode/task.js';
import { toParent } from './lib/ipc.js';
import { mainThreadSched, median } from './lib/stats.js';
import { makeWorkload, rowsFor, type Shape } from './lib/workload.js';

export interface EncodeArgs {
  poolSizes: number[];
  codecs: ('json' | 'msgpack')[];
  levels: number[];
  batchSize: number;
  shape: Shape;
  rows: number;
  warmupMs: number;
  roundMs: number;
  rounds: number;
  threshold: number;
  /** The encoder threads' settings: the library's defaults unless the bench's flags say otherwise. */
  workerNice: number;
  workerPollMs: number;
}

/** An EncoderPool of `poolSize` threads with the run's thread settings. */
function encoderPool(args: EncodeArgs, poolSize: number): EncoderPool {
  return new EncoderPool({ poolSize, maxQueue: poolSize * 4, encodeTimeoutMs: 60_000, workerNice: args.workerNice, workerPollMs: args.workerPollMs });
}

/** One measured configuration (median of its rounds). */
export interface EncodeRow {
  codec: 'json' | 'msgpack';
  level: number;
  /** 0 = inline on the main thread. */
  poolSize: number;
  batches: number;
  msgsPerSec: number;
  /** Serialized (uncompressed) megabytes encoded per second. */
  rawMBPerSec: number;
  wireMBPerSec: number;
  /** Main-thread busy time per batch (hand-off and result for pools; everything inline). */
  mainUsPerBatch: number;
  /** Worker-measured encode time per batch (median). */
  encodeUsPerBatch: number;
  compressionRatio: number;
  cpuCores: number;
  roundsMsgsPerSec: number[];
}

const DISTINCT = 16;

/** Main-thread cost of one step for one batch (median µs over interleaved samples). */
export interface CostRow {
  step: string;
  usPerBatch: number;
  usPerMsg: number;
}

process.on('message', (args: EncodeArgs) => {
  run(args).then(
    async (rows) => {
      const costs = await costModel(args);
      toParent({ type: 'encode', rows, costs });
      setTimeout(() => process.exit(0), 20);
    },
    (error: unknown) => {
      toParent({ type: 'error', message: `encode process: ${(error as Error).stack ?? String(error)}` });
      process.exit(1);
    },
  );
});

interface Sample {
  batches: number;
  rawBytes: number;
  wireBytes: number;
  ms: number;
  activeMs: number;
  cpuMs: number;
  encodeMicros: number[];
}

async function run(args: EncodeArgs): Promise<EncodeRow[]> {
  const workload = makeWorkload(args.shape, args.rows);
  const batches = Array.from({ length: DISTINCT }, (_, b) =>
    Array.from({ length: args.batchSize }, (_, i) => workload.object(b * args.batchSize + i, 1732550000000.125 + i)),
  );
  const pools = new Map<number, EncoderPool>();
  for (const size of args.poolSizes) pools.set(size, encoderPool(args, size));
  const rows: EncodeRow[] = [];
  try {
    for (const codec of args.codecs) {
      for (const level of args.levels) {
        const task = (b: number): EncodeTask => ({
          codec, compressionThreshold: args.threshold, compressionLevel: level, maxMessageBytes: 64 * 2 ** 20,
          validateSerialized: false, channel: 'bench', items: batches[b % DISTINCT]!, serialized: null,
          compressionWindowBits: 15, smallWindowBits: 0, adler32: false,
        });
        const configs = [0, ...args.poolSizes];
        const samples = new Map<number, Sample[]>(configs.map((c) => [c, []]));
        for (const size of configs) await measure(size === 0 ? null : pools.get(size)!, task, args.warmupMs);
        for (let round = 0; round < args.rounds; round++) {
          for (const size of configs) samples.get(size)!.push(await measure(size === 0 ? null : pools.get(size)!, task, args.roundMs));
        }
        for (const size of configs) rows.push(summarize(codec, level, size, args.batchSize, samples.get(size)!));
      }
    }
  } finally {
    await Promise.all([...pools.values()].map((pool) => pool.destroy()));
  }
  return rows;
}

async function measure(pool: EncoderPool | null, task: (b: number) => EncodeTask, ms: number): Promise<Sample> {
  const sample: Sample = { batches: 0, rawBytes: 0, wireBytes: 0, ms: 0, activeMs: 0, cpuMs: 0, encodeMicros: [] };
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const deadline = start + ms;
  if (pool === null) {
    let b = 0;
    while (performance.now() < deadline) {
      const result = encodeBatch(task(b++));
      sample.batches++;
      sample.rawBytes += result.rawBytes;
      sample.wireBytes += result.frame.byteLength;
      sample.encodeMicros.push(result.encodeMicros);
    }
  } else {
    const inFlight = pool.snapshot().threads * 2;
    let b = 0;
    await new Promise<void>((resolve) => {
      let running = 0;
      const submit = () => {
        running++;
        pool.encode(task(b++)).then((result) => {
          running--;
          if (performance.now() < deadline) {
            sample.batches++;
            sample.rawBytes += result.rawBytes;
            sample.wireBytes += result.frame.byteLength;
            sample.encodeMicros.push(result.encodeMicros);
            submit();
          } else if (running === 0) {
            resolve();
          }
        }, () => {
          running--;
          if (running === 0) resolve();
        });
      };
      for (let i = 0; i < inFlight; i++) submit();
    });
  }
  // Throughput over the deadline window; the tail of in-flight batches is not counted.
  sample.ms = Math.min(performance.now(), deadline) - start;
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  sample.activeMs = pool === null ? sample.ms : elu.active;
  sample.cpuMs = (cpu.user + cpu.system) / 1000;
  return sample;
}

function summarize(codec: 'json' | 'msgpack', level: number, poolSize: number, batchSize: number, samples: Sample[]): EncodeRow {
  const rates = samples.map((s) => (s.batches * batchSize * 1000) / s.ms);
  // The round with the median message rate stands for the configuration.
  const order = rates.map((rate, i) => ({ rate, i })).sort((a, b) => a.rate - b.rate);
  const chosen = samples[order[(order.length - 1) >> 1]!.i]!;
  const perSec = 1000 / chosen.ms;
  return {
    codec,
    level,
    poolSize,
    batches: chosen.batches,
    msgsPerSec: (chosen.batches * batchSize * 1000) / chosen.ms,
    rawMBPerSec: (chosen.rawBytes * perSec) / 2 ** 20,
    wireMBPerSec: (chosen.wireBytes * perSec) / 2 ** 20,
    mainUsPerBatch: chosen.batches === 0 ? Number.NaN : (chosen.activeMs * 1000) / chosen.batches,
    encodeUsPerBatch: median(chosen.encodeMicros),
    compressionRatio: chosen.wireBytes === 0 ? Number.NaN : chosen.rawBytes / chosen.wireBytes,
    cpuCores: chosen.cpuMs / chosen.ms,
    roundsMsgsPerSec: rates,
  };
}

/**
 * The cost model behind the fan-out numbers, measured in this run: what each step
 * a server can do with one batch costs the main thread. postMessage rows post to
 * an idle worker that drops the message, so they time serialization on this thread
 * only; the EncoderPool rows are batchcast's whole hand-off (sync part, then main
 * CPU for the round trip including the result), one batch at a time.
 */
async function costModel(args: EncodeArgs): Promise<CostRow[]> {
  const n = args.batchSize;
  const workload = makeWorkload(args.shape, args.rows);
  const packr = new Packr({ useRecords: false });
  const recordPackr = new Packr({ useRecords: true });
  const sink = new Worker("require('node:worker_threads').parentPort.on('message', () => {})", { eval: true });
  const pool = encoderPool(args, 1);
  // The same worker under a bare Piscina (no timeout, no retry): separates Piscina's share of the hand-off from EncoderPool's.
  const piscina = new Piscina<EncodeTask, unknown>({ filename: defaultWorkerFilename(), minThreads: 1, maxThreads: 1, concurrentTasksPerWorker: 1 });
  const samples = args.rounds * 40;
  let seq = 0;
  const objects = () => Array.from({ length: n }, () => workload.object(seq++, 1732550000000.125 + seq));
  const strings = () => Array.from({ length: n }, () => workload.json(seq++, 1732550000000.125 + seq));
  const body = Buffer.from(JSON.stringify(objects()));
  const task = (items: unknown[], serialized: true | null): EncodeTask => ({
    codec: 'json', compressionThreshold: args.threshold, compressionLevel: 6, maxMessageBytes: 64 * 2 ** 20, validateSerialized: true, channel: 'bench', items, serialized,
    compressionWindowBits: 15, smallWindowBits: 0, adler32: false,
  });
  const cpuUs = () => (mainThreadSched()?.runNs ?? performance.now() * 1e6) / 1000;
  const steps: [string, () => Promise<number> | number][] = [
    ['make messages (objects, producer)', () => time(() => objects())],
    ['make messages (JSON text, producer)', () => time(() => strings())],
    ['JSON.stringify(batch)', () => { const b = objects(); return time(() => JSON.stringify(b)); }],
    ['msgpackr pack(batch), plain maps', () => { const b = objects(); return time(() => packr.pack(b)); }],
    ['msgpackr pack(batch), records (batchcast hand-off)', () => { const b = objects(); return time(() => recordPackr.pack(b)); }],
    ['postMessage(objects) to a worker', () => { const b = objects(); return time(() => sink.postMessage(b)); }],
    ['postMessage(JSON texts) to a worker', () => { const b = strings(); return time(() => sink.postMessage(b)); }],
    ...args.levels.map((level): [string, () => number] => [`deflateRawSync level ${level} (JSON body)`, () => time(() => deflateRawSync(body, { level }))]),
    ['Piscina.run(objects): sync part', () => { const b = objects(); return syncPart(() => piscina.run(task(b, null))); }],
    ['EncoderPool.encode(objects): sync part', () => { const b = objects(); return syncPart(() => pool.encode(task(b, null))); }],
    ['EncoderPool.encode(JSON texts): sync part', () => { const b = strings(); return syncPart(() => pool.encode(task(b, true))); }],
    ['EncoderPool.encode(objects): main CPU, round trip', async () => { const b = objects(); const c0 = cpuUs(); await pool.encode(task(b, null)); return cpuUs() - c0; }],
    ['EncoderPool.encode(JSON texts): main CPU, round trip', async () => { const b = strings(); const c0 = cpuUs(); await pool.encode(task(b, true)); return cpuUs() - c0; }],
  ];
  const results = new Map<string, number[]>(steps.map(([name]) => [name, []]));
  try {
    for (let i = 0; i < samples + 5; i++) {
      for (const [name, step] of steps) {
        // A full collection first (encode-proc runs with --expose-gc), so no step pays for another's garbage.
        (globalThis as { gc?: () => void }).gc?.();
        await new Promise((resolve) => setTimeout(resolve, 1));
        const us = await step();
        if (i >= 5) results.get(name)!.push(us);
        // Let the worker and the pool go idle between samples, as between batches.
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }
  } finally {
    await pool.destroy();
    await piscina.destroy();
    await sink.terminate();
  }
  const rows = steps.map(([name]) => {
    const us = median(results.get(name)!);
    return { step: name, usPerBatch: us, usPerMsg: us / n };
  });
  return [...rows, ...(await snapshotCosts(args))];
}

/**
 * The same steps for one ~1 MB snapshot message (the large scenario's batches hold
 * one message): what a main thread pays per message when it stringifies, clones an
 * object graph, or clones a string.
 */
async function snapshotCosts(args: EncodeArgs): Promise<CostRow[]> {
  const workload = makeWorkload('snapshot', rowsFor(2 ** 20));
  const sink = new Worker("require('node:worker_threads').parentPort.on('message', () => {})", { eval: true });
  const recordPackr = new Packr({ useRecords: true });
  const pool = encoderPool(args, 1);
  const body = Buffer.from(workload.json(0, 1732550000000.125));
  let seq = 0;
  const task = (items: unknown[]): EncodeTask => ({
    codec: 'json', compressionThreshold: args.threshold, compressionLevel: 6, maxMessageBytes: 64 * 2 ** 20, validateSerialized: true, channel: 'bench', items, serialized: null,
    compressionWindowBits: 15, smallWindowBits: 0, adler32: false,
  });
  const steps: [string, () => number | Promise<number>][] = [
    ['1 MB snapshot: JSON.stringify(message)', () => { const m = workload.object(seq++, 1732550000000.125); return time(() => JSON.stringify(m)); }],
    ['1 MB snapshot: postMessage(object) to a worker', () => { const m = workload.object(seq++, 1732550000000.125); return time(() => sink.postMessage(m)); }],
    ['1 MB snapshot: msgpackr pack, records', () => { const m = workload.object(seq++, 1732550000000.125); return time(() => recordPackr.pack([m])); }],
    ['1 MB snapshot: EncoderPool.encode: sync part', () => { const m = workload.object(seq++, 1732550000000.125); return syncPart(() => pool.encode(task([m]))); }],
    ['1 MB snapshot: postMessage(JSON text) to a worker', () => { const m = workload.json(seq++, 1732550000000.125); return time(() => sink.postMessage(m)); }],
    ['1 MB snapshot: deflateRawSync level 6', () => time(() => deflateRawSync(body, { level: 6 }))],
  ];
  const results = new Map<string, number[]>(steps.map(([name]) => [name, []]));
  try {
    for (let i = 0; i < Math.max(5, args.rounds * 8) + 2; i++) {
      for (const [name, step] of steps) {
        (globalThis as { gc?: () => void }).gc?.();
        await new Promise((resolve) => setTimeout(resolve, 5));
        const us = await step();
        if (i >= 2) results.get(name)!.push(us);
      }
    }
  } finally {
    await pool.destroy();
    await sink.terminate();
  }
  return steps.map(([name]) => {
    const us = median(results.get(name)!);
    return { step: name, usPerBatch: us, usPerMsg: us };
  });
}

/** Times the synchronous part of starting `start`, then waits for it to finish (so no step overlaps the next). */
async function syncPart(start: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  const done = start();
  const us = (performance.now() - t0) * 1000;
  await done;
  return us;
}

function time(fn: () => unknown): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) * 1000;
}
