/**
 * Slow consumers: one client stops reading while others take 20 000 messages/s.
 * The server must bound what it buffers for the slow one (maxBufferedBytes, plus at
 * most the one frame written while it was still under), apply the policy, and the
 * other clients must receive everything in order.
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

async function setup(policy: 'drop' | 'close') {
  const { broadcaster, url } = await resources.start({
    batchSize: 200, batchDelayMs: 5, compressionLevel: 0, maxBufferedBytes: MAX_BUFFERED, slowClientPolicy: policy,
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
  it('drop: skips batches while over maxBufferedBytes; the client sees a skipped notice and the gap once it reads again', async () => {
    const { broadcaster, fast, slow, slowConnection, total } = await setup('drop');
    const skippedBatches = broadcaster.stats().batchesSkipped;
    expect(skippedBatches).toBeGreaterThan(0);
    expect(broadcaster.stats().slowClientsClosed).toBe(0);

    slow.ws.resume();
    await slow.waitFor(() => slowConnection.bufferedBytes === 0 && slow.frames.length > 0, 15_000, 'slow client to drain');
    // Let what the kernel still holds arrive, then publish one more batch: it carries the notice.
    const end = total + 300;
    for (let i = total; i < end; i++) broadcaster.publish('ticks', { ...trade(i), pad: PAD });
    await slow.waitFor(() => slow.messages.at(-1)?.seq === end - 1, 15_000, 'the post-resume batch');
    for (const client of fast) await client.waitFor(() => client.messages.length === end, 15_000, `${end} messages`);
    for (const client of fast) expectAllInOrder(client, end);

    // Walk the slow client's frames: batches contiguous, each gap announced just before it.
    let expected = 0;
    let skipped = 0;
    let notices = 0;
    for (const frame of slow.frames) {
      if (frame.kind === 'notice') {
        if (frame.notice.op !== 'skipped') continue;
        notices++;
        expect(frame.notice).toMatchObject({ op: 'skipped', channel: 'ticks', fromSeq: expected });
        expect(frame.notice.batches).toBeGreaterThan(0);
        expected += frame.notice.messages as number;
        skipped += frame.notice.batches as number;
        continue;
      }
      expect(frame.firstSeq).toBe(expected);
      frame.messages.forEach((m, i) => expect((m as { seq: number }).seq).toBe(expected + i));
      expected += frame.messages.length;
    }
    expect(notices).toBeGreaterThan(0);
    expect(skipped).toBe(skippedBatches);
    expect(expected).toBe(end);
    expect(slow.messages.length).toBeLessThan(end);
    expect(slow.ws.readyState).toBe(slow.ws.OPEN);
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
