/**
 * Chaos: a broadcaster (its own process) under load while, all at once, clients reset
 * mid-upgrade under an async authorize, non-reading and silent sockets pile up,
 * fuzzed frames arrive, every event listener throws or rejects at random, hooks
 * throw, and the worker faults. A healthy client must receive every message in
 * order, the process must stay up, and once the hostile clients are gone the
 * internal counts must return to their baseline (asserted on counts, not timing).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { connect as connectClient, type ClientMessage } from '../../src/client/index.js';
import { rawFrame, randomChannel, wsMessage } from '../helpers/client-fuzz.js';
import { waitFor } from '../helpers/harness.js';
import { fuzzSeed, prng, type Rng } from '../helpers/prng.js';
import { fixture, sleep, tempDir } from '../reliability/support.js';
import { FixtureProcess } from './child.js';

const SEED = fuzzSeed();
const CHAOS_MS = 4_000;
const MAX_PAYLOAD = 4096;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

interface Counts {
  connections: number;
  subscriptions: number;
  channels: number;
  upgradesPending: number;
  controlPending: number;
  messagesPending: number;
  pool: { inFlight: number; queueSize: number; faults: { error: number; crash: number; timeout: number; inline: number } };
  callbackErrors: number;
  upgradesAborted: number;
  slowClientsClosed: number;
  batchesSkipped: number;
  heartbeatTerminated: number;
  messagesRejected: number;
}

const baselineOf = (s: Counts) => ({
  connections: s.connections, subscriptions: s.subscriptions, channels: s.channels, upgradesPending: s.upgradesPending,
  controlPending: s.controlPending, messagesPending: s.messagesPending, poolInFlight: s.pool.inFlight, poolQueue: s.pool.queueSize,
});

/** Opens a TCP connection that may be destroyed by the test later. */
async function tcp(port: number, live: Set<Socket>): Promise<Socket | null> {
  const socket = connect(port, '127.0.0.1');
  live.add(socket);
  socket.on('error', () => {});
  socket.once('close', () => live.delete(socket));
  await Promise.race([once(socket, 'connect'), once(socket, 'close')]);
  return socket.destroyed ? null : socket;
}

function upgradeRequest(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
}

describe('chaos', () => {
  it(`a healthy client gets everything in order and the counts return to baseline (seed ${SEED})`, async () => {
    const rng: Rng = prng(SEED);
    const { dir, cleanup } = tempDir();
    cleanups.push(cleanup);
    const server = new FixtureProcess(fixture('chaos-server.mjs'), [dir]);
    cleanups.push(() => server.kill());
    const { port } = await server.json<{ port: number }>('port');
    const url = `ws://127.0.0.1:${port}/`;

    const messages: ClientMessage[] = [];
    const healthy = connectClient(`${url}?healthy`, { channels: ['feed'], reconnect: false });
    cleanups.push(() => healthy.close());
    healthy.on('message', (m) => messages.push(m));
    const healthyCloses: number[] = [];
    healthy.on('close', ({ code }) => healthyCloses.push(code));
    let subscribed = false;
    healthy.on('notice', (notice) => (subscribed ||= notice.op === 'subscribed'));
    await waitFor(() => subscribed, 10_000, 'the healthy client to subscribe');
    const baseline = baselineOf(await server.ask<Counts>('stats', 'connections'));
    expect(baseline).toEqual({ connections: 1, subscriptions: 1, channels: 1, upgradesPending: 0, controlPending: 0, messagesPending: 0, poolInFlight: 0, poolQueue: 0 });

    await server.ask('start', 'started');
    const live = new Set<Socket>();
    const liveWs = new Set<WebSocket>();
    const until = Date.now() + CHAOS_MS;
    const tally = { resets: 0, silent: 0, partial: 0, wsFrames: 0, rawFrames: 0 };

    /** Upgrade, then reset while authorize runs (or just after it answered). */
    async function resetters(): Promise<void> {
      while (Date.now() < until) {
        const socket = await tcp(port, live);
        if (socket === null) continue;
        socket.write(upgradeRequest(rng.chance(0.2) ? '/?deny' : `/?channels=feed,${String(randomChannel(rng))}`));
        await sleep(rng.int(50));
        socket.resetAndDestroy();
        tally.resets++;
      }
    }

    /** Sockets that pile up: upgraded and subscribed but never reading (nor answering pings), or stuck mid-request. */
    async function pilers(): Promise<void> {
      while (Date.now() < until) {
        const socket = await tcp(port, live);
        if (socket === null) continue;
        if (rng.chance(0.7)) {
          socket.write(upgradeRequest('/?channels=feed,noise.1'));
          socket.pause();
          tally.silent++;
        } else {
          socket.write('GET /?channels=feed HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr'); // and nothing more
          tally.partial++;
        }
        await sleep(50);
      }
    }

    /** ws clients sending fuzzed control messages and frames. */
    async function wsFuzzer(): Promise<void> {
      while (Date.now() < until) {
        const ws = new WebSocket(`${url}${rng.chance(0.3) ? `?channels=${encodeURIComponent(String(randomChannel(rng)))}` : ''}`);
        liveWs.add(ws);
        ws.on('error', () => {});
        const closed = once(ws, 'close').then(() => liveWs.delete(ws));
        if (!(await Promise.race([once(ws, 'open').then(() => true, () => false), closed.then(() => false)]))) continue;
        for (let i = 0; i < 1 + rng.int(60) && ws.readyState === WebSocket.OPEN; i++) {
          const [data, binary] = wsMessage(rng, MAX_PAYLOAD);
          ws.send(data, { binary });
          tally.wsFrames++;
          if (i % 10 === 9) await tick();
        }
        if (rng.chance(0.5)) ws.terminate();
        else ws.close(1000);
        await Promise.race([closed, sleep(500)]);
      }
    }

    /** Raw sockets writing broken WebSocket frames after a real handshake. */
    async function rawFuzzer(): Promise<void> {
      while (Date.now() < until) {
        const socket = await tcp(port, live);
        if (socket === null) continue;
        socket.write(upgradeRequest('/?channels=feed'));
        await sleep(60); // past authorize
        for (let i = 0; i < 1 + rng.int(30) && !socket.destroyed; i++) {
          socket.write(rawFrame(rng, MAX_PAYLOAD));
          tally.rawFrames++;
        }
        await sleep(rng.int(20));
        socket.destroy();
      }
    }

    await Promise.all([resetters(), resetters(), pilers(), wsFuzzer(), wsFuzzer(), rawFuzzer()]);
    expect(server.alive).toBe(true);
    const { published } = await server.ask<{ published: number }>('stop', 'published');

    // The healthy client: everything, in order, never disconnected.
    await waitFor(() => messages.length >= published, 20_000, `${published} messages on feed`);
    expect(messages.length).toBe(published);
    expect(messages.every((m, i) => m.seq === i && (m.data as { n: number }).n === i)).toBe(true);
    expect(healthy.stats.gaps).toBe(0);
    expect(healthyCloses).toEqual([]);

    // Every kind of hostility happened, and the process took it.
    const during = await server.ask<Counts>('stats', 'connections');
    expect(server.alive).toBe(true);
    expect(during.callbackErrors).toBeGreaterThan(10);
    expect(during.pool.faults.error + during.pool.faults.crash).toBeGreaterThanOrEqual(2);
    expect(during.upgradesAborted).toBeGreaterThan(5);
    expect(tally.silent + tally.partial).toBeGreaterThan(20);
    expect(tally.wsFrames + tally.rawFrames).toBeGreaterThan(500);

    // Hostile clients gone: the counts return to the baseline.
    for (const socket of live) socket.destroy();
    for (const ws of liveWs) ws.terminate();
    const deadline = Date.now() + 15_000;
    for (;;) {
      const now = baselineOf(await server.ask<Counts>('stats', 'connections'));
      if (JSON.stringify(now) === JSON.stringify(baseline)) break;
      if (Date.now() > deadline) expect(now, 'the counts 15 s after the hostile clients left').toEqual(baseline);
      await sleep(20);
    }
    expect(server.alive).toBe(true);
    console.log(`chaos seed ${SEED}: ${published} feed messages; ${JSON.stringify(tally)}; callbackErrors ${during.callbackErrors}, faults ${JSON.stringify(during.pool.faults)}, upgradesAborted ${during.upgradesAborted}, heartbeatTerminated ${during.heartbeatTerminated}, batchesSkipped ${during.batchesSkipped}`);
  }, 60_000);
});
