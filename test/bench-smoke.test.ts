/**
 * Keeps the benchmark suite from rotting: runs `node dist/bench/run.js --smoke`
 * (seconds, tiny workload; `npm test` builds first) in a child process and checks
 * the JSON it writes. No timing thresholds: only that every variant ran, every
 * client got every message, and the numbers are sane.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const runner = join(root, 'dist', 'bench', 'run.js');

interface Row {
  scenario: string;
  variant: string;
  subscribers: number;
  ok: boolean;
  error: string | null;
  deliveredFraction: number | null;
  busyUsPerMsg: number | null;
  elu: number | null;
  achievedRate: number | null;
  eldMaxMs: number | null;
  latP50Ms: number | null;
  latP99Ms: number | null;
  wireBytesPerMsg: number | null;
  compressionRatio: number | null;
  peakRssMB: number | null;
  gaps: number | null;
  clientElu: number | null;
}

interface Results {
  meta: { node: string; cores: number };
  rows: Row[];
  encode: { codec: string; poolSize: number; msgsPerSec: number; compressionRatio: number }[];
  saturation: { variant: string; maxSustainedRate: number | null }[];
  targets: { id: string; met: boolean | null; measured: { label: string; ratio: number }[] }[];
  history: {
    memory: { channels: number; historyBytes: number; bytesPerMessage: number; defaultCoverSeconds: number }[];
    storm: { clients: number; allLiveMs: number; gaps: number; statuses: Record<string, number>; recoveredPerClient: number; server: { eldMaxMs: number; framesReplayed: number } } | null;
    error?: string;
  };
  cluster: { rows: { layout: string; busyUsPerMsg: number; latP50Ms: number; wireBytesPerMsg: number }[]; skipped?: string; error?: string };
}

const VARIANTS = ['naive', 'seed-inline', 'inline-async', 'ws-pmd', 'write-floor', 'batchcast', 'batchcast-pre', 'batchcast-msgpack', 'batchcast-pmd'];

let out = '';
let results: Results;
let stdout = '';

beforeAll(async () => {
  if (!existsSync(runner)) throw new Error(`${runner} is missing: run npm run build first (npm test does)`);
  out = await mkdtemp(join(tmpdir(), 'batchcast-bench-'));
  stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, [runner, '--smoke', '--out', out], { cwd: root, timeout: 150_000, maxBuffer: 16 * 2 ** 20 }, (error, out, err) => {
      if (error !== null) reject(new Error(`bench --smoke failed: ${error.message}\n${err}`));
      else resolve(out);
    });
  });
  results = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as Results;
}, 180_000);

afterAll(async () => {
  if (out !== '') await rm(out, { recursive: true, force: true });
});

describe('bench --smoke', () => {
  it('prints the tables and the targets', () => {
    expect(stdout).toContain('== Fan-out');
    expect(stdout).toContain('== Large payloads');
    expect(stdout).toContain('== Encode only');
    expect(stdout).toContain('== Saturation');
    expect(stdout).toContain('== permessage-deflate: compressed once per batch');
    expect(stdout).toContain('== Targets ==');
    expect(stdout).toContain('== History: memory');
    expect(stdout).toContain('== History: reconnect storm');
    expect(stdout).toContain('== Cluster');
  });

  it('measures a node of a Redis cluster next to a single node', () => {
    expect(results.cluster.error).toBeUndefined();
    // Redis is part of the test setup (.ci/run starts it); without it locally the scenario says it was skipped.
    if (results.cluster.skipped !== undefined && process.env.CI !== 'true') return;
    expect(results.cluster.skipped).toBeUndefined();
    expect(results.cluster.rows.map((r) => r.layout)).toEqual([
      'single node (no Redis)', 'cluster: publishing node', 'cluster: receiving node', 'socket.io: publishing node', 'socket.io: receiving node',
    ]);
    for (const row of results.cluster.rows) {
      expect(row.busyUsPerMsg, row.layout).toBeGreaterThan(0);
      expect(row.latP50Ms, row.layout).toBeGreaterThan(0);
      expect(row.wireBytesPerMsg, row.layout).toBeGreaterThan(1);
    }
  });

  it('measures history memory and a reconnect storm in which every client recovers without a gap', () => {
    expect(results.history.error).toBeUndefined();
    expect(results.history.memory.map((m) => m.channels)).toEqual([1, 100]);
    for (const row of results.history.memory) {
      expect(row.historyBytes).toBeGreaterThan(0);
      expect(row.bytesPerMessage).toBeGreaterThan(1);
      expect(row.defaultCoverSeconds).toBeGreaterThan(0);
    }
    const storm = results.history.storm!;
    expect(storm.gaps).toBe(0);
    expect(storm.statuses).toEqual({ ok: storm.clients });
    expect(storm.recoveredPerClient).toBeGreaterThan(0);
    expect(storm.server.framesReplayed).toBeGreaterThan(0);
    expect(storm.allLiveMs).toBeGreaterThan(0);
  });

  it('runs every variant in fan-out and large, and every client receives every message', () => {
    for (const scenario of ['fanout', 'large']) {
      const rows = results.rows.filter((r) => r.scenario === scenario && r.subscribers > 0);
      expect(rows.map((r) => r.variant).sort()).toEqual([...VARIANTS].filter((v) => scenario === 'fanout' || v !== 'write-floor').sort());
      for (const row of rows) {
        expect(row.error, `${scenario}/${row.variant}`).toBeNull();
        expect(row.ok, `${scenario}/${row.variant}`).toBe(true);
        expect(row.deliveredFraction, `${scenario}/${row.variant}`).toBe(1);
        expect(row.gaps, `${scenario}/${row.variant}`).toBe(0);
      }
    }
  });

  it('runs the overload rows with clients that spend the given work on every frame', () => {
    const rows = results.rows.filter((r) => r.scenario === 'overload');
    expect(rows.map((r) => r.variant).sort()).toEqual(['batchcast', 'seed-inline']);
    for (const row of rows) {
      expect(row.ok, row.variant).toBe(true);
      expect(row.deliveredFraction, row.variant).toBe(1);
      // One of the 3 clients is not a probe: 50 frames/s × 2 ms of work each is 0.1 of the client process's loop.
      expect(row.clientElu, row.variant).toBeGreaterThan(0.08);
    }
    expect(results.targets.find((t) => t.id === 'overload-vs-seed')?.measured[0]?.ratio).toBeGreaterThan(0);
  });

  it('reports sane numbers', () => {
    for (const row of results.rows.filter((r) => r.ok)) {
      const label = `${row.scenario}/${row.variant}/${row.subscribers}`;
      expect(row.busyUsPerMsg, label).toBeGreaterThan(0);
      expect(row.elu, label).toBeGreaterThan(0);
      expect(row.elu, label).toBeLessThanOrEqual(1);
      expect(row.achievedRate, label).toBeGreaterThan(0);
      expect(row.eldMaxMs, label).toBeGreaterThanOrEqual(0);
      expect(row.peakRssMB, label).toBeGreaterThan(10);
      if (row.subscribers === 0) continue;
      expect(row.latP50Ms, label).toBeGreaterThan(0);
      expect(row.latP99Ms, label).toBeGreaterThanOrEqual(row.latP50Ms!);
      expect(row.wireBytesPerMsg, label).toBeGreaterThan(0);
      expect(row.compressionRatio, label).toBeGreaterThan(0.5);
    }
    // Producer floors ran too.
    expect(results.rows.some((r) => r.variant === 'producer' && r.ok)).toBe(true);
  });

  it('measures encode-only and saturation, and judges the targets', () => {
    expect(results.encode.length).toBeGreaterThan(0);
    for (const row of results.encode) {
      expect(row.msgsPerSec).toBeGreaterThan(0);
      expect(row.compressionRatio).toBeGreaterThan(1);
    }
    expect(results.saturation.map((s) => s.variant).sort()).toEqual(['batchcast', 'seed-inline']);
    expect(results.targets.map((t) => t.id)).toEqual(['busy-objects-vs-seed', 'busy-objects-vs-async', 'busy-objects-vs-async-09', 'busy-pre-vs-seed', 'saturation-vs-async', 'overload-vs-seed', 'stall-large-vs-async', 'fanout-vs-write', 'encode-scaling', 'pmd-wire', 'pmd-cpu', 'pmd-delivery']);
    // Both permessage-deflate variants ran the fan-out and large rows, so wire and CPU are judged (delivery needs 200 clients).
    expect(results.targets.filter((t) => t.id === 'pmd-wire' || t.id === 'pmd-cpu').map((t) => t.met)).not.toContain(null);
    expect(results.meta.cores).toBeGreaterThan(0);
  });

  it('writes the charts and a timestamped copy of the results', async () => {
    const files = await readdir(out);
    expect(files.filter((f) => /^\d{4}-.*\.json$/.test(f))).toHaveLength(1);
    const charts = await readdir(join(out, 'latest'));
    expect(charts).toEqual(expect.arrayContaining(['busy-per-message.svg', 'latency.svg', 'encode-scaling.svg', 'stall-vs-payload.svg', 'saturation.svg']));
    const svg = await readFile(join(out, 'latest', 'busy-per-message.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('</svg>');
  });
});
