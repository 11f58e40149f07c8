/**
 * batchcast benchmark suite: batchcast next to the servers an application would
 * write instead, on the same workload, in one run. See BENCHMARKS.md and `--help`.
 *
 * Each row runs its server in a fresh child process (the "server main thread"
 * measured for every variant) and its clients in another; this process only
 * schedules rows and writes results (stdout table, JSON, SVG charts).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, freemem, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { writeCharts } from './lib/charts.js';
import { clusterText, runClusterBench, type ClusterBenchOptions, type ClusterBenchResult } from './lib/cluster.js';
import { historyText, runHistoryBench, type HistoryBenchOptions, type HistoryBenchResult } from './lib/history.js';
import { VARIANT_INFO, type RowSpec, type Scenario, type VariantName } from './lib/ipc.js';
import { HELP, parseOptions, type BenchOptions } from './lib/options.js';
import { runEncode, runRow, type RowResult } from './lib/orchestrate.js';
import {
  aggregate,
  encodeScaling,
  encodeTable,
  fanoutCostTable,
  fanoutCosts,
  rowsTable,
  saturation,
  saturationTable,
  table,
} from './lib/report.js';
import { pmdTable, pmdTargets, targets, targetsTable } from './lib/targets.js';
import { duration, fmt } from './lib/stats.js';
import { rowsFor } from './lib/workload.js';
import type { CostRow, EncodeRow } from './encode-proc.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Per-row overhead (processes, connections, teardown) assumed before any row has run. */
let overheadMs = 1500;
let rowsDone = 0;
let overheadTotal = 0;
const suiteStart = performance.now();

function progress(label: string, remainingMs: number): void {
  process.stderr.write(`[bench ${duration(performance.now() - suiteStart)}] ${label} · ~${duration(remainingMs)} left\n`);
}

function spec(o: BenchOptions, scenario: Scenario, variant: VariantName, subscribers: number, rate: number, extra: Partial<RowSpec> = {}): RowSpec {
  const producer = VARIANT_INFO[variant].wire === 'none';
  return {
    scenario, variant, subscribers: producer ? 0 : subscribers, rate, shape: o.shape, rows: 0, payloadBytes: 0,
    warmupMs: o.warmupMs, durationMs: o.durationMs, graceMs: o.graceMs, tickMs: o.tickMs,
    eldResolutionMs: o.eldResolutionMs ?? 10, probes: o.probes,
    // Probes decode every frame up to ~25k msgs/s; above, every n-th frame (latency is sampled per frame).
    decodeEvery: Math.max(1, Math.round(rate / 25_000)), clientWorkUs: 0, poolSize: o.poolSize, workerNice: o.workerNice, fanoutSliceMs: o.fanoutSliceMs, handoffSliceMs: o.handoffSliceMs, workerPollMs: o.workerPollMs, batchSize: o.batchSize, batchDelayMs: o.batchDelayMs,
    compressionThreshold: o.compressionThreshold, compressionLevel: o.compressionLevel, preset: o.preset, channel: 'bench', repeat: 0,
    ...extra,
  };
}

/** Rows of the fan-out and large scenarios, repeats interleaved. */
function planRows(o: BenchOptions): RowSpec[] {
  const plan: RowSpec[] = [];
  for (let repeat = 0; repeat < o.repeat; repeat++) {
    if (o.scenarios.includes('fanout')) {
      for (const variant of o.fanoutVariants.filter((v) => v.startsWith('producer'))) plan.push(spec(o, 'fanout', variant, 0, o.rate, { repeat }));
      for (const subscribers of o.clients) {
        for (const variant of o.fanoutVariants.filter((v) => !v.startsWith('producer'))) plan.push(spec(o, 'fanout', variant, subscribers, o.rate, { repeat }));
      }
    }
    if (o.scenarios.includes('overload')) {
      for (const variant of o.overloadVariants) plan.push(spec(o, 'overload', variant, o.overloadClients, o.overloadRate, { clientWorkUs: o.overloadWorkUs, repeat }));
    }
    if (o.scenarios.includes('large')) {
      const sizes = [...o.largeSizesKB].sort((a, b) => a - b);
      const largest = sizes[sizes.length - 1];
      for (const kb of sizes) {
        const variants = kb === largest ? o.largeVariants : o.largeVariants.filter((v) => o.sizeVariants.includes(v) || v === 'producer');
        for (const variant of variants) {
          const rows = rowsFor(kb * 1024);
          plan.push(spec(o, 'large', variant, o.largeClients, o.largeRate, {
            shape: 'snapshot', rows, payloadBytes: kb * 1024, eldResolutionMs: o.eldResolutionMs ?? 1, repeat,
            // Big frames take longer to drain; give the clients time in proportion.
            graceMs: Math.max(o.graceMs, 2000),
          }));
        }
      }
    }
  }
  return plan;
}

function rowLabel(s: RowSpec): string {
  const size = s.scenario === 'large' ? ` · ${fmt(s.payloadBytes / 1024, 0)} KB` : '';
  return `${s.scenario} · ${s.variant} · ${s.subscribers} clients · ${fmt(s.rate, 0)} msg/s${size}${s.repeat > 0 ? ` · repeat ${s.repeat + 1}` : ''}`;
}

function rowMs(s: RowSpec): number {
  return s.warmupMs + s.durationMs + overheadMs;
}

function noteRow(result: RowResult): void {
  rowsDone++;
  overheadTotal += Math.max(0, result.wallMs - result.spec.warmupMs - result.spec.durationMs);
  overheadMs = overheadTotal / rowsDone;
  if (!result.ok) process.stderr.write(`  row failed: ${result.error}\n`);
}

function estimateSaturation(o: BenchOptions, variants: number): number {
  const steps = Math.max(1, Math.min(5, Math.ceil(Math.log2(o.satMax / o.satStart)) + 1)) + o.satBisect;
  return variants * steps * (o.warmupMs + o.satDurationMs + overheadMs);
}

function estimateEncode(o: BenchOptions): number {
  return o.encodeCodecs.length * o.encodeLevels.length * (o.encodePools.length + 1) * (o.encodeRoundMs * o.encodeRounds + 150) + 1500;
}

async function main(): Promise<void> {
  let o: BenchOptions | null;
  try {
    o = parseOptions(process.argv.slice(2), join(ROOT, 'bench', 'results'));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${HELP}`);
    process.exitCode = 2;
    return;
  }
  if (o === null) {
    process.stdout.write(HELP);
    return;
  }
  const opts = o;
  if (opts.chartsFrom !== null) {
    const saved = JSON.parse(await readFile(opts.chartsFrom, 'utf8')) as { meta: { cores: number; cpuModel: string; node: string; profile: string; date: string }; rows: Parameters<typeof writeCharts>[1]; encode: EncodeRow[]; saturation: Parameters<typeof writeCharts>[3] };
    // JSON keeps NaN as null: turn them back into NaN for the chart filters.
    const rows = saved.rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null && k !== 'error' ? Number.NaN : v]))) as typeof saved.rows;
    const m = saved.meta;
    const names = await writeCharts(opts.out, rows, saved.encode, saved.saturation, `${m.cores} cores · ${m.cpuModel} · node ${m.node} · ${m.profile} · ${m.date.slice(0, 16)}Z`);
    process.stderr.write(`[bench] charts: ${names.map((n) => join(resolve(opts.out), n)).join(', ')}\n`);
    return;
  }
  const loadBefore = loadavg();
  const rowsPlan = planRows(opts);
  const rowsResults: RowResult[] = [];
  let encodeRows: EncodeRow[] = [];
  let costRows: CostRow[] = [];
  const satResults: RowResult[] = [];
  const remaining = (fromRow: number) =>
    rowsPlan.slice(fromRow).reduce((sum, s) => sum + rowMs(s), 0) +
    (opts.scenarios.includes('encode') && encodeRows.length === 0 ? estimateEncode(opts) : 0) +
    (opts.scenarios.includes('saturation') ? estimateSaturation(opts, opts.saturationVariants.length) : 0);

  process.stderr.write(`[bench] ${opts.profile} suite: ${opts.scenarios.join(', ')}; ${rowsPlan.length} fan-out/large rows; node ${process.version}, ${availableParallelism()} cores, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}\n`);

  for (let i = 0; i < rowsPlan.length; i++) {
    const s = rowsPlan[i]!;
    progress(`${i + 1}/${rowsPlan.length} ${rowLabel(s)}`, remaining(i));
    const result = await runRow(s);
    noteRow(result);
    rowsResults.push(result);
  }

  if (opts.scenarios.includes('encode')) {
    progress(`encode-only: pools ${opts.encodePools.join(',')} + inline, ${opts.encodeCodecs.join('/')}, levels ${opts.encodeLevels.join('/')}`, remaining(rowsPlan.length));
    try {
      ({ rows: encodeRows, costs: costRows } = await runEncode({
        poolSizes: opts.encodePools, codecs: opts.encodeCodecs, levels: opts.encodeLevels, batchSize: opts.batchSize, shape: opts.shape, rows: 0,
        warmupMs: opts.profile === 'smoke' ? 20 : 150, roundMs: opts.encodeRoundMs, rounds: opts.encodeRounds, threshold: opts.compressionThreshold,
        workerNice: opts.workerNice, workerPollMs: opts.workerPollMs,
      }));
    } catch (error) {
      process.stderr.write(`  encode scenario failed: ${(error as Error).message}\n`);
    }
  }

  if (opts.scenarios.includes('saturation')) {
    for (let v = 0; v < opts.saturationVariants.length; v++) {
      const variant = opts.saturationVariants[v]!;
      const left = () => estimateSaturation(opts, opts.saturationVariants.length - v);
      const step = async (rate: number) => {
        const s = spec(opts, 'saturation', variant, opts.satClients, rate, { durationMs: opts.satDurationMs });
        progress(`saturation · ${variant} · ${opts.satClients} clients · ${fmt(rate, 0)} msg/s`, left());
        const result = await runRow(s);
        noteRow(result);
        satResults.push(result);
        return result.ok && result.derived?.sustained === true;
      };
      let pass: number | null = null;
      let fail: number | null = null;
      for (let rate = opts.satStart; rate <= opts.satMax; rate *= 2) {
        if (await step(rate)) pass = rate;
        else {
          fail = rate;
          break;
        }
      }
      for (let b = 0; b < opts.satBisect && fail !== null; b++) {
        const low = pass ?? fail / 2;
        const mid = Math.round(Math.sqrt(low * fail) / 1000) * 1000;
        if (mid <= low || mid >= fail) break;
        if (await step(mid)) pass = mid;
        else fail = mid;
      }
    }
  }

  let history: HistoryBenchResult | null = null;
  const historyOptions: HistoryBenchOptions = {
    seconds: opts.historySeconds, rate: opts.historyRate, stormClients: opts.stormClients, stormRate: opts.stormRate,
    stormOutageMs: opts.stormOutageMs, preset: opts.preset, poolSize: opts.poolSize,
  };
  if (opts.scenarios.includes('history')) {
    history = await runHistoryBench(historyOptions, (label) => progress(label, (opts.historySeconds + 1) * 2000 + 15_000));
    if (history.error !== undefined) process.stderr.write(`  history scenario failed: ${history.error}\n`);
  }

  let cluster: ClusterBenchResult | null = null;
  const clusterOptions: ClusterBenchOptions = {
    redis: opts.redisUrl, rate: opts.rate, clientsPerNode: opts.clusterClients, warmupMs: opts.warmupMs, durationMs: opts.durationMs, preset: opts.preset, poolSize: opts.poolSize,
    socketIo: opts.clusterSocketIo,
  };
  if (opts.scenarios.includes('cluster')) {
    cluster = await runClusterBench(clusterOptions, await redisAnswers(opts.redisUrl), (label) => progress(label, 2 * (opts.warmupMs + opts.durationMs) + 5000));
    if (cluster.error !== undefined) process.stderr.write(`  cluster scenario failed: ${cluster.error}\n`);
    if (cluster.skipped !== undefined) process.stderr.write(`  cluster scenario skipped: ${cluster.skipped}\n`);
  }

  const rows = aggregate([...rowsResults, ...satResults]);
  const costs = fanoutCosts(rows);
  const scaling = encodeScaling(encodeRows);
  const sat = saturation(rows);
  const goals = [...targets(rows, costs, scaling), ...pmdTargets(rows)];
  const loadAfter = loadavg();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const meta = {
    date: new Date().toISOString(),
    profile: opts.profile,
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    totalMemGiB: totalmem() / 2 ** 30,
    freeMemGiBAtEnd: freemem() / 2 ** 30,
    loadavgBefore: loadBefore,
    loadavgAfter: loadAfter,
    commit: gitCommit(),
    argv: process.argv.slice(2),
    wallSeconds: (performance.now() - suiteStart) / 1000,
    method: {
      processes: 'each row: a fresh server process (variant server + producer on its main thread) and a fresh client process (all subscribers); the orchestrator only schedules',
      busy: 'performance.eventLoopUtilization() deltas of the server main thread over the window; busy µs/msg is the median over 250 ms slices',
      eventLoopDelay: `monitorEventLoopDelay, resolution ${opts.eldResolutionMs ?? '10 ms (fanout, saturation) / 1 ms (large)'}${opts.eldResolutionMs === null ? '' : ' ms'}`,
      latency: 'publish time embedded per message (performance.timeOrigin + performance.now()); probe clients (first and last subscriber) decode every frame',
      clientSaturatedAbove: 'client process event-loop utilization 0.9',
      sustained: 'producer kept >= 98% of its schedule, every client received every message in order within the grace period, clients not saturated',
    },
  };
  const results = { meta, options: opts, rows, fanoutCosts: costs, encode: encodeRows, encodeScaling: scaling, costModel: costRows, saturation: sat, targets: goals, history, cluster, raw: [...rowsResults, ...satResults] };

  const subtitle = `${meta.cores} cores · ${meta.cpuModel} · node ${meta.node} · ${opts.profile} · ${meta.date.slice(0, 16)}Z`;
  const text = renderText(opts, rows, costs, encodeRows, scaling, costRows, sat, goals, meta) + (history === null ? '' : `${historyText(history, historyOptions)}\n`) + (cluster === null ? '' : `${clusterText(cluster, clusterOptions)}\n`);
  process.stdout.write(text);

  await mkdir(opts.out, { recursive: true });
  const json = `${JSON.stringify(results, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? null : value), 2)}\n`;
  await writeFile(join(opts.out, `${stamp}.json`), json);
  await writeFile(join(opts.out, 'latest.json'), json);
  await writeFile(join(opts.out, `${stamp}.txt`), text);
  await writeFile(join(opts.out, 'latest.txt'), text);
  if (opts.charts) {
    try {
      const names = await writeCharts(join(opts.out, stamp), rows, encodeRows, sat, subtitle);
      await writeCharts(join(opts.out, 'latest'), rows, encodeRows, sat, subtitle);
      process.stderr.write(`[bench] charts: ${names.map((n) => join(resolve(opts.out), 'latest', n)).join(', ')}\n`);
    } catch (error) {
      process.stderr.write(`[bench] charts failed: ${(error as Error).message}\n`);
    }
  }
  process.stderr.write(`[bench] done in ${duration(performance.now() - suiteStart)}; results: ${join(resolve(opts.out), `${stamp}.json`)} (and latest.json)\n`);
}

function renderText(
  o: BenchOptions, rows: ReturnType<typeof aggregate>, costs: ReturnType<typeof fanoutCosts>, encodeRows: EncodeRow[], scaling: ReturnType<typeof encodeScaling>,
  costRows: CostRow[], sat: ReturnType<typeof saturation>, goals: ReturnType<typeof targets>, meta: { date: string; node: string; cores: number; cpuModel: string; loadavgBefore: number[] },
): string {
  const parts: string[] = [];
  parts.push(`batchcast bench · ${o.profile} · ${meta.date} · node ${meta.node} · ${meta.cores} cores (${meta.cpuModel}) · load before ${meta.loadavgBefore.map((l) => l.toFixed(2)).join(' ')}`);
  parts.push(`batching ${o.batchSize} msgs / ${o.batchDelayMs} ms, threshold ${o.compressionThreshold} B, level ${o.compressionLevel}; batchcast pool ${o.poolSize}, workerNice ${o.workerNice}, fanoutSliceMs ${o.fanoutSliceMs}, handoffSliceMs ${o.handoffSliceMs}, workerPollMs ${o.workerPollMs}; window ${o.durationMs} ms after ${o.warmupMs} ms warm-up`);
  parts.push('busy = main-thread event-loop busy µs per published message (median of 250 ms slices); net = busy less the producer-only floor; ×seed / ×async = busy ratio to seed-inline / inline-async; eld = event-loop delay; CPU = process CPU in cores (all threads); lat = publish→receive on probe clients; fraction = slowest client\'s share of published messages.');
  if (rows.some((r) => r.scenario === 'fanout')) parts.push(`\n== Fan-out: 1 channel, ${fmt(o.rate, 0)} ${o.shape} msgs/s ==\n${rowsTable(rows, 'fanout')}`);
  if (costs.length > 0) parts.push(`\n== Per-subscriber fan-out cost (main-thread time per frame written: slope between client counts, or net of the producer row) ==\n${fanoutCostTable(costs)}`);
  if (rows.some((r) => r.scenario === 'overload')) parts.push(`\n== Overload: ${o.overloadClients} clients that cannot keep up (each spends ${o.overloadWorkUs} µs per frame), ${fmt(o.overloadRate, 0)} ${o.shape} msgs/s ==\n${rowsTable(rows, 'overload')}`);
  if (rows.some((r) => r.scenario === 'large')) parts.push(`\n== Large payloads: snapshots at ${o.largeRate}/s to ${o.largeClients} clients ==\n${rowsTable(rows, 'large')}`);
  if (encodeRows.length > 0) parts.push(`\n== Encode only (no sockets), batches of ${o.batchSize} ${o.shape} messages ==\n${encodeTable(encodeRows, scaling)}`);
  if (costRows.length > 0) {
    parts.push(`\n== Cost model: main-thread µs for one batch of ${o.batchSize} ${o.shape} messages, and for one ~1 MB snapshot (median; the bounds behind the rows above) ==\n${table(
      ['step', 'µs / batch', 'µs / msg'],
      costRows.map((c) => [c.step, fmt(c.usPerBatch, 0), fmt(c.usPerMsg, 3)]),
    )}`);
  }
  if (sat.length > 0) parts.push(`\n== Saturation: ${o.satClients} clients, rate doubled from ${fmt(o.satStart, 0)} (y = sustained, n = not, c = clients saturated) ==\n${saturationTable(sat)}`);
  if (rows.some((r) => r.scenario === 'saturation')) parts.push(`\n-- saturation steps --\n${rowsTable(rows, 'saturation')}`);
  if (rows.some((r) => r.variant === 'batchcast-pmd')) parts.push(`\n== permessage-deflate: compressed once per batch (batchcast-pmd) vs per client (ws-pmd) ==\n${pmdTable(rows)}`);
  parts.push(`\n== Targets ==\n${targetsTable(goals)}`);
  for (const goal of goals) if (goal.note !== '') parts.push(`  ${goal.id}: ${goal.note}`);
  return `${parts.join('\n')}\n`;
}

/** True if the Redis server at `url` answers PING within a second (the scenario is skipped if not). */
async function redisAnswers(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {}); // the rejected connect() below says it; no "unhandled error event" noise
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

await main();
