/**
 * Slow consumers: one client stops reading while others take 20 000 messages/s.
 * The server must bound what it buffers for the slow one (maxBufferedBytes, plus at
 * most the one frame written while it was still under), apply the policy, and the
 * other clients must receive everything in order. Under `drop` the slow one catches
 * up from history once it reads again; what history no longer holds is a `gap` notice.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broadcaster } from '../../src/index.js';
import type { Connection } from '../../src/server/connection.js';
import { trade, type RawClient } from '../helpers/harness.js';
import { closed, firstBreak, Resources, sleep } from './support.js';

const resources = new Resources();
afterEach(() => resources.cleanup());

const MAX_BUFFERED = 256 * 1024;
const PER_TICK = 200; // every 10 ms: 20 000 messages/s
const TICKS = 150; // 1.5 s: 30 000 messages, ~18 MB uncompressed: far more than the loopback socket buffers hold
const PAD = 'p'.repeat(400);
/** A notice frame (e.g. 'skipped') may follow the last frame written under the bound. */
const NOTICE_ALLOWANCE = 512;

/** Publishes PER_TICK ~600-byte messages every 10 ms; calls `probe` around every burst. */
async function publishAtRate(broadcaster: Broadcaster, channel: string, from: number, ticks: number, probe: () => void): Promise<number> {
  let next = from;
  for (let tick = 0; tick < ticks; tick++) {
    for (let i = 0; i < PER_TICK; i++) broadcaster.publish(channel, { ...trade(next++), pad: PAD });
    probe();
    await sleep(10);
    probe();
  }
  return next;
}

/** Largest frame a client saw, WebSocket header included. */
function largestFrame(client: RawClient): number {
  return Math.max(...client.frames.map((f) => (f.kind === 'batch' ? f.wireBytes + 10 : 0)));
}

function expectAllInOrder(client: RawClient, total: number): void {
  expect(client.messages.length).toBe(total);
  expect(firstBreak(client.messages.map((m) => m.seq))).toBeNull();
  expect(firstBreak(client.messages.map((m) => (m.data as { seq: number }).seq))).toBeNull();
}

async function setup(policy: 'drop' | 'close', history: { historyMessages?: number; historyBytes?: number } = {}) {
  const { broadcaster, url } = await resources.start({
    batchSize: 200, batchDelayMs: 5, compressionLevel: 0, maxBufferedBytes: MAX_BUFFERED, slowClientPolicy: policy,
    historyBytes: 64 * 1024 * 1024, ...history,
  });
  const fast = [await resources.client(url, ['ticks']), await resources.client(url, ['ticks'])];
  const accepted = once(broadcaster, 'connection') as Promise<[Connection]>;
  const slow = await resources.client(url, ['ticks']);
  const [slowConnection] = await accepted;
  const events: { connection: Connection; policy: string; bufferedBytes: number }[] = [];
  broadcaster.on('slowClient', (event) => events.push(event));
  // Stop reading: the kernel buffers fill, then the server's socket buffer grows.
  slow.ws.pause();

  let maxBuffered = 0;
  const probe = () => {
    maxBuffered = Math.max(maxBuffered, slowConnection.bufferedBytes);
  };
  const total = await publishAtRate(broadcaster, 'ticks', 0, TICKS, probe);
  for (const client of fast) await client.waitFor(() => client.messages.length >= total, 15_000, `${total} messages`);
  probe();
  for (const client of fast) expectAllInOrder(client, total);

  // The policy engaged because of the buffer, and the buffer stayed bounded.
  expect(events.length).toBeGreaterThan(0);
  expect(events.every((e) => e.connection === slowConnection && e.policy === policy)).toBe(true);
  expect(events[0]!.bufferedBytes).toBeGreaterThan(MAX_BUFFERED);
  expect(maxBuffered).toBeGreaterThan(MAX_BUFFERED);
  expect(maxBuffered).toBeLessThanOrEqual(MAX_BUFFERED + largestFrame(fast[0]!) + NOTICE_ALLOWANCE);
  return { broadcaster, fast, slow, slowConnection, total };
}

describe('slow consumer', () => {
  /** Walks the slow client's frames: batches contiguous, every jump announced by a `gap` notice just before it. */
  function walk(slow: RawClient): { expected: number; evicted: number; notices: number } {
    let expected = 0;
    let evicted = 0;
    let notices = 0;
    for (const frame of slow.frames) {
      if (frame.kind === 'notice') {
        if (frame.notice.op !== 'gap') continue;
        notices++;
        expect(frame.notice).toMatchObject({ op: 'gap', channel: 'ticks', from: expected, reason: 'evicted' });
        evicted += (frame.notice.to as number) - expected;
        expected = frame.notice.to as number;
        continue;
      }
      expect(frame.firstSeq).toBe(expected);
      frame.messages.forEach((m, i) => expect((m as { seq: number }).seq).toBe(expected + i));
      expected += frame.messages.length;
    }
    return { expected, evicted, notices };
  }

  async function resumeAndFinish(broadcaster: Broadcaster, fast: RawClient[], slow: RawClient, slowConnection: Connection, total: number): Promise<number> {
    slow.ws.resume();
    await slow.waitFor(() => slowConnection.bufferedBytes === 0 && broadcaster.stats().catchUp.lagging === 0, 15_000, 'slow client to catch up');
    const end = total + 300;
    for (let i = total; i < end; i++) broadcaster.publish('ticks', { ...trade(i), pad: PAD });
    await slow.waitFor(() => slow.messages.at(-1)?.seq === end - 1, 15_000, 'the post-resume batch');
    for (const client of fast) await client.waitFor(() => client.messages.length === end, 15_000, `${end} messages`);
    for (const client of fast) expectAllInOrder(client, end);
    expect(slow.ws.readyState).toBe(slow.ws.OPEN);
    return end;
  }

  it('drop: falls behind while over maxBufferedBytes, then catches up from history once it reads again', async () => {
    const { broadcaster, fast, slow, slowConnection, total } = await setup('drop', {});
    expect(broadcaster.stats().batchesSkipped).toBeGreaterThan(0);
    expect(broadcaster.stats().slowClientsClosed).toBe(0);
    const end = await resumeAndFinish(broadcaster, fast, slow, slowConnection, total);
    const { expected, evicted } = walk(slow);
    expect(expected).toBe(end);
    // History held all of it (18 MB of frames, under the 64 MiB test bound): nothing lost at all.
    expect(evicted).toBe(0);
    expectAllInOrder(slow, end);
    expect(broadcaster.stats().catchUp.framesReplayed).toBeGreaterThan(0);
  });

  it('drop with a small history: catches up on what history still holds; a gap only for what it evicted', async () => {
    const { broadcaster, fast, slow, slowConnection, total } = await setup('drop', { historyBytes: 4 * 1024 * 1024 });
    const end = await resumeAndFinish(broadcaster, fast, slow, slowConnection, total);
    const { expected, evicted, notices } = walk(slow);
    expect(expected).toBe(end);
    expect(notices).toBeGreaterThan(0);
    expect(evicted).toBeGreaterThan(0);
    expect(slow.messages.length).toBe(end - evicted); // everything else arrived, once
    expect(broadcaster.stats().catchUp.messagesEvicted).toBe(evicted);
    expect(broadcaster.stats().catchUp.framesReplayed).toBeGreaterThan(0);
  });

  it('drop without history: a gap notice names exactly what was skipped, then the stream goes on', async () => {
    const { broadcaster, fast, slow, slowConnection, total } = await setup('drop', { historyMessages: 0 });
    expect(broadcaster.stats().batchesSkipped).toBeGreaterThan(0);
    const end = await resumeAndFinish(broadcaster, fast, slow, slowConnection, total);
    const { expected, evicted, notices } = walk(slow);
    expect(notices).toBeGreaterThan(0);
    expect(expected).toBe(end);
    expect(evicted).toBe(end - slow.messages.length);
    expect(broadcaster.stats().catchUp.messagesEvicted).toBe(evicted);
    expect(broadcaster.stats().catchUp.framesReplayed).toBe(0);
  });

  it('close: closes the slow client with 1013; it got an in-order prefix first', async () => {
    const { broadcaster, slow, slowConnection, total } = await setup('close');
    expect(broadcaster.stats().slowClientsClosed).toBe(1);
    expect(broadcaster.stats().batchesSkipped).toBe(0);

    const closing = closed(slow.ws);
    slow.ws.resume();
    const { code } = await closing;
    expect(code).toBe(1013);
    await slow.waitFor(() => !broadcaster.connections.has(slowConnection), 5_000, 'server to drop the connection');
    expect(broadcaster.stats().connections).toBe(2);
    expect(slow.messages.length).toBeGreaterThan(0);
    expect(slow.messages.length).toBeLessThan(total);
    expect(firstBreak(slow.messages.map((m) => m.seq))).toBeNull();
  });
});
