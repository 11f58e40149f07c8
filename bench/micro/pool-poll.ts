// Micro-benchmark: the real EncoderPool handed one batch of --size trade messages every
// --gap ms, with its workers woken per batch (workerPollMs 0) or polling (workerPollMs N).
// Per setting: main-thread CPU per batch (submit to callback, the packing included), the
// batch's round trip (submit → frame back), the encoder threads' CPU per second while
// batches flow and while the pool is idle, and how many posts had to wake a parked worker.
// CPU from /proc/self/task/*/schedstat (Linux).
//
// With --backlog, batches are instead queued back to back (2 per thread in flight, as when
// the encoders are the bottleneck), for pool sizes --pools (default 1,2) and --reps alternating
// repetitions: batches per second, main-thread CPU per batch, posts that woke a parked
// thread (wakeups) and queued batches that woke one from its workerPollMs sleep (nudges).
//
// Run (see README.md):  node dist/bench/micro/pool-poll.js [--batches=300] [--gap=20] [--size=400] [--polls=0,1,2]
//                        node dist/bench/micro/pool-poll.js --backlog [--batches=300] [--pools=1,2] [--reps=3] [--polls=0,1]
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { EncoderPool } from '../../src/encode/pool.js';
import type { EncodeTask } from '../../src/encode/task.js';
import { makeWorkload } from '../lib/workload.js';
import { argNum, f1, f2, median, pct, table } from './format.js';

const BATCHES = argNum('batches', 300);
const GAP_MS = argNum('gap', 20);
const SIZE = argNum('size', 400);
/** A comma-separated list of numbers from a `--name=a,b` flag, or `dflt`. */
function listArg(name: string, dflt: number[]): number[] {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit === undefined ? dflt : hit.slice(name.length + 3).split(',').map(Number);
}

/** CPU µs so far of every thread of the process but the main one. */
function othersCpuUs(): number {
  let others = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    let us: number;
    try {
      us = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
    } catch {
      continue; // a thread that ended meanwhile
    }
    if (Number(tid) !== process.pid) others += us;
  }
  return others;
}

/** The main thread's CPU µs so far (one file: cheap enough to read around a batch). */
function mainCpuUs(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const workload = makeWorkload('trade');
let seq = 0;
function task(): EncodeTask {
  const items = Array.from({ length: SIZE }, () => workload.object(seq++, Date.now()));
  return { codec: 'json', compressionThreshold: 1000, compressionLevel: 6, compressionWindowBits: 12, maxMessageBytes: 1 << 24, validateSerialized: true, channel: 'bench', items, serialized: null, smallWindowBits: 0, adler32: false };
}

/** Batches queued back to back: what the pool sustains when the encoders are the bottleneck. */
async function backlog(): Promise<void> {
  const pools = listArg('pools', [1, 2]);
  const polls = listArg('polls', [0, 1]);
  const reps = argNum('reps', 3);
  const samples = new Map<string, { rate: number[]; cpu: number[]; wakeups: number[]; nudges: number[] }>();
  for (let rep = 0; rep < reps; rep++) {
    for (const poolSize of pools) {
      for (const pollMs of polls) {
        const pool = new EncoderPool({ poolSize, maxQueue: 64, encodeTimeoutMs: 30_000, workerPollMs: pollMs, workerNice: 10 });
        await Promise.all(Array.from({ length: poolSize }, () => pool.encode(task())));
        const tasks = Array.from({ length: BATCHES }, task);
        const before = pool.snapshot();
        const cpu0 = mainCpuUs();
        const t0 = performance.now();
        await new Promise<void>((resolve) => {
          let next = 0;
          let out = 0;
          const fill = (): void => {
            while (out < poolSize * 2 && next < BATCHES) {
              out++;
              pool.submit(tasks[next++]!, () => {
                out--;
                if (next === BATCHES && out === 0) resolve();
                else fill();
              });
            }
          };
          fill();
        });
        const seconds = (performance.now() - t0) / 1000;
        const after = pool.snapshot();
        const key = `${poolSize}|${pollMs}`;
        const entry = samples.get(key) ?? { rate: [], cpu: [], wakeups: [], nudges: [] };
        entry.rate.push(BATCHES / seconds);
        entry.cpu.push((mainCpuUs() - cpu0) / BATCHES);
        entry.wakeups.push(after.wakeups - before.wakeups);
        entry.nudges.push(after.nudges - before.nudges);
        samples.set(key, entry);
        await pool.destroy();
      }
    }
  }
  const rows = [...samples].map(([key, e]) => {
    const [poolSize, pollMs] = key.split('|');
    return [poolSize!, `${pollMs} ms`, f1(median(e.rate)), e.rate.map((r) => r.toFixed(0)).join(' / '), f1(median(e.cpu)), `${median(e.wakeups)}/${BATCHES}`, `${median(e.nudges)}/${BATCHES}`];
  });
  console.log(`${BATCHES} batches of ${SIZE} trade messages queued back to back (2 per thread in flight), nice 10; medians of ${reps} alternating reps`);
  console.log(table(['pool', 'workerPollMs', 'batches/s', 'reps', 'main CPU µs/batch', 'wakeups', 'nudges'], rows, 2));
}

if (process.argv.includes('--backlog')) {
  await backlog();
  process.exit(0);
}

const rows: string[][] = [];
for (const pollMs of listArg('polls', [0, 1, 2])) {
  const pool = new EncoderPool({ poolSize: 2, maxQueue: 8, encodeTimeoutMs: 30_000, workerPollMs: pollMs, workerNice: 10 });
  await pool.encode(task()); // threads started and warm
  const mainPerBatch: number[] = [];
  const roundTrip: number[] = [];
  const wakeupsBefore = pool.snapshot().wakeups;
  const busyStart = othersCpuUs();
  const busyT0 = performance.now();
  for (let i = 0; i < BATCHES; i++) {
    await sleep(GAP_MS);
    const next = task(); // built before the clock starts: the producer's work, not the hand-off's
    const cpu0 = mainCpuUs();
    const t0 = performance.now();
    await pool.encode(next);
    roundTrip.push((performance.now() - t0) * 1000);
    mainPerBatch.push(mainCpuUs() - cpu0);
  }
  const busyEnd = othersCpuUs();
  const busySeconds = (performance.now() - busyT0) / 1000;
  const wakeups = pool.snapshot().wakeups - wakeupsBefore;
  await sleep(500); // past PARK_AFTER_MS: every worker parks
  const idleStart = othersCpuUs();
  await sleep(2000);
  const idleCpu = (othersCpuUs() - idleStart) / 2;
  await pool.destroy();
  rows.push([
    `${pollMs} ms`, f1(median(mainPerBatch)), f1(pct(mainPerBatch, 0.9)), f1(median(roundTrip)), f1(pct(roundTrip, 0.9)),
    f2((busyEnd - busyStart) / busySeconds / 1000), f2(idleCpu / 1000), `${wakeups}/${BATCHES}`,
  ]);
}
console.log(`${SIZE} trade messages per batch, one every ${GAP_MS} ms, ${BATCHES} batches, pool 2 at nice 10; CPU in µs (main) and ms per second (workers)`);
console.log(table(['workerPollMs', 'main CPU µs/batch p50', 'p90', 'round trip µs p50', 'p90', 'workers CPU ms/s (flowing)', 'idle', 'woken'], rows));
