/**
 * One channel, mixed audiences, seen on the wire (bare TCP clients): with and without
 * permessage-deflate, three formats, small windows. Each client gets its own form, every
 * message in order; transport-compressed frames inflate with the client's own window;
 * and the work is per batch, not per client: each form laid out once, one extra deflate
 * for the small window, one inflate for the form that needs the plain body.
 */
import { inflateSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broadcaster } from '../../src/index.js';
import { decodeFrame } from '../../src/protocol/decode.js';
import { startBroadcaster, waitFor, zlibInflate } from '../helpers/harness.js';
import { inflateMessage, WireClient, type WireFrame } from '../helpers/raw-ws.js';

let broadcaster: Broadcaster | undefined;
const clients: WireClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await broadcaster?.close();
});

interface Member {
  name: string;
  format: 'batchcast' | 'json' | 'seed';
  offer: string | null;
  /** The window its frames must inflate with; 0: they must come without RSV1. */
  window: number;
}

const AUDIENCE: Member[] = [
  { name: 'batchcast, no extension', format: 'batchcast', offer: null, window: 0 },
  { name: 'batchcast, permessage-deflate (a browser offer)', format: 'batchcast', offer: 'permessage-deflate; client_max_window_bits', window: 15 },
  { name: 'batchcast, permessage-deflate, a second client of the same form', format: 'batchcast', offer: 'permessage-deflate', window: 15 },
  { name: 'batchcast, server_max_window_bits=10', format: 'batchcast', offer: 'permessage-deflate; server_max_window_bits=10', window: 10 },
  { name: 'batchcast, server_max_window_bits=8 (zlib cannot: uncompressed transport)', format: 'batchcast', offer: 'permessage-deflate; server_max_window_bits=8', window: 0 },
  { name: 'json, no extension', format: 'json', offer: null, window: 0 },
  { name: 'json, permessage-deflate', format: 'json', offer: 'permessage-deflate; server_max_window_bits=12', window: 12 },
  { name: 'seed, permessage-deflate offered (seed frames carry their own zlib)', format: 'seed', offer: 'permessage-deflate', window: 0 },
];

/** Reads one client's frames as its format says: messages (with seqs where the format has them) and notices. */
function read(member: Member, frames: WireFrame[]) {
  const messages: { seq: number | null; n: number }[] = [];
  const notices: string[] = [];
  for (const frame of frames) {
    expect(frame.fin).toBe(true);
    if (frame.opcode === 0x9 || frame.opcode === 0x8) continue;
    const bytes = frame.rsv1 ? inflateMessage(frame.payload, member.window) : frame.payload;
    if (member.format === 'batchcast') {
      expect(frame.opcode).toBe(2);
      const decoded = decodeFrame(new Uint8Array(bytes), zlibInflate);
      if (decoded.kind === 'notice') notices.push(String(decoded.notice.op));
      else decoded.messages.forEach((m, i) => messages.push({ seq: decoded.firstSeq + i, n: (m as { n: number }).n }));
    } else if (member.format === 'json') {
      expect(frame.opcode).toBe(1);
      const value = JSON.parse(bytes.toString('utf8')) as { op?: string; seq: number; messages: { n: number }[] };
      if (value.op !== undefined) notices.push(value.op);
      else value.messages.forEach((m, i) => messages.push({ seq: value.seq + i, n: m.n }));
    } else {
      expect(frame.opcode).toBe(2);
      const text = bytes[0] === 0x78 ? inflateSync(bytes).toString('utf8') : bytes.toString('utf8');
      for (const m of JSON.parse(text) as { n: number }[]) messages.push({ seq: null, n: m.n });
    }
  }
  return { messages, notices };
}

describe('mixed audiences on one channel', () => {
  it('each client gets its form, in order; the worker deflates twice per batch (canonical + small window), each form is laid out once', async () => {
    const started = await startBroadcaster({ batchSize: 200, batchDelayMs: 1_000 });
    broadcaster = started.broadcaster;
    const connected = AUDIENCE.map((member) => new WireClient(`${started.url}?channels=mixed&format=${member.format}`, member.offer));
    clients.push(...connected);
    const upgrades = await Promise.all(connected.map((client) => client.upgrade));
    expect(upgrades.map((u) => u.status)).toEqual(AUDIENCE.map(() => 101));
    expect(upgrades[3]!.extensions).toBe('permessage-deflate; server_max_window_bits=10; server_no_context_takeover; client_no_context_takeover');
    expect(upgrades[0]!.extensions).toBe('');
    await waitFor(() => broadcaster!.stats().subscribers.mixed === AUDIENCE.length, 5_000, 'every subscription');
    // Notices arrive in each format (none for seed) before any batch.
    await waitFor(() => connected.every((client, i) => AUDIENCE[i]!.format === 'seed' || client.frames.length >= 1), 5_000, 'subscribed notices');

    for (let n = 0; n < 2000; n++) broadcaster.publish('mixed', { n, note: 'repetitive text compresses well '.repeat(2) });
    broadcaster.flush();
    // Batches close at 200 messages, or coalesce while the worker is busy: however many there were, each went to every client.
    const done = () => {
      const stats = broadcaster!.stats();
      return stats.messagesPending === 0 && stats.pool.inFlight === 0 && stats.framesSent === stats.batches * AUDIENCE.length;
    };
    await waitFor(done, 10_000, 'every batch to every client');
    const batchCount = broadcaster.stats().batches;
    const dataFrames = (client: WireClient) => client.frames.filter((f) => f.opcode === 1 || f.opcode === 2).length;
    await waitFor(() => connected.every((client, i) => dataFrames(client) === batchCount + (AUDIENCE[i]!.format === 'seed' ? 0 : 1)), 5_000, 'the frames on the wire');

    AUDIENCE.forEach((member, i) => {
      const frames = connected[i]!.frames.filter((f) => f.opcode === 1 || f.opcode === 2);
      const { messages, notices } = read(member, frames);
      expect(messages.map((m) => m.n), member.name).toEqual([...Array(2000).keys()]);
      if (member.format !== 'seed') expect(messages.map((m) => m.seq), member.name).toEqual([...Array(2000).keys()]);
      expect(notices, member.name).toEqual(member.format === 'seed' ? [] : ['subscribed']);
      // Every batch frame transport-compressed for a client whose window allows it; none for the others.
      const batches = member.format === 'seed' ? frames : frames.slice(1);
      expect(batches.map((f) => f.rsv1), member.name).toEqual(batches.map(() => member.window > 0));
    });

    const stats = broadcaster.stats();
    expect(stats.batches).toBeGreaterThanOrEqual(4); // 2000 messages: at least every 500 (coalesced), at most every 200
    expect(stats.batches).toBeLessThanOrEqual(10);
    expect(stats.forms.connections).toEqual({ batchcast: 5, json: 2, seed: 1, transportCompressed: 4 });
    // Forms other than the canonical one: batchcast/15, batchcast/10, json plain, json/12, seed: five per batch, whatever the client count.
    expect(stats.forms.laidOut).toBe(stats.batches * 5);
    expect(stats.forms.smallDeflates).toBe(stats.batches); // the 10-bit window's own deflate
    expect(stats.forms.bodiesInflated).toBe(stats.batches); // json without the extension needs the plain body
    // Transport-compressed clients got far fewer bytes than the body: the wire says so.
    const sizes = connected.map((client) => client.frames.reduce((sum, f) => sum + f.payload.byteLength, 0));
    expect(sizes[1]! * 4).toBeLessThan(sizes[5]!); // batchcast over pmd vs json text
  });
});
