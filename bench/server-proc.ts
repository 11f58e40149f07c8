/**
 * The server process of one row (forked by run.ts, one fresh process per row so
 * heap, JIT state and peak RSS belong to that row alone). Starts the variant's
 * server, then on `run` drives publishes from a timer at the target rate (a
 * burst every `tickMs`, sized by elapsed time so the rate holds whatever the
 * timer's jitter) and measures the main thread over the window.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { VARIANT_INFO, serveParent, toParent, type RowSpec, type ServerReport, type ToServer } from './lib/ipc.js';
import { startServer, type BenchServer } from './lib/servers.js';
import { mainThreadSched, median } from './lib/stats.js';
import { makeWorkload } from './lib/workload.js';

const SLICE_MS = 250;

let spec: RowSpec | null = null;
let server: BenchServer | null = null;

serveParent<ToServer>('server process', handle);

async function handle(message: ToServer): Promise<void> {
  if (message.type === 'start') {
    spec = message.spec;
    server = await startServer(spec.variant, spec);
    toParent({ type: 'listening', port: server.port });
  } else if (message.type === 'run') {
    const report = await produce(spec!, server!, message.startAt, message.windowStart, message.windowEnd);
    toParent({ type: 'report', report });
  } else if (message.type === 'close') {
    const counters = server!.counters();
    await server!.close();
    toParent({ type: 'closed', server: counters });
    setTimeout(() => process.exit(0), 20);
  }
}

function produce(spec: RowSpec, server: BenchServer, startAt: number, windowStart: number, windowEnd: number): Promise<ServerReport> {
  const workload = makeWorkload(spec.shape, spec.rows);
  const make = VARIANT_INFO[spec.variant].input === 'json' ? workload.json : workload.object;
  const origin = performance.timeOrigin;
  const startPerf = startAt - origin;
  const windowStartPerf = windowStart - origin;
  const windowEndPerf = windowEnd - origin;
  const rate = spec.rate;
  // A saturated server catches up in bursts of at most 50 ms worth of messages per tick.
  const cap = Math.max(1, Math.ceil(rate * 0.05));
  const eld = monitorEventLoopDelay({ resolution: spec.eldResolutionMs });
  const pending: unknown[] = [];

  let published = 0;
  let produceMs = 0;
  let publishMs = 0;
  let lateTicks = 0;
  let inWindow = false;
  let w0 = { published: 0, produceMs: 0, publishMs: 0, elu: performance.eventLoopUtilization(), cpu: process.cpuUsage(), sched: mainThreadSched(), at: 0 };
  let slice = { published: 0, elu: w0.elu, at: 0 };
  const sliceBusy: number[] = [];

  return new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      if (!inWindow && now >= windowStartPerf) {
        inWindow = true;
        eld.enable();
        eld.reset();
        w0 = { published, produceMs, publishMs, elu: performance.eventLoopUtilization(), cpu: process.cpuUsage(), sched: mainThreadSched(), at: now };
        slice = { published, elu: w0.elu, at: now };
      }
      if (inWindow && now - slice.at >= SLICE_MS) {
        const elu = performance.eventLoopUtilization();
        const delta = performance.eventLoopUtilization(elu, slice.elu);
        const count = published - slice.published;
        if (count > 0) sliceBusy.push((delta.active * 1000) / count);
        slice = { published, elu, at: now };
      }
      if (now >= windowEndPerf) {
        const elu = performance.eventLoopUtilization(w0.elu);
        const cpu = process.cpuUsage(w0.cpu);
        const sched = mainThreadSched();
        eld.disable();
        const windowMs = now - w0.at;
        const count = published - w0.published;
        const usage = process.resourceUsage();
        server.flush();
        const ms = (ns: number) => ns / 1e6;
        resolve({
          published: count,
          publishedTotal: published,
          windowMs,
          elu: elu.utilization,
          activeMs: elu.active,
          busyUsPerMsgMedian: median(sliceBusy),
          busyUsPerMsg: count === 0 ? 0 : (elu.active * 1000) / count,
          produceUsPerMsg: count === 0 ? 0 : ((produceMs - w0.produceMs) * 1000) / count,
          publishCallUsPerMsg: count === 0 ? 0 : ((publishMs - w0.publishMs) * 1000) / count,
          mainCpuUsPerMsg: sched === null || w0.sched === null || count === 0 ? Number.NaN : (sched.runNs - w0.sched.runNs) / 1000 / count,
          mainWaitMs: sched === null || w0.sched === null ? Number.NaN : (sched.waitNs - w0.sched.waitNs) / 1e6,
          eldP50Ms: ms(eld.percentile(50)),
          eldP99Ms: ms(eld.percentile(99)),
          eldMaxMs: ms(eld.max),
          cpuUserMs: cpu.user / 1000,
          cpuSystemMs: cpu.system / 1000,
          cpuCores: (cpu.user + cpu.system) / 1000 / windowMs,
          peakRssMB: usage.maxRSS / 1024,
          rssEndMB: process.memoryUsage.rss() / 2 ** 20,
          lateTicks,
          server: {},
        });
        return;
      }
      if (now >= startPerf) {
        const due = Math.floor(((now - startPerf) * rate) / 1000) - published;
        const burst = Math.min(due, cap);
        if (due > cap) lateTicks++;
        if (burst > 0) {
          const t0 = performance.now();
          for (let k = 0; k < burst; k++) pending[k] = make(published + k, origin + performance.now());
          const t1 = performance.now();
          for (let k = 0; k < burst; k++) server.publish(pending[k]);
          const t2 = performance.now();
          published += burst;
          produceMs += t1 - t0;
          publishMs += t2 - t1;
          pending.fill(null, 0, burst);
        }
      }
      setTimeout(tick, spec.tickMs);
    };
    setTimeout(tick, Math.max(0, startPerf - performance.now()));
  });
}
