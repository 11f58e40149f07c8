/**
 * Batches of a channel that finished ahead of an earlier one are held, then released
 * together with it; their frames reach each subscriber's socket corked, in one writev.
 * A real two-worker pool whose first batch is made late (test/helpers/delaying-worker.mjs).
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/harness.js';
import { countWrites } from '../helpers/socket-writes.js';
import { Resources } from '../reliability/support.js';

const resources = new Resources();
afterEach(() => resources.cleanup());

describe('batches released together', () => {
  it('go to each subscriber in one writev, in order', async () => {
    const workerFilename = fileURLToPath(new URL('../helpers/delaying-worker.mjs', import.meta.url));
    const { broadcaster, url } = await resources.start({ poolSize: 2, batchSize: 10, batchDelayMs: 1000, workerFilename });
    const clients = [await resources.client(url, ['ordered']), await resources.client(url, ['ordered'])];
    await waitFor(() => broadcaster.connections.size === 2, 5_000, 'the server side of both connections');
    const counts = [...broadcaster.connections].map((connection) => countWrites(connection.socket));

    // Batch 0 is held 300 ms in its worker; batches 1 and 2 finish first and wait for it.
    broadcaster.publish('ordered', { delayMs: 300, n: 0 });
    for (let n = 1; n < 30; n++) broadcaster.publish('ordered', { n });
    for (const client of clients) await client.waitFor(() => client.messages.length === 30, 10_000, '30 messages');

    expect(broadcaster.stats().reorderedBatches).toBe(2);
    for (const client of clients) expect(client.messages.map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // Three frames per subscriber, one call each: a writev (uncorked, three _write calls).
    for (const count of counts) expect(count).toEqual({ write: 0, writev: 1 });
  });
});
