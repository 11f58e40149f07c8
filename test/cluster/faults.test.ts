/**
 * A cluster when Redis misbehaves: unreachable at start (a clear error, fast), lost
 * while running (publishing bounded, every loss counted and reported, clients told
 * through an epoch change, and the nodes carry on when Redis is back), and slow (a
 * proxy adding latency: ordering and sequence numbers stay right), and shared with
 * something else publishing on our keys (dropped, counted, the channel carries on).
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientMessage } from '../../src/client/index.js';
import { RedisBroker } from '../../src/broker/redis.js';
import { createBroadcaster, type Broadcaster, type BrokerError } from '../../src/index.js';
import { follow as followClient } from '../helpers/follower.js';
import { waitFor } from '../helpers/harness.js';
import { PrivateRedis, requireRedis, SHARED_REDIS, uniquePrefix } from '../helpers/redis.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The key prefix of the running test: its nodes share it, other tests never see it. */
let prefix = '';

async function node(redis: string, options: Record<string, unknown> = {}): Promise<Broadcaster> {
  const broadcaster = createBroadcaster({
    port: 0, host: '127.0.0.1', env: {}, poolSize: 1, heartbeatIntervalMs: 0, batchDelayMs: 5, redis, redisPrefix: prefix, ...options,
  });
  cleanups.push(() => broadcaster.close());
  await broadcaster.ready;
  return broadcaster;
}

const follow = (broadcaster: Broadcaster, channels: string[]) => followClient(`ws://127.0.0.1:${broadcaster.address()!.port}/`, { channels }, cleanups);

describe('Redis unreachable at start', () => {
  it('ready rejects with a BrokerError naming the address, within the connect timeout; nothing hangs', async () => {
    const broadcaster = createBroadcaster({ noServer: true, env: {}, poolSize: 1, redis: 'redis://127.0.0.1:1', redisConnectTimeoutMs: 2_000 });
    const errors: BrokerError[] = [];
    broadcaster.on('brokerError', (error) => errors.push(error));
    const started = Date.now();
    await expect(broadcaster.ready).rejects.toMatchObject({ code: 'BATCHCAST_BROKER', message: expect.stringMatching(/cannot reach Redis at 127\.0\.0\.1:1: .*ECONNREFUSED/) });
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(errors).toHaveLength(1);
    expect(broadcaster.closing).toBe(true);
    await broadcaster.close();
  });
});

describe('Redis lost while running', () => {
  it('bounds publishing, counts and reports every loss, tells clients by an epoch change, and carries on when Redis returns', async (context) => {
    let redis: PrivateRedis;
    try {
      redis = await PrivateRedis.start();
    } catch (error) {
      if (process.env.CI === 'true') throw error;
      return context.skip();
    }
    cleanups.push(() => redis.kill());
    prefix = uniquePrefix();
    const a = await node(redis.url, { redisMaxPending: 5, batchSize: 10, redisConnectTimeoutMs: 1_000 });
    const b = await node(redis.url, { redisMaxPending: 5, batchSize: 10, redisConnectTimeoutMs: 1_000 });
    /** Publishes n..to-1 on a in batches of 10, one batch at a time. */
    const publishInBatches = async (from: number, to: number) => {
      for (let n = from; n < to; n++) {
        a.publish('feed', { n });
        if (n % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    const errors: string[] = [];
    for (const n of [a, b]) n.on('brokerError', (error) => errors.push(error.message));
    const onA = follow(a, ['feed']);
    const onB = follow(b, ['feed']);
    await waitFor(() => onA.client.positions.feed !== undefined && onB.client.positions.feed !== undefined, 5_000, 'subscriptions');
    await publishInBatches(0, 50);
    await waitFor(() => onA.messages.length === 50 && onB.messages.length === 50, 5_000, 'the first 50 on both nodes');
    const epoch = onA.client.positions.feed!.epoch;

    await redis.kill();
    await waitFor(() => errors.some((message) => /connection to Redis lost/.test(message)), 5_000, 'the loss to be reported');
    // 20 batches of 10: 5 wait for Redis (redisMaxPending), the other 15 are dropped at once.
    await publishInBatches(50, 250);
    await waitFor(() => a.stats().cluster!.messagesDropped === 150, 5_000, '150 messages dropped');
    expect(a.stats().cluster).toMatchObject({ pending: 5, refused: 15 });
    await waitFor(() => errors.filter((message) => /did not reach Redis/.test(message)).length === 15, 5_000, 'one brokerError per dropped batch');

    // A client subscribing while Redis is away gets an answer within redisConnectTimeoutMs, not silence.
    const late = follow(a, ['other']);
    const notices: Record<string, unknown>[] = [];
    late.client.on('notice', (notice) => notices.push(notice));
    await waitFor(() => notices.some((n) => n.op === 'error' && n.code === 'BATCHCAST_BROKER' && n.channel === 'other'), 5_000, 'an error notice for the subscribe');
    late.client.close();

    await redis.start(); // empty: the channel's epoch is gone
    await waitFor(() => onA.client.positions.feed?.epoch !== epoch && onB.client.positions.feed?.epoch !== epoch, 10_000, 'both clients to learn the new epoch');
    for (let n = 1000; n < 1040; n++) b.publish('feed', { n });
    await waitFor(() => [onA, onB].every((f) => f.messages.some((m) => (m.data as { n: number }).n === 1039)), 10_000, 'the messages after Redis came back');

    for (const follower of [onA, onB]) {
      // The epoch change first. A node that learned the new epoch from A's waiting batches (numbered
      // before the dropped ones) then sees the dropped numbers as a gap; one that learned it after sees none.
      expect(follower.gaps[0]!.reason).toBe('epoch');
      for (const gap of follower.gaps.slice(1)) expect(gap).toMatchObject({ reason: 'dropped', missed: 150 });
      const after = follower.messages.filter((m) => (m.data as { n: number }).n >= 1000);
      expect(after.map((m) => (m.data as { n: number }).n)).toEqual([...Array(40).keys()].map((i) => 1000 + i));
      const seqs = after.map((m) => m.seq);
      expect(seqs).toEqual([...Array(40).keys()].map((i) => seqs[0]! + i));
      expect(follower.client.positions.feed!.epoch).toBe(onA.client.positions.feed!.epoch);
    }
    expect(a.stats().cluster!.epochChanges).toBeGreaterThanOrEqual(1);
    expect(a.stats().cluster!.reconnects).toBeGreaterThanOrEqual(1);
  }, 60_000);
});

describe('a slow Redis', () => {
  it('through a proxy adding 15 ms each way: two nodes publishing at once still agree on order and seqs', async (context) => {
    await requireRedis(() => context.skip());
    const proxy = await TcpProxy.start(6379);
    proxy.delayMs = 15;
    cleanups.push(() => proxy.close());
    prefix = uniquePrefix();
    const a = await node(`redis://127.0.0.1:${proxy.port}`);
    const b = await node(`redis://127.0.0.1:${proxy.port}`);
    const onA = follow(a, ['slow']);
    const onB = follow(b, ['slow']);
    await waitFor(() => onA.client.positions.slow !== undefined && onB.client.positions.slow !== undefined, 10_000, 'subscriptions');
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 10; i++) {
        a.publish('slow', { tag: 'a', n: round * 10 + i });
        b.publish('slow', { tag: 'b', n: round * 10 + i });
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor(() => onA.messages.length === 800 && onB.messages.length === 800, 20_000, '800 messages on both');
    const view = (messages: ClientMessage[]) => messages.map((m) => `${m.seq}:${(m.data as { tag: string }).tag}${(m.data as { n: number }).n}`);
    expect(view(onA.messages)).toEqual(view(onB.messages));
    expect(onA.messages.map((m) => m.seq)).toEqual([...Array(800).keys()]);
    for (const tag of 'ab') {
      expect(onA.messages.filter((m) => (m.data as { tag: string }).tag === tag).map((m) => (m.data as { n: number }).n)).toEqual([...Array(400).keys()]);
    }
    expect([...onA.gaps, ...onB.gaps]).toEqual([]);
  }, 60_000);
});

describe('numbers the stream does not hold', () => {
  it('a jump the stream cannot fill (numbers taken by messages dropped on another node) is delivered as a gap, not waited on forever', async (context) => {
    await requireRedis(() => context.skip());
    prefix = uniquePrefix();
    const a = await node(SHARED_REDIS);
    const onA = follow(a, ['holes']);
    await waitFor(() => onA.client.positions.holes !== undefined, 10_000, 'subscription');
    for (let n = 0; n < 20; n++) a.publish('holes', { n });
    await waitFor(() => onA.messages.length === 20, 10_000, 'the first 20');
    // What another node does when Redis comes back after it dropped 5 messages: their numbers are taken, no frame is published.
    const other = new RedisBroker({
      redis: SHARED_REDIS, cluster: false, prefix, maxPending: 5, streamLength: 1000, keyTtlMs: 60_000, connectTimeoutMs: 2_000,
    });
    cleanups.push(() => other.close());
    await other.ready;
    await other.publish('holes', 0, 5, Buffer.alloc(0), null);
    for (let n = 20; n < 30; n++) a.publish('holes', { n });
    await waitFor(() => onA.messages.length === 30, 10_000, 'the 10 after the hole');
    expect(onA.messages.slice(20).map((m) => m.seq)).toEqual([...Array(10).keys()].map((i) => 25 + i));
    expect(onA.gaps).toMatchObject([{ reason: 'dropped', expected: 20, received: 25, missed: 5 }]);
    expect(a.stats().cluster).toMatchObject({ messagesLost: 5, framesFilled: 0 });
  }, 30_000);
});

describe('foreign messages on our keys', () => {
  it('pub/sub messages that are not batchcast frames are dropped and counted; the channel carries on', async (context) => {
    await requireRedis(() => context.skip());
    prefix = uniquePrefix();
    const a = await node(SHARED_REDIS);
    const onA = follow(a, ['shared']);
    await waitFor(() => onA.client.positions.shared !== undefined, 10_000, 'subscription');
    const stranger = new Redis(SHARED_REDIS);
    cleanups.push(() => stranger.quit());
    const framesKey = `${prefix}{shared}:f`;
    const junk = ['hello', 'e1:x:3:body', 'e1:5:0:body', ':0:1:body', 'e1:0:1:', 'e1:-1:1:body', 'e1:99999999999999999999:1:body'];
    for (const payload of junk) await stranger.publish(framesKey, payload);
    for (let n = 0; n < 20; n++) a.publish('shared', { n });
    await waitFor(() => onA.messages.length === 20, 10_000, '20 messages');
    expect(onA.messages.map((m) => m.seq)).toEqual([...Array(20).keys()]);
    expect(onA.gaps).toEqual([]);
    expect(a.stats().cluster!.malformed).toBe(junk.length);
  }, 30_000);
});
