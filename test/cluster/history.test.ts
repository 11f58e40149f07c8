/**
 * History in a cluster: `history()` on a node that never carried the channel reads the
 * channel's Redis stream, with the cluster's positions.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createBroadcaster, type Broadcaster } from '../../src/index.js';
import { waitForAsync } from '../helpers/harness.js';
import { requireRedis, SHARED_REDIS, uniquePrefix } from '../helpers/redis.js';

const nodes: Broadcaster[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((node) => node.close()));
});

describe('history in a cluster', () => {
  it('a node that never carried the channel pages through it from the Redis stream', async (context) => {
    await requireRedis(() => context.skip());
    const prefix = uniquePrefix();
    const make = () => createBroadcaster({ noServer: true, env: {}, poolSize: 1, heartbeatIntervalMs: 0, batchSize: 10, batchDelayMs: 5, redis: SHARED_REDIS, redisPrefix: prefix });
    const [a, b] = [make(), make()];
    nodes.push(a, b);
    await Promise.all([a.ready, b.ready]);
    for (let n = 0; n < 100; n++) a.publish('h', { n }); // nobody subscribes anywhere: only the stream holds them
    await waitForAsync(async () => (await b.history('h', { limit: 1 })).nextSeq === 100, 10_000, 'the batches in Redis');

    const page = await b.history('h', { since: 25, limit: 30 });
    expect(page.messages.map((m) => m.seq)).toEqual([...Array(30).keys()].map((i) => 25 + i));
    expect(page.messages.map((m) => (m.data as { n: number }).n)).toEqual(page.messages.map((m) => m.seq));
    expect(page).toMatchObject({ channel: 'h', nextSeq: 100, earliestSeq: 0, complete: true, more: true });
    const all = await b.history('h', { limit: 1000 });
    expect(all.messages).toHaveLength(100);
    expect(all.more).toBe(false);
    expect((await a.history('h')).epoch).toBe(page.epoch);
  });
});
