/**
 * State lifetime: nothing per connection outlives it, and a channel's state is
 * dropped once it has no subscribers and no work in the pipeline, except its next
 * sequence number (so a returning client still sees a gap, not a restart).
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { Connection } from '../../src/index.js';
import { waitFor } from '../helpers/harness.js';
import { Resources, sleep } from '../reliability/support.js';

const resources = new Resources();
afterEach(() => resources.cleanup());

describe('connections', () => {
  it('subscribe() on a closed or closing connection keeps nothing', async () => {
    const { broadcaster, url } = await resources.start({ historyMessages: 0 });
    const accepted = once(broadcaster, 'connection') as Promise<[Connection]>;
    const client = await resources.client(url);
    const [connection] = await accepted;

    connection.ws.close(1000, 'closing');
    expect(broadcaster.subscribe(connection, 'while-closing')).toBe(false);
    client.close();
    await waitFor(() => broadcaster.stats().connections === 0, 5_000, 'the disconnect');
    expect(broadcaster.subscribe(connection, 'after-close')).toBe(false);

    broadcaster.publish('after-close', { seq: 0 });
    broadcaster.flush();
    // Nobody subscribes and history is off: the batch is not even encoded.
    await waitFor(() => broadcaster.stats().batchesUnheard === 1, 5_000, 'the batch');
    await sleep(10);
    const stats = broadcaster.stats();
    expect(stats.batches).toBe(0);
    expect(stats.subscriptions).toBe(0);
    expect(stats.subscribers).toEqual({});
    expect(stats.channels).toBe(0);
    expect(connection.channels.size).toBe(0);
    expect(stats.framesSent).toBe(0);
  });
});

describe('channels', () => {
  it('drops the state of idle channels and keeps only their sequence counters (history off)', async () => {
    const { broadcaster, url } = await resources.start({ batchSize: 10, batchDelayMs: 5, historyMessages: 0 });
    for (let c = 0; c < 500; c++) for (let i = 0; i < 3; i++) broadcaster.publish(`ephemeral.${c}`, { i });
    expect(broadcaster.stats().channels).toBe(500);
    broadcaster.flush();
    // No subscriber and history off: none of them is encoded, but each goes through the pipeline.
    await waitFor(() => broadcaster.stats().batchesUnheard === 500, 10_000, '500 batches');
    expect(broadcaster.stats().batches).toBe(0);
    await waitFor(() => broadcaster.stats().channels === 0, 5_000, 'idle channels to be dropped');
    expect(broadcaster.stats().idleChannelCounters).toBe(500);

    // Subscribe/unsubscribe churn leaves nothing either.
    const client = await resources.client(url);
    for (let round = 0; round < 3; round++) {
      client.ws.send(JSON.stringify({ op: 'subscribe', channels: ['x', 'y', 'z'] }));
      client.ws.send(JSON.stringify({ op: 'unsubscribe', channels: ['x', 'y', 'z'] }));
    }
    await client.waitFor(() => client.notices.filter((n) => n.op === 'unsubscribed').length === 3, 5_000, 'three unsubscribed notices');
    expect(broadcaster.stats().channels).toBe(0);
    expect(broadcaster.stats().subscriptions).toBe(0);
  });

  it('with history, a channel stays while it holds frames and goes when they age out', async () => {
    const { broadcaster } = await resources.start({ batchSize: 10, batchDelayMs: 5, historyTtlMs: 300 });
    for (let c = 0; c < 50; c++) broadcaster.publish(`aging.${c}`, { c });
    broadcaster.flush();
    await waitFor(() => broadcaster.stats().history.frames === 50, 5_000, '50 frames in history');
    expect(broadcaster.stats().channels).toBe(50);
    await waitFor(() => broadcaster.stats().channels === 0, 5_000, 'the frames to age out');
    expect(broadcaster.stats().history).toMatchObject({ frames: 0, messages: 0, bytes: 0, evictedFrames: 50 });
    expect(broadcaster.stats().idleChannelCounters).toBe(50);
  });

  it('a channel dropped while idle continues its sequence when it comes back', async () => {
    const { broadcaster, url } = await resources.start({ batchSize: 5, batchDelayMs: 5, historyMessages: 0 });
    const client = await resources.client(url, ['c']);
    for (let i = 0; i < 5; i++) broadcaster.publish('c', { i });
    await client.waitFor(() => client.messages.length === 5, 5_000, 'five messages');
    client.ws.send(JSON.stringify({ op: 'unsubscribe', channels: ['c'] }));
    await client.waitFor(() => client.notices.some((n) => n.op === 'unsubscribed'), 5_000, 'unsubscribed');
    await waitFor(() => broadcaster.stats().channels === 0, 5_000, 'the channel to go idle');
    for (let i = 5; i < 10; i++) broadcaster.publish('c', { i }); // nobody listens: seq 5..9 go by
    await waitFor(() => broadcaster.stats().batches === 1 && broadcaster.stats().batchesUnheard === 1 && broadcaster.stats().channels === 0, 5_000, 'the unheard batch');
    client.ws.send(JSON.stringify({ op: 'subscribe', channels: ['c'] }));
    await client.waitFor(() => client.notices.filter((n) => n.op === 'subscribed').length === 2, 5_000, 'subscribed again');
    for (let i = 10; i < 15; i++) broadcaster.publish('c', { i });
    await client.waitFor(() => client.messages.length === 10, 5_000, 'five more');
    expect(client.messages.map((m) => m.seq)).toEqual([0, 1, 2, 3, 4, 10, 11, 12, 13, 14]);
  });
});
