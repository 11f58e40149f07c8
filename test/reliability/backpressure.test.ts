/**
 * Backpressure between publishers and the pool: while workers are busy (a fixture
 * worker that takes 100-200 ms per batch), at most maxQueue + poolSize batches are
 * in flight, open batches keep growing (coalescing) instead of queueing, and past
 * maxPendingMessages a channel's oldest messages are dropped, counted, and show as
 * a gap in sequence numbers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Broadcaster } from '../../src/index.js';
import { trade, type RawClient } from '../helpers/harness.js';
import { firstBreak, fixture, Resources, sleep } from './support.js';

const resources = new Resources();
afterEach(() => resources.cleanup());

function batchSizes(client: RawClient): number[] {
  return client.frames.flatMap((f) => (f.kind === 'batch' ? [f.messages.length] : []));
}

/** Publishes `perTick` trades every 10 ms for `ticks` ticks; samples stats after every burst. */
async function publishBursts(broadcaster: Broadcaster, channel: string, ticks: number, perTick: number) {
  let next = 0;
  let maxInFlight = 0;
  let maxPending = 0;
  for (let tick = 0; tick < ticks; tick++) {
    for (let i = 0; i < perTick; i++) broadcaster.publish(channel, trade(next++));
    const stats = broadcaster.stats();
    maxInFlight = Math.max(maxInFlight, stats.pool.inFlight);
    maxPending = Math.max(maxPending, stats.messagesPending);
    await sleep(10);
  }
  return { total: next, maxInFlight, maxPending };
}

describe('backpressure', () => {
  it('bounds batches in flight and coalesces while the pool is busy, losing nothing', async () => {
    const { broadcaster, url } = await resources.start({
      workerFilename: fixture('slow-worker.mjs'), poolSize: 1, maxQueue: 1, batchSize: 100, batchDelayMs: 5, maxPendingMessages: 100_000,
    });
    const client = await resources.client(url, ['slow-200/feed']);
    const { total, maxInFlight, maxPending } = await publishBursts(broadcaster, 'slow-200/feed', 100, 200);
    await client.waitFor(() => client.messages.length === total, 15_000, `${total} messages`);

    expect(maxInFlight).toBeLessThanOrEqual(2); // maxQueue + poolSize
    expect(maxPending).toBeGreaterThan(100); // messages waited in open batches instead
    expect(firstBreak(client.messages.map((m) => m.seq))).toBeNull();
    expect(firstBreak(client.messages.map((m) => (m.data as { seq: number }).seq))).toBeNull();
    const sizes = batchSizes(client);
    expect(Math.max(...sizes)).toBeGreaterThan(100); // coalesced past batchSize
    expect(sizes.length).toBeLessThan(total / 100);
    const stats = broadcaster.stats();
    expect(stats.messagesDropped).toBe(0);
    expect(stats.batches).toBe(sizes.length);
    expect(stats.pool.faults).toEqual({ error: 0, crash: 0, timeout: 0, inline: 0 });
  });

  it('drops the oldest messages past maxPendingMessages (exact figures)', async () => {
    const { broadcaster, url } = await resources.start({
      workerFilename: fixture('slow-worker.mjs'), poolSize: 1, maxQueue: 1, batchSize: 100, batchDelayMs: 5, maxPendingMessages: 1000,
    });
    const client = await resources.client(url, ['slow-100/feed']);
    // Synchronous: two batches of 100 fill the pool (maxQueue + poolSize = 2); the third
    // batch grows to 1001, drops its oldest 501, grows to 1001 again, drops 501, ends at 798.
    for (let i = 0; i < 2000; i++) broadcaster.publish('slow-100/feed', trade(i));
    expect(broadcaster.stats().messagesDropped).toBe(1002);
    expect(broadcaster.stats().messagesPending).toBe(798);
    expect(broadcaster.stats().pool.inFlight).toBe(2);
    await client.waitFor(() => client.messages.length === 998, 10_000, '998 messages');

    expect(batchSizes(client)).toEqual([100, 100, 798]);
    const seqs = client.messages.map((m) => m.seq);
    expect(seqs).toEqual([...Array(200).keys(), ...Array.from({ length: 798 }, (_, i) => 1202 + i)]);
    // Sequence numbers count the dropped messages: every message keeps its publish position.
    expect(client.messages.every((m) => (m.data as { seq: number }).seq === m.seq)).toBe(true);
  });

  it('under sustained overload: drops are counted, frames stay within maxPendingMessages, gaps add up', async () => {
    const maxPendingMessages = 1000;
    const { broadcaster, url } = await resources.start({
      workerFilename: fixture('slow-worker.mjs'), poolSize: 1, maxQueue: 1, batchSize: 100, batchDelayMs: 5, maxPendingMessages,
    });
    const client = await resources.client(url, ['slow-200/feed']);
    const { total, maxInFlight, maxPending } = await publishBursts(broadcaster, 'slow-200/feed', 100, 200);
    const dropped = broadcaster.stats().messagesDropped;
    await client.waitFor(() => client.messages.length === total - dropped, 15_000, `${total - dropped} messages`);

    expect(dropped).toBeGreaterThan(0);
    expect(maxInFlight).toBeLessThanOrEqual(2);
    expect(maxPending).toBeLessThanOrEqual(maxPendingMessages);
    expect(Math.max(...batchSizes(client))).toBeLessThanOrEqual(maxPendingMessages);
    // Walk the frames: each gap is a run of dropped messages, and they add up to the counter.
    let expected = 0;
    let gaps = 0;
    for (const frame of client.frames) {
      if (frame.kind !== 'batch') continue;
      expect(frame.firstSeq).toBeGreaterThanOrEqual(expected);
      gaps += frame.firstSeq - expected;
      frame.messages.forEach((m, i) => expect((m as { seq: number }).seq).toBe(frame.firstSeq + i));
      expected = frame.firstSeq + frame.messages.length;
    }
    expect(gaps).toBe(dropped);
    expect(expected).toBe(total);
  });
  it('drops nothing while the pool keeps up, even when batchSize exceeds maxPendingMessages', async () => {
    const { broadcaster, url } = await resources.start({ batchSize: 1000, batchDelayMs: 10_000, maxPendingMessages: 300 });
    const client = await resources.client(url, ['feed']);
    for (let i = 0; i < 900; i++) broadcaster.publish('feed', trade(i));
    broadcaster.flush();
    await client.waitFor(() => client.messages.length === 900, 5_000, '900 messages');
    expect(broadcaster.stats().messagesDropped).toBe(0);
    expect(firstBreak(client.messages.map((m) => m.seq))).toBeNull();
    // The pending bound caps a batch: none holds more than 300.
    expect(batchSizes(client)).toEqual([300, 300, 300]);
  });

  it('batchSize 1: every message is its own batch, at once', async () => {
    const { broadcaster, url } = await resources.start({ batchSize: 1, batchDelayMs: 10_000 });
    const client = await resources.client(url, ['feed']);
    for (let i = 0; i < 3; i++) broadcaster.publish('feed', trade(i));
    expect(broadcaster.stats().messagesPending).toBe(0);
    await client.waitFor(() => client.messages.length === 3, 5_000, 'three messages, well before batchDelayMs');
    expect(batchSizes(client)).toEqual([1, 1, 1]);
  });
});
