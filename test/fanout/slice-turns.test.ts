/**
 * One fan-out slice per event-loop iteration. A batch is usually released from a
 * worker's reply, in libuv's poll phase; an immediate queued there runs in the same
 * iteration's check phase, so continuing a batch that used up its slice with one
 * setImmediate would write a second slice with no timer or I/O in between (issue 12,
 * goal 5: it doubled the worst turn at 5 000 subscribers). Real sockets, the real
 * FanoutSlices and a real encoded batch; the release is made from an I/O callback.
 */
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import { stat as statCallback } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { ChannelState } from '../../src/channels.js';
import { encodeBatch } from '../../src/encode/encode-batch.js';
import { BatchFrames } from '../../src/fanout/layout.js';
import { FanoutSlices } from '../../src/fanout/slices.js';
import { writeFirstSeq } from '../../src/protocol/envelope.js';
import { Connection } from '../../src/server/connection.js';

const AUDIENCE = 200;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function subscribers(state: ChannelState): Promise<WebSocket[]> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  cleanups.push(() => new Promise((resolve) => wss.close(resolve)));
  wss.on('connection', (ws, request) => state.subscribers.add(new Connection(ws, request, null)));
  const { port } = wss.address() as AddressInfo;
  const clients = Array.from({ length: AUDIENCE }, () => new WebSocket(`ws://127.0.0.1:${port}`));
  cleanups.push(() => clients.forEach((client) => client.terminate()));
  await Promise.all(clients.map((client) => once(client, 'open')));
  while (state.subscribers.size < AUDIENCE) await new Promise((resolve) => setImmediate(resolve));
  return clients;
}

function batchFrames(channel: string): BatchFrames {
  const result = encodeBatch({
    channel, codec: 'json', compressionThreshold: 1 << 20, compressionLevel: 0, compressionWindowBits: 15, maxMessageBytes: 1 << 20,
    validateSerialized: true, items: [{ n: 1 }], serialized: null, smallWindowBits: 0, adler32: false,
  });
  writeFirstSeq(new DataView(result.frame), result.envelopeOffset, 0);
  const batch = { firstSeq: 0, count: result.count, frame: Buffer.from(result.frame), deflate: result.deflate };
  return new BatchFrames(channel, batch, result.small, { formsLaidOut: 0, bodiesInflated: 0 });
}

const options = { maxBufferedBytes: 1 << 24, slowClientPolicy: 'drop' as const, onSendError: () => {}, onSlowClient: () => {}, startLag: () => false };

describe('fan-out slices and the event loop', () => {
  it('writes the rest of a batch released in the poll phase from the next iteration; a batch released after its slice ran out waits for that turn, not for the rest', async () => {
    const crowd = new ChannelState('crowd', 0, 'e');
    const other = new ChannelState('other', 0, 'e');
    const clients = await subscribers(crowd);
    const counters = { framesSent: 0, bytesSent: 0, batchesSkipped: 0, slowClosed: 0 };
    // A slice of ~0 ms: the first clock read (after 32 writes) ends it.
    const slices = new FanoutSlices(options, counters, 0.000_001);
    other.subscribers.add([...crowd.subscribers][0]!);

    const otherFrames = batchFrames('other');
    const received = clients.map(() => 0);
    clients.forEach((client, i) => client.on('message', () => received[i]!++));
    const seen = await new Promise<{ sentInSlice: number; otherAfter: number; turnsInCheckPhase: number }>((resolve) => {
      statCallback(import.meta.filename, () => {
        // The poll phase (an fs callback), where a worker's reply releases a batch.
        slices.fanOut(crowd, batchFrames('crowd'), 0);
        const sentInSlice = counters.framesSent;
        slices.fanOut(other, otherFrames, 0); // released after the slice ran out: queued whole
        const otherAfter = counters.framesSent - sentInSlice;
        // Queued after the fan-out's own immediate: runs in this iteration's check phase, after it.
        setImmediate(() => resolve({ sentInSlice, otherAfter, turnsInCheckPhase: slices.counters.turns }));
      });
    });
    expect(seen.sentInSlice).toBe(32);
    expect(seen.otherAfter).toBe(0);
    expect(seen.turnsInCheckPhase).toBe(0);

    // The batch queued behind the spent slice is of a channel with nothing else on its way: it is written in
    // the next turn, ahead of the crowd's rest (which needs several more turns), not after all of it.
    const firstSocket = [...crowd.subscribers][0]!.socket as Socket; // ws's socket is a net.Socket
    const writtenBefore = firstSocket.bytesWritten;
    while (slices.counters.turns === 0) await new Promise((resolve) => setImmediate(resolve));
    expect(firstSocket.bytesWritten - writtenBefore).toBe(otherFrames.canonical.byteLength);
    expect(slices.pending).toBe(1);

    // The rest still reaches everyone, in later iterations, one turn at a time.
    while (slices.pending > 0) await stat(import.meta.filename);
    expect(counters.framesSent).toBe(AUDIENCE + 1);
    expect(slices.counters.turns).toBeGreaterThanOrEqual(Math.ceil((AUDIENCE - 32) / 32));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received.reduce((a, b) => a + b, 0)).toBe(AUDIENCE + 1);
  });
});
