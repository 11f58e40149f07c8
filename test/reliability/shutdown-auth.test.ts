/**
 * Connection lifecycle: graceful shutdown delivers everything before 1001;
 * heartbeats reap clients that stop answering; upgrades and subscriptions pass
 * through authorize, allowedOrigins and canSubscribe.
 */
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { Connection } from '../../src/server/connection.js';
import { trade, type RawClient } from '../helpers/harness.js';
import { closed, fixture, Resources, sleep, upgradeStatus } from './support.js';

const resources = new Resources();
afterEach(() => resources.cleanup());

describe('graceful shutdown', () => {
  it('flushes open batches, waits for in-flight encodes, and every client has all N messages before its 1001', async () => {
    // Batches on slow-150/* hold the worker for 150 ms: close() finds encodes in flight and batches open.
    const { broadcaster, url } = await resources.start({
      workerFilename: fixture('slow-worker.mjs'), batchSize: 100, batchDelayMs: 10_000, closeTimeoutMs: 20_000,
    });
    const channels = ['slow-150/a', 'b', 'c', 'slow-150/d'];
    const counts = { 'slow-150/a': 1050, b: 333, c: 7, 'slow-150/d': 250 } as Record<string, number>;
    const clients: RawClient[] = [];
    for (let i = 0; i < 3; i++) clients.push(await resources.client(url, channels));
    const atClose = clients.map((client) => closed(client.ws).then(({ code }) => ({ code, messages: [...client.messages] })));

    for (const channel of channels) {
      for (let i = 0; i < counts[channel]!; i++) {
        if (channel === 'c') broadcaster.publishSerialized(channel, JSON.stringify({ seq: i }));
        else broadcaster.publish(channel, trade(i));
      }
    }
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const stats = broadcaster.stats();
    expect(stats.messagesPending).toBeGreaterThan(0); // some batches still open
    expect(stats.pool.inFlight).toBeGreaterThan(0); // some encodes in flight

    const closing = broadcaster.close();
    // From the moment close() is called, publishing is refused.
    for (const attempt of [() => broadcaster.publish('b', { late: true }), () => broadcaster.publishSerialized('b', '{}')]) {
      expect(attempt).toThrowError(expect.objectContaining({ code: 'BATCHCAST_CLOSED', name: 'ClosedError' }));
    }
    await closing;

    for (const { code, messages } of await Promise.all(atClose)) {
      expect(code).toBe(1001);
      expect(messages).toHaveLength(total);
      for (const channel of channels) {
        const mine = messages.filter((m) => m.channel === channel);
        expect(mine.map((m) => m.seq)).toEqual([...Array(counts[channel]).keys()]);
        expect(mine.map((m) => (m.data as { seq: number }).seq)).toEqual([...Array(counts[channel]).keys()]);
      }
    }
    expect(broadcaster.stats().connections).toBe(0);
    expect(broadcaster.stats().messagesDropped).toBe(0);
    expect(() => broadcaster.publish('b', 1)).toThrowError(expect.objectContaining({ code: 'BATCHCAST_CLOSED' }));
    await broadcaster.close(); // idempotent
  });

  it('does not sit out closeTimeoutMs when the last writes flush without a drain event', async () => {
    // A client that is not reading: fill the kernel buffers, then leave a few KB queued in
    // Node (below the socket's high-water mark, so write() never returned false and no
    // 'drain' event will come). It starts reading again as close() begins.
    const { broadcaster, url } = await resources.start({ batchSize: 10, compressionLevel: 0, closeTimeoutMs: 20_000 });
    const accepted = once(broadcaster, 'connection') as Promise<[Connection]>;
    const client = await resources.client(url, ['feed']);
    const [connection] = await accepted;
    client.ws.pause();
    const pad = 'p'.repeat(700); // ten messages: a frame of ~8 KB, half the high-water mark
    let sent = 0;
    while (connection.bufferedBytes === 0) {
      for (let i = 0; i < 10; i++) broadcaster.publish('feed', { ...trade(sent++), pad });
      while (broadcaster.stats().pool.inFlight > 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(connection.bufferedBytes).toBeGreaterThan(0);
    expect(connection.socket.writableNeedDrain).toBe(false);
    const atClose = closed(client.ws).then(({ code }) => ({ code, received: client.messages.length }));
    const started = Date.now();
    const closing = broadcaster.close();
    client.ws.resume();
    await closing;
    expect(Date.now() - started).toBeLessThan(10_000); // half of closeTimeoutMs: it did not wait for the deadline
    expect(await atClose).toEqual({ code: 1001, received: sent });
  });

  it('bounds the wait for a client that never reads by closeTimeoutMs, and still serves the others', async () => {
    const { broadcaster, url } = await resources.start({ batchSize: 200, compressionLevel: 0, closeTimeoutMs: 3_000 });
    const good = await resources.client(url, ['feed']);
    const stuck = await resources.client(url, ['feed']);
    stuck.ws.pause();
    const pad = 'p'.repeat(1000);
    for (let i = 0; i < 10_000; i++) broadcaster.publish('feed', { seq: i, pad }); // ~10 MB: more than the kernel buffers
    const closingAt = Date.now();
    const atClose = closed(good.ws).then(({ code }) => ({ code, received: good.messages.length, early: Date.now() - closingAt < 2_000 }));
    const stuckClosed = closed(stuck.ws);
    await broadcaster.close();
    // The reading client is closed once its own socket has flushed, not when the stuck one's deadline runs out.
    expect(await atClose).toEqual({ code: 1001, received: 10_000, early: true });
    expect(broadcaster.stats().connections).toBe(0);
    // The stuck client was cut off at the deadline: what the kernel held reaches it, the rest was let go.
    stuck.ws.resume();
    expect([1001, 1006]).toContain((await stuckClosed).code);
    expect(stuck.messages.length).toBeLessThan(10_000);
  });
});

describe('heartbeats', () => {
  it('terminates a client that stops answering pings and keeps the ones that answer', async () => {
    const { broadcaster, url } = await resources.start({ heartbeatIntervalMs: 250 });
    const answering = await resources.client(url, ['feed']);
    let pings = 0;
    answering.ws.on('ping', () => pings++);
    const silent = resources.track(new WebSocket(`${url}?channels=feed`, { autoPong: false }));
    await once(silent, 'open');
    const gone = closed(silent);
    await answering.waitFor(() => broadcaster.stats().subscribers.feed === 2, 5_000, 'both subscribed');

    expect((await gone).code).toBe(1006); // terminated, no closing handshake
    await answering.waitFor(() => broadcaster.stats().connections === 1, 5_000, 'the silent client to be removed');
    expect(broadcaster.stats().heartbeatTerminated).toBe(1);
    expect(broadcaster.stats().subscribers).toEqual({ feed: 1 });
    // The answering client lives on through more beats.
    const seen = pings;
    await answering.waitFor(() => pings >= seen + 3, 5_000, 'three more pings');
    expect(broadcaster.stats().heartbeatTerminated).toBe(1);
    broadcaster.publish('feed', { still: 'here' });
    await answering.waitFor(() => answering.messages.length === 1, 5_000, 'delivery');
  });
});

describe('access control', () => {
  const token = (request: IncomingMessage) => new URL(request.url ?? '/', 'http://localhost').searchParams.get('token');

  it('authorize: false → 401, 403 → 403, throwing → 401, identity object → accepted and seen by canSubscribe', async () => {
    const seen: unknown[] = [];
    const { broadcaster, url } = await resources.start({
      authorize: async (request) => {
        const t = token(request);
        if (t === 'alice') return { user: 'alice', channels: ['public', 'alice.private'] };
        if (t === 'banned') return 403;
        if (t === 'broken') throw new Error('auth backend down');
        if (t === 'yes') return true;
        return false;
      },
      canSubscribe: (connection, channel) => {
        seen.push(connection.identity);
        if (channel === 'explodes') throw new Error('policy bug');
        const identity = connection.identity as { channels?: string[] } | undefined;
        return identity?.channels?.includes(channel) ?? channel === 'public';
      },
    });
    expect((await upgradeStatus(`${url}?token=nobody`)).status).toBe(401);
    expect((await upgradeStatus(url)).status).toBe(401);
    expect((await upgradeStatus(`${url}?token=banned`)).status).toBe(403);
    expect((await upgradeStatus(`${url}?token=broken`)).status).toBe(401);
    expect(broadcaster.stats().upgradesRejected).toBe(4);
    expect(broadcaster.stats().connectionsTotal).toBe(0);

    const alice = await resources.client(`${url}?token=alice&channels=public,alice.private,bob.private`);
    await alice.waitFor(() => alice.notices.length === 2, 5_000, 'two notices');
    expect(alice.notices).toMatchObject([
      { op: 'error', code: 'BATCHCAST_FORBIDDEN', channel: 'bob.private', message: expect.any(String) },
      { op: 'subscribed', channels: ['public', 'alice.private'] },
    ]);
    expect(seen[0]).toEqual({ user: 'alice', channels: ['public', 'alice.private'] });
    const anyone = await resources.client(`${url}?token=yes`);
    anyone.ws.send(JSON.stringify({ op: 'subscribe', channels: ['public', 'alice.private', 'explodes'] }));
    await anyone.waitFor(() => anyone.notices.length === 3, 5_000, 'three notices');
    expect(anyone.notices.map((n) => [n.op, n.code ?? n.channels, n.channel])).toEqual([
      ['error', 'BATCHCAST_FORBIDDEN', 'alice.private'],
      ['error', 'BATCHCAST_FORBIDDEN', 'explodes'],
      ['subscribed', ['public'], undefined],
    ]);
    expect(seen.at(-1)).toBeUndefined(); // `true` carries no identity

    // Refused channels deliver nothing.
    for (const channel of ['public', 'alice.private', 'bob.private', 'explodes']) broadcaster.publish(channel, { channel });
    broadcaster.flush();
    await alice.waitFor(() => alice.messages.length === 2 && anyone.messages.length === 1, 5_000, 'deliveries');
    await sleep(50);
    expect(alice.messages.map((m) => m.channel).sort()).toEqual(['alice.private', 'public']);
    expect(anyone.messages.map((m) => m.channel)).toEqual(['public']);
    expect(broadcaster.stats().subscribers).toEqual({ public: 2, 'alice.private': 1 });
  });

  it('canSubscribe may be async: decisions apply in the order the client sent its control messages', async () => {
    const { broadcaster, url } = await resources.start({
      canSubscribe: async (_connection, channel) => {
        await sleep(channel === 'slow' ? 150 : 10);
        if (channel === 'rejects') throw new Error('policy service down');
        return channel !== 'deny';
      },
    });
    const client = await resources.client(url);
    client.ws.send(JSON.stringify({ op: 'subscribe', channels: ['slow', 'deny', 'rejects', 'fast'] }));
    client.ws.send(JSON.stringify({ op: 'unsubscribe', channels: ['slow'] })); // must not overtake the subscribe
    await client.waitFor(() => client.notices.length === 4, 5_000, 'four notices');
    expect(client.notices.map((n) => [n.op, n.code ?? n.channels, n.channel])).toEqual([
      ['error', 'BATCHCAST_FORBIDDEN', 'deny'],
      ['error', 'BATCHCAST_FORBIDDEN', 'rejects'],
      ['subscribed', ['slow', 'fast'], undefined],
      ['unsubscribed', ['slow'], undefined],
    ]);
    expect(broadcaster.stats().subscribers).toEqual({ fast: 1 });
  });

  it('allowedOrigins: listed origin → accepted, other or missing origin → 403', async () => {
    const { broadcaster, url } = await resources.start({ allowedOrigins: ['https://app.example'] });
    const ok = await upgradeStatus(url, { origin: 'https://app.example' });
    expect(ok.status).toBe(101);
    resources.track(ok.ws);
    expect((await upgradeStatus(url, { origin: 'https://evil.example' })).status).toBe(403);
    expect((await upgradeStatus(url, { origin: 'https://app.example.evil.example' })).status).toBe(403);
    expect((await upgradeStatus(url)).status).toBe(403);
    expect(broadcaster.stats().upgradesRejected).toBe(3);
    expect(broadcaster.stats().connections).toBe(1);
  });
});
