/** SVG charts of a run, rendered in Node by vega-lite → vega (no canvas needed for SVG). */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { EncodeRow } from '../encode-proc.js';
import { VARIANTS, type VariantName } from './ipc.js';
import type { FlatRow, SaturationSummary } from './report.js';

const ORDER = VARIANTS as readonly string[];

function group(variant: VariantName): string {
  if (variant.startsWith('batchcast')) return 'batchcast';
  if (variant === 'producer' || variant === 'producer-pre' || variant === 'write-floor') return 'floor';
  return 'baseline';
}

const COLORS = { domain: ['baseline', 'batchcast', 'floor'], range: ['#8c8c8c', '#1f77b4', '#d9a441'] };
const CONFIG = { font: 'Helvetica, Arial, sans-serif', axis: { labelFontSize: 11, titleFontSize: 12 }, title: { fontSize: 14, subtitleFontSize: 11, anchor: 'start' as const } };

async function render(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** Writes every chart the run has data for into `dir`; returns the file names. */
export async function writeCharts(dir: string, rows: FlatRow[], encode: EncodeRow[], saturation: SaturationSummary[], subtitle: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  const save = async (name: string, spec: TopLevelSpec) => {
    await writeFile(join(dir, name), await render(spec));
    written.push(name);
  };

  const fanout = rows.filter((r) => r.scenario === 'fanout' && r.ok);
  const subsCounts = [...new Set(fanout.filter((r) => r.subscribers > 0).map((r) => r.subscribers))].sort((a, b) => a - b);
  if (fanout.length > 0 && subsCounts.length > 0) {
    // Producer floors have no clients: show them in every client-count panel.
    const raw = fanout.flatMap((r) =>
      (r.subscribers === 0 ? subsCounts : [r.subscribers]).map((subscribers) => ({ variant: r.variant, subscribers, busy: r.busyUsPerMsg })),
    ).filter((d) => Number.isFinite(d.busy));
    // naive is orders of magnitude off the scale: clip its bar and print its value.
    const cap = 1.3 * Math.max(...raw.filter((d) => d.variant !== 'naive').map((d) => d.busy), 1);
    const busy = raw.map((d) => ({
      variant: d.variant, clients: `${d.subscribers} clients`, group: group(d.variant),
      bar: Math.min(d.busy, cap), label: d.busy > cap ? `${d.busy.toFixed(0)} (clipped)` : d.busy.toFixed(2),
    }));
    await save('busy-per-message.svg', {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: { text: 'Main-thread busy time per published message (event-loop utilization; lower is better)', subtitle },
      data: { values: busy },
      facet: { column: { field: 'clients', type: 'nominal', title: null, sort: subsCounts.map((s) => `${s} clients`) } },
      spec: {
        width: 330, height: 260,
        layer: [
          { mark: 'bar', encoding: { x: { field: 'variant', type: 'nominal', sort: [...ORDER], title: null, axis: { labelAngle: -40 } }, y: { field: 'bar', type: 'quantitative', title: 'µs per message', scale: { domain: [0, cap] } }, color: { field: 'group', type: 'nominal', scale: COLORS, title: null } } },
          { mark: { type: 'text', dy: -6, fontSize: 9 }, encoding: { x: { field: 'variant', type: 'nominal', sort: [...ORDER] }, y: { field: 'bar', type: 'quantitative' }, text: { field: 'label' } } },
        ],
      },
      config: CONFIG,
    } as TopLevelSpec);

    const latency = fanout
      .filter((r) => r.subscribers > 0 && Number.isFinite(r.latP50Ms) && Number.isFinite(r.latP99Ms))
      .map((r) => ({ variant: r.variant, clients: `${r.subscribers} clients`, p50: Math.max(0.01, r.latP50Ms), p99: Math.max(0.01, r.latP99Ms), saturated: r.clientSaturated || r.deliveredFraction < 1 }));
    if (latency.length > 0) {
      const x = { field: 'variant', type: 'nominal', sort: [...ORDER], title: null, axis: { labelAngle: -40 } } as const;
      const opacity = { condition: { test: 'datum.saturated', value: 0.3 }, value: 1 };
      await save('latency.svg', {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
        title: { text: 'Publish → receive latency, p50 (dot) to p99 (bar end), log scale', subtitle: `${subtitle} · faded: clients saturated or not all delivered (row does not count)` },
        data: { values: latency },
        facet: { column: { field: 'clients', type: 'nominal', title: null, sort: subsCounts.map((s) => `${s} clients`) } },
        spec: {
          width: 330, height: 260,
          layer: [
            { mark: { type: 'rule', strokeWidth: 3, color: '#08519c' }, encoding: { x, y: { field: 'p50', type: 'quantitative', scale: { type: 'log' }, title: 'ms (log)' }, y2: { field: 'p99' }, opacity } },
            { mark: { type: 'point', filled: true, size: 70, color: '#6baed6' }, encoding: { x, y: { field: 'p50', type: 'quantitative' }, opacity } },
            { mark: { type: 'tick', color: '#08519c', thickness: 2 }, encoding: { x, y: { field: 'p99', type: 'quantitative' }, opacity } },
          ],
        },
        config: CONFIG,
      } as TopLevelSpec);
    }
  }

  if (encode.length > 0) {
    const data = encode.map((r) => ({ codec: r.codec, level: `level ${r.level}`, pool: r.poolSize === 0 ? 'inline' : `${r.poolSize}`, msgs: r.msgsPerSec, mb: r.rawMBPerSec }));
    const poolOrder = ['inline', ...[...new Set(encode.filter((r) => r.poolSize > 0).map((r) => r.poolSize))].sort((a, b) => a - b).map(String)];
    await save('encode-scaling.svg', {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: { text: 'Encode-only throughput by pool size (inline = on the main thread, no hand-off)', subtitle },
      data: { values: data },
      facet: { column: { field: 'codec', type: 'nominal', title: null } },
      spec: {
        width: 300, height: 260,
        layer: [
          { mark: { type: 'line', point: true }, encoding: { x: { field: 'pool', type: 'ordinal', sort: poolOrder, title: 'pool size', axis: { labelAngle: 0 } }, y: { field: 'msgs', type: 'quantitative', title: 'messages / s' }, color: { field: 'level', type: 'nominal', title: 'deflate' } } },
        ],
      },
      config: CONFIG,
    } as TopLevelSpec);
  }

  const large = rows.filter((r) => r.scenario === 'large' && r.ok && !r.variant.startsWith('producer') && Number.isFinite(r.eldMaxMs));
  if (large.length > 0) {
    await save('stall-vs-payload.svg', {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: { text: 'Worst main-thread event-loop stall vs message size (lower is better)', subtitle },
      data: { values: large.map((r) => ({ variant: r.variant, kb: r.payloadKB, stall: Math.max(0.1, r.eldMaxMs), group: group(r.variant) })) },
      width: 520, height: 300,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'kb', type: 'quantitative', scale: { type: 'log' }, title: 'message size (KB, log)' },
        y: { field: 'stall', type: 'quantitative', scale: { type: 'log' }, title: 'max event-loop delay (ms, log)' },
        color: { field: 'variant', type: 'nominal', sort: [...ORDER] },
        strokeDash: { field: 'group', type: 'nominal', title: null },
      },
      config: CONFIG,
    } as TopLevelSpec);
  }

  if (saturation.length > 0) {
    await save('saturation.svg', {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: { text: 'Highest publish rate with every client receiving every message', subtitle },
      data: { values: saturation.map((s) => ({ variant: s.variant, rate: s.maxSustainedRate ?? 0, group: group(s.variant), label: s.maxSustainedRate === null ? 'none' : `${Math.round(s.maxSustainedRate / 1000)}k` })) },
      width: 420, height: 260,
      layer: [
        { mark: 'bar', encoding: { x: { field: 'variant', type: 'nominal', sort: [...ORDER], title: null, axis: { labelAngle: -30 } }, y: { field: 'rate', type: 'quantitative', title: 'messages / s' }, color: { field: 'group', type: 'nominal', scale: COLORS, title: null } } },
        { mark: { type: 'text', dy: -6, fontSize: 10 }, encoding: { x: { field: 'variant', type: 'nominal', sort: [...ORDER] }, y: { field: 'rate', type: 'quantitative' }, text: { field: 'label' } } },
      ],
      config: CONFIG,
    } as TopLevelSpec);
  }
  return written;
}
