/**
 * A batch nobody would read is not encoded: no subscriber when it closes, history off,
 * no broker. Its messages still take their sequence numbers, so the channel's positions
 * stay what they would have been; with history on, the batch is encoded and kept.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/harness.js';
import { Resources } from '../reliability/support.js';

const resources = new Resources();
afterEach(() => resources.cleanup());

describe('batches nobody would read', () => {
  it('are not encoded when history is off, and their messages still take their numbers', async () => {
    const { broadcaster, url } = await resources.start({ batchDelayMs: 5, historyMessages: 0 });
    for (let i = 0; i < 5; i++) broadcaster.publish('quiet', { i });
    broadcaster.flush();
    await waitFor(() => broadcaster.stats().batchesUnheard === 1, 5_000, 'the unheard batch');
    expect(broadcaster.stats()).toMatchObject({ batches: 0, batchesUnheard: 1, messagesUnheard: 5, batchesFailed: 0, messagesFailed: 0 });

    const client = await resources.client(url, ['quiet']);
    for (let i = 5; i < 8; i++) broadcaster.publish('quiet', { i });
    await client.waitFor(() => client.messages.length === 3, 5_000, 'the batch after a subscriber came');
    expect(client.messages.map((m) => m.seq)).toEqual([5, 6, 7]);
    expect(client.messages.map((m) => (m.data as { i: number }).i)).toEqual([5, 6, 7]);
    expect(broadcaster.stats()).toMatchObject({ batches: 1, batchesUnheard: 1 });
    const metrics = await broadcaster.metrics!.text();
    expect(metrics).toMatch(/^batchcast_batches_unheard_total 1$/m);
  });

  it('are encoded and kept when history is on', async () => {
    const { broadcaster } = await resources.start({ batchDelayMs: 5 });
    for (let i = 0; i < 5; i++) broadcaster.publish('kept', { i });
    broadcaster.flush();
    await waitFor(() => broadcaster.stats().batches === 1, 5_000, 'the encoded batch');
    expect(broadcaster.stats().batchesUnheard).toBe(0);
    const page = await broadcaster.history('kept');
    expect(page.messages.map((m) => (m.data as { i: number }).i)).toEqual([0, 1, 2, 3, 4]);
  });
});
