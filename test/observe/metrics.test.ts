/**
 * Prometheus metrics: real broadcasters, real clients, real scrapes (prom-client's
 * registry, and `GET /metrics` of `serve`). The exposition is parsed and compared with
 * what was published and with stats().
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Registry, Counter } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { serve, type Served } from '../../src/cli/serve.js';
import { createBroadcaster, resolveServerConfig, type Broadcaster } from '../../src/index.js';
import { RawClient, startBroadcaster, trade, waitFor } from '../helpers/harness.js';
import { MemoryLogger } from '../helpers/logger.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Parses a text exposition into `name{labels}` → value, and `name` → TYPE. */
function parse(text: string): { values: Map<string, number>; types: Map<string, string> } {
  const values = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) types.set(type[1]!, type[2]!);
    else if (line !== '' && !line.startsWith('#')) {
      const space = line.lastIndexOf(' ');
      values.set(line.slice(0, space), Number(line.slice(space + 1)));
    }
  }
  return { values, types };
}

async function started(options: Parameters<typeof startBroadcaster>[0] = {}): Promise<{ broadcaster: Broadcaster; url: string }> {
  const running = await startBroadcaster({ batchDelayMs: 5, ...options });
  cleanups.push(() => running.broadcaster.close());
  return running;
}

async function client(url: string, channels: string[]): Promise<RawClient> {
  const opened = await RawClient.open(url, channels);
  cleanups.push(() => opened.close());
  return opened;
}

describe('metrics', () => {
  it('count what was published, encoded and sent, with the types and names the README lists', async () => {
    const { broadcaster, url } = await started();
    const subscriber = await client(url, ['trades']);
    for (let i = 0; i < 300; i++) broadcaster.publish('trades', trade(i));
    await subscriber.waitFor(() => subscriber.messages.length === 300, 10_000, '300 messages');
    const { values, types } = parse(await broadcaster.metrics!.text());
    const stats = broadcaster.stats();
    expect(values.get('batchcast_messages_published_total')).toBe(300);
    expect(values.get('batchcast_batches_total')).toBe(stats.batches);
    expect(stats.batches).toBeGreaterThan(0);
    expect(values.get('batchcast_bytes_raw_total')).toBe(stats.rawBytes);
    expect(values.get('batchcast_bytes_wire_total')).toBe(stats.wireBytes);
    expect(values.get('batchcast_frames_sent_total')).toBe(stats.framesSent);
    expect(values.get('batchcast_connections')).toBe(1);
    expect(values.get('batchcast_batches_skipped_total')).toBe(0);
    expect(values.get('batchcast_send_errors_total')).toBe(0);
    expect(values.get('batchcast_pool_queue')).toBe(0);
    expect(values.get('batchcast_pool_utilization')).toBeGreaterThanOrEqual(0);
    for (const kind of ['error', 'crash', 'timeout', 'inline']) expect(values.get(`batchcast_worker_faults_total{kind="${kind}"}`)).toBe(0);
    // One observation per batch in each histogram; every batch waited at least a moment between its first publish and its write.
    expect(values.get('batchcast_encode_duration_seconds_count')).toBe(stats.batches);
    expect(values.get('batchcast_broadcast_delay_seconds_count')).toBe(stats.batches);
    expect(values.get('batchcast_broadcast_delay_seconds_sum')).toBeGreaterThan(0);
    expect(values.get('batchcast_broadcast_delay_seconds_bucket{le="+Inf"}')).toBe(stats.batches);
    expect(stats.broadcastDelayMs.samples).toBe(stats.batches);
    for (const [name, type] of Object.entries({
      batchcast_messages_published_total: 'counter', batchcast_batches_total: 'counter', batchcast_bytes_raw_total: 'counter', batchcast_bytes_wire_total: 'counter',
      batchcast_frames_sent_total: 'counter', batchcast_connections: 'gauge', batchcast_batches_skipped_total: 'counter', batchcast_send_errors_total: 'counter',
      batchcast_pool_utilization: 'gauge', batchcast_pool_queue: 'gauge', batchcast_worker_faults_total: 'counter', batchcast_encode_duration_seconds: 'histogram',
      batchcast_broadcast_delay_seconds: 'histogram',
    })) expect(types.get(name), name).toBe(type);
    // No per-channel label unless asked for, and no Node default metrics in a library broadcaster unless asked for.
    expect([...values.keys()].some((key) => key.includes('channel='))).toBe(false);
    expect(types.has('nodejs_eventloop_lag_seconds')).toBe(false);
  });

  it('counters only grow and follow stats() from scrape to scrape', async () => {
    const { broadcaster, url } = await started();
    const subscriber = await client(url, ['a']);
    const scraped: number[] = [];
    for (let round = 1; round <= 3; round++) {
      for (let i = 0; i < 50; i++) broadcaster.publish('a', { round, i });
      await subscriber.waitFor(() => subscriber.messages.length === round * 50, 10_000, `round ${round}`);
      await waitFor(() => broadcaster.stats().framesSent > 0, 5_000, 'frames');
      const { values } = parse(await broadcaster.metrics!.text());
      expect(values.get('batchcast_messages_published_total')).toBe(round * 50);
      expect(values.get('batchcast_frames_sent_total')).toBe(broadcaster.stats().framesSent);
      scraped.push(values.get('batchcast_bytes_sent_total')!);
    }
    expect(scraped[0]).toBeLessThan(scraped[1]!);
    expect(scraped[1]).toBeLessThan(scraped[2]!);
  });

  it("go into the application's own registry next to its metrics, under a prefix; metrics: false leaves them out", async () => {
    const registry = new Registry();
    const own = new Counter({ name: 'app_requests_total', help: 'the application', registers: [registry] });
    own.inc(7);
    const { broadcaster } = await started({ metrics: { registry, prefix: 'feed_' } });
    const off = await started({ metrics: false });
    broadcaster.publish('x', 1);
    off.broadcaster.publish('x', 1);
    await waitFor(() => broadcaster.stats().batches === 1 && off.broadcaster.stats().batches === 1, 5_000, 'a batch each');
    const { values } = parse(await registry.metrics());
    expect(values.get('app_requests_total')).toBe(7);
    expect(values.get('feed_messages_published_total')).toBe(1);
    expect([...values.keys()].some((key) => key.startsWith('batchcast_'))).toBe(false);
    expect(broadcaster.metrics!.registry).toBe(registry);
    expect(off.broadcaster.metrics).toBeNull();
    // The broadcaster without metrics still measures its delay for stats().
    expect(off.broadcaster.stats().broadcastDelayMs.samples).toBe(1);
  });

  it('label channels only when asked, up to the bound; the rest add up under _other', async () => {
    const { broadcaster, url } = await started({ metrics: { channelLabels: 2 } });
    const channels = ['c1', 'c2', 'c3', 'c4'];
    const subscriber = await client(url, channels);
    for (const [index, channel] of channels.entries()) {
      for (let i = 0; i <= index; i++) broadcaster.publish(channel, i);
      broadcaster.flush();
      await subscriber.waitFor(() => subscriber.messages.filter((m) => m.channel === channel).length === index + 1, 5_000, channel);
    }
    const { values } = parse(await broadcaster.metrics!.text());
    expect(values.get('batchcast_channel_messages_total{channel="c1"}')).toBe(1);
    expect(values.get('batchcast_channel_messages_total{channel="c2"}')).toBe(2);
    expect(values.get('batchcast_channel_messages_total{channel="_other"}')).toBe(3 + 4);
    expect([...values.keys()].filter((key) => key.startsWith('batchcast_channel_messages_total'))).toHaveLength(3);
  });

  it('refuse bad settings naming them', () => {
    expect(() => createBroadcaster({ noServer: true, env: {}, metrics: { prefix: 'bad-prefix' } })).toThrow(/metrics\.prefix.*bad-prefix/);
    expect(() => createBroadcaster({ noServer: true, env: {}, metrics: { channelLabels: -1 } })).toThrow(/metrics\.channelLabels/);
  });

  it('a broadcaster refused for bad metrics settings leaves no timer and no worker thread behind', () => {
    // In its own process: a leaked once-a-second timer read parts never built and threw a TypeError a second later.
    const script = "const { createBroadcaster } = await import('./dist/src/index.js'); let message = '';" +
      " try { createBroadcaster({ noServer: true, env: {}, metrics: { prefix: 'bad-prefix' } }); } catch (error) { message = error.message; }" +
      " const left = process.getActiveResourcesInfo(); setTimeout(() => console.log(JSON.stringify({ message, left })), 1_500);";
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const { message, left } = JSON.parse(out) as { message: string; left: string[] };
    expect(message).toMatch(/metrics\.prefix.*bad-prefix/);
    expect(left.filter((resource) => /worker|messageport/i.test(resource))).toEqual([]);
  });
});

describe('GET /metrics in serve', () => {
  it("serves the exposition with Prometheus's content type, prom-client's default Node metrics included", async () => {
    const served: Served = await serve({
      ...resolveServerConfig({ port: 0, host: '127.0.0.1' }, {}),
      demo: false,
      settings: { poolSize: 1, heartbeatIntervalMs: 0 },
      logger: new MemoryLogger(),
    });
    cleanups.push(() => served.close());
    served.broadcaster.publish('t', { hello: 1 });
    await waitFor(() => served.broadcaster.stats().batches === 1, 5_000, 'a batch');
    const response = await fetch(`http://127.0.0.1:${served.port}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const { values, types } = parse(await response.text());
    expect(values.get('batchcast_messages_published_total')).toBe(1);
    expect(types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    expect(types.get('nodejs_heap_size_used_bytes')).toBe('gauge');
    expect(types.get('nodejs_gc_duration_seconds')).toBe('histogram');
  });
});
