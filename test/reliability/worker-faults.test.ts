/**
 * Worker faults, injected with fixture workers that wrap the real built encoder
 * (test/fixtures/*.mjs, passed as `workerFilename`). A batch whose worker throws,
 * exits or hangs is retried, then encoded inline; nothing is lost or reordered and
 * every failed attempt is reported ('fault' event, stats().pool.faults).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broadcaster } from '../../src/index.js';
import type { WorkerFault } from '../../src/encode/pool.js';
import { trade, type RawClient } from '../helpers/harness.js';
import { firstBreak, fixture, Resources, tempDir } from './support.js';

const resources = new Resources();
afterEach(() => resources.cleanup());

type FaultName = 'throw' | 'lookalike' | 'exit' | 'hang' | 'spin';
const KIND: Record<FaultName, WorkerFault['kind']> = { throw: 'error', lookalike: 'error', exit: 'crash', hang: 'timeout', spin: 'timeout' };
const FEED = 300; // six batches of 50 on 'feed'; the marker rides in the third
const MARKER_AT = 120;
const OTHER = 30; // and one batch on 'other', sharing the pool

function seqs(client: RawClient, channel: string): number[] {
  return client.messages.filter((m) => m.channel === channel).map((m) => m.seq);
}

function payloadSeqs(client: RawClient, channel: string): number[] {
  return client.messages.filter((m) => m.channel === channel).map((m) => (m.data as { seq: number }).seq);
}

async function faultyRun(fault: FaultName, times: number, poolSize = 1) {
  const { dir, cleanup } = tempDir();
  resources.cleanups.push(cleanup);
  const counter = join(dir, 'attempts');
  const hangs = fault === 'hang' || fault === 'spin';
  const { broadcaster, url } = await resources.start({
    workerFilename: fixture('fault-worker.mjs'), batchSize: 50, batchDelayMs: 5, poolSize,
    // Long enough for a replacement worker to start on a loaded 2-core machine; short for the hang tests.
    encodeTimeoutMs: hangs ? 1_000 : 10_000,
  });
  const faults: WorkerFault[] = [];
  const encodeErrors: Error[] = [];
  broadcaster.on('fault', (f) => faults.push(f));
  broadcaster.on('encodeError', (e) => encodeErrors.push(e));
  const client = await resources.client(url, ['feed', 'other']);

  for (let i = 0; i < FEED; i++) {
    broadcaster.publish('feed', i === MARKER_AT ? { fault, times, counter, seq: i } : trade(i));
    if (i % 10 === 0) broadcaster.publish('other', { seq: i / 10 });
  }
  await client.waitFor(() => seqs(client, 'feed').length >= FEED && seqs(client, 'other').length >= OTHER, 15_000, 'every message');

  // Nothing lost, nothing reordered, sequence numbers contiguous, on both channels.
  expect(seqs(client, 'feed').length).toBe(FEED);
  expect(firstBreak(seqs(client, 'feed'))).toBeNull();
  expect(firstBreak(payloadSeqs(client, 'feed'))).toBeNull();
  expect(firstBreak(seqs(client, 'other'))).toBeNull();
  expect(firstBreak(payloadSeqs(client, 'other'))).toBeNull();
  expect(encodeErrors).toEqual([]);
  // One line per attempt: the thread id of the worker that made it.
  const threads = readFileSync(counter, 'utf8').trim().split('\n').map(Number);
  return { broadcaster, client, faults, attempts: threads.length, threads };
}

/** After the fault the pool is whole again: a new batch is encoded by a worker, not inline. */
async function poolRecovered(broadcaster: Broadcaster, client: RawClient, poolSize = 1): Promise<void> {
  const before = broadcaster.stats().pool.faults;
  for (let i = FEED; i < FEED + 50; i++) broadcaster.publish('feed', trade(i));
  await client.waitFor(() => seqs(client, 'feed').length === FEED + 50, 10_000, 'a batch after the fault');
  expect(firstBreak(seqs(client, 'feed'))).toBeNull();
  expect(broadcaster.stats().pool.faults).toEqual(before);
  expect(broadcaster.stats().pool.threads).toBe(poolSize);
}

describe('worker faults', () => {
  it.each(['throw', 'lookalike', 'exit', 'hang', 'spin'] as const)('%s once: the retry on a fresh worker succeeds', async (fault) => {
    const { broadcaster, client, faults, attempts, threads } = await faultyRun(fault, 1);
    expect(attempts).toBe(2);
    // One thread in the pool: the retry ran on its replacement, not on the worker that failed.
    expect(threads[1]).not.toBe(threads[0]);
    expect(faults).toHaveLength(1);
    expect(faults[0]).toMatchObject({ kind: KIND[fault], channel: 'feed', attempt: 1, recovery: 'retry' });
    // Pin down what each kind reports (Piscina's message for a worker that exits; classify() depends on it).
    const error = faults[0]!.error;
    if (fault === 'exit') expect(error.message).toBe('worker exited with code: 3');
    if (fault === 'hang' || fault === 'spin') expect(error.message).toBe('encode task ran past encodeTimeoutMs (1000 ms); its worker was terminated');
    if (fault === 'throw') expect(error.message).toBe('fixture fault: thrown for a batch of 50');
    if (fault === 'lookalike') expect(error.message).toBe('upstream connection terminated unexpectedly');
    expect(broadcaster.stats().pool.faults).toEqual({ error: 0, crash: 0, timeout: 0, inline: 0, [KIND[fault]]: 1 });
    await poolRecovered(broadcaster, client);
  });

  it.each(['throw', 'exit', 'hang'] as const)('%s every time: inline encoding saves the batch', async (fault) => {
    const { broadcaster, client, faults, attempts, threads } = await faultyRun(fault, 1_000);
    expect(attempts).toBe(2);
    expect(threads[1]).not.toBe(threads[0]);
    expect(faults.map((f) => [f.kind, f.channel, f.attempt, f.recovery])).toEqual([
      [KIND[fault], 'feed', 1, 'retry'],
      [KIND[fault], 'feed', 2, 'inline'],
    ]);
    expect(broadcaster.stats().pool.faults).toEqual({ error: 0, crash: 0, timeout: 0, inline: 1, [KIND[fault]]: 2 });
    await poolRecovered(broadcaster, client);
  });

  it.each(['exit', 'hang'] as const)('%s with two workers: the other worker carries on, order is restored', async (fault) => {
    const { broadcaster, client, faults } = await faultyRun(fault, 1, 2);
    expect(faults.map((f) => [f.kind, f.attempt, f.recovery])).toEqual([[KIND[fault], 1, 'retry']]);
    expect(broadcaster.stats().pool.faults.inline).toBe(0);
    // While one worker hung, the other finished later batches; the sequencer held them back.
    if (fault === 'hang') expect(broadcaster.stats().reorderedBatches).toBeGreaterThan(0);
    await poolRecovered(broadcaster, client, 2);
  });

  it('a busy pool is not a hung pool: batches queued behind slow ones are not timed out', async () => {
    // Each batch of slow-150/feed holds the single worker for 150 ms; twelve of them
    // queue for up to 1.65 s, nearly three times encodeTimeoutMs, yet none is hung.
    const { broadcaster, url } = await resources.start({
      workerFilename: fixture('slow-worker.mjs'), batchSize: 10, batchDelayMs: 5, maxQueue: 11, encodeTimeoutMs: 600,
    });
    const faults: WorkerFault[] = [];
    broadcaster.on('fault', (f) => faults.push(f));
    const client = await resources.client(url, ['slow-150/feed', 'warm-up']);
    // A warm worker first: its start-up time is not what this test is about.
    broadcaster.publish('warm-up', {});
    await client.waitFor(() => client.messages.length === 1, 10_000, 'the warm-up message');
    for (let i = 0; i < 120; i++) broadcaster.publish('slow-150/feed', trade(i));
    await client.waitFor(() => client.messages.length === 121, 15_000, '120 messages');
    expect(faults).toEqual([]);
    expect(broadcaster.stats().pool.faults).toEqual({ error: 0, crash: 0, timeout: 0, inline: 0 });
    const feed = client.frames.filter((f) => f.kind === 'batch' && f.channel === 'slow-150/feed');
    expect(feed.map((f) => f.kind === 'batch' && f.firstSeq)).toEqual(Array.from({ length: 12 }, (_, i) => i * 10));
    // Twelve batches of ten: none was held back long enough to coalesce with another.
    expect(feed.map((f) => f.kind === 'batch' && f.messages.length)).toEqual(Array(12).fill(10));
  });

  it('transfers the frame to the main thread instead of copying it', async () => {
    const { dir, cleanup } = tempDir();
    resources.cleanups.push(cleanup);
    const report = join(dir, 'report.json');
    const { broadcaster, url } = await resources.start({ workerFilename: fixture('transfer-probe-worker.mjs'), batchSize: 1000 });
    const client = await resources.client(url, ['feed']);
    for (let i = 0; i < 100; i++) broadcaster.publish('feed', trade(i));
    broadcaster.flush();
    await client.waitFor(() => client.messages.length === 100, 10_000, 'first batch');
    broadcaster.publish('feed', { probe: report });
    broadcaster.flush();
    await client.waitFor(() => client.messages.length === 101, 10_000, 'probe batch');
    // The worker still holds the previous frame's ArrayBuffer: transferred, it is detached (0 bytes).
    expect(JSON.parse(readFileSync(report, 'utf8'))).toEqual({ byteLength: 0 });
    // ...and the main thread got the whole frame.
    const first = client.frames.find((f) => f.kind === 'batch');
    expect(first?.kind === 'batch' && first.messages.length).toBe(100);
    expect(broadcaster.stats().pool.faults.inline).toBe(0);
  });
});
