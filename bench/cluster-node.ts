/**
 * Cluster bench, one node (a child process of bench/lib/cluster.ts): a batchcast server,
 * alone or a node of a Redis cluster, publishing trade messages at `rate` (0: it only
 * delivers what other nodes publish). Measures its main thread over a window on request:
 * event-loop utilization, main-thread CPU (schedstat), event-loop delay.
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import type { PresetName } from '../src/config.js';
import { createBroadcaster } from '../src/index.js';
import { mainThreadSched } from './lib/stats.js';
import { epochNow, makeWorkload } from './lib/workload.js';

export interface ClusterNodeArgs {
  redis: string | null;
  prefix: string;
  rate: number;
  preset: PresetName;
  poolSize: number;
}

export type ToClusterNode = { type: 'measure-start' } | { type: 'measure-stop' } | { type: 'stop' };

export interface NodeMeasure {
  type: 'measure';
  windowMs: number;
  elu: number;
  /** Main-thread CPU time in the window (schedstat), µs. */
  mainCpuUs: number;
  published: number;
  framesSent: number;
  eldP99Ms: number;
  eldMaxMs: number;
}

const args = JSON.parse(process.argv[2]!) as ClusterNodeArgs;
const broadcaster = createBroadcaster({
  port: 0, host: '127.0.0.1', env: {}, preset: args.preset, poolSize: args.poolSize, heartbeatIntervalMs: 0,
  ...(args.redis === null ? {} : { redis: args.redis, redisPrefix: args.prefix }),
});
await broadcaster.ready;
const workload = makeWorkload('trade');
let published = 0;
let carry = 0;
const TICK_MS = 5;
const feed = args.rate === 0 ? null : setInterval(() => {
  carry += (args.rate * TICK_MS) / 1000;
  const count = Math.floor(carry);
  carry -= count;
  const t = epochNow();
  for (let i = 0; i < count; i++) broadcaster.publish('bench', workload.object(published++, t));
}, TICK_MS);

let eld: IntervalHistogram | null = null;
let start = { at: 0, elu: performance.eventLoopUtilization(), sched: mainThreadSched(), published: 0, framesSent: 0 };
process.on('message', (message: ToClusterNode) => {
  if (message.type === 'measure-start') {
    eld = monitorEventLoopDelay({ resolution: 10 });
    eld.enable();
    start = { at: performance.now(), elu: performance.eventLoopUtilization(), sched: mainThreadSched(), published, framesSent: broadcaster.stats().framesSent };
  } else if (message.type === 'measure-stop') {
    eld!.disable();
    const sched = mainThreadSched();
    const measure: NodeMeasure = {
      type: 'measure', windowMs: performance.now() - start.at, elu: performance.eventLoopUtilization(start.elu).utilization,
      mainCpuUs: sched === null || start.sched === null ? Number.NaN : (sched.runNs - start.sched.runNs) / 1000,
      published: published - start.published, framesSent: broadcaster.stats().framesSent - start.framesSent,
      eldP99Ms: eld!.percentile(99) / 1e6, eldMaxMs: eld!.max / 1e6,
    };
    process.send!(measure);
  } else if (message.type === 'stop') {
    if (feed !== null) clearInterval(feed);
    void broadcaster.close().then(() => process.exit(0));
  }
});
process.send!({ type: 'ready', port: broadcaster.address()!.port });
