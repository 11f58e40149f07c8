/**
 * On a Redis Cluster (three masters of the test's own): three broadcaster processes,
 * channels spread over the shards by their hash tags, frames by sharded pub/sub.
 * Every client on every node gets every channel's messages in one identical order
 * with contiguous sequence numbers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientMessage } from '../../src/client/index.js';
import { follow } from '../helpers/follower.js';
import { waitFor } from '../helpers/harness.js';
import { PrivateRedisCluster, uniquePrefix } from '../helpers/redis.js';
import { fixture } from '../reliability/support.js';
import { FixtureProcess } from '../hardening/child.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const CHANNELS = Array.from({ length: 12 }, (_, i) => `market.${i}`);

describe('Redis Cluster', () => {
  it('three nodes, twelve channels over three shards: identical order and seqs per channel everywhere', async (context) => {
    let cluster: PrivateRedisCluster;
    try {
      cluster = await PrivateRedisCluster.start();
    } catch (error) {
      if (process.env.CI === 'true') throw error;
      return context.skip();
    }
    cleanups.push(() => cluster.stop());
    const prefix = uniquePrefix();
    const nodes = await Promise.all([0, 1, 2].map(async () => {
      const node = new FixtureProcess(fixture('cluster-node.mjs'), [JSON.stringify({ redis: cluster.url, prefix, options: { redisCluster: true } })]);
      cleanups.push(() => node.kill());
      return { node, port: (await node.json<{ port: number }>('port')).port };
    }));
    const followers = nodes.map(({ port }) => follow(`ws://127.0.0.1:${port}/`, { channels: CHANNELS }, cleanups));
    await waitFor(() => followers.every((f) => CHANNELS.every((c) => f.client.positions[c] !== undefined)), 15_000, 'every subscription');

    // Every node publishes 40 messages on every channel, all at once.
    await Promise.all(nodes.flatMap(({ node }, i) => CHANNELS.map((channel) => node.ask(JSON.stringify({ cmd: 'publish', channel, count: 40, tag: `${'abc'[i]}`, perTick: 10 }), 'published'))));
    const total = CHANNELS.length * 40 * 3;
    await waitFor(() => followers.every((f) => f.messages.length === total), 20_000, `${total} messages on every client`);

    const view = (messages: ClientMessage[], channel: string) =>
      messages.filter((m) => m.channel === channel).map((m) => `${m.seq}:${(m.data as { tag: string }).tag}${(m.data as { n: number }).n}`);
    for (const channel of CHANNELS) {
      const first = view(followers[0]!.messages, channel);
      expect(first).toHaveLength(120);
      expect(followers[0]!.messages.filter((m) => m.channel === channel).map((m) => m.seq)).toEqual([...Array(120).keys()]);
      for (const follower of followers) expect(view(follower.messages, channel)).toEqual(first);
    }
    for (const follower of followers) expect(follower.gaps).toEqual([]);
    // The channels' keys live on every shard (hash tags spread them; each channel's keys on one).
    const keys = await cluster.keysPerMaster(`${prefix}*`);
    expect(keys.filter((count) => count > 0).length).toBe(3);
    expect(keys.reduce((a, b) => a + b, 0)).toBe(CHANNELS.length * 3); // epoch, next seq, stream per channel
  }, 90_000);
});
