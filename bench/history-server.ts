/**
 * History bench, server side (a child process of bench/lib/history.ts): a batchcast
 * server publishing trade messages at a fixed rate over N channels. Answers IPC
 * requests: `sample` (history and memory figures), `measure-start` / `measure-stop`
 * (event-loop delay at 1 ms resolution and utilization over a window), `stop`.
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import type { PresetName } from '../src/config.js';
import { createBroadcaster } from '../src/index.js';
import { epochNow, makeWorkload } from './lib/workload.js';

export interface HistoryServerArgs {
  rate: number;
  channels: number;
  preset: PresetName;
  poolSize: number;
  tickMs: number;
}

export type ToHistoryServer = { type: 'sample' } | { type: 'measure-start' } | { type: 'measure-stop' } | { type: 'stop' };

export interface HistorySample {
  type: 'sample';
  atMs: number;
  published: number;
  history: { frames: number; messages: number; bytes: number; evictedFrames: number };
  channels: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** `external`: ArrayBuffer backing stores (transferred frames included) and other memory outside the JS heap. */
  externalBytes: number;
}

export interface StormMeasure {
  type: 'measure';
  eldMaxMs: number;
  eldP99Ms: number;
  eldP50Ms: number;
  elu: number;
  windowMs: number;
  framesReplayed: number;
  bytesReplayed: number;
  recoveries: { ok: number; evicted: number; epoch: number };
}

const args = JSON.parse(process.argv[2]!) as HistoryServerArgs;
const broadcaster = createBroadcaster({ port: 0, host: '127.0.0.1', env: {}, preset: args.preset, poolSize: args.poolSize, heartbeatIntervalMs: 0 });
await broadcaster.ready;
const workload = makeWorkload('trade');
const names = Array.from({ length: args.channels }, (_, i) => (args.channels === 1 ? 'bench' : `bench.${i}`));
let published = 0;
let carry = 0;
const feed = setInterval(() => {
  carry += (args.rate * args.tickMs) / 1000;
  const count = Math.floor(carry);
  carry -= count;
  const t = epochNow();
  for (let i = 0; i < count; i++) {
    broadcaster.publish(names[published % names.length]!, workload.object(published, t));
    published++;
  }
}, args.tickMs);

let eld: IntervalHistogram | null = null;
let elu0 = performance.eventLoopUtilization();
let windowStart = 0;
let replay0 = { framesReplayed: 0, bytesReplayed: 0 };

process.on('message', (message: ToHistoryServer) => {
  const stats = broadcaster.stats();
  switch (message.type) {
    case 'sample': {
      // Collect first (the bench forks this process with --expose-gc) so heap figures are what is live.
      (globalThis as { gc?: () => void }).gc?.();
      const memory = process.memoryUsage();
      const { frames, messages, bytes, evictedFrames } = stats.history;
      const sample: HistorySample = {
        type: 'sample', atMs: performance.now(), published, history: { frames, messages, bytes, evictedFrames }, channels: stats.channels,
        rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, externalBytes: memory.external,
      };
      process.send!(sample);
      break;
    }
    case 'measure-start':
      eld = monitorEventLoopDelay({ resolution: 1 });
      eld.enable();
      elu0 = performance.eventLoopUtilization();
      windowStart = performance.now();
      replay0 = { framesReplayed: stats.catchUp.framesReplayed, bytesReplayed: stats.catchUp.bytesReplayed };
      break;
    case 'measure-stop': {
      eld!.disable();
      const measure: StormMeasure = {
        type: 'measure', eldMaxMs: eld!.max / 1e6, eldP99Ms: eld!.percentile(99) / 1e6, eldP50Ms: eld!.percentile(50) / 1e6,
        elu: performance.eventLoopUtilization(elu0).utilization, windowMs: performance.now() - windowStart,
        framesReplayed: stats.catchUp.framesReplayed - replay0.framesReplayed, bytesReplayed: stats.catchUp.bytesReplayed - replay0.bytesReplayed,
        recoveries: stats.recoveries,
      };
      process.send!(measure);
      break;
    }
    case 'stop':
      clearInterval(feed);
      void broadcaster.close().then(() => process.exit(0));
      break;
  }
});
process.send!({ type: 'ready', port: broadcaster.address()!.port });
