/**
 * Replays from history in a client's own form: history keeps only the canonical frame;
 * a recovering `json` client over permessage-deflate gets the replayed batches laid out
 * as transport-compressed text, then the live stream, with nothing lost or repeated.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Broadcaster } from '../../src/index.js';
import { startBroadcaster, waitFor } from '../helpers/harness.js';
import { inflateMessage, WireClient } from '../helpers/raw-ws.js';

let broadcaster: Broadcaster | undefined;
let client: WireClient | undefined;
afterEach(async () => {
  client?.close();
  await broadcaster?.close();
});

describe('replay in a client form', () => {
  it('a json client over permessage-deflate recovers from a position: notices, replay and live, all in its form', async () => {
    const started = await startBroadcaster({ batchDelayMs: 5, batchSize: 100, closeTimeoutMs: 200 });
    broadcaster = started.broadcaster;
    for (let n = 0; n < 1000; n++) broadcaster.publish('r', { n, note: 'repetitive text compresses well '.repeat(2) });
    await waitFor(() => broadcaster!.stats().history.messages === 1000, 5_000, 'history');
    const { epoch } = await broadcaster.history('r', { limit: 1 });

    client = new WireClient(`${started.url}?format=json`, 'permessage-deflate');
    await client.upgrade;
    client.sendText(JSON.stringify({ op: 'subscribe', channels: ['r'], since: { r: { epoch, seq: 200 } } }));
    await waitFor(() => broadcaster!.stats().catchUp.framesReplayed > 0 && broadcaster!.stats().catchUp.lagging === 0, 5_000, 'the replay');
    for (let n = 1000; n < 1500; n++) broadcaster.publish('r', { n, note: 'repetitive text compresses well '.repeat(2) });

    const read = () => client!.frames.filter((f) => f.opcode === 1).map((f) => ({ rsv1: f.rsv1, value: JSON.parse((f.rsv1 ? inflateMessage(f.payload, 15) : f.payload).toString()) as Record<string, unknown> }));
    const live = () => read().filter((f) => f.value.seq !== undefined).at(-1);
    await waitFor(() => {
      const last = live();
      return last !== undefined && (last.value.seq as number) + (last.value.messages as unknown[]).length === 1500;
    }, 5_000, 'the last message');
    const frames = read();
    expect(frames.slice(0, 2).map((f) => f.value)).toEqual([
      { op: 'recovery', channel: 'r', status: 'ok', epoch, since: 200, from: 200, to: 1000, missed: 0 },
      { op: 'subscribed', channels: ['r'], positions: { r: { epoch, seq: 1000 } } },
    ]);
    const batches = frames.slice(2);
    expect(batches.every((f) => f.rsv1)).toBe(true);
    // Replay sends whole batches: the first may start before 200, and a client drops what it has.
    expect(batches[0]!.value.seq).toBeLessThanOrEqual(200);
    const seqs = batches.flatMap((f) => (f.value.messages as { n: number }[]).map((m, i) => [(f.value.seq as number) + i, m.n])).filter(([seq]) => seq! >= 200);
    expect(seqs).toEqual([...Array(1300).keys()].map((i) => [200 + i, 200 + i]));
    expect(broadcaster.stats().forms.bodiesInflated).toBe(0); // laid out from the compressed core: nothing inflated
  });
});
