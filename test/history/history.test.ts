/**
 * History itself: the bounds (messages, bytes, age, total), reading it back
 * (`history()`, `GET /history/:channel`), and bad recovery input from clients.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createBroadcaster, type Broadcaster } from '../../src/index.js';
import { createHttpApi } from '../../src/server/http-api.js';
import { waitForAsync } from '../helpers/harness.js';
import { Resources } from '../reliability/support.js';

const resources = new Resources();
const servers: Server[] = [];
afterEach(async () => {
  await resources.cleanup();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

async function published(broadcaster: Broadcaster, channel: string, total: number): Promise<void> {
  broadcaster.flush();
  await waitForAsync(async () => (await broadcaster.history(channel, { limit: 1 })).nextSeq === total, 5_000, `${total} messages released on ${channel}`);
}

describe('history bounds', () => {
  it('keeps at most historyMessages per channel, oldest batches out first', async () => {
    const { broadcaster } = await resources.start({ batchSize: 10, batchDelayMs: 5, historyMessages: 35, maxQueue: 1000 });
    for (let n = 0; n < 100; n++) broadcaster.publish('m', { n });
    await published(broadcaster, 'm', 100);
    const page = await broadcaster.history('m');
    // Whole batches of 10: 35 allows three (70..99).
    expect(page).toMatchObject({ channel: 'm', nextSeq: 100, earliestSeq: 70, complete: true, more: false });
    expect(page.messages.map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, i) => 70 + i));
    expect(page.messages.map((m) => (m.data as { n: number }).n)).toEqual(page.messages.map((m) => m.seq));
    expect(broadcaster.stats().history).toMatchObject({ enabled: true, frames: 3, messages: 30, evictedFrames: 7, evictedMessages: 70 });
  });

  it('keeps at most historyBytes per channel and historyTotalBytes over all channels', async () => {
    // Frames of ~940 bytes, counted with 256 bytes of overhead each: 5 fit per channel, 12 in all.
    const { broadcaster } = await resources.start({ batchSize: 1, batchDelayMs: 5, compressionLevel: 0, historyBytes: 6_100, historyTotalBytes: 14_500, maxQueue: 1000 });
    const pad = 'x'.repeat(900); // ~950-byte frames
    for (let n = 0; n < 20; n++) broadcaster.publish('a', { n, pad });
    await published(broadcaster, 'a', 20);
    expect(broadcaster.stats().history.bytes).toBeLessThanOrEqual(6_100);
    expect((await broadcaster.history('a')).messages.length).toBe(5);
    for (let n = 0; n < 20; n++) broadcaster.publish('b', { n, pad });
    for (let n = 0; n < 20; n++) broadcaster.publish('c', { n, pad });
    await published(broadcaster, 'b', 20);
    await published(broadcaster, 'c', 20);
    const stats = broadcaster.stats().history;
    expect(stats.bytes).toBeLessThanOrEqual(14_500);
    expect(stats.frames).toBe(12);
    // The oldest over all channels went first: 'a' (published first) lost the most.
    const held = await Promise.all(['a', 'b', 'c'].map(async (channel) => (await broadcaster.history(channel)).messages.length));
    expect(held[0]).toBeLessThan(held[2]!);
    expect(held[2]).toBe(5);
  });

  it('evicts frames older than historyTtlMs, on quiet channels too', async () => {
    const { broadcaster } = await resources.start({ batchSize: 5, batchDelayMs: 5, historyTtlMs: 200 });
    for (let n = 0; n < 10; n++) broadcaster.publish('t', { n });
    await published(broadcaster, 't', 10);
    expect((await broadcaster.history('t')).messages).toHaveLength(10);
    await waitForAsync(async () => (await broadcaster.history('t')).messages.length === 0, 5_000, 'the frames to age out');
    expect(await broadcaster.history('t')).toMatchObject({ nextSeq: 10, earliestSeq: 10, messages: [] });
  });

  it('is off when a bound is 0: nothing kept, recovery always evicted', async () => {
    const { broadcaster } = await resources.start({ batchDelayMs: 5, historyMessages: 0 });
    for (let n = 0; n < 10; n++) broadcaster.publish('off', { n });
    await published(broadcaster, 'off', 10);
    expect(broadcaster.stats().history).toMatchObject({ enabled: false, frames: 0 });
    expect(await broadcaster.history('off')).toMatchObject({ nextSeq: 10, earliestSeq: 10, complete: true, messages: [] });
    expect((await broadcaster.history('off', { since: 3 })).complete).toBe(false);
  });
});

describe('reading history', () => {
  it('history(channel, { since, limit }) pages through whole batches, from any seq', async () => {
    const { broadcaster } = await resources.start({ batchSize: 7, batchDelayMs: 5, codec: 'msgpack' });
    for (let n = 0; n < 50; n++) broadcaster.publish('p', { n });
    await published(broadcaster, 'p', 50);
    const first = await broadcaster.history('p', { since: 10, limit: 15 });
    expect(first.messages.map((m) => m.seq)).toEqual(Array.from({ length: 15 }, (_, i) => 10 + i));
    expect(first.more).toBe(true);
    const rest = await broadcaster.history('p', { since: 25, limit: 1000 });
    expect(rest.messages.map((m) => m.seq)).toEqual(Array.from({ length: 25 }, (_, i) => 25 + i));
    expect(rest.more).toBe(false);
    expect(await broadcaster.history('unknown')).toMatchObject({ nextSeq: 0, earliestSeq: 0, messages: [], epoch: first.epoch });
    await expect(broadcaster.history('p', { limit: 0 })).rejects.toMatchObject({ code: 'BATCHCAST_INVALID_CONFIG' });
    await expect(broadcaster.history('p', { since: -1 })).rejects.toMatchObject({ code: 'BATCHCAST_INVALID_CONFIG' });
    await expect(broadcaster.history('bad name')).rejects.toMatchObject({ code: 'BATCHCAST_INVALID_CHANNEL' });
  });

  it('GET /history/:channel answers JSON pages, behind the publish access rule', async () => {
    const server = createServer();
    servers.push(server);
    const broadcaster = createBroadcaster({ server, env: {}, poolSize: 1, heartbeatIntervalMs: 0, batchDelayMs: 5 });
    resources.broadcasters.push(broadcaster);
    server.on('request', createHttpApi(broadcaster, { publishToken: 'secret', maxBodyBytes: 1 << 20 }));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (let n = 0; n < 30; n++) broadcaster.publish('h', { n });
    await published(broadcaster, 'h', 30);
    const auth = { authorization: 'Bearer secret' };
    expect((await fetch(`${base}/history/h`)).status).toBe(401);
    const page = await (await fetch(`${base}/history/h?since=20&limit=5`, { headers: auth })).json() as { messages: { seq: number; data: { n: number } }[]; more: boolean; nextSeq: number; epoch: string };
    expect(page.messages).toEqual([20, 21, 22, 23, 24].map((seq) => ({ seq, data: { n: seq } })));
    expect(page).toMatchObject({ more: true, nextSeq: 30, epoch: (await broadcaster.history('h')).epoch });
    const bad = await fetch(`${base}/history/h?limit=abc`, { headers: auth });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'BATCHCAST_INVALID_CONFIG' });
    expect((await fetch(`${base}/history/bad%20name`, { headers: auth })).status).toBe(400);
    expect((await fetch(`${base}/history/h`, { method: 'POST', headers: auth })).status).toBe(405);
  });
});

describe('bad recovery input from clients', () => {
  it('answers each bad position with a clear error notice; the rest of the message, the connection and others are unaffected', async () => {
    const { broadcaster, url } = await resources.start({ batchDelayMs: 5, canSubscribe: (_c, channel) => channel !== 'secret' });
    for (let n = 0; n < 20; n++) {
      broadcaster.publish('ok', { n });
      broadcaster.publish('secret', { n });
    }
    await published(broadcaster, 'secret', 20);
    const epoch = (await broadcaster.history('ok')).epoch;
    const other = await resources.client(url, ['ok']);
    const client = await resources.client(url);
    client.ws.send(JSON.stringify({
      op: 'subscribe',
      channels: ['ok', 'secret', 'ahead', 'epoch-bad', 'seq-bad', 'huge'],
      since: {
        ok: { epoch, seq: 5 },
        secret: { epoch, seq: 0 },
        ahead: { epoch, seq: 10 },
        'epoch-bad': { epoch: '$'.repeat(100), seq: 0 },
        'seq-bad': { epoch, seq: -1 },
        huge: { epoch, seq: 2 ** 60 },
        stray: { epoch, seq: 0 },
      },
    }));
    client.ws.send(JSON.stringify({ op: 'subscribe', channels: ['x'], since: 'everything' }));
    await client.waitFor(() => client.notices.some((n) => n.op === 'subscribed') && client.messages.length === 20, 5_000, 'the subscription and the replay');
    const errors = client.notices.filter((n) => n.op === 'error').map((n) => [n.code, n.channel ?? null]);
    expect(errors).toEqual([
      ['BATCHCAST_INVALID_POSITION', 'epoch-bad'],
      ['BATCHCAST_INVALID_POSITION', 'seq-bad'],
      ['BATCHCAST_INVALID_POSITION', 'huge'],
      ['BATCHCAST_INVALID_POSITION', null], // "stray" is not in channels
      ['BATCHCAST_FORBIDDEN', 'secret'],
      ['BATCHCAST_INVALID_POSITION', 'ahead'],
      ['BATCHCAST_BAD_CONTROL', null],
    ]);
    for (const notice of client.notices.filter((n) => n.op === 'error')) expect(notice.message).toEqual(expect.any(String));
    expect(client.notices.find((n) => n.op === 'recovery')).toMatchObject({ channel: 'ok', status: 'ok', since: 5, from: 5, to: 20 });
    expect(client.notices.find((n) => n.op === 'subscribed')).toMatchObject({ channels: ['ok'] });
    // Frames are whole batches: the one batch of 'ok' (0..19) comes back whole; nothing of 'secret'.
    expect(client.messages.map((m) => [m.channel, m.seq])).toEqual(Array.from({ length: 20 }, (_, i) => ['ok', i]));
    expect(client.ws.readyState).toBe(client.ws.OPEN);
    broadcaster.publish('ok', { n: 20 });
    await client.waitFor(() => client.messages.length === 21, 5_000, 'the live message');
    await other.waitFor(() => other.messages.length === 1, 5_000, 'the other client');
    expect(broadcaster.stats().subscribers).toEqual({ ok: 2 });
  });
});
