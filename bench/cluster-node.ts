/**
 * Cluster bench, one node (a child process of bench/lib/cluster.ts): a batchcast server,
 * alone or a node of a Redis cluster, publishing trade messages at `rate` (0: it only
 * delivers what other nodes publish). Measures its main thread over a window on request:
 * event-loop utilization, main-thread CPU (schedstat), event-loop delay.
 */
import type { PresetName } from '../src/config.js';
import { createBroadcaster } from '../src/index.js';
import { answerMeasurements } from './lib/node-measure.js';
import { epochNow, makeWorkload } from './lib/workload.js';

export interface ClusterNodeArgs {
  redis: string | null;
  prefix: string;
  rate: number;
  preset: PresetName;
  poolSize: number;
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

answerMeasurements(() => ({ published, framesSent: broadcaster.stats().framesSent }), async () => {
  if (feed !== null) clearInterval(feed);
  await broadcaster.close();
});
process.send!({ type: 'ready', port: broadcaster.address()!.port });
