/**
 * Adaptive tuning with real broadcasters under load (real workers, one of them slowed down
 * while a switch file exists), and the controller's rules step by step on given readings.
 */
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { AdaptiveController, type AdaptiveDecision, type AdaptiveReadings } from '../../src/adaptive/controller.js';
import { boundsOf, type TunedSettings } from '../../src/adaptive/tunables.js';
import type { Broadcaster } from '../../src/index.js';
import { RawClient, startBroadcaster, trade, waitFor } from '../helpers/harness.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Publishes `perTick` messages every 10 ms on `channel` until stopped. */
function load(broadcaster: Broadcaster, channel: string, perTick: number): () => void {
  let n = 0;
  const timer = setInterval(() => {
    for (let i = 0; i < perTick; i++) broadcaster.publish(channel, trade(n++));
  }, 10);
  cleanups.push(() => clearInterval(timer));
  return () => clearInterval(timer);
}

async function loaded(options: Parameters<typeof startBroadcaster>[0]) {
  const running = await startBroadcaster(options);
  const decisions: AdaptiveDecision[] = [];
  running.broadcaster.on('adaptive', (decision) => decisions.push(decision));
  cleanups.push(() => running.broadcaster.close());
  const client = await RawClient.open(running.url, ['feed']);
  cleanups.push(() => client.close());
  return { ...running, decisions, client };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('adaptive tuning under load', () => {
  it('an unreachable latency target drives the delay, then the size, to their minimums and holds them there', async () => {
    const { broadcaster, decisions } = await loaded({ batchSize: 500, batchDelayMs: 40, targetLatencyMs: 1, adaptiveIntervalMs: 100 });
    load(broadcaster, 'feed', 20);
    await waitFor(() => broadcaster.stats().adaptive.batchDelayMs === 1 && broadcaster.stats().adaptive.batchSize === 10, 15_000, 'the minimums');
    const reached = decisions.length;
    await sleep(1500); // 15 more intervals, all over the target
    expect(decisions.length).toBe(reached);
    expect(decisions.every((d) => d.knob === 'batching' && d.direction === 'down')).toBe(true);
    expect(decisions.map((d) => d.settings.batchDelayMs)).toEqual([20, 10, 5, 2, 1, ...Array(decisions.length - 5).fill(1)]);
    expect(decisions.at(-1)!.reason).toMatch(/broadcast delay p95 [\d.]+ ms over the 1 ms target/);
    const { adaptive } = broadcaster.stats();
    expect(adaptive).toMatchObject({ enabled: true, targetLatencyMs: 1, decisions: reached, batchSize: 10, batchDelayMs: 1 });
    const metrics = await broadcaster.metrics!.text();
    expect(metrics).toMatch(/^batchcast_batch_delay_seconds 0\.001$/m);
    expect(metrics).toMatch(new RegExp(`^batchcast_adaptive_decisions_total ${reached}$`, 'm'));
  });

  it('lowers batching while the pool is slow, and raises it back once the load is gone, staying under the target', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'batchcast-adaptive-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const switchFile = join(dir, 'load-ms');
    writeFileSync(switchFile, '40');
    process.env.BATCHCAST_TEST_LOAD_FILE = switchFile;
    cleanups.push(() => delete process.env.BATCHCAST_TEST_LOAD_FILE);
    // One worker, whatever the machine's default: each loaded batch then costs the pool exactly 40 ms (two would halve it).
    const { broadcaster, decisions } = await loaded({
      workerFilename: fileURLToPath(new URL('../fixtures/load-worker.mjs', import.meta.url)), poolSize: 1, batchSize: 500, batchDelayMs: 30, targetLatencyMs: 25, adaptiveIntervalMs: 200,
    });
    load(broadcaster, 'feed', 2);
    // Loaded: every batch costs the worker 40 ms, more than the 25 ms target: down to the minimums.
    await waitFor(() => broadcaster.stats().adaptive.batchDelayMs === 1 && broadcaster.stats().adaptive.batchSize === 10, 20_000, 'the minimums under load');
    const lowered = decisions.length;
    expect(decisions.every((d) => d.direction === 'down')).toBe(true);
    unlinkSync(switchFile);
    // Unloaded: back up, size first (to the configured 500), then the delay, as far as p95 stays under 70% of the target.
    await waitFor(() => broadcaster.stats().adaptive.batchSize === 500 && broadcaster.stats().adaptive.batchDelayMs > 1, 30_000, 'batching to climb back');
    // Size climbs by ×1.5 steps (15, 23, 35, …) until the first cut, if any.
    const raised = decisions.slice(lowered);
    const firstCut = raised.findIndex((d) => d.direction === 'down');
    const climb = (firstCut === -1 ? raised : raised.slice(0, firstCut)).filter((d) => d.settings.batchDelayMs === 1);
    expect(climb.map((d) => d.settings.batchSize).slice(0, 3)).toEqual([15, 23, 35]);
    const readings: number[] = [];
    for (let i = 0; i < 15; i++) {
      await sleep(200);
      readings.push(broadcaster.stats().adaptive.lastReadings!.delayP95Ms);
    }
    // No oscillation: after the load went, at most one bounce (a raise that proved too much is cut, and becomes a ceiling:
    // the climb after it stays below the value that was cut).
    const after = decisions.slice(lowered);
    const switches = after.filter((d, i) => i > 0 && d.direction !== after[i - 1]!.direction).length;
    expect(switches).toBeLessThanOrEqual(2);
    const cut = after.findIndex((d) => d.direction === 'down');
    if (cut > 0) for (const d of after.slice(cut + 1)) expect(d.settings.batchDelayMs).toBeLessThan(after[cut - 1]!.settings.batchDelayMs);
    // Under the target, settled somewhere between the minimum and the configured delay.
    expect(readings.sort((a, b) => a - b)[7]).toBeLessThan(25);
    const { adaptive } = broadcaster.stats();
    expect(adaptive.batchDelayMs).toBeGreaterThan(1);
    expect(adaptive.batchDelayMs).toBeLessThan(30);
  }, 60_000);

  it('a bandwidth target raises the compression level and lowers the threshold while the pool has room, then holds', async () => {
    const { broadcaster, decisions } = await loaded({ batchSize: 500, batchDelayMs: 20, compressionLevel: 6, compressionThreshold: 1000, targetBytesPerSecond: 1000, adaptiveIntervalMs: 100 });
    load(broadcaster, 'feed', 20);
    await waitFor(() => broadcaster.stats().adaptive.compressionLevel === 9 && broadcaster.stats().adaptive.compressionThreshold === 64, 15_000, 'the compression maximums');
    const reached = decisions.length;
    await sleep(1000);
    expect(decisions.length).toBe(reached);
    expect(decisions.map((d) => [d.settings.compressionLevel, d.settings.compressionThreshold])).toEqual([[7, 500], [8, 250], [9, 125], [9, 64]]);
    expect(decisions[0]!.reason).toMatch(/bytes\/s over the 1000 bytes\/s target, pool \d+% busy/);
    expect(decisions.every((d) => d.knob === 'compression' && d.direction === 'up')).toBe(true);
  });

  it('changes nothing when the targets are already met', async () => {
    const { broadcaster, decisions, client } = await loaded({ batchSize: 500, batchDelayMs: 20, targetLatencyMs: 10_000, targetBytesPerSecond: 1e12, adaptiveIntervalMs: 100 });
    load(broadcaster, 'feed', 20);
    await sleep(2000);
    expect(client.messages.length).toBeGreaterThan(1000);
    expect(decisions).toEqual([]);
    expect(broadcaster.stats().adaptive).toMatchObject({ enabled: true, decisions: 0, batchSize: 500, batchDelayMs: 20, compressionThreshold: 1000, compressionLevel: 6 });
  });

  it('is off unless a target is set', async () => {
    const { broadcaster } = await loaded({ batchSize: 500, batchDelayMs: 20 });
    expect(broadcaster.stats().adaptive).toMatchObject({ enabled: false, targetLatencyMs: 0, targetBytesPerSecond: 0, lastDecision: null });
  });
});

describe('the controller on given readings', () => {
  const config = { batchSize: 400, batchDelayMs: 16, compressionThreshold: 1000, compressionLevel: 6 };

  function controller(targetLatencyMs: number, targetBytesPerSecond = 0) {
    const settings: TunedSettings = { ...config };
    let next: AdaptiveReadings = { delay: percentiles(0, 0), bytesSent: 0, poolUtilization: 0, poolQueue: 0 };
    const decisions: AdaptiveDecision[] = [];
    const made = new AdaptiveController({
      targetLatencyMs, targetBytesPerSecond, intervalMs: 60_000, bounds: boundsOf(config), settings, read: () => next, onDecision: (d) => decisions.push(d),
    });
    cleanups.push(() => made.stop());
    return { settings, decisions, step: (readings: Partial<AdaptiveReadings>) => {
      next = { ...next, ...readings };
      made.step();
    } };
  }

  function percentiles(p95: number, samples = 10) {
    return { p50: p95 / 2, p90: p95, p95, p99: p95, max: p95, samples };
  }

  it('goes down under load, back up once it lifts, and settles where the next step would cross the target: one change of direction', () => {
    const { settings, decisions, step } = controller(10);
    // Loaded: p95 is the batch delay plus 20 ms of queueing; then the delay plus 1 ms.
    for (let i = 0; i < 20; i++) step({ delay: percentiles(settings.batchDelayMs + 20) });
    expect(settings).toMatchObject({ batchDelayMs: 1, batchSize: 10 });
    for (let i = 0; i < 100; i++) step({ delay: percentiles(settings.batchDelayMs + 1) });
    const directions = decisions.map((d) => d.direction);
    const switches = directions.filter((d, i) => i > 0 && d !== directions[i - 1]).length;
    expect(switches).toBe(1);
    // Size back to its configured 400 first, then the delay while p95 + the step stays under 7 ms (70% of 10): 1, 2, 3, 5.
    expect(settings).toEqual({ ...config, batchDelayMs: 5 });
    const settledAt = decisions.length;
    for (let i = 0; i < 50; i++) step({ delay: percentiles(settings.batchDelayMs + 1) });
    expect(decisions.length).toBe(settledAt);
  });

  it('holds at the target when p95 equals it: no raise that would cross it, no cut', () => {
    const { settings, decisions, step } = controller(10);
    for (let i = 0; i < 60; i++) step({ delay: percentiles(settings.batchDelayMs + 2) });
    // 16 + 2 is over: down to 8, where p95 is exactly 10; raising to 12 would predict 14.
    expect(settings.batchDelayMs).toBe(8);
    expect(decisions.map((d) => d.direction)).toEqual(['down']);
  });

  it('decides nothing about latency in an interval without batches, and keeps every value within its bounds', () => {
    const { settings, decisions, step } = controller(5, 100);
    for (let i = 0; i < 10; i++) step({ delay: percentiles(0, 0) });
    expect(decisions).toEqual([]);
    let bytes = 0;
    for (let i = 0; i < 200; i++) step({ delay: percentiles(100), bytesSent: (bytes += 1e9), poolUtilization: 0.1 });
    expect(settings).toEqual({ batchSize: 10, batchDelayMs: 1, compressionThreshold: 1000, compressionLevel: 6 });
    // Compression never rose: latency was over its target the whole time.
    expect(decisions.every((d) => d.knob === 'batching')).toBe(true);
  });

  it('holds compression while the pool is busy, and steps it back under 60% of the bandwidth target', () => {
    const { settings, decisions, step } = controller(0, 1000);
    let bytes = 0;
    step({ bytesSent: (bytes += 1e7), poolUtilization: 0.95 });
    step({ bytesSent: (bytes += 1e7), poolUtilization: 0.2, poolQueue: 3 });
    expect(decisions).toEqual([]);
    step({ bytesSent: (bytes += 1e7), poolUtilization: 0.2, poolQueue: 0 });
    expect(settings).toMatchObject({ compressionLevel: 7, compressionThreshold: 500 });
    // Then far under the target: back down one step, after 3 calm intervals (and never within 3 of the raise).
    for (let i = 0; i < 3; i++) step({ bytesSent: bytes });
    expect(settings).toMatchObject({ compressionLevel: 6, compressionThreshold: 1000 });
    expect(decisions.map((d) => d.direction)).toEqual(['up', 'down']);
  });
});
