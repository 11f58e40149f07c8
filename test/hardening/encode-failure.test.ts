/**
 * A batch that cannot be encoded anywhere (on a worker, on the retry worker, nor
 * inline) must not vanish silently: its messages still take their sequence numbers,
 * so subscribers see exactly that gap, it is counted, and `encodeError` names it.
 * The failure is real: two pre-serialized strings whose joined batch passes V8's
 * longest string (2^29 - 24 characters), so `join` throws RangeError on every thread.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EncodeError } from '../../src/index.js';
import { waitFor } from '../helpers/harness.js';
import { Resources, sleep } from '../reliability/support.js';

const resources = new Resources();
afterEach(() => resources.cleanup());

describe('a batch that cannot be encoded at all', () => {
  it('becomes a gap of exactly its messages, counted and reported; the channel goes on', async () => {
    const { broadcaster, url } = await resources.start({
      batchSize: 1000, batchDelayMs: 5, validateSerialized: false, maxMessageBytes: 2 ** 31 - 1, encodeTimeoutMs: 60_000,
    });
    const errors: EncodeError[] = [];
    broadcaster.on('encodeError', (error) => errors.push(error));
    const client = await resources.client(url, ['feed']);

    for (let i = 0; i < 10; i++) broadcaster.publish('feed', { seq: i });
    await client.waitFor(() => client.messages.length === 10, 10_000, 'the first batch');
    // 2 × 280M characters: each fits in a string, the batch body does not.
    const huge = `"${'x'.repeat(280_000_000)}"`;
    broadcaster.publishSerialized('feed', huge);
    broadcaster.publishSerialized('feed', huge);
    broadcaster.flush();
    await waitFor(() => errors.length === 1, 60_000, 'the encodeError');
    await sleep(10);
    for (let i = 12; i < 20; i++) broadcaster.publish('feed', { seq: i });
    await client.waitFor(() => client.messages.length === 18, 10_000, 'the batch after');

    expect(client.messages.map((m) => m.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(client.messages.map((m) => (m.data as { seq: number }).seq)).toEqual(client.messages.map((m) => m.seq));
    expect(errors[0]).toMatchObject({ code: 'BATCHCAST_ENCODE_FAILED', channel: 'feed' });
    expect(errors[0]!.message).toMatch(/Invalid string length/);
    const stats = broadcaster.stats();
    expect(stats.batchesFailed).toBe(1);
    expect(stats.messagesFailed).toBe(2);
    expect(stats.pool.faults.inline).toBe(1); // tried on two workers, then inline
  }, 90_000);
});
