import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { pack } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createBroadcaster, type Broadcaster } from '../src/index.js';
import { RawClient, startBroadcaster, trade, waitFor } from './helpers/harness.js';

let broadcaster: Broadcaster | undefined;
let httpServer: Server | undefined;
const clients: RawClient[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  await broadcaster?.close();
  broadcaster = undefined;
  httpServer?.close();
  httpServer = undefined;
});

async function start(options: Parameters<typeof startBroadcaster>[0] = {}) {
  const started = await startBroadcaster(options);
  broadcaster = started.broadcaster;
  return started;
}

async function open(url: string, channels: string[]) {
  const client = await RawClient.open(url, channels);
  clients.push(client);
  return client;
}

const seqs = (client: RawClient) => client.messages.map((m) => m.seq);
const range = (n: number) => [...Array(n).keys()];

describe('broadcast end to end (real ws, real Piscina workers)', () => {
  it('delivers every message in order with contiguous sequence numbers, closing batches by size then delay', async () => {
    const { url } = await start();
    const client = await open(url, ['trades']);
    for (let i = 0; i < 1200; i++) broadcaster!.publish('trades', trade(i));
    await client.waitFor(() => client.messages.length === 1200, 10_000, '1200 messages');
    expect(client.messages.map((m) => (m.data as { seq: number }).seq)).toEqual(range(1200));
    expect(seqs(client)).toEqual(range(1200));
    const batches = client.frames.filter((f) => f.kind === 'batch');
    expect(batches.map((b) => b.kind === 'batch' && b.messages.length)).toEqual([500, 500, 200]);
    expect(batches.every((b) => b.kind === 'batch' && b.compressed)).toBe(true);
    const stats = broadcaster!.stats();
    expect(stats).toMatchObject({ messagesPublished: 1200, batches: 3, framesSent: 3, connections: 1, subscribers: { trades: 1 } });
    expect(stats.compressionRatio).toBeGreaterThan(3);
    expect(stats.encodeMicros.samples).toBe(3);
  });

  it('reports rates, byte counts, pool figures and encode-time percentiles in stats()', async () => {
    const { url } = await start();
    const client = await open(url, ['s']);
    for (let i = 0; i < 1000; i++) broadcaster!.publish('s', trade(i));
    await client.waitFor(() => client.messages.length === 1000, 10_000, '1000 messages');
    // Rates are per whole second, sampled once a second.
    await waitFor(() => broadcaster!.stats().messagesPerSecond > 0 && broadcaster!.stats().pool.utilization > 0, 5_000, 'a rate sample');
    const stats = broadcaster!.stats();
    // 1000 messages in all; the once-a-second sample may come a millisecond early (1000 / 0.999 s rounds to 1001).
    expect(stats.messagesPerSecond).toBeLessThanOrEqual(1010);
    expect(stats.pool).toMatchObject({ threads: 1, queueSize: 0, inFlight: 0, faults: { error: 0, crash: 0, timeout: 0, inline: 0 } });
    expect(stats.pool.utilization).toBeLessThanOrEqual(1);
    expect(stats.batches).toBe(2);
    expect(stats.rawBytes).toBeGreaterThan(stats.wireBytes);
    expect(stats.compressionRatio).toBeCloseTo(stats.rawBytes / stats.wireBytes, 6);
    expect(stats.bytesSent).toBe(stats.wireBytes); // one subscriber: every frame once
    expect(stats.encodeMicros.samples).toBe(2);
    expect(stats.encodeMicros.p50).toBeGreaterThan(0);
    expect(stats.encodeMicros.max).toBeGreaterThanOrEqual(stats.encodeMicros.p50);
    expect(stats.messagesPending).toBe(0);
  });

  it.each(['json', 'msgpack'] as const)('carries the %s codec through the workers, small bodies uncompressed', async (codec) => {
    const { url } = await start({ codec, batchDelayMs: 5 });
    const client = await open(url, ['c']);
    broadcaster!.publish('c', { small: true });
    await client.waitFor(() => client.messages.length === 1);
    for (let i = 0; i < 300; i++) broadcaster!.publish('c', trade(i));
    await client.waitFor(() => client.messages.length === 301);
    const [small, big] = client.frames.filter((f) => f.kind === 'batch');
    expect(small).toMatchObject({ codec, compressed: false, messages: [{ small: true }] });
    expect(big).toMatchObject({ codec, compressed: true });
    expect(client.messages.slice(1).map((m) => m.data)).toEqual(range(300).map(trade));
  });

  it('splices pre-serialized JSON strings and msgpack bytes published with publishSerialized', async () => {
    const { url } = await start({ batchDelayMs: 5 });
    const client = await open(url, ['pre']);
    broadcaster!.publishSerialized('pre', JSON.stringify(trade(1)));
    broadcaster!.publish('pre', trade(2));
    broadcaster!.publishSerialized('pre', '{"already":"json"}');
    await client.waitFor(() => client.messages.length === 3);
    expect(client.messages.map((m) => m.data)).toEqual([trade(1), trade(2), { already: 'json' }]);
    await broadcaster!.close();

    const mp = await start({ codec: 'msgpack', batchDelayMs: 5 });
    const mpClient = await open(mp.url, ['pre']);
    for (let i = 0; i < 50; i++) broadcaster!.publishSerialized('pre', pack(trade(i)));
    await mpClient.waitFor(() => mpClient.messages.length === 50);
    expect(mpClient.messages.map((m) => m.data)).toEqual(range(50).map(trade));
  });

  it('rejects pre-serialized input of the wrong type for the codec at once', async () => {
    await start();
    expect(() => broadcaster!.publishSerialized('c', new Uint8Array(3))).toThrow(expect.objectContaining({ code: 'BATCHCAST_INVALID_MESSAGE' }));
  });

  it('routes many channels independently: each client gets exactly its channels, each in order', async () => {
    const { url } = await start({ batchSize: 20, batchDelayMs: 5 });
    const channels = range(40).map((i) => `ch.${i}`);
    const odd = await open(url, channels.filter((_c, i) => i % 2 === 1));
    const first = await open(url, ['ch.0']);
    for (let round = 0; round < 50; round++) for (const channel of channels) broadcaster!.publish(channel, { channel, round });
    await odd.waitFor(() => odd.messages.length === 20 * 50, 10_000, 'odd channels');
    await first.waitFor(() => first.messages.length === 50);
    for (const channel of channels.filter((_c, i) => i % 2 === 1)) {
      const mine = odd.messages.filter((m) => m.channel === channel);
      expect(mine.map((m) => (m.data as { round: number }).round)).toEqual(range(50));
      expect(mine.map((m) => m.seq)).toEqual(range(50));
    }
    expect(new Set(first.messages.map((m) => m.channel))).toEqual(new Set(['ch.0']));
  });

  it('subscribes and unsubscribes with control messages and from the server side', async () => {
    const { url } = await start({ batchDelayMs: 2 });
    const client = await open(url, []);
    client.ws.send(JSON.stringify({ op: 'subscribe', channels: ['a', 'b'] }));
    await client.waitFor(() => client.notices.some((n) => n.op === 'subscribed'));
    expect(client.notices[0]).toEqual({ op: 'subscribed', channels: ['a', 'b'], positions: { a: { epoch: expect.stringMatching(/^[A-Za-z0-9_-]{8}$/), seq: 0 }, b: { epoch: expect.any(String), seq: 0 } } });
    broadcaster!.publish('a', 1);
    broadcaster!.publish('b', 2);
    await client.waitFor(() => client.messages.length === 2);

    client.ws.send(JSON.stringify({ op: 'unsubscribe', channels: ['a'] }));
    await client.waitFor(() => client.notices.some((n) => n.op === 'unsubscribed'));
    const [connection] = broadcaster!.connections;
    expect(broadcaster!.unsubscribe(connection!, 'b')).toBe(true);
    expect(broadcaster!.subscribe(connection!, 'c')).toBe(true);
    broadcaster!.publish('a', 3);
    broadcaster!.publish('b', 4);
    broadcaster!.publish('c', 5);
    await client.waitFor(() => client.messages.length === 3);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(client.messages.map((m) => [m.channel, m.data])).toEqual([['a', 1], ['b', 2], ['c', 5]]);
    expect(broadcaster!.stats().subscribers).toEqual({ c: 1 });
  });

  it('delivers every batch, in order, to 1000 subscribers of one channel', async () => {
    const { url } = await start({ batchDelayMs: 5 });
    const many: RawClient[] = [];
    for (let i = 0; i < 1000; i += 100) {
      many.push(...(await Promise.all(range(100).map(() => open(url, ['wide'])))));
    }
    expect(broadcaster!.stats().subscribers).toEqual({ wide: 1000 });
    for (let i = 0; i < 2000; i++) broadcaster!.publish('wide', { i });
    await waitFor(() => many.every((c) => c.messages.length === 2000), 20_000, 'all 1000 clients');
    const expected = range(2000);
    for (const client of many) {
      expect(seqs(client)).toEqual(expected);
      expect(client.frames.filter((f) => f.kind === 'batch').length).toBe(4);
    }
    expect(broadcaster!.stats().framesSent).toBe(4000);
    expect(broadcaster!.stats().sendErrors).toBe(0);
  });

  it('restores per-channel order when a later batch finishes first on another worker', async () => {
    const workerFilename = fileURLToPath(new URL('./helpers/delaying-worker.mjs', import.meta.url));
    const { url } = await start({ poolSize: 2, batchSize: 10, batchDelayMs: 1000, workerFilename });
    const client = await open(url, ['ordered']);
    // Batch 0 is held 300 ms in its worker; batches 1 and 2 finish on the other worker first.
    broadcaster!.publish('ordered', { delayMs: 300, n: 0 });
    for (let n = 1; n < 30; n++) broadcaster!.publish('ordered', { n });
    await client.waitFor(() => client.messages.length === 30, 10_000, '30 messages');
    expect(client.messages.map((m) => (m.data as { n: number }).n)).toEqual(range(30));
    expect(seqs(client)).toEqual(range(30));
    expect(broadcaster!.stats().reorderedBatches).toBeGreaterThanOrEqual(1);
  });

  it('attaches to an existing http.Server and honours the path', async () => {
    httpServer = createServer((_req, res) => res.end('app'));
    broadcaster = createBroadcaster({ server: httpServer, path: '/live', poolSize: 1, env: {}, batchDelayMs: 2 });
    httpServer.listen(0, '127.0.0.1');
    await once(httpServer, 'listening');
    const { port } = httpServer.address() as AddressInfo;
    const wrong = new WebSocket(`ws://127.0.0.1:${port}/elsewhere`);
    const [, response] = (await once(wrong, 'unexpected-response')) as [unknown, { statusCode: number }];
    expect(response.statusCode).toBe(404);
    const client = await open(`ws://127.0.0.1:${port}/live`, ['x']);
    broadcaster.publish('x', 'hello');
    await client.waitFor(() => client.messages.length === 1);
    expect(client.messages[0]).toEqual({ channel: 'x', seq: 0, data: 'hello' });
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('app');
  });

  it('works in noServer mode through handleUpgrade', async () => {
    broadcaster = createBroadcaster({ noServer: true, poolSize: 1, env: {}, batchDelayMs: 2 });
    const b = broadcaster;
    httpServer = createServer();
    httpServer.on('upgrade', (req, socket, head) => b.handleUpgrade(req, socket, head));
    httpServer.listen(0, '127.0.0.1');
    await once(httpServer, 'listening');
    const { port } = httpServer.address() as AddressInfo;
    const client = await open(`ws://127.0.0.1:${port}/any`, ['y']);
    b.publish('y', [1, 2, 3]);
    await client.waitFor(() => client.messages.length === 1);
    expect(client.messages[0]!.data).toEqual([1, 2, 3]);
  });

  it('counts a socket that fails mid-stream as a send error and keeps serving the others', async () => {
    const { url } = await start({ batchSize: 10, batchDelayMs: 2 });
    const healthy = await open(url, ['f']);
    const doomed = await open(url, ['f']);
    const errors: Error[] = [];
    broadcaster!.on('sendError', ({ error }) => errors.push(error));
    const ids = [...broadcaster!.connections].map((c) => c.id);
    const victim = [...broadcaster!.connections].find((c) => c.id === Math.max(...ids))!;
    for (let i = 0; i < 100; i++) broadcaster!.publish('f', i);
    await doomed.waitFor(() => doomed.messages.length >= 10);
    // The peer resets the connection while batches keep coming.
    victim.socket.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    for (let i = 100; i < 200; i++) broadcaster!.publish('f', i);
    await healthy.waitFor(() => healthy.messages.length === 200);
    expect(healthy.messages.map((m) => m.data)).toEqual(range(200));
    expect(broadcaster!.stats().sendErrors).toBe(1);
    expect(errors.map((e) => e.message)).toEqual(['read ECONNRESET']);
    await waitFor(() => broadcaster!.stats().connections === 1, 5_000, 'the failed connection to be removed');
  });
});
