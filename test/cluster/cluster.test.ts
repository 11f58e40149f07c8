/**
 * A batchcast cluster: three broadcaster processes and a real Redis. A message
 * published on any node reaches the subscribers of its channel on every node, in one
 * identical order with the same contiguous sequence numbers; a client whose node dies
 * moves to another one and recovers from the shared stream, exactly once and in order.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientMessage } from '../../src/client/index.js';
import { follow as followClient } from '../helpers/follower.js';
import { waitFor } from '../helpers/harness.js';
import { requireRedis, SHARED_REDIS, uniquePrefix } from '../helpers/redis.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { fixture } from '../reliability/support.js';
import { FixtureProcess } from '../hardening/child.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Node {
  process: FixtureProcess;
  port: number;
}

async function startNode(prefix: string, redis = SHARED_REDIS, options: Record<string, unknown> = {}): Promise<Node> {
  const process = new FixtureProcess(fixture('cluster-node.mjs'), [JSON.stringify({ redis, prefix, options })]);
  cleanups.push(() => process.kill());
  const { port } = await process.json<{ port: number }>('port');
  return { process, port };
}

function publish(node: Node, channel: string, count: number, tag: string, perTick = 10): Promise<unknown> {
  return node.process.ask(JSON.stringify({ cmd: 'publish', channel, count, tag, perTick }), 'published');
}

const follow = (url: string, channels: string[]) => followClient(url, { channels }, cleanups);

const view = (messages: ClientMessage[]) => messages.map((m) => `${m.seq}:${(m.data as { tag: string }).tag}${(m.data as { n: number }).n}`);

describe('cluster over Redis', () => {
  it('three nodes publishing at once: every client on every node gets the same messages, order and seqs', async (context) => {
    await requireRedis(() => context.skip());
    const prefix = uniquePrefix();
    const nodes = await Promise.all([startNode(prefix), startNode(prefix), startNode(prefix)]);
    const followers = nodes.map((node) => follow(`ws://127.0.0.1:${node.port}/`, ['feed']));
    await waitFor(() => followers.every((f) => f.client.positions.feed !== undefined), 10_000, 'every client subscribed');
    await Promise.all(nodes.map((node, i) => publish(node, 'feed', 300, 'abc'[i]!)));
    await waitFor(() => followers.every((f) => f.messages.length === 900), 15_000, '900 messages on every client');

    const first = view(followers[0]!.messages);
    for (const follower of followers) {
      expect(view(follower.messages)).toEqual(first);
      expect(follower.messages.map((m) => m.seq)).toEqual([...Array(900).keys()]);
      expect(follower.gaps).toEqual([]);
    }
    // Each node's own messages in its publish order, interleaved with the others'.
    for (const tag of 'abc') {
      expect(followers[0]!.messages.filter((m) => (m.data as { tag: string }).tag === tag).map((m) => (m.data as { n: number }).n)).toEqual([...Array(300).keys()]);
    }
    // Encoded once: each node published only its own batches to Redis and delivered everyone's.
    const stats = await Promise.all(nodes.map((node) => node.process.ask<{ stats: { batches: number; cluster: { published: number; received: number } } }>(JSON.stringify({ cmd: 'stats' }), 'stats')));
    const published = stats.reduce((sum, s) => sum + s.stats.cluster.published, 0);
    for (const { stats: s } of stats) {
      expect(s.cluster.published).toBe(s.batches);
      expect(s.cluster.received).toBe(published);
    }
  }, 60_000);

  it('a node killed mid-stream: its client moves to another node and recovers from the stream, exactly once, in order', async (context) => {
    await requireRedis(() => context.skip());
    const prefix = uniquePrefix();
    const [doomed, survivor, publisher] = await Promise.all([startNode(prefix), startNode(prefix), startNode(prefix)]);
    const proxy = await TcpProxy.start(doomed!.port);
    cleanups.push(() => proxy.close());
    const { client, messages, gaps } = follow(`ws://127.0.0.1:${proxy.port}/`, ['feed']);
    await waitFor(() => client.positions.feed !== undefined, 10_000, 'the subscription');

    const publishing = publish(publisher!, 'feed', 3000, 'p', 15); // 3 000 msgs/s for a second
    await waitFor(() => messages.length > 500, 10_000, 'some messages through the doomed node');
    proxy.refuse(true);
    doomed!.process.kill();
    await new Promise((resolve) => setTimeout(resolve, 300)); // messages go on meanwhile, for nobody on this client
    proxy.target = survivor!.port;
    proxy.refuse(false);
    await publishing;
    await waitFor(() => messages.length === 3000, 15_000, 'all 3000 messages');

    expect(gaps).toEqual([]);
    expect(messages.map((m) => m.seq)).toEqual([...Array(3000).keys()]);
    expect(messages.map((m) => (m.data as { n: number }).n)).toEqual([...Array(3000).keys()]);
    expect(client.stats.recoveries).toBeGreaterThanOrEqual(1);
  }, 60_000);
});
