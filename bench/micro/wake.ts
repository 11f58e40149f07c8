// Micro-benchmark: what one hand-off to another thread costs the main thread when that
// thread has been idle, as it is between batches at modest rates (a batch every 20 ms).
//
//   piscina     Piscina.run() of a no-op task (wake-worker.ts) (batchcast's pool path, without the batch)
//   port        worker.postMessage() and the reply of a bare worker_threads worker
//   libuv-pool  zlib.deflateRaw() of 16 bytes (inline-async's path: the libuv thread pool)
//   polled      a store into shared memory that a worker polls every --poll-ms (default 1) with
//               Atomics.wait's timeout, and its reply by message: nobody wakes the worker, it
//               wakes itself (a design to measure for goal 1, not what batchcast does)
//
// Each is timed after a gap of --gaps ms (default 1 and 20) with the main thread idle:
// "sync" is the call itself (performance.now()), "CPU" the main thread's own CPU time
// from the call to the reply being handled (/proc/self/task/<pid>/schedstat; Linux).
//
// Run (see README.md):  node dist/bench/micro/wake.js [--samples=250] [--gaps=1,20] [--poll-ms=1]
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { deflateRaw } from 'node:zlib';
import { Piscina } from 'piscina';
import { argNum, f2, median, pct, table } from './format.js';

const SAMPLES = argNum('samples', 250);
const WARMUP = 30;
const gapsArg = process.argv.find((a) => a.startsWith('--gaps='));
const GAPS = gapsArg === undefined ? [1, 20] : gapsArg.slice(7).split(',').map(Number);

/** The main thread's CPU time so far, µs. */
function mainCpuUs(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ECHO = `require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m));`;
const pollArg = process.argv.find((a) => a.startsWith('--poll-ms='));
const POLL_MS = pollArg === undefined ? 1 : Number(pollArg.slice(10));
// [0]: tasks posted, [1]: tasks taken. The worker sleeps in Atomics.wait with a timeout, never woken by us.
const mailbox = new Int32Array(new SharedArrayBuffer(8));
const POLLER = `
const { parentPort, workerData } = require('node:worker_threads');
const box = workerData.box;
for (;;) {
  Atomics.wait(box, 1, Atomics.load(box, 1), workerData.pollMs);
  const posted = Atomics.load(box, 0);
  if (posted === -1) break;
  while (Atomics.load(box, 1) < posted) { Atomics.add(box, 1, 1); parentPort.postMessage(1); }
}`;
const poller = new Worker(POLLER, { eval: true, workerData: { box: mailbox, pollMs: POLL_MS } });

const piscina = new Piscina({ filename: new URL('./wake-worker.js', import.meta.url).href, minThreads: 1, maxThreads: 1, idleTimeout: 3_600_000, recordTiming: false });
const worker = new Worker(ECHO, { eval: true });
const input = Buffer.from('0123456789abcdef');

const kinds: Record<string, () => Promise<unknown>> = {
  piscina: () => piscina.run({ n: 1 }),
  port: () => new Promise((resolve) => {
    worker.once('message', resolve);
    worker.postMessage({ n: 1 });
  }),
  'libuv-pool': () => new Promise((resolve, reject) => deflateRaw(input, (error, out) => (error === null ? resolve(out) : reject(error)))),
  polled: () => new Promise((resolve) => {
    poller.once('message', resolve);
    Atomics.add(mailbox, 0, 1);
  }),
};

const rows: string[][] = [];
for (const gap of GAPS) {
  for (const [kind, run] of Object.entries(kinds)) {
    const sync: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      await sleep(gap);
      const cpu0 = mainCpuUs();
      const t0 = performance.now();
      const done = run();
      const t1 = performance.now();
      await done;
      const cpu1 = mainCpuUs();
      if (i < WARMUP) continue;
      sync.push((t1 - t0) * 1000);
      cpu.push(cpu1 - cpu0);
    }
    rows.push([kind, `${gap} ms`, f2(median(sync)), f2(pct(sync, 90)), f2(median(cpu)), f2(pct(cpu, 90))]);
  }
}
console.log(table(['hand-off', 'idle gap', 'sync µs p50', 'p90', 'main CPU µs p50', 'p90'], rows));
await piscina.destroy();
await worker.terminate();
Atomics.store(mailbox, 0, -1);
await poller.terminate();
