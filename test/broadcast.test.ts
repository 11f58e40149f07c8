import { afterEach, describe, expect, it } from 'vitest';
import type { Broadcaster } from '../src/index.js';
import { RawClient, startBroadcaster, trade } from './helpers/harness.js';

let broadcaster: Broadcaster | undefined;
const clients: RawClient[] = [];
afterEach(async () => {
  clients.splice(0).forEach((c) => c.close());
  await broadcaster?.close();
  broadcaster = undefined;
});

describe('broadcast end to end', () => {
  it('delivers every message in order with contiguous sequence numbers', async () => {
    const started = await startBroadcaster();
    broadcaster = started.broadcaster;
    const client = await RawClient.open(started.url, ['trades']);
    clients.push(client);
    for (let i = 0; i < 1200; i++) broadcaster.publish('trades', trade(i));
    await client.waitFor(() => client.messages.length === 1200, 10_000, '1200 messages');
    expect(client.messages.map((m) => (m.data as { seq: number }).seq)).toEqual([...Array(1200).keys()]);
    expect(client.messages.map((m) => m.seq)).toEqual([...Array(1200).keys()]);
    const batches = client.frames.filter((f) => f.kind === 'batch');
    // 500 + 500 by size, then 200 by delay.
    expect(batches.map((b) => b.kind === 'batch' && b.messages.length)).toEqual([500, 500, 200]);
    expect(batches.every((b) => b.kind === 'batch' && b.compressed)).toBe(true);
  });
});
