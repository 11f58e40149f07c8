/**
 * Fuzz: over 10 000 random and mutated frames (text and binary, through `ws` and as
 * raw bytes on TCP, from several clients that reconnect whenever the server closes
 * them) while a healthy client listens to a steady feed. Afterwards the healthy
 * client must have every message in order, the server must have no leftover
 * connections or subscriptions, and it must never have closed anyone with 1011.
 * Seeded: a failure names the seed that reproduces it (FUZZ_SEED=...).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { randomChannel, rawFrame, wsMessage } from '../helpers/client-fuzz.js';
import { fuzzSeed, prng } from '../helpers/prng.js';
import { Resources, sleep } from './support.js';

const resources = new Resources();
afterEach(() => resources.cleanup());

const SEED = fuzzSeed();
const TARGET_FRAMES = 20_000;
const MAX_PAYLOAD = 4096;
/** Close codes a fuzzed client may legitimately get; 1011 (server error) is not among them. */
const EXPECTED_CLOSES = new Set([1002, 1003, 1005, 1006, 1007, 1009, 1000]);

describe('fuzz', () => {
  it(`survives ${TARGET_FRAMES} random and mutated client frames (seed ${SEED})`, async () => {
    const rng = prng(SEED);
    const { broadcaster, url } = await resources.start({ maxPayload: MAX_PAYLOAD, maxSubscriptionsPerClient: 20, batchSize: 100, batchDelayMs: 5 });
    const port = broadcaster.address()!.port;
    const healthy = await resources.client(url, ['feed']);

    // A steady feed for the healthy client, on channels the fuzzers also (un)subscribe to.
    let published = 0;
    const feed = setInterval(() => {
      for (let i = 0; i < 20; i++) broadcaster.publish('feed', { n: published++ });
      broadcaster.publish(rng.pick(['a', 'b', 'c', 'ch1', 'ch2']), { noise: true });
    }, 5);

    let sent = 0;
    const closeCodes = new Map<number, number>();
    const live = new Set<WebSocket | Socket>();
    let errorNotices = 0;
    let rawSessions = 0;

    async function wsFuzzer(): Promise<void> {
      while (sent < TARGET_FRAMES) {
        const query = rng.chance(0.3) ? `?channels=${encodeURIComponent([randomChannel(rng), randomChannel(rng)].join(','))}` : '';
        const ws = new WebSocket(`${url}${query}`);
        live.add(ws);
        ws.on('error', () => {});
        ws.on('message', (data: Buffer) => {
          // Error notices carry "op":"error" in their JSON body.
          if (data.includes('"op":"error"')) errorNotices++;
        });
        const done = once(ws, 'close').then(([code]) => {
          closeCodes.set(code as number, (closeCodes.get(code as number) ?? 0) + 1);
          live.delete(ws);
        });
        const opened = await Promise.race([once(ws, 'open').then(() => true), done.then(() => false)]);
        if (!opened) continue;
        for (let burst = 0; ws.readyState === WebSocket.OPEN && sent < TARGET_FRAMES && burst < 1 + rng.int(8); burst++) {
          for (let i = 0; i < 25 && ws.readyState === WebSocket.OPEN; i++) {
            const [data, binary] = wsMessage(rng, MAX_PAYLOAD);
            ws.send(data, { binary });
            sent++;
          }
          await tick();
        }
        if (ws.readyState === WebSocket.OPEN && rng.chance(0.5)) ws.close(1000);
        else if (ws.readyState === WebSocket.OPEN) ws.terminate();
        await done;
      }
    }

    async function rawFuzzer(): Promise<void> {
      while (sent < TARGET_FRAMES) {
        const socket = connect(port, '127.0.0.1');
        live.add(socket);
        socket.on('error', () => {});
        const gone = once(socket, 'close').then(() => live.delete(socket));
        await Promise.race([once(socket, 'connect'), gone]);
        if (socket.destroyed) continue;
        const key = randomBytes(16).toString('base64');
        const broken = rng.chance(0.05);
        socket.write(
          `GET /?channels=feed,${String(randomChannel(rng))} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${broken ? 'short' : key}\r\nSec-WebSocket-Version: ${broken ? 8 : 13}\r\n\r\n`,
        );
        let head = '';
        const upgraded = await new Promise<boolean>((resolve) => {
          const onData = (chunk: Buffer) => {
            head += chunk.toString('latin1');
            if (head.includes('\r\n\r\n')) {
              socket.off('data', onData);
              socket.resume();
              resolve(head.startsWith('HTTP/1.1 101'));
            }
          };
          socket.on('data', onData);
          void gone.then(() => resolve(false));
        });
        if (upgraded) {
          rawSessions++;
          for (let i = 0; i < 1 + rng.int(40) && !socket.destroyed && sent < TARGET_FRAMES; i++) {
            socket.write(rawFrame(rng, MAX_PAYLOAD));
            sent++;
            if (i % 5 === 4) await tick();
          }
          await sleep(rng.int(3));
        }
        socket.destroy();
        await gone;
      }
    }

    const started = Date.now();
    await Promise.all([wsFuzzer(), wsFuzzer(), wsFuzzer(), wsFuzzer(), rawFuzzer(), rawFuzzer()]);
    const fuzzMs = Date.now() - started;
    clearInterval(feed);

    // The healthy client got every message of the feed, in order, sequence numbers contiguous.
    await healthy.waitFor(() => healthy.messages.length === published, 10_000, `${published} feed messages`);
    expect(healthy.messages.map((m) => m.seq)).toEqual([...Array(published).keys()]);
    expect(healthy.messages.map((m) => (m.data as { n: number }).n)).toEqual([...Array(published).keys()]);
    expect(healthy.notices.filter((n) => n.op === 'error')).toEqual([]);
    expect(healthy.ws.readyState).toBe(WebSocket.OPEN);

    // The fuzz did reach the server's error paths, and never hit an internal error.
    expect(sent).toBeGreaterThanOrEqual(TARGET_FRAMES);
    expect(errorNotices).toBeGreaterThan(500);
    expect(rawSessions).toBeGreaterThan(50);
    for (const code of closeCodes.keys()) expect(EXPECTED_CLOSES, `unexpected close code ${code} (seed ${SEED})`).toContain(code);
    expect(closeCodes.get(1003) ?? 0).toBeGreaterThan(0);
    expect(closeCodes.get(1009) ?? 0).toBeGreaterThan(0);

    // Nothing left behind: only the healthy client, only its subscription.
    await healthy.waitFor(() => broadcaster.stats().connections === 1, 5_000, 'fuzz connections to be gone');
    expect(live.size).toBe(0);
    expect(broadcaster.stats().subscribers).toEqual({ feed: 1 });

    // And a newcomer is served as usual.
    const late = await resources.client(url, ['feed']);
    broadcaster.publish('feed', { n: published });
    await late.waitFor(() => late.messages.length === 1, 5_000, 'delivery to a new client');
    expect(late.messages[0]).toMatchObject({ seq: published, data: { n: published } });
    console.log(`fuzz seed ${SEED}: ${sent} frames in ${fuzzMs} ms, ${broadcaster.stats().connectionsTotal} connections, closes ${JSON.stringify([...closeCodes])}, ${errorNotices} error notices, ${rawSessions} raw sessions`);
  });
});
