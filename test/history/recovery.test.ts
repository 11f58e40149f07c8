/**
 * Recovery with real servers and sockets: a client whose connection is cut (a TCP proxy
 * in the test) reconnects, asks for what it missed, and gets it exactly once, in order;
 * what history no longer holds is a gap with reason `evicted` and its exact size; a
 * restarted server is an `epoch` change, never a false gap.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BatchcastClient, ClientMessage, ClientOptions } from '../../src/client/index.js';
import { createBroadcaster, type Broadcaster } from '../../src/index.js';
import { follow as followClient } from '../helpers/follower.js';
import { waitFor, waitForAsync } from '../helpers/harness.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { fixture, Resources, sleep } from '../reliability/support.js';

const resources = new Resources();
const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await resources.cleanup();
});

function follow(url: string, options: ClientOptions = {}) {
  return followClient(url, options, closers);
}

async function proxied(broadcaster: Broadcaster): Promise<TcpProxy> {
  const proxy = await TcpProxy.start(broadcaster.address()!.port);
  closers.push(() => proxy.close());
  return proxy;
}

const subscribed = (client: BatchcastClient, channel: string) => client.positions[channel] !== undefined;
const data = (messages: ClientMessage[]) => messages.map((m) => (m.data as { n: number }).n);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('recovery through a TCP proxy that cuts the connection', () => {
  it('several cuts mid-stream at 3 000 msgs/s: every message exactly once, in order, no gap', async () => {
    const { broadcaster } = await resources.start({ batchDelayMs: 5 });
    const proxy = await proxied(broadcaster);
    const { client, messages, gaps, recovered } = follow(`ws://127.0.0.1:${proxy.port}/`, { channels: ['feed'] });
    await waitFor(() => subscribed(client, 'feed'), 5_000, 'the subscription');

    let published = 0;
    const feed = setInterval(() => {
      for (let i = 0; i < 15; i++) broadcaster.publish('feed', { n: published++ });
    }, 5);
    for (let cut = 0; cut < 4; cut++) {
      await sleep(500);
      proxy.cut();
    }
    await sleep(500);
    clearInterval(feed);
    await waitFor(() => messages.length >= published, 10_000, `${published} messages`);
    await sleep(50);

    expect(proxy.cuts).toBeGreaterThanOrEqual(4);
    expect(client.stats.reconnects).toBeGreaterThanOrEqual(4);
    expect(gaps).toEqual([]);
    expect(messages.map((m) => m.seq)).toEqual(range(0, published));
    expect(data(messages)).toEqual(range(0, published));
    expect(recovered.length).toBeGreaterThanOrEqual(4);
    expect(recovered.reduce((sum, r) => sum + r.messages, 0)).toBeGreaterThan(0);
    expect(broadcaster.stats().recoveries.ok).toBeGreaterThanOrEqual(4);
  });

  it('an outage longer than history: a gap with reason evicted and the exact count, then a clean live stream', async () => {
    // A queue long enough that no batch coalesces: every batch holds 50 messages.
    const { broadcaster } = await resources.start({ batchSize: 50, batchDelayMs: 5, historyMessages: 200, maxQueue: 1000 });
    const proxy = await proxied(broadcaster);
    const { client, messages, gaps, recovered } = follow(`ws://127.0.0.1:${proxy.port}/`, { channels: ['feed'] });
    await waitFor(() => subscribed(client, 'feed'), 5_000, 'the subscription');
    for (let n = 0; n < 100; n++) broadcaster.publish('feed', { n });
    await waitFor(() => messages.length === 100, 5_000, 'the first 100');

    proxy.refuse(true);
    proxy.cut();
    for (let n = 100; n < 1100; n++) broadcaster.publish('feed', { n }); // history keeps the last 200: 900..1099
    await waitFor(() => broadcaster.stats().batches === 22, 5_000, 'the batches during the outage');
    expect((await broadcaster.history('feed')).earliestSeq).toBe(900);
    proxy.refuse(false);
    await waitFor(() => recovered.length === 1, 10_000, 'the recovery');
    for (let n = 1100; n < 1200; n++) broadcaster.publish('feed', { n });
    await waitFor(() => messages.length === 400, 5_000, 'the live messages after');

    expect(gaps).toEqual([{ channel: 'feed', reason: 'evicted', expected: 100, received: 900, missed: 800, epoch: expect.any(String) }]);
    expect(recovered).toEqual([{ channel: 'feed', epoch: gaps[0]!.epoch, since: 100, to: 1100, messages: 200 }]);
    expect(data(messages)).toEqual([...range(0, 100), ...range(900, 1200)]);
    expect(messages.map((m) => m.seq)).toEqual(data(messages));
    expect(broadcaster.stats().recoveries.evicted).toBe(1);
  });
});

describe('positions kept by the application', () => {
  it('connect(url, { since }) and subscribe({ channel, since }) recover from stored positions', async () => {
    const { broadcaster, url } = await resources.start({ batchSize: 10, batchDelayMs: 5 });
    const first = follow(url, { channels: ['a', 'b'], reconnect: false });
    await waitFor(() => subscribed(first.client, 'a') && subscribed(first.client, 'b'), 5_000, 'the subscriptions');
    for (let n = 0; n < 30; n++) {
      broadcaster.publish('a', { n });
      broadcaster.publish('b', { n });
    }
    await waitFor(() => first.messages.length === 60, 5_000, '60 messages');
    const stored = JSON.parse(JSON.stringify(first.client.positions)) as typeof first.client.positions; // as a page would keep it
    first.client.close();
    for (let n = 30; n < 50; n++) {
      broadcaster.publish('a', { n });
      broadcaster.publish('b', { n });
    }
    await waitForAsync(async () => (await broadcaster.history('a')).nextSeq === 50 && (await broadcaster.history('b')).nextSeq === 50, 5_000, 'the batches released');
    const second = follow(url, { since: { a: stored.a! }, reconnect: false });
    await waitFor(() => second.recovered.length === 1, 5_000, 'the recovery of a');
    second.client.subscribe({ channel: 'b', since: stored.b! });
    await waitFor(() => second.recovered.length === 2, 5_000, 'the recovery of b');
    await waitFor(() => second.messages.length === 40, 5_000, '40 messages');
    for (const channel of ['a', 'b']) {
      expect(data(second.messages.filter((m) => m.channel === channel))).toEqual(range(30, 50));
    }
    expect(second.recovered.map((r) => [r.channel, r.since, r.to, r.messages])).toEqual([['a', 30, 50, 20], ['b', 30, 50, 20]]);
    expect(second.gaps).toEqual([]);
    expect(() => second.client.subscribe({ channel: 'c', since: { epoch: 'no spaces allowed', seq: 1 } })).toThrowError(expect.objectContaining({ code: 'BATCHCAST_INVALID_CONFIG' }));
  });
});

describe('server restart', () => {
  it.each([
    ['ahead of', 80],
    ['behind', 10],
  ])('a new server whose stream is %s the old position: an epoch gap, never a false one', async (_label, publishedBefore) => {
    const first = await resources.start({ batchDelayMs: 5 });
    const port = first.broadcaster.address()!.port;
    const proxy = await proxied(first.broadcaster); // the proxy keeps the client away until the new server has published
    const { client, messages, gaps } = follow(`ws://127.0.0.1:${proxy.port}/`, { channels: ['feed'] });
    await waitFor(() => subscribed(client, 'feed'), 5_000, 'the subscription');
    for (let n = 0; n < 50; n++) first.broadcaster.publish('feed', { n });
    await waitFor(() => messages.length === 50, 5_000, '50 messages');
    const oldEpoch = client.positions.feed!.epoch;
    proxy.refuse(true);
    await first.broadcaster.close();

    const second = createBroadcaster({ port, host: '127.0.0.1', env: {}, poolSize: 1, heartbeatIntervalMs: 0, batchDelayMs: 5 });
    resources.broadcasters.push(second);
    await second.ready;
    for (let n = 0; n < publishedBefore; n++) second.publish('feed', { n: 1000 + n }); // nobody listens yet
    second.flush();
    await waitForAsync(async () => (await second.history('feed')).nextSeq === publishedBefore, 5_000, 'the new server to publish');
    proxy.refuse(false);
    await waitFor(() => client.positions.feed?.epoch !== oldEpoch && client.connected, 10_000, 'the client to reconnect');
    for (let n = 0; n < 20; n++) second.publish('feed', { n: 2000 + n });
    await waitFor(() => messages.length === 70, 5_000, 'the live messages of the new server');

    expect(gaps).toEqual([{ channel: 'feed', reason: 'epoch', expected: 50, received: publishedBefore, missed: null, epoch: client.positions.feed!.epoch }]);
    expect(messages.slice(50).map((m) => m.seq)).toEqual(range(publishedBefore, publishedBefore + 20));
    expect(data(messages.slice(50))).toEqual(range(2000, 2020));
    expect(client.positions.feed).toEqual({ epoch: (await second.history('feed')).epoch, seq: publishedBefore + 20 });
    expect(client.positions.feed!.epoch).not.toBe(oldEpoch);
  });
});

describe('recovery racing the live stream', () => {
  it('batches still in the pool (and finishing out of order) while a client recovers: nothing lost or repeated', async () => {
    const { broadcaster, url } = await resources.start({
      poolSize: 2, batchSize: 10, batchDelayMs: 1000, workerFilename: fixture('../helpers/delaying-worker.mjs'),
    });
    const first = follow(url, { channels: ['race'], reconnect: false });
    await waitFor(() => subscribed(first.client, 'race'), 5_000, 'the subscription');
    for (let n = 0; n < 50; n++) broadcaster.publish('race', { n });
    await waitFor(() => first.messages.length === 50, 5_000, '50 messages');
    const since = first.client.positions;
    first.client.close();

    // While it is away: a batch held 400 ms in one worker, later ones finishing first on the other (held for order).
    broadcaster.publish('race', { n: 50, delayMs: 400 });
    for (let n = 51; n < 100; n++) broadcaster.publish('race', { n });
    await sleep(50);
    expect(broadcaster.stats().pool.inFlight).toBeGreaterThan(0);
    const second = follow(url, { since, reconnect: false });
    // And more, while it recovers.
    for (let round = 0; round < 10; round++) {
      await sleep(20);
      for (let i = 0; i < 10; i++) broadcaster.publish('race', { n: 100 + round * 10 + i });
    }
    await waitFor(() => second.messages.length === 150, 10_000, '150 messages for the second client');
    await sleep(50);
    expect(second.gaps).toEqual([]);
    expect(second.messages.map((m) => m.seq)).toEqual(range(50, 200));
    expect(data(second.messages)).toEqual(range(50, 200));
    expect(second.recovered).toHaveLength(1);
    expect(broadcaster.stats().reorderedBatches).toBeGreaterThan(0);
  });
});
