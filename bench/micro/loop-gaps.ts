// Diagnostic preload for a bench server: which event-loop stalls were garbage collections.
// A 1 ms interval notes every gap over --gap-ms (default 6) between its ticks; a 'gc'
// PerformanceObserver notes every collection. At exit it writes, per gap after the warm-up,
// its length and the collections that overlapped it, to /tmp/loop-gaps-<pid>.txt.
//
// Run:  BENCH_SERVER_NODE_ARGS="--import $PWD/dist/bench/micro/loop-gaps.js" node dist/bench/run.js \
//         --scenarios large --large-sizes 1024 --variants inline-async,batchcast --codec json --repeat 1
import { writeFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';

const GAP_MS = Number(process.env.LOOP_GAPS_MS ?? 6);
const AFTER_MS = Number(process.env.LOOP_GAPS_AFTER_MS ?? 2500);
/** Node's `detail.kind` values (perf_hooks constants NODE_PERFORMANCE_GC_*). */
const KINDS: Record<number, string> = { 1: 'scavenge', 2: 'mark-sweep-compact (minor)', 4: 'major', 8: 'incremental marking', 16: 'weak callbacks' };

const collections: { start: number; duration: number; kind: string }[] = [];
const gaps: { start: number; length: number }[] = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
    collections.push({ start: entry.startTime, duration: entry.duration, kind: KINDS[kind] ?? `kind ${kind}` });
  }
}).observe({ entryTypes: ['gc'] });

let last = performance.now();
setInterval(() => {
  const now = performance.now();
  if (now - last > GAP_MS) gaps.push({ start: last, length: now - last });
  last = now;
}, 1).unref();

process.on('exit', () => {
  const lines = gaps.filter((gap) => gap.start > AFTER_MS).sort((a, b) => b.length - a.length).map((gap) => {
    const overlapping = collections.filter((gc) => gc.start < gap.start + gap.length && gc.start + gc.duration > gap.start);
    return `${gap.length.toFixed(1)} ms at ${gap.start.toFixed(0)} ms: ${overlapping.map((gc) => `${gc.kind} ${gc.duration.toFixed(1)} ms`).join(', ') || 'no collection'}`;
  });
  writeFileSync(`/tmp/loop-gaps-${process.pid}.txt`, `${lines.join('\n')}\n`);
});
