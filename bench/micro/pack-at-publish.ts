// Micro-benchmark: would packing each message at publish() (while the object is fresh in
// cache) cost the main thread less than packing the closed batch at once, as batchcast does?
// A producer makes 20 trades every 1 ms (the bench's tick) and a batch closes every 20 ticks
// (400 messages, the 20k msgs/s fan-out row). Modes, each in its own process, alternated:
//   batch  push the message; at close, records-pack the batch and copy it into a buffer to move (handoff.ts)
//   hot    records-pack each message at once with a `sequential` Packr (a shape is written the
//          first time in the batch, then referred to), copying it into the batch's buffer
//   none   push the message only (the producer's own cost)
// Reported: the pack time (timed per tick in `hot`, per batch in `batch`) and the process's
// CPU per message, and that CPU net of `none`. The buffers of `hot` unpack to the same messages
// (checked on one batch per run).
//
// Run (see README.md):  node dist/bench/micro/pack-at-publish.js [--ticks=6000] [--reps=3]
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Packr, Unpackr } from 'msgpackr';
import { makeWorkload } from '../lib/workload.js';
import { argNum, f2, median, table } from './format.js';

const MODES = ['batch', 'hot', 'none'] as const;
type Mode = (typeof MODES)[number];
const PER_TICK = 20;
const TICKS_PER_BATCH = 20;

interface ChildResult {
  mode: Mode;
  packUsPerMsg: number;
  cpuUsPerMsg: number;
  bytesPerMsg: number;
}

function runChild(mode: Mode, ticks: number): void {
  const workload = makeWorkload('trade');
  const batchPackr = new Packr({ useRecords: true });
  let hotPackr = new Packr({ useRecords: true, sequential: true });
  let scratch = new Uint8Array(256 * 1024);
  let used = 0;
  let items: unknown[] = [];
  let seq = 0;
  let tick = 0;
  let packMs = 0;
  let bytes = 0;
  let checked = false;
  const cpu0 = process.cpuUsage();
  const onTick = (): void => {
    const t = Date.now();
    const started = mode === 'hot' ? performance.now() : 0;
    for (let i = 0; i < PER_TICK; i++) {
      const message = workload.object(seq++, t);
      if (mode === 'hot') {
        const packed = hotPackr.pack(message);
        if (used + packed.byteLength > scratch.byteLength) {
          const grown = new Uint8Array(scratch.byteLength * 2);
          grown.set(scratch.subarray(0, used));
          scratch = grown;
        }
        scratch.set(packed, used);
        used += packed.byteLength;
      }
      items.push(message);
    }
    if (mode === 'hot') packMs += performance.now() - started;
    if (++tick % TICKS_PER_BATCH === 0) {
      const closed = performance.now();
      let buffer: ArrayBuffer;
      if (mode === 'batch') {
        const packed = batchPackr.pack(items);
        buffer = new ArrayBuffer(packed.byteLength);
        new Uint8Array(buffer).set(packed);
      } else if (mode === 'hot') {
        buffer = new ArrayBuffer(used);
        new Uint8Array(buffer).set(scratch.subarray(0, used));
        used = 0;
        // Shapes are defined again in the next batch: each batch must unpack on its own.
        hotPackr = new Packr({ useRecords: true, sequential: true });
      } else buffer = new ArrayBuffer(0);
      if (mode !== 'none') packMs += performance.now() - closed;
      bytes += buffer.byteLength;
      if (mode === 'hot' && !checked && tick > 100) {
        checked = true;
        const back = new Unpackr({ useRecords: true, sequential: true }).unpackMultiple(new Uint8Array(buffer));
        if (JSON.stringify(back) !== JSON.stringify(items)) throw new Error('hot-packed batch does not unpack to its messages');
      }
      items = [];
    }
    if (tick < ticks) setTimeout(onTick, 1);
    else {
      const cpu = process.cpuUsage(cpu0);
      const result: ChildResult = { mode, packUsPerMsg: (packMs * 1000) / seq, cpuUsPerMsg: (cpu.user + cpu.system) / seq, bytesPerMsg: bytes / seq };
      process.send!(result);
    }
  };
  setTimeout(onTick, 1);
}

async function runParent(): Promise<void> {
  const ticks = argNum('ticks', 6000);
  const reps = argNum('reps', 3);
  const results = new Map<Mode, ChildResult[]>(MODES.map((m) => [m, []]));
  for (let rep = 0; rep < reps; rep++) {
    for (const mode of MODES) {
      const child = fork(fileURLToPath(import.meta.url), ['child', mode, String(ticks)]);
      const result = await new Promise<ChildResult>((resolve, reject) => {
        child.once('message', (m) => resolve(m as ChildResult));
        child.once('exit', (code) => reject(new Error(`${mode} child exited with ${code} before reporting`)));
      });
      child.kill();
      results.get(mode)!.push(result);
    }
  }
  const none = median(results.get('none')!.map((r) => r.cpuUsPerMsg));
  const rows = MODES.map((mode) => {
    const rs = results.get(mode)!;
    const cpu = median(rs.map((r) => r.cpuUsPerMsg));
    return [mode, f2(median(rs.map((r) => r.packUsPerMsg))), f2(cpu), mode === 'none' ? '-' : f2(cpu - none), f2(median(rs.map((r) => r.bytesPerMsg)))];
  });
  console.log(`${PER_TICK} trades every 1 ms, a batch of ${PER_TICK * TICKS_PER_BATCH} every ${TICKS_PER_BATCH} ticks, ${ticks} ticks, medians of ${reps} alternating processes`);
  console.log(table(['mode', 'pack µs/msg', 'process CPU µs/msg', 'CPU net of none', 'packed B/msg'], rows));
}

if (process.argv[2] === 'child') runChild(process.argv[3] as Mode, Number(process.argv[4]));
else await runParent();
