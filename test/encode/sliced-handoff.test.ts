/**
 * Packing large batches over several turns (src/encode/sliced-handoff.ts, pool.ts):
 * a channel whose batch took `handoffSliceMs` or more to pack has its next batches
 * packed in segments, with the event loop running in between, on real workers; it
 * goes back to packing at once when a batch is small again. End to end, a client
 * gets the same messages either way.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AbandonedError, EncoderPool, type HandoffHint } from '../../src/encode/pool.js';
import type { EncodeResult, EncodeTask } from '../../src/encode/task.js';
import { trade, waitFor } from '../helpers/harness.js';
import { Resources } from '../reliability/support.js';

const resources = new Resources();
const pools: EncoderPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.destroy()));
  await resources.cleanup();
});

function pool(handoffSliceMs: number): EncoderPool {
  const created = new EncoderPool({ poolSize: 1, maxQueue: 8, encodeTimeoutMs: 30_000, handoffSliceMs });
  pools.push(created);
  return created;
}

function task(items: unknown[]): EncodeTask {
  return {
    channel: 'snapshots', codec: 'json', compressionThreshold: 1000, compressionLevel: 1, compressionWindowBits: 15, maxMessageBytes: 1 << 26,
    validateSerialized: true, smallWindowBits: 0, adler32: false, items, serialized: null,
  };
}

/** A ~3.5 MB snapshot: packing it takes several milliseconds on any machine. */
function snapshot(seq: number) {
  return { type: 'snapshot', seq, rows: Array.from({ length: 20_000 }, (_, i) => ({ symbol: `SYM${i}`, bid: 100 + i * 0.25, ask: 100.5 + i * 0.25, size: i % 500, updated: 1_700_000_000_000 + i })) };
}

/** Submits and counts the event-loop turns (setImmediate) that ran before the result came back. */
function submitCountingTurns(encoder: EncoderPool, items: unknown[], hint: HandoffHint): Promise<{ result: EncodeResult; turns: number }> {
  return new Promise((resolve, reject) => {
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      if (!ticking) return;
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
    encoder.submit(task(items), (error, result) => {
      ticking = false;
      if (error !== null) reject(error);
      else resolve({ result: result!, turns });
    }, hint);
  });
}

describe('sliced hand-off', () => {
  it('packs a slow channel\'s next batch over several turns, and the worker makes the same frame', async () => {
    const encoder = pool(1);
    const hint: HandoffHint = { sliceHandoff: false };
    const first = await submitCountingTurns(encoder, [snapshot(1)], hint);
    expect(hint.sliceHandoff).toBe(true);
    expect(encoder.snapshot().slicedHandoffs).toEqual({ batches: 0, spread: 0, turns: 0 });

    const second = await submitCountingTurns(encoder, [snapshot(1)], hint);
    const counters = encoder.snapshot().slicedHandoffs;
    expect(counters.batches).toBe(1);
    expect(counters.spread).toBe(1);
    expect(counters.turns).toBeGreaterThan(2);
    // The loop ran between the slices: more turns than the one before the hand-off.
    expect(second.turns).toBeGreaterThan(2);
    expect(Buffer.from(second.result.frame)).toEqual(Buffer.from(first.result.frame));
    expect(hint.sliceHandoff).toBe(true);
  });

  it('goes back to one pack per batch once a batch packs in one short turn', async () => {
    const encoder = pool(50);
    const hint: HandoffHint = { sliceHandoff: true };
    const small = Array.from({ length: 20 }, (_, i) => trade(i));
    const { result } = await submitCountingTurns(encoder, small, hint);
    expect(result.count).toBe(20);
    expect(hint.sliceHandoff).toBe(false);
    expect(encoder.snapshot().slicedHandoffs).toMatchObject({ batches: 1, spread: 0 });
  });

  it('never slices with handoffSliceMs 0', async () => {
    const encoder = pool(0);
    const hint: HandoffHint = { sliceHandoff: true };
    const { result } = await submitCountingTurns(encoder, [snapshot(2)], hint);
    expect(result.count).toBe(1);
    expect(encoder.snapshot().slicedHandoffs).toEqual({ batches: 0, spread: 0, turns: 0 });
  });

  it('abandons a batch still being packed when the pool is destroyed', async () => {
    const encoder = new EncoderPool({ poolSize: 1, maxQueue: 8, encodeTimeoutMs: 30_000, handoffSliceMs: 1 });
    const hint: HandoffHint = { sliceHandoff: true };
    const packing = new Promise<Error | null>((resolve) => encoder.submit(task([snapshot(4)]), (error) => resolve(error), hint));
    // The first slice ran in submit(); the rest waits for the next turns.
    expect(encoder.snapshot().slicedHandoffs.turns).toBe(1);
    await encoder.destroy();
    expect(await packing).toBeInstanceOf(AbandonedError);
    expect(encoder.snapshot()).toMatchObject({ abandoned: 1, inFlight: 0, slicedHandoffs: { batches: 0 } });
  });

  it('delivers large messages whole to a client, packed at once and then in slices', async () => {
    const { broadcaster, url } = await resources.start({ batchDelayMs: 1, handoffSliceMs: 1 });
    const client = await resources.client(url, ['snapshots']);
    const sent = [snapshot(10), snapshot(11), snapshot(12)];
    for (const message of sent) {
      broadcaster.publish('snapshots', message);
      broadcaster.flush();
      await client.waitFor(() => client.messages.length === message.seq - 9, 20_000, `snapshot ${message.seq}`);
    }
    expect(client.messages.map((m) => m.data)).toEqual(sent);
    const stats = broadcaster.stats();
    expect(stats.pool.slicedHandoffs.spread).toBeGreaterThanOrEqual(2);
    expect(await broadcaster.metrics!.text()).toMatch(/^batchcast_handoffs_sliced_total [1-9]\d*$/m);
    await waitFor(() => broadcaster.stats().pool.inFlight === 0, 5_000, 'the pool to settle');
  });
});
