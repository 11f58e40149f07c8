/**
 * The `logger` option: what an operator acts on is logged, with fields; floods are one
 * line and then a summary a second; nothing is logged per message; a logger that throws
 * hurts nobody. Real broadcasters, real sockets, a real faulting worker.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/observe/logger.js';
import { RawClient, startBroadcaster, trade, waitFor } from '../helpers/harness.js';
import { MemoryLogger } from '../helpers/logger.js';
import { upgradeStatus } from '../reliability/support.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function started(logger: Logger, options: Parameters<typeof startBroadcaster>[0] = {}) {
  const running = await startBroadcaster({ batchDelayMs: 5, logger, ...options });
  cleanups.push(() => running.broadcaster.close());
  return running;
}

async function status(url: string): Promise<number> {
  const { status, ws } = await upgradeStatus(url);
  ws.terminate();
  return status;
}

describe('logger', () => {
  it('logs a refused upgrade once with its status, then sums up the flood once a second', async () => {
    const logger = new MemoryLogger();
    const { url } = await started(logger, { path: '/ws' });
    for (let i = 0; i < 30; i++) expect(await status(`${url}nowhere?i=${i}`)).toBe(404);
    const refused = () => logger.entries.filter((e) => e.message.startsWith('upgrade refused'));
    await waitFor(() => refused().length === 2, 5_000, 'the summary line');
    expect(refused()[0]).toMatchObject({ level: 'info', fields: { status: 404, url: '/nowhere?i=0' } });
    expect(refused()[1]!.message).toMatch(/and 29 more like it in the last second/);
  });

  it('logs nothing per message: 20 000 messages to a subscriber add no line', async () => {
    const logger = new MemoryLogger();
    const { broadcaster, url } = await started(logger);
    const client = await RawClient.open(url, ['trades']);
    cleanups.push(() => client.close());
    const before = logger.entries.length;
    for (let i = 0; i < 20_000; i++) broadcaster.publish('trades', trade(i));
    await client.waitFor(() => client.messages.length === 20_000, 20_000, 'every message');
    expect(logger.entries.slice(before)).toEqual([]);
  });

  it('logs worker faults, rejected messages (throttled), recoveries that lost messages, and the shutdown', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'batchcast-log-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const logger = new MemoryLogger();
    const { broadcaster, url } = await started(logger, {
      workerFilename: fileURLToPath(new URL('../fixtures/fault-worker.mjs', import.meta.url)), maxMessageBytes: 1000, historyMessages: 10,
    });
    const client = await RawClient.open(url, ['feed']);
    cleanups.push(() => client.close());
    broadcaster.publish('feed', { fault: 'throw', times: 1, counter: join(dir, 'attempts') });
    for (let i = 0; i < 100; i++) broadcaster.publish('feed', { big: 'x'.repeat(2000), i });
    for (let i = 0; i < 50; i++) broadcaster.publish('feed', trade(i));
    await client.waitFor(() => client.messages.length === 51, 10_000, 'the good messages');
    await waitFor(() => logger.entries.some((e) => /more like it/.test(e.message)), 5_000, 'the rejected-message summary');
    expect(logger.entries.filter((e) => e.fields.kind === 'error' && e.level === 'warn')).toHaveLength(1);
    expect(logger.messages('warn').find((m) => m.startsWith('worker error'))).toMatch(/worker error on channel "feed" \(attempt 1\); retrying/);
    const rejected = logger.entries.filter((e) => e.fields.code === 'BATCHCAST_MESSAGE_TOO_LARGE' || e.fields.kind === 'messageError');
    expect(rejected).toHaveLength(2);
    expect(rejected[1]!.message).toMatch(/and 99 more like it/);

    // A client that comes back from seq 0 after history (10 messages) moved on: a warning with the count.
    const late = await RawClient.open(url);
    cleanups.push(() => late.close());
    const epoch = (client.notices.find((n) => n.op === 'subscribed') as { positions: Record<string, { epoch: string }> }).positions.feed!.epoch;
    late.ws.send(JSON.stringify({ op: 'subscribe', channels: ['feed'], since: { feed: { epoch, seq: 0 } } }));
    await waitFor(() => logger.messages('warn').some((m) => m.startsWith('recovery of "feed"')), 5_000, 'the recovery warning');
    const recovery = logger.entries.find((e) => e.message.startsWith('recovery of "feed"'))!;
    expect(recovery.fields).toMatchObject({ channel: 'feed', status: 'evicted' });
    expect(recovery.fields.missed).toBeGreaterThan(0);

    await broadcaster.close();
    expect(logger.messages('info').slice(-2)).toEqual(['shutting down: flushing batches and closing clients', 'closed after 151 messages in ' + broadcaster.stats().batches + ' batches']);
  });

  it("logs the adaptive controller's changes with the settings in force", async () => {
    const logger = new MemoryLogger();
    const { broadcaster, url } = await started(logger, { batchDelayMs: 40, targetLatencyMs: 1, adaptiveIntervalMs: 100 });
    const client = await RawClient.open(url, ['feed']);
    cleanups.push(() => client.close());
    const timer = setInterval(() => broadcaster.publish('feed', trade(0)), 5);
    cleanups.push(() => clearInterval(timer));
    await waitFor(() => logger.messages('info').some((m) => m.startsWith('adaptive: batching down')), 10_000, 'an adaptive line');
    const line = logger.entries.find((e) => e.message.startsWith('adaptive: batching down'))!;
    expect(line.fields).toMatchObject({ knob: 'batching', direction: 'down', batchDelayMs: 20, batchSize: 500 });
    expect(line.message).toMatch(/over the 1 ms target/);
  });

  it('a logger that throws changes nothing for clients', async () => {
    const throwing: Logger = { debug: () => {}, info: () => { throw new Error('info down'); }, warn: () => { throw new Error('warn down'); }, error: () => { throw new Error('error down'); } };
    const { broadcaster, url } = await started(throwing, { path: '/ws' });
    expect(await status(`${url}nowhere`)).toBe(404);
    const client = await RawClient.open(`${url}ws`, ['a']);
    cleanups.push(() => client.close());
    for (let i = 0; i < 10; i++) broadcaster.publish('a', i);
    await client.waitFor(() => client.messages.length === 10, 5_000, 'the messages');
    expect(client.messages.map((m) => m.data)).toEqual([...Array(10).keys()]);
  });
});
