/**
 * Time-sliced fan-out with real sockets: a channel with hundreds of subscribers and a
 * 1 ms slice, so every batch's writes go on over several event-loop turns. Every
 * subscriber still gets every batch once, in order; a client that recovers from history
 * while batches are still on their way gets each message exactly once; one that leaves
 * gets nothing more; close() lets the batches on their way finish first.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Broadcaster } from '../../src/index.js';
import { decodeFrame } from '../../src/protocol/decode.js';
import { RawClient, startBroadcaster, waitFor, zlibInflate } from '../helpers/harness.js';
import { WireClient } from '../helpers/raw-ws.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const AUDIENCE = 400;
const BATCHES = 30;
const PER_BATCH = 20;

/** Message seqs a raw client received on `channel`, in arrival order. */
function seqs(client: WireClient, channel = 'crowd'): number[] {
  return client.frames.filter((f) => f.opcode === 2).flatMap((f) => {
    const decoded = decodeFrame(new Uint8Array(f.payload), zlibInflate);
    return decoded.kind === 'batch' && decoded.channel === channel ? decoded.messages.map((_m, i) => decoded.firstSeq + i) : [];
  });
}

async function audience(url: string, size: number): Promise<WireClient[]> {
  const clients = Array.from({ length: size }, () => new WireClient(`${url}?channels=crowd`, null));
  cleanups.push(() => clients.forEach((client) => client.close()));
  await Promise.all(clients.map((client) => client.upgrade));
  return clients;
}

async function crowded(broadcaster: Broadcaster, size: number): Promise<void> {
  await waitFor(() => broadcaster.stats().subscribers.crowd === size, 20_000, 'every subscription');
}

/** Publishes BATCHES batches of PER_BATCH messages, each closed at once. */
function publishBatches(broadcaster: Broadcaster, from = 0): void {
  for (let b = 0; b < BATCHES; b++) {
    for (let i = 0; i < PER_BATCH; i++) broadcaster.publish('crowd', { n: from + b * PER_BATCH + i, pad: 'x'.repeat(40) });
    broadcaster.flush();
  }
}

/** A broadcaster with 1 ms slices and a crowd of AUDIENCE raw subscribers, plus one decoding client on `extra` (if given). */
async function crowd(extra?: string[]): Promise<{ broadcaster: Broadcaster; url: string; clients: WireClient[]; one: RawClient | null }> {
  const { broadcaster, url } = await startBroadcaster({ fanoutSliceMs: 1, batchSize: 1000, batchDelayMs: 1000 });
  cleanups.push(() => broadcaster.close());
  const clients = await audience(url, AUDIENCE);
  const one = extra === undefined ? null : await RawClient.open(url, extra);
  if (one !== null) cleanups.push(() => one.close());
  await crowded(broadcaster, AUDIENCE + (extra?.includes('crowd') === true ? 1 : 0));
  return { broadcaster, url, clients, one };
}

/** The epoch in a client's first `subscribed` notice. */
function epochOf(client: RawClient, channel: string): string {
  return (client.notices.find((n) => n.op === 'subscribed') as { positions: Record<string, { epoch: string }> }).positions[channel]!.epoch;
}

const all = (from: number, count: number) => [...Array(count).keys()].map((i) => from + i);

describe('sliced fan-out', () => {
  it('spreads each batch over several turns and still gives every subscriber every message once, in order', async () => {
    const { broadcaster, clients } = await crowd();
    publishBatches(broadcaster);
    await waitFor(() => clients.every((c) => seqs(c).length === BATCHES * PER_BATCH), 30_000, 'every message at every subscriber');
    for (const client of clients) expect(seqs(client)).toEqual(all(0, BATCHES * PER_BATCH));
    const { fanoutSlices, framesSent, batches } = broadcaster.stats();
    expect(fanoutSlices.batchesSliced).toBeGreaterThan(0);
    expect(fanoutSlices.turns).toBeGreaterThan(fanoutSlices.batchesSliced);
    expect(fanoutSlices.pending).toBe(0);
    expect(framesSent).toBe(batches * AUDIENCE);
  }, 60_000);

  it('a client recovering from history while batches are on their way gets each message exactly once', async () => {
    const { broadcaster, clients, one } = await crowd(['other']);
    const late = one!;
    const epoch = epochOf(late, 'other');
    publishBatches(broadcaster);
    // Ask while the first batches are still being written to the crowd: from the very start of the stream.
    late.ws.send(JSON.stringify({ op: 'subscribe', channels: ['crowd'], since: { crowd: { epoch, seq: 0 } } }));
    await waitFor(() => broadcaster.stats().fanoutSlices.pending === 0 && broadcaster.stats().catchUp.lagging === 0, 30_000, 'fan-out and catch-up to finish');
    publishBatches(broadcaster, BATCHES * PER_BATCH);
    const total = 2 * BATCHES * PER_BATCH;
    await late.waitFor(() => late.messages.filter((m) => m.channel === 'crowd').length >= total, 30_000, 'the late client to have everything');
    await waitFor(() => clients.every((c) => seqs(c).length === total), 30_000, 'the crowd to have everything');
    expect(late.messages.filter((m) => m.channel === 'crowd').map((m) => m.seq)).toEqual(all(0, total));
    expect(late.notices.find((n) => n.op === 'recovery')).toMatchObject({ status: 'ok', since: 0 });
    expect(broadcaster.stats().fanoutSlices.batchesSliced).toBeGreaterThan(0);
  }, 60_000);

  it('a subscriber that leaves and comes back with its position while batches are on their way gets each message once', async () => {
    const { broadcaster, clients, one } = await crowd(['crowd']);
    const mover = one!;
    const epoch = epochOf(mover, 'crowd');
    publishBatches(broadcaster);
    // While the batches are still being written (the mover is in their subscriber lists), leave and come back
    // from where it stands: history replays what it missed, and the batches on their way must not bring it twice.
    await waitFor(() => broadcaster.stats().fanoutSlices.pending > 0 && mover.messages.length > 0, 20_000, 'a sliced fan-out under way');
    const since = mover.messages.at(-1)!.seq + 1;
    mover.ws.send(JSON.stringify({ op: 'unsubscribe', channels: ['crowd'] }));
    mover.ws.send(JSON.stringify({ op: 'subscribe', channels: ['crowd'], since: { crowd: { epoch, seq: since } } }));
    const total = BATCHES * PER_BATCH;
    await waitFor(() => clients.every((c) => seqs(c).length === total), 30_000, 'the crowd to have everything');
    await mover.waitFor(() => mover.messages.at(-1)?.seq === total - 1, 30_000, 'the mover to reach the end');
    const recoveryAt = mover.frames.findIndex((f) => f.kind === 'notice' && f.notice.op === 'recovery');
    expect(mover.frames[recoveryAt]).toMatchObject({ notice: { status: 'ok', since } });
    const after = mover.frames.slice(recoveryAt + 1).flatMap((f) => (f.kind === 'batch' ? f.messages.map((_m, i) => f.firstSeq + i) : []));
    expect(after).toEqual(all(since, total - since));
  }, 60_000);

  it('a subscriber that leaves while batches are on their way gets nothing after its unsubscribed notice', async () => {
    const { broadcaster, clients, one } = await crowd(['crowd']);
    const leaving = one!;
    publishBatches(broadcaster);
    leaving.ws.send(JSON.stringify({ op: 'unsubscribe', channels: ['crowd'] }));
    await leaving.waitFor(() => leaving.notices.some((n) => n.op === 'unsubscribed'), 10_000, 'the unsubscribed notice');
    const noticeAt = leaving.frames.findIndex((f) => f.kind === 'notice' && f.notice.op === 'unsubscribed');
    await waitFor(() => clients.every((c) => seqs(c).length === BATCHES * PER_BATCH), 30_000, 'the crowd to have everything');
    expect(leaving.frames.slice(noticeAt + 1).filter((f) => f.kind === 'batch')).toEqual([]);
    // What it got before leaving is a prefix of the stream, in order.
    const got = leaving.messages.map((m) => m.seq);
    expect(got).toEqual(all(0, got.length));
    expect(got.length).toBeLessThan(BATCHES * PER_BATCH);
  }, 60_000);

  it('close() lets batches on their way reach every subscriber before closing them', async () => {
    const { broadcaster, url } = await startBroadcaster({ fanoutSliceMs: 1, batchSize: 1000, batchDelayMs: 1000 });
    const clients = await audience(url, AUDIENCE);
    await crowded(broadcaster, AUDIENCE);
    publishBatches(broadcaster);
    await broadcaster.close();
    await waitFor(() => clients.every((c) => c.frames.some((f) => f.opcode === 8)), 20_000, 'every close frame');
    for (const client of clients) {
      expect(seqs(client)).toEqual(all(0, BATCHES * PER_BATCH));
      expect(client.frames.at(-1)!.payload.readUInt16BE(0)).toBe(1001);
    }
  }, 60_000);
});
