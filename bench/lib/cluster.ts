/**
 * The cluster scenario: what a node's main thread pays for a batch published on another
 * node (received from Redis: no encode, only the seq stamp, history and the writes),
 * next to the publishing node and to a single node with the same subscribers, and the
 * latency Redis adds; and the same two-node workload on Socket.IO with its Redis adapter.
 * Needs Redis (the `redis` URL); skipped with a note without it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { PRESETS, type PresetName } from '../../src/config.js';
import type { ClientsMeasure, ClusterClientsArgs } from '../cluster-clients.js';
import type { ClusterNodeArgs } from '../cluster-node.js';
import type { SocketIoNodeArgs } from '../socketio-node.js';
import { ask } from './ipc.js';
import type { NodeMeasure } from './node-measure.js';
import { table } from './report.js';
import { fmt } from './stats.js';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface ClusterBenchOptions {
  redis: string;
  rate: number;
  clientsPerNode: number;
  warmupMs: number;
  durationMs: number;
  preset: PresetName;
  poolSize: number;
  socketIo: boolean;
}

export interface ClusterRow {
  layout: string;
  subscribers: number;
  /** Main-thread busy µs per message of the stream (event-loop utilization × window ÷ messages). */
  busyUsPerMsg: number;
  mainCpuUsPerMsg: number;
  eldP99Ms: number;
  eldMaxMs: number;
  latP50Ms: number;
  latP99Ms: number;
  wireBytesPerMsg: number;
}

export interface ClusterBenchResult {
  rows: ClusterRow[];
  skipped?: string;
  error?: string;
}

async function stopAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map(async (child) => {
    if (child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.send({ type: 'stop' });
    await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
  }));
}

/** One layout: nodes (the first publishes), clients on every node, one measured window. */
async function measure(o: ClusterBenchOptions, kind: 'batchcast' | 'socketio', redis: string | null, nodes: number, label: string[]): Promise<ClusterRow[]> {
  const prefix = `bcbench${process.pid}.${Date.now()}:`;
  const children: ChildProcess[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < nodes; i++) {
      const rate = i === 0 ? o.rate : 0;
      const preset = PRESETS[o.preset];
      const [script, args] = kind === 'batchcast'
        ? ['../cluster-node.js', { redis, prefix, rate, preset: o.preset, poolSize: o.poolSize } satisfies ClusterNodeArgs]
        : ['../socketio-node.js', { redis: redis!, prefix, rate, batchSize: preset.batchSize, batchDelayMs: preset.batchDelayMs } satisfies SocketIoNodeArgs];
      const child = fork(here(script), [JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      ports.push((await ask<{ port: number }>(child, null, 'ready')).port);
    }
    const clientArgs: ClusterClientsArgs = { ports, perNode: o.clientsPerNode, protocol: kind };
    const clients = fork(here('../cluster-clients.js'), [JSON.stringify(clientArgs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(clients);
    await ask(clients, null, 'ready');
    await sleep(o.warmupMs);
    for (const child of children) child.send({ type: 'measure-start' });
    await sleep(o.durationMs);
    const nodeMeasures = await Promise.all(children.slice(0, nodes).map((child) => ask<NodeMeasure>(child, { type: 'measure-stop' }, 'measure')));
    const clientMeasure = await ask<ClientsMeasure>(clients, { type: 'measure-stop' }, 'measure');
    const published = nodeMeasures[0]!.published;
    return nodeMeasures.map((m, i) => ({
      layout: label[i]!,
      subscribers: o.clientsPerNode,
      busyUsPerMsg: (m.elu * m.windowMs * 1000) / published,
      mainCpuUsPerMsg: m.mainCpuUs / published,
      eldP99Ms: m.eldP99Ms,
      eldMaxMs: m.eldMaxMs,
      latP50Ms: clientMeasure.nodes[i]!.latP50Ms,
      latP99Ms: clientMeasure.nodes[i]!.latP99Ms,
      wireBytesPerMsg: clientMeasure.nodes[i]!.wireBytes / o.clientsPerNode / published,
    }));
  } finally {
    await stopAll(children);
  }
}

/** Runs the single-node and the two-node layouts; a failure is reported in the result, not thrown. */
export async function runClusterBench(o: ClusterBenchOptions, reachable: boolean, progress: (label: string) => void): Promise<ClusterBenchResult> {
  if (!reachable) return { rows: [], skipped: `no Redis answers at ${o.redis}` };
  const result: ClusterBenchResult = { rows: [] };
  try {
    progress(`cluster · single node · ${o.clientsPerNode} clients`);
    result.rows.push(...(await measure(o, 'batchcast', null, 1, ['single node (no Redis)'])));
    progress(`cluster · two nodes through Redis · ${o.clientsPerNode} clients each`);
    result.rows.push(...(await measure(o, 'batchcast', o.redis, 2, ['cluster: publishing node', 'cluster: receiving node'])));
    if (o.socketIo) {
      progress(`cluster · Socket.IO + redis-adapter, two nodes · ${o.clientsPerNode} clients each`);
      result.rows.push(...(await measure(o, 'socketio', o.redis, 2, ['socket.io: publishing node', 'socket.io: receiving node'])));
    }
  } catch (error) {
    result.error = (error as Error).message;
  }
  return result;
}

/** The text section of the report. */
export function clusterText(result: ClusterBenchResult, o: ClusterBenchOptions): string {
  const parts = [`\n== Cluster: ${fmt(o.rate, 0)} trade msgs/s published on one node, ${o.clientsPerNode} clients per node (${o.preset}) ==`];
  if (result.skipped !== undefined) parts.push(`  skipped: ${result.skipped}`);
  if (result.rows.length > 0) {
    parts.push(table(
      ['layout', 'subs', 'busy µs/msg', 'main CPU µs/msg', 'eld p99/max ms', 'lat p50/p99 ms', 'wire B/msg'],
      result.rows.map((r) => [
        r.layout, String(r.subscribers), fmt(r.busyUsPerMsg, 2), fmt(r.mainCpuUsPerMsg, 2), `${fmt(r.eldP99Ms, 1)}/${fmt(r.eldMaxMs, 1)}`,
        `${fmt(r.latP50Ms, 1)}/${fmt(r.latP99Ms, 1)}`, fmt(r.wireBytesPerMsg, 1),
      ]),
    ));
  }
  if (result.error !== undefined) parts.push(`  cluster scenario failed: ${result.error}`);
  return parts.join('\n');
}
