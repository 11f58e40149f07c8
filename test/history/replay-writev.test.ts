/**
 * Replay from history writes a connection's frames of one turn corked: they reach the
 * kernel in one writev, not in one write(2) per frame. Counted on the real server-side
 * socket (its `_write` / `_writev` calls, wrapped to count and passed through).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/harness.js';
import { countWrites } from '../helpers/socket-writes.js';
import { Resources } from '../reliability/support.js';

const resources = new Resources();
afterEach(() => resources.cleanup());

describe('replay from history', () => {
  it('sends a recovering client 30 frames in one writev', async () => {
    const { broadcaster, url } = await resources.start({ batchDelayMs: 1 });
    for (let n = 0; n < 30; n++) {
      broadcaster.publish('feed', { n });
      broadcaster.flush();
      await waitFor(() => broadcaster.stats().batches === n + 1, 5_000, `batch ${n}`);
    }
    const { epoch } = await broadcaster.history('feed');

    const client = await resources.client(url);
    await waitFor(() => broadcaster.connections.size === 1, 5_000, 'the server side of the connection');
    const [connection] = broadcaster.connections;
    const counts = countWrites(connection!.socket);
    client.ws.send(JSON.stringify({ op: 'subscribe', channels: ['feed'], since: { feed: { epoch, seq: 0 } } }));
    await client.waitFor(() => client.messages.length === 30, 5_000, '30 replayed messages');

    expect(client.messages.map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(client.notices.find((n) => n.op === 'recovery')).toMatchObject({ status: 'ok', missed: 0 });
    expect(counts.writev).toBeGreaterThanOrEqual(1);
    // The notices (subscribed, recovery) and one writev; uncorked, each frame was a call of its own.
    expect(counts.write + counts.writev).toBeLessThanOrEqual(4);
  });
});
