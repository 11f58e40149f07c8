/**
 * The issues' targets, judged from the aggregated rows: main-thread busy against the
 * inline servers, stalls with large messages, fan-out cost, encode scaling, and
 * permessage-deflate done once per batch (batchcast-pmd) against ws's per-client
 * compression (ws-pmd).
 */
import { fmt } from './stats.js';
import { saturation, table, x, type FanoutCost, type FlatRow, type ScalingRow } from './report.js';
import type { VariantName } from './ipc.js';

/** One of the issue's targets, met or not, with the measured ratio. */
export interface Target {
  id: string;
  description: string;
  limit: number;
  measured: { label: string; ratio: number }[];
  met: boolean | null;
  note: string;
  /** The limit is a floor (measured must reach it), not a ceiling. */
  atLeast?: boolean;
  /** Render ratios as percentages. */
  percent?: boolean;
}

export function targets(rows: FlatRow[], costs: FanoutCost[], scaling: ScalingRow[]): Target[] {
  const out: Target[] = [];
  const fan = rows.filter((r) => r.scenario === 'fanout' && r.ok);
  const verdict = (measured: { ratio: number }[], limit: number) =>
    measured.length === 0 || measured.some((m) => !Number.isFinite(m.ratio)) ? null : measured.every((m) => m.ratio <= limit);
  const floorCost = costs.find((c) => c.variant === 'write-floor');
  const busyTarget = (id: string, variant: VariantName, field: 'vsSeedInline' | 'vsInlineAsync', netField: 'netVsSeedInline' | 'netVsInlineAsync', limit: number, description: string) => {
    const cpuField = field === 'vsSeedInline' ? 'cpuVsSeedInline' : 'cpuVsInlineAsync';
    const mine = fan.filter((r) => r.variant === variant).sort((a, b) => a.subscribers - b.subscribers);
    const measured = mine.map((r) => ({ label: `${r.subscribers} clients`, ratio: r[field] }));
    const reference = field === 'vsSeedInline' ? 'seed-inline' : 'inline-async';
    // Writing the frame to every socket costs the same whoever encoded it: that share of the reference is a floor for any ratio.
    const bounds = floorCost === undefined ? [] : mine.flatMap((r) => {
      const ref = fan.find((f) => f.variant === reference && f.subscribers === r.subscribers);
      if (ref === undefined || !Number.isFinite(ref.avgBatch)) return [];
      return [`${r.subscribers} clients ${fmt((floorCost.usPerSubscriberFrame * r.subscribers) / ref.avgBatch / ref.busyUsPerMsg, 2)}×`];
    });
    out.push({
      id, description, limit, measured, met: verdict(measured, limit),
      note: `judged on total main-thread busy per message (event-loop utilization, producer included); on main-thread CPU time: ${mine.map((r) => `${r.subscribers} clients ${fmt(r[cpuField], 2)}×`).join(', ') || '-'}; busy net of the producer floor: ${mine.map((r) => `${r.subscribers} clients ${fmt(r[netField], 2)}×`).join(', ') || '-'}` +
        (bounds.length === 0 ? '' : `; fan-out alone (write-floor µs per subscriber-frame × clients ÷ batch) is already ${bounds.join(', ')} of ${reference}'s busy`),
    });
  };
  busyTarget('busy-objects-vs-seed', 'batchcast', 'vsSeedInline', 'netVsSeedInline', 0.5, 'main-thread busy per message, plain objects, ≤ 0.5× seed-inline');
  busyTarget('busy-objects-vs-async', 'batchcast', 'vsInlineAsync', 'netVsInlineAsync', 0.8, 'main-thread busy per message, plain objects, ≤ 0.8× inline-async');
  busyTarget('busy-objects-vs-async-09', 'batchcast', 'vsInlineAsync', 'netVsInlineAsync', 0.9, 'main-thread busy per message, plain objects, ≤ 0.9× inline-async (issue 12, goal 1)');
  busyTarget('busy-pre-vs-seed', 'batchcast-pre', 'vsSeedInline', 'netVsSeedInline', 0.15, 'main-thread busy per message, pre-serialized input, ≤ 0.15× seed-inline');

  // Issue 12, goal 2: the highest sustained rate to 20 clients, default settings, against inline-async's.
  const sat = saturation(rows);
  const satOf = (variant: VariantName) => sat.find((s) => s.variant === variant);
  const satBc = satOf('batchcast');
  const satAsync = satOf('inline-async');
  const satMeasured = satBc?.maxSustainedRate == null || satAsync?.maxSustainedRate == null ? [] : [{ label: `${satBc.subscribers} clients`, ratio: satBc.maxSustainedRate / satAsync.maxSustainedRate }];
  out.push({
    id: 'saturation-vs-async', description: 'max sustained rate to 20 clients ≥ inline-async (issue 12, goal 2)', limit: 1, atLeast: true,
    measured: satMeasured, met: satMeasured.length === 0 ? null : satMeasured.every((m) => m.ratio >= 1),
    note: satBc === undefined || satAsync === undefined ? 'saturation not measured' : `batchcast ${fmt(satBc.maxSustainedRate ?? Number.NaN, 0)} msgs/s (next step failed: ${satBc.reason}), inline-async ${fmt(satAsync.maxSustainedRate ?? Number.NaN, 0)}`,
  });

  // Issue 12, goal 4: clients that cannot keep up must not make batchcast's main thread busier than the seed's.
  const over = rows.filter((r) => r.scenario === 'overload' && r.ok);
  const overOf = (variant: VariantName) => over.find((r) => r.variant === variant);
  const overBc = overOf('batchcast');
  const overMeasured = overBc === undefined ? [] : [{ label: `${overBc.subscribers} clients`, ratio: overBc.vsSeedInline }];
  out.push({
    id: 'overload-vs-seed', description: 'main-thread busy with clients that cannot keep up ≤ seed-inline (issue 12, goal 4)', limit: 1,
    measured: overMeasured, met: verdict(overMeasured, 1),
    note: overBc === undefined ? 'overload not measured' : `busy µs/msg: ${over.map((r) => `${r.variant} ${fmt(r.busyUsPerMsg, 2)} (CPU ${fmt(r.mainCpuUsPerMsg, 2)}, client ELU ${fmt(r.clientElu, 2)}, delivered ${fmt(r.deliveredFraction * 100, 1)}%)`).join(', ')}`,
  });

  const large = rows.filter((r) => r.scenario === 'large' && r.ok);
  const sizes = [...new Set(large.map((r) => r.payloadKB))];
  const size = sizes.sort((a, b) => Math.abs(a - 1024) - Math.abs(b - 1024))[0];
  const at = large.filter((r) => r.payloadKB === size);
  const stall = (variant: VariantName) => at.find((r) => r.variant === variant);
  const bc = stall('batchcast');
  const pre = stall('batchcast-pre');
  const stallMeasured = bc === undefined ? [] : [{ label: `batchcast, ${fmt(size, 0)} KB`, ratio: bc.stallVsInlineAsync }];
  const asyncRow = stall('inline-async');
  out.push({
    id: 'stall-large-vs-async', description: 'worst event-loop stall with ~1 MB messages ≤ 0.5× inline-async (plain objects)', limit: 0.5,
    measured: stallMeasured, met: verdict(stallMeasured, 0.5),
    note: `max event-loop delay: batchcast ${fmt(bc?.eldMaxMs, 1)} ms vs inline-async ${fmt(asyncRow?.eldMaxMs, 1)} ms (p99 ${fmt(bc?.eldP99Ms, 1)} vs ${fmt(asyncRow?.eldP99Ms, 1)} ms)` +
      (pre === undefined ? '' : `; pre-serialized input: ${fmt(pre.stallVsInlineAsync, 2)}× (${fmt(pre.eldMaxMs, 1)} ms, p99 ${fmt(pre.eldP99Ms, 1)} ms)`),
  });

  // Judged on main-thread CPU: the busy slope also counts time the main thread waits for a core that batchcast's own
  // worker and the client processes take on a 2-core machine (perf and sched traces, BENCHMARKS.md), which is not fan-out cost.
  const fanoutMeasured = costs.filter((c) => c.variant === 'batchcast' || c.variant === 'batchcast-pre').map((c) => ({ label: c.variant, ratio: c.cpuVsWriteFloor }));
  const floor = costs.find((c) => c.variant === 'write-floor');
  out.push({
    id: 'fanout-vs-write', description: 'per-subscriber fan-out cost (main-thread CPU) within 1.15× of a raw socket.write of a prepared buffer', limit: 1.15,
    measured: fanoutMeasured, met: verdict(fanoutMeasured, 1.15),
    note: floor === undefined ? 'write-floor not measured' : `on main-thread CPU: floor ${fmt(floor.cpuUsPerSubscriberFrame, 2)} µs per subscriber-frame, ${costs.filter((c) => c.variant.startsWith('batchcast')).map((c) => `${c.variant} ${fmt(c.cpuUsPerSubscriberFrame, 2)} µs`).join(', ')}; busy slope (waits for a core included): floor ${fmt(floor.usPerSubscriberFrame, 2)} µs, ${costs.filter((c) => c.variant.startsWith('batchcast')).map((c) => `${c.variant} ${fmt(c.usPerSubscriberFrame, 2)} µs (${x(c.vsWriteFloor)})`).join(', ')}`,
  });

  const added = scaling.filter((s) => s.poolSize > 1);
  const scaleMeasured = added.map((s) => ({ label: `${s.codec} level ${s.level}, thread ${s.poolSize}`, ratio: s.addedThreadEfficiency }));
  out.push({
    id: 'encode-scaling', description: 'encode scaling ≥ 80% efficiency per added thread up to the core count', limit: 0.8,
    measured: scaleMeasured, atLeast: true, percent: true,
    met: scaleMeasured.length === 0 || scaleMeasured.some((m) => !Number.isFinite(m.ratio)) ? null : scaleMeasured.every((m) => m.ratio >= 0.8),
    note: added.length === 0 ? 'needs at least 2 pool sizes (cores ≥ 2)' : 'efficiency = (msgs/s at n − msgs/s at n−1) ÷ msgs/s at 1',
  });
  return out;
}


export function targetsTable(list: Target[]): string {
  const show = (t: Target, ratio: number) => (t.percent === true ? `${fmt(ratio * 100, 0)}%` : x(ratio));
  return table(
    ['target', 'limit', 'measured', 'verdict'],
    list.map((t) => [
      t.description, `${t.atLeast === true ? '≥' : '≤'} ${t.percent === true ? `${fmt(t.limit * 100, 0)}%` : `${t.limit}×`}`,
      t.measured.map((m) => `${m.label}: ${show(t, m.ratio)}`).join(', ') || '-',
      t.met === null ? 'not measured' : t.met ? 'MET' : 'NOT MET',
    ]),
  );
}

/** Where batchcast-pmd and ws-pmd ran the same workload: the figures the permessage-deflate targets compare. */
export interface PmdPair {
  scenario: 'fanout' | 'large';
  subscribers: number;
  payloadKB: number;
  ws: FlatRow;
  batchcast: FlatRow;
  /** batchcast-pmd ÷ ws-pmd. */
  wire: number;
  cpu: number;
  /** Process CPU per delivered message (subscriber-message), which counts what ws-pmd failed to deliver. */
  cpuPerDelivered: number;
  busy: number;
}

/** Pairs the ws-pmd and batchcast-pmd rows of the same workload. */
export function pmdPairs(rows: FlatRow[]): PmdPair[] {
  const pairs: PmdPair[] = [];
  for (const ws of rows.filter((r) => r.variant === 'ws-pmd' && r.ok && (r.scenario === 'fanout' || r.scenario === 'large'))) {
    const bc = rows.find((r) => r.variant === 'batchcast-pmd' && r.ok && r.scenario === ws.scenario && r.subscribers === ws.subscribers && r.rate === ws.rate && r.payloadKB === ws.payloadKB);
    if (bc === undefined) continue;
    pairs.push({
      scenario: ws.scenario as 'fanout' | 'large', subscribers: ws.subscribers, payloadKB: ws.payloadKB, ws, batchcast: bc,
      wire: bc.wireBytesPerMsg / ws.wireBytesPerMsg,
      cpu: bc.cpuCores / ws.cpuCores,
      cpuPerDelivered: bc.cpuCores / bc.deliveredPerSec / (ws.cpuCores / ws.deliveredPerSec),
      busy: bc.busyUsPerMsg / ws.busyUsPerMsg,
    });
  }
  return pairs;
}

const pairLabel = (p: PmdPair) => (p.scenario === 'large' ? `${fmt(p.payloadKB, 0)} KB × ${p.subscribers}` : `${p.subscribers} clients`);

/** The permessage-deflate targets: wire bytes ≤ 1.15× ws-pmd, server CPU ≤ 1/8 of it, every message delivered at 200 clients. */
export function pmdTargets(rows: FlatRow[]): Target[] {
  const pairs = pmdPairs(rows);
  const judged = (measured: { ratio: number }[], ok: (ratio: number) => boolean) => (measured.length === 0 || measured.some((m) => !Number.isFinite(m.ratio)) ? null : measured.every((m) => ok(m.ratio)));
  const wire = pairs.map((p) => ({ label: pairLabel(p), ratio: p.wire }));
  const cpu = pairs.map((p) => ({ label: pairLabel(p), ratio: p.cpu }));
  const crowd = pairs.filter((p) => p.scenario === 'fanout' && p.subscribers >= 200);
  const delivery = crowd.map((p) => ({ label: pairLabel(p), ratio: p.batchcast.deliveredFraction }));
  return [
    {
      id: 'pmd-wire', description: 'permessage-deflate once per batch: wire bytes per message ≤ 1.15× ws-pmd (per-client context)', limit: 1.15,
      measured: wire, met: judged(wire, (r) => r <= 1.15),
      note: pairs.map((p) => `${pairLabel(p)} ${fmt(p.batchcast.wireBytesPerMsg, 1)} vs ${fmt(p.ws.wireBytesPerMsg, 1)} B`).join(', '),
    },
    {
      id: 'pmd-cpu', description: 'permessage-deflate once per batch: server CPU (all threads) ≤ 1/8 of ws-pmd', limit: 0.125,
      measured: cpu, met: judged(cpu, (r) => r <= 0.125),
      note: `${pairs.map((p) => `${pairLabel(p)} ${fmt(p.batchcast.cpuCores, 2)} vs ${fmt(p.ws.cpuCores, 2)} cores`).join(', ')}; per delivered message: ${pairs.map((p) => `${pairLabel(p)} ${x(p.cpuPerDelivered)}`).join(', ')}; main-thread busy: ${pairs.map((p) => `${pairLabel(p)} ${x(p.busy)}`).join(', ')}`,
    },
    {
      id: 'pmd-delivery', description: 'permessage-deflate once per batch: every message delivered at 200 clients', limit: 1, atLeast: true, percent: true,
      measured: delivery, met: judged(delivery, (r) => r >= 1),
      note: crowd.map((p) => `${pairLabel(p)}: batchcast-pmd ${fmt(p.batchcast.deliveredFraction * 100, 2)}%, ws-pmd ${fmt(p.ws.deliveredFraction * 100, 2)}% (lat p50 ${fmt(p.batchcast.latP50Ms, 0)} vs ${fmt(p.ws.latP50Ms, 0)} ms)`).join('; '),
    },
  ];
}

/** Side by side: ws-pmd and batchcast-pmd on each workload both ran. */
export function pmdTable(rows: FlatRow[]): string {
  return table(
    ['workload', 'wire B/msg ws / bc', '×', 'CPU cores ws / bc', '×', 'CPU per delivered ×', 'busy µs/msg ws / bc', '×', 'delivered ws / bc'],
    pmdPairs(rows).map((p) => [
      `${p.scenario} ${pairLabel(p)}`, `${fmt(p.ws.wireBytesPerMsg, 1)} / ${fmt(p.batchcast.wireBytesPerMsg, 1)}`, x(p.wire),
      `${fmt(p.ws.cpuCores, 2)} / ${fmt(p.batchcast.cpuCores, 2)}`, x(p.cpu), x(p.cpuPerDelivered),
      `${fmt(p.ws.busyUsPerMsg, 2)} / ${fmt(p.batchcast.busyUsPerMsg, 2)}`, x(p.busy),
      `${fmt(p.ws.deliveredFraction * 100, 1)}% / ${fmt(p.batchcast.deliveredFraction * 100, 1)}%`,
    ]),
  );
}
