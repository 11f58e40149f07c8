/**
 * User code inside the pipeline: event listeners and hooks that throw or reject.
 * Whatever they do, the channel goes on (every later batch is delivered, in order),
 * the failure is reported (`callbackError`, `stats().callbackErrors`) and nothing
 * surfaces as an unhandled rejection or exception.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CallbackError } from '../../src/index.js';
import { trade, waitFor } from '../helpers/harness.js';
import { firstBreak, fixture, rawUpgrade, Resources, sleep, tempDir, upgradeStatus } from '../reliability/support.js';

const resources = new Resources();
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);
beforeEach(() => {
  unhandled.length = 0;
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
});
afterEach(async () => {
  process.off('unhandledRejection', onUnhandled);
  process.off('uncaughtException', onUnhandled);
  await resources.cleanup();
});

function circular(): unknown {
  const value: Record<string, unknown> = { bad: true };
  value.self = value;
  return value;
}

describe('event listeners that throw', () => {
  it('a throwing messageError listener does not silence its channel', async () => {
    const { broadcaster, url } = await resources.start({ batchSize: 10, batchDelayMs: 5 });
    const reported: CallbackError[] = [];
    broadcaster.on('messageError', () => {
      throw new Error('listener bug');
    });
    broadcaster.on('callbackError', (error) => reported.push(error));
    const client = await resources.client(url, ['feed']);

    for (let i = 0; i < 10; i++) broadcaster.publish('feed', i === 3 ? circular() : { seq: i });
    for (let round = 0; round < 5; round++) {
      await sleep(10);
      for (let i = 0; i < 10; i++) broadcaster.publish('feed', { seq: 10 + round * 10 + i });
    }
    await client.waitFor(() => client.messages.length === 59, 10_000, 'all 59 good messages');
    expect(firstBreak(client.messages.map((m) => m.seq))).toBeNull();
    expect(client.messages.map((m) => (m.data as { seq: number }).seq)).toEqual([...Array(60).keys()].filter((i) => i !== 3));
    await waitFor(() => reported.length === 1, 2_000, 'the callbackError');
    expect(reported[0]).toMatchObject({ code: 'BATCHCAST_CALLBACK_FAILED', callback: 'messageError listener' });
    expect((reported[0]!.cause as Error).message).toBe('listener bug');
    expect(broadcaster.stats().callbackErrors).toBe(1);
    expect(broadcaster.stats().messagesRejected).toBe(1);
    expect(unhandled).toEqual([]);
  });

  it('every event may throw or reject at once: connection, disconnect, fault, slowClient, messageError, callbackError', async () => {
    const { dir, cleanup } = tempDir();
    resources.cleanups.push(cleanup);
    const { broadcaster, url } = await resources.start({
      workerFilename: fixture('fault-worker.mjs'), batchSize: 50, batchDelayMs: 5, compressionLevel: 0, maxBufferedBytes: 1024,
    });
    const seen = new Map<string, number>();
    for (const event of ['connection', 'disconnect', 'fault', 'slowClient', 'messageError', 'sendError', 'encodeError', 'callbackError'] as const) {
      broadcaster.on(event, () => {
        seen.set(event, (seen.get(event) ?? 0) + 1);
        throw new Error(`${event} listener bug`);
      });
      // A second listener, async and rejecting: still called after the first one threw.
      broadcaster.on(event, async () => {
        seen.set(`${event} (async)`, (seen.get(`${event} (async)`) ?? 0) + 1);
        throw new Error(`${event} async listener bug`);
      });
    }
    const client = await resources.client(url, ['feed']);
    const slow = await rawUpgrade(broadcaster.address()!.port, '/?channels=feed');
    slow.pause(); // never reads: goes over maxBufferedBytes
    const pad = 'x'.repeat(4000);
    let published = 0;
    // Until the paused client has gone over maxBufferedBytes (a loaded machine may need more rounds), at least 60.
    for (let round = 0; round < 60 || (!seen.has('slowClient') && round < 400); round++) {
      for (let i = 0; i < 50; i++) {
        const seq = published++;
        if (seq === 130) broadcaster.publish('feed', { fault: 'throw', times: 1, counter: join(dir, 'attempts'), seq, pad });
        else if (seq === 260) broadcaster.publish('feed', circular());
        else broadcaster.publish('feed', { seq, pad });
      }
      await sleep(5);
    }
    slow.destroy();
    await client.waitFor(() => client.messages.length === published - 1, 15_000, `${published - 1} messages`);
    expect(firstBreak(client.messages.map((m) => m.seq))).toBeNull();
    client.close();
    await waitFor(() => broadcaster.stats().connections === 0, 5_000, 'both disconnects');
    await sleep(20);

    for (const event of ['connection', 'disconnect', 'fault', 'slowClient', 'messageError']) {
      expect(seen.get(event), event).toBeGreaterThan(0);
      expect(seen.get(`${event} (async)`), `${event} (async)`).toBe(seen.get(event));
    }
    const stats = broadcaster.stats();
    // Every listener failure but the callbackError listeners' own is reported through callbackError, and all are counted.
    const failures = [...seen.values()].reduce((a, b) => a + b, 0);
    expect(stats.callbackErrors).toBe(failures);
    expect(stats.pool.faults.error).toBe(1);
    expect(stats.subscriptions).toBe(0);
    expect(unhandled).toEqual([]);
  });
});

describe('hooks that throw or reject', () => {
  it('authorize: a throw or a rejection refuses with 401 and is reported', async () => {
    let calls = 0;
    const { broadcaster, url } = await resources.start({
      authorize: (request) => {
        calls++;
        if (request.url?.includes('throw')) throw new Error('authorize bug');
        if (request.url?.includes('reject')) return Promise.reject(new Error('token service down'));
        return true;
      },
    });
    const reported: CallbackError[] = [];
    broadcaster.on('callbackError', (error) => reported.push(error));
    expect((await upgradeStatus(`${url}?throw`)).status).toBe(401);
    expect((await upgradeStatus(`${url}?reject`)).status).toBe(401);
    const ok = await upgradeStatus(url);
    expect(ok.status).toBe(101);
    ok.ws.terminate();
    expect(calls).toBe(3);
    expect(reported.map((e) => [e.callback, (e.cause as Error).message])).toEqual([['authorize', 'authorize bug'], ['authorize', 'token service down']]);
    expect(unhandled).toEqual([]);
  });

  it('canSubscribe: a throw or a rejection refuses the channel, reported; other channels and later messages go on', async () => {
    const { broadcaster, url } = await resources.start({
      canSubscribe: (_connection, channel) => {
        if (channel === 'boom') throw new Error('canSubscribe bug');
        if (channel === 'later') return Promise.reject(new Error('acl lookup failed'));
        return channel.startsWith('slow') ? sleep(30).then(() => true) : true;
      },
    });
    const reported: CallbackError[] = [];
    broadcaster.on('callbackError', (error) => reported.push(error));
    const client = await resources.client(url);
    client.ws.send(JSON.stringify({ op: 'subscribe', channels: ['boom', 'ok', 'later', 'slow-a'] }));
    client.ws.send(JSON.stringify({ op: 'subscribe', channels: ['after'] }));
    await client.waitFor(() => client.notices.filter((n) => n.op === 'subscribed').length === 2, 5_000, 'two subscribed notices');
    const forbidden = client.notices.filter((n) => n.code === 'BATCHCAST_FORBIDDEN').map((n) => n.channel);
    expect(forbidden).toEqual(['boom', 'later']);
    expect(client.notices.filter((n) => n.op === 'subscribed').map((n) => n.channels)).toEqual([['ok', 'slow-a'], ['after']]);
    expect(reported.map((e) => e.callback)).toEqual(['canSubscribe', 'canSubscribe']);
    broadcaster.publish('after', trade(1));
    await client.waitFor(() => client.messages.length === 1, 5_000, 'a message on "after"');
    expect(unhandled).toEqual([]);
  });
});
