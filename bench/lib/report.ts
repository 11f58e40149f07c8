/**
 * From raw row results to what the suite reports: one flat row per
 * (scenario, variant, subscribers, rate, payload) with medians over repeats,
 * ratios against seed-inline and inline-async, the producer floor, per-subscriber
 * fan-out cost, saturation limits, encode scaling and the targets.
 */
import type { EncodeRow } from '../encode-proc.js';
import type { RowResult } from './orchestrate.js';
import type { Scenario, VariantName } from './ipc.js';
import { fmt, median } from './stats.js';

/** One reported row; every number is the median over repeats. */
export interface FlatRow {
  scenario: Scenario;
  variant: VariantName;
  subscribers: number;
  rate: number;
  payloadKB: number;
  repeats: number;
  ok: boolean;
  error: string | null;
  elu: number;
  /** Main-thread busy µs per published message: median over 250 ms slices of the window. */
  busyUsPerMsg: number;
  /** The same over the whole window. */
  busyUsPerMsgWindow: number;
  /** busyUsPerMsg less the producer-only floor of the same workload. */
  netBusyUsPerMsg: number;
  vsSeedInline: number;
  vsInlineAsync: number;
  netVsSeedInline: number;
  netVsInlineAsync: number;
  /** mainCpuUsPerMsg ratios: the same comparison on main-thread CPU time instead of event-loop busy time. */
  cpuVsSeedInline: number;
  cpuVsInlineAsync: number;
  produceUsPerMsg: number;
  publishCallUsPerMsg: number;
  /** Main-thread CPU µs per message (Linux schedstat): busy time less preemption, plus kernel time in polls. */
  mainCpuUsPerMsg: number;
  /** Milliseconds per second the main thread was runnable but waiting for a CPU. */
  mainWaitMsPerSec: number;
  eldP50Ms: number;
  eldP99Ms: number;
  eldMaxMs: number;
  stallVsInlineAsync: number;
  cpuCores: number;
  peakRssMB: number;
  achievedRate: number;
  publishedShare: number;
  deliveredPerSec: number;
  deliveredFraction: number;
  latP50Ms: number;
  latP99Ms: number;
  latMaxMs: number;
  latencySamples: number;
  wireBytesPerMsg: number;
  compressionRatio: number;
  avgBatch: number;
  clientElu: number;
  clientCpuCores: number;
  clientSaturated: boolean;
  sustained: boolean;
  gaps: number;
}

const NUMERIC: (keyof FlatRow)[] = [
  'elu', 'busyUsPerMsg', 'busyUsPerMsgWindow', 'produceUsPerMsg', 'publishCallUsPerMsg', 'mainCpuUsPerMsg', 'mainWaitMsPerSec', 'eldP50Ms', 'eldP99Ms', 'eldMaxMs', 'cpuCores', 'peakRssMB',
  'achievedRate', 'publishedShare', 'deliveredPerSec', 'deliveredFraction', 'latP50Ms', 'latP99Ms', 'latMaxMs', 'latencySamples', 'wireBytesPerMsg',
  'compressionRatio', 'avgBatch', 'clientElu', 'clientCpuCores', 'gaps',
];

function flatten(r: RowResult): FlatRow {
  const s = r.server;
  const c = r.client;
  const d = r.derived;
  const num = (v: number | null | undefined) => (v === null || v === undefined ? Number.NaN : v);
  return {
    scenario: r.spec.scenario,
    variant: r.spec.variant,
    subscribers: r.spec.subscribers,
    rate: r.spec.rate,
    payloadKB: r.spec.payloadBytes / 1024,
    repeats: 1,
    ok: r.ok,
    error: r.error ?? null,
    elu: num(s?.elu),
    busyUsPerMsg: num(s?.busyUsPerMsgMedian),
    busyUsPerMsgWindow: num(s?.busyUsPerMsg),
    netBusyUsPerMsg: Number.NaN,
    vsSeedInline: Number.NaN,
    vsInlineAsync: Number.NaN,
    netVsSeedInline: Number.NaN,
    netVsInlineAsync: Number.NaN,
    cpuVsSeedInline: Number.NaN,
    cpuVsInlineAsync: Number.NaN,
    produceUsPerMsg: num(s?.produceUsPerMsg),
    publishCallUsPerMsg: num(s?.publishCallUsPerMsg),
    mainCpuUsPerMsg: num(s?.mainCpuUsPerMsg),
    mainWaitMsPerSec: s === undefined ? Number.NaN : (s.mainWaitMs * 1000) / s.windowMs,
    eldP50Ms: num(s?.eldP50Ms),
    eldP99Ms: num(s?.eldP99Ms),
    eldMaxMs: num(s?.eldMaxMs),
    stallVsInlineAsync: Number.NaN,
    cpuCores: num(s?.cpuCores),
    peakRssMB: num(s?.peakRssMB),
    achievedRate: num(d?.achievedRate),
    publishedShare: num(d?.publishedShare),
    deliveredPerSec: num(d?.deliveredPerSec),
    deliveredFraction: num(d?.deliveredFraction),
    latP50Ms: num(c?.latP50Ms),
    latP99Ms: num(c?.latP99Ms),
    latMaxMs: num(c?.latMaxMs),
    latencySamples: num(c?.latencySamples),
    wireBytesPerMsg: num(d?.wireBytesPerMsg),
    compressionRatio: num(d?.compressionRatio),
    avgBatch: num(d?.avgBatch),
    clientElu: num(c?.elu),
    clientCpuCores: num(c?.cpuCores),
    clientSaturated: d?.clientSaturated ?? false,
    sustained: d?.sustained ?? false,
    gaps: num(c?.gaps),
  };
}

export const rowKey = (r: { scenario: string; variant: string; subscribers: number; rate: number; payloadKB: number }) =>
  `${r.scenario}|${r.variant}|${r.subscribers}|${r.rate}|${r.payloadKB}`;

/** Flattens results and folds repeats of the same row into medians. */
export function aggregate(results: RowResult[]): FlatRow[] {
  const groups = new Map<string, FlatRow[]>();
  for (const result of results) {
    const flat = flatten(result);
    const key = rowKey(flat);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [flat]);
    else group.push(flat);
  }
  const rows: FlatRow[] = [];
  for (const group of groups.values()) {
    const first = { ...group[0]! };
    const ok = group.filter((g) => g.ok);
    first.repeats = group.length;
    first.ok = ok.length === group.length;
    first.error = group.find((g) => g.error !== null)?.error ?? null;
    const pool = ok.length > 0 ? ok : group;
    for (const field of NUMERIC) {
      const values = pool.map((g) => g[field] as number).filter((v) => Number.isFinite(v));
      (first as unknown as Record<string, number>)[field] = values.length === 0 ? Number.NaN : median(values);
    }
    first.clientSaturated = group.some((g) => g.clientSaturated);
    first.sustained = group.every((g) => g.sustained);
    rows.push(first);
  }
  compare(rows);
  return rows;
}

/** Ratios against seed-inline / inline-async and the producer floor, within the same scenario, clients, rate and payload. */
function compare(rows: FlatRow[]): void {
  const find = (row: FlatRow, variant: VariantName, subscribers = row.subscribers) =>
    rows.find((r) => r.scenario === row.scenario && r.variant === variant && r.subscribers === subscribers && r.rate === row.rate && r.payloadKB === row.payloadKB);
  for (const row of rows) {
    const floorVariant: VariantName = row.variant === 'batchcast-pre' ? 'producer-pre' : 'producer';
    const floor = find(row, floorVariant, 0) ?? find(row, 'producer', 0);
    if (floor !== undefined && !row.variant.startsWith('producer')) row.netBusyUsPerMsg = row.busyUsPerMsg - floor.busyUsPerMsg;
    const seed = find(row, 'seed-inline');
    const async = find(row, 'inline-async');
    if (seed !== undefined) {
      row.vsSeedInline = row.busyUsPerMsg / seed.busyUsPerMsg;
      row.netVsSeedInline = row.netBusyUsPerMsg / seed.netBusyUsPerMsg;
      row.cpuVsSeedInline = row.mainCpuUsPerMsg / seed.mainCpuUsPerMsg;
    }
    if (async !== undefined) {
      row.vsInlineAsync = row.busyUsPerMsg / async.busyUsPerMsg;
      row.netVsInlineAsync = row.netBusyUsPerMsg / async.netBusyUsPerMsg;
      row.cpuVsInlineAsync = row.mainCpuUsPerMsg / async.mainCpuUsPerMsg;
      row.stallVsInlineAsync = row.eldMaxMs / async.eldMaxMs;
    }
  }
}

/**
 * Per-subscriber fan-out cost: the slope of main-thread busy time between the smallest and
 * largest client counts; for a variant measured at one client count, its cost net of the
 * `producer` row (0 clients). Per frame written, not per message: a server that stalls
 * gets larger batches (the producer's bursts pile up), so it writes fewer frames per message.
 */
export interface FanoutCost {
  variant: VariantName;
  fromSubscribers: number;
  toSubscribers: number;
  /** Main-thread busy µs per frame written to one subscriber (event-loop utilization). */
  usPerSubscriberFrame: number;
  vsWriteFloor: number;
  /** The same slope on main-thread CPU time (schedstat). */
  cpuUsPerSubscriberFrame: number;
  cpuVsWriteFloor: number;
}

export function fanoutCosts(rows: FlatRow[]): FanoutCost[] {
  const fanout = rows.filter((r) => r.scenario === 'fanout' && r.ok && r.subscribers > 0);
  const variants = [...new Set(fanout.map((r) => r.variant))];
  const costs: FanoutCost[] = [];
  // A variant measured at one client count is taken against the producer row (0 clients, no frames).
  const producer = rows.find((r) => r.scenario === 'fanout' && r.ok && r.variant === 'producer');
  for (const variant of variants) {
    const mine = fanout.filter((r) => r.variant === variant).sort((a, b) => a.subscribers - b.subscribers);
    const low = mine.length >= 2 ? mine[0]! : producer;
    const high = mine[mine.length - 1]!;
    if (low === undefined) continue;
    // busy per message × messages per frame = busy per batch; its growth per added subscriber is the per-frame cost.
    const batch = mine.length < 2 ? high.avgBatch : Number.isFinite(high.avgBatch) ? (low.avgBatch + high.avgBatch) / 2 : 1;
    if (!Number.isFinite(batch)) continue;
    costs.push({
      variant, fromSubscribers: low.subscribers, toSubscribers: high.subscribers,
      usPerSubscriberFrame: ((high.busyUsPerMsg - low.busyUsPerMsg) * batch) / (high.subscribers - low.subscribers),
      vsWriteFloor: Number.NaN,
      cpuUsPerSubscriberFrame: ((high.mainCpuUsPerMsg - low.mainCpuUsPerMsg) * batch) / (high.subscribers - low.subscribers),
      cpuVsWriteFloor: Number.NaN,
    });
  }
  const floor = costs.find((c) => c.variant === 'write-floor');
  if (floor !== undefined) {
    for (const cost of costs) {
      cost.vsWriteFloor = cost.usPerSubscriberFrame / floor.usPerSubscriberFrame;
      cost.cpuVsWriteFloor = cost.cpuUsPerSubscriberFrame / floor.cpuUsPerSubscriberFrame;
    }
  }
  return costs;
}

/** Highest sustained rate per variant in the saturation scenario. */
export interface SaturationSummary {
  variant: VariantName;
  subscribers: number;
  maxSustainedRate: number | null;
  firstFailedRate: number | null;
  /** Why the first failing step failed. */
  reason: string;
  steps: { rate: number; sustained: boolean; publishedShare: number; deliveredFraction: number; clientSaturated: boolean; serverElu: number; clientElu: number; latP99Ms: number }[];
}

export function saturation(rows: FlatRow[]): SaturationSummary[] {
  const sat = rows.filter((r) => r.scenario === 'saturation');
  const out: SaturationSummary[] = [];
  for (const variant of [...new Set(sat.map((r) => r.variant))]) {
    const steps = sat.filter((r) => r.variant === variant).sort((a, b) => a.rate - b.rate);
    const passed = steps.filter((s) => s.sustained);
    const failed = steps.filter((s) => !s.sustained);
    const maxSustainedRate = passed.length === 0 ? null : passed[passed.length - 1]!.rate;
    const firstFail = failed.find((s) => maxSustainedRate === null || s.rate > maxSustainedRate) ?? failed[0];
    let reason = 'not reached';
    if (firstFail !== undefined) {
      const why: string[] = [];
      if (!firstFail.ok) why.push(`error: ${firstFail.error}`);
      if (firstFail.publishedShare < 0.98) why.push(`producer kept ${fmt(firstFail.publishedShare * 100, 0)}% of schedule (server main thread saturated)`);
      if (firstFail.deliveredFraction < 1) why.push(`slowest client got ${fmt(firstFail.deliveredFraction * 100, 1)}% within the grace period`);
      if (firstFail.gaps > 0) why.push(`${firstFail.gaps} sequence gaps`);
      if (firstFail.clientSaturated) {
        why.push(`client process saturated (ELU ${fmt(firstFail.clientElu, 2)}, CPU ${fmt(firstFail.clientCpuCores, 2)} cores${firstFail.clientCpuCores < 0.7 ? ': starved of CPU by the server threads' : ''}): the limit is at least the last sustained rate, bounded here by the clients`);
      }
      reason = why.join('; ') || 'failed';
    }
    out.push({
      variant, subscribers: steps[0]?.subscribers ?? 0, maxSustainedRate, firstFailedRate: firstFail?.rate ?? null, reason,
      steps: steps.map((s) => ({
        rate: s.rate, sustained: s.sustained, publishedShare: s.publishedShare, deliveredFraction: s.deliveredFraction,
        clientSaturated: s.clientSaturated, serverElu: s.elu, clientElu: s.clientElu, latP99Ms: s.latP99Ms,
      })),
    });
  }
  return out;
}

/** Scaling of the encode pool: speed-up and efficiency per added thread. */
export interface ScalingRow {
  codec: 'json' | 'msgpack';
  level: number;
  poolSize: number;
  msgsPerSec: number;
  speedup: number;
  /** Throughput gained by this thread / throughput of one thread. */
  addedThreadEfficiency: number;
  /** msgs/s ÷ (poolSize × msgs/s at pool size 1). */
  overallEfficiency: number;
  vsInline: number;
}

export function encodeScaling(rows: EncodeRow[]): ScalingRow[] {
  const out: ScalingRow[] = [];
  for (const row of rows) {
    if (row.poolSize === 0) continue;
    const same = rows.filter((r) => r.codec === row.codec && r.level === row.level);
    const one = same.find((r) => r.poolSize === 1);
    const prev = same.find((r) => r.poolSize === row.poolSize - 1);
    const inline = same.find((r) => r.poolSize === 0);
    const base = one?.msgsPerSec ?? Number.NaN;
    out.push({
      codec: row.codec, level: row.level, poolSize: row.poolSize, msgsPerSec: row.msgsPerSec,
      speedup: row.msgsPerSec / base,
      addedThreadEfficiency: row.poolSize === 1 ? 1 : prev === undefined ? Number.NaN : (row.msgsPerSec - prev.msgsPerSec) / base,
      overallEfficiency: row.msgsPerSec / (row.poolSize * base),
      vsInline: inline === undefined ? Number.NaN : row.msgsPerSec / inline.msgsPerSec,
    });
  }
  return out;
}

/** Renders a right-aligned text table (first column left-aligned). */
export function table(headers: string[], body: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '-');

/** The rows table of a scenario. */
export function rowsTable(rows: FlatRow[], scenario: Scenario): string {
  const mine = rows.filter((r) => r.scenario === scenario);
  const headers = [
    'variant', 'subs', 'rate/s', 'KB', 'ELU', 'busy µs/msg', 'net µs/msg', '×seed', '×async', 'main CPU µs/msg', 'CPU ×seed', 'eld p50/p99/max ms', 'CPU', 'RSS MB',
    'delivered/s', 'fraction', 'lat p50/p99 ms', 'wire B/msg', 'ratio', 'client ELU', 'note',
  ];
  const body = mine.map((r) => {
    const note: string[] = [];
    if (!r.ok) note.push(`ERROR ${r.error ?? ''}`.slice(0, 60));
    // In the overload scenario saturated clients are the point of the row.
    if (r.clientSaturated && scenario !== 'overload') note.push('CLIENTS SATURATED (row does not count)');
    if (r.ok && r.publishedShare < 0.98) note.push(`producer behind (${fmt(r.publishedShare * 100, 0)}%)`);
    if (r.ok && r.subscribers > 0 && r.deliveredFraction < 1) note.push('not all delivered');
    if (r.repeats > 1) note.push(`median of ${r.repeats}`);
    return [
      r.variant, String(r.subscribers), fmt(r.rate, 0), scenario === 'large' ? fmt(r.payloadKB, 0) : '', fmt(r.elu, 3), fmt(r.busyUsPerMsg, 2), fmt(r.netBusyUsPerMsg, 2),
      x(r.vsSeedInline), x(r.vsInlineAsync), fmt(r.mainCpuUsPerMsg, 2), x(r.cpuVsSeedInline), `${fmt(r.eldP50Ms, 1)}/${fmt(r.eldP99Ms, 1)}/${fmt(r.eldMaxMs, 1)}`, fmt(r.cpuCores, 2), fmt(r.peakRssMB, 0),
      fmt(r.deliveredPerSec, 0), fmt(r.deliveredFraction, 4), `${fmt(r.latP50Ms, 1)}/${fmt(r.latP99Ms, 1)}`, fmt(r.wireBytesPerMsg, 1), fmt(r.compressionRatio, 2),
      fmt(r.clientElu, 2), note.join('; '),
    ];
  });
  return table(headers, body);
}

export function encodeTable(rows: EncodeRow[], scaling: ScalingRow[]): string {
  const headers = ['codec', 'level', 'pool', 'msgs/s', 'raw MB/s', 'wire MB/s', 'main µs/batch', 'encode µs/batch', 'ratio', 'CPU', '×pool 1', 'added-thread eff.', '×inline'];
  const body = rows.map((r) => {
    const s = scaling.find((c) => c.codec === r.codec && c.level === r.level && c.poolSize === r.poolSize);
    return [
      r.codec, String(r.level), r.poolSize === 0 ? 'inline' : String(r.poolSize), fmt(r.msgsPerSec, 0), fmt(r.rawMBPerSec, 1), fmt(r.wireMBPerSec, 1),
      fmt(r.mainUsPerBatch, 0), fmt(r.encodeUsPerBatch, 0), fmt(r.compressionRatio, 2), fmt(r.cpuCores, 2),
      s === undefined ? '' : x(s.speedup), s === undefined ? '' : `${fmt(s.addedThreadEfficiency * 100, 0)}%`, s === undefined ? '' : x(s.vsInline),
    ];
  });
  return table(headers, body);
}

export function saturationTable(summaries: SaturationSummary[]): string {
  const headers = ['variant', 'subs', 'max sustained msgs/s', 'first failing', 'steps (rate:ok)', 'why the first failing rate failed'];
  const body = summaries.map((s) => [
    s.variant, String(s.subscribers), s.maxSustainedRate === null ? 'none' : fmt(s.maxSustainedRate, 0), s.firstFailedRate === null ? '-' : fmt(s.firstFailedRate, 0),
    s.steps.map((step) => `${fmt(step.rate, 0)}:${step.sustained ? 'y' : step.clientSaturated ? 'c' : 'n'}`).join(' '), s.reason,
  ]);
  return table(headers, body);
}

export function fanoutCostTable(costs: FanoutCost[]): string {
  return table(
    ['variant', 'clients', 'busy µs per subscriber-frame', '×write-floor', 'CPU µs per subscriber-frame', 'CPU ×write-floor'],
    costs.map((c) => [c.variant, `${c.fromSubscribers}→${c.toSubscribers}`, fmt(c.usPerSubscriberFrame, 2), x(c.vsWriteFloor), fmt(c.cpuUsPerSubscriberFrame, 2), x(c.cpuVsWriteFloor)]),
  );
}
