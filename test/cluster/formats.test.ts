/**
 * Wire forms in a cluster: a node lays out its own clients' forms from the frame Redis
 * carries (encoded once, on the publishing node), with no re-encoding: the deflate's
 * window and the body's Adler-32 travel with it. Only a window smaller than the
 * publisher's deflate needs the plain body here (one inflate per batch).
 */
import { inflateSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { createBroadcaster, type Broadcaster } from '../../src/index.js';
import { decodeFrame } from '../../src/protocol/decode.js';
import { waitFor } from '../helpers/harness.js';
import { inflateMessage, WireClient } from '../helpers/raw-ws.js';
import { requireRedis, SHARED_REDIS, uniquePrefix } from '../helpers/redis.js';

const nodes: Broadcaster[] = [];
const clients: WireClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(nodes.splice(0).map((node) => node.close()));
});

describe('wire forms on a node that did not encode the batch', () => {
  it('json, seed and small-window clients on the receiving node get their forms, in order, from the one encode', async (context) => {
    await requireRedis(() => context.skip());
    const prefix = uniquePrefix();
    const make = () => createBroadcaster({
      port: 0, host: '127.0.0.1', env: {}, poolSize: 1, heartbeatIntervalMs: 0, closeTimeoutMs: 200, batchDelayMs: 5, redis: SHARED_REDIS, redisPrefix: prefix,
    });
    const [publisher, receiver] = [make(), make()];
    nodes.push(publisher, receiver);
    await Promise.all([publisher.ready, receiver.ready]);
    const url = `ws://127.0.0.1:${receiver.address()!.port}/?channels=f`;
    const json = new WireClient(`${url}&format=json`, 'permessage-deflate');
    const seed = new WireClient(`${url}&format=seed`, null);
    const narrow = new WireClient(url, 'permessage-deflate; server_max_window_bits=10');
    clients.push(json, seed, narrow);
    await Promise.all(clients.map((client) => client.upgrade));
    await waitFor(() => receiver.stats().subscribers.f === 3 && json.frames.length === 1 && narrow.frames.length === 1, 10_000, 'subscriptions');

    for (let n = 0; n < 600; n++) publisher.publish('f', { n, note: 'repetitive text compresses well '.repeat(2) });
    const published = () => publisher.stats().batches;
    // Every message closed into a batch and every batch back from the pool: the count of batches is final.
    const settled = () => publisher.stats().messagesPending === 0 && publisher.stats().pool.inFlight === 0;
    await waitFor(() => settled() && published() > 0 && receiver.stats().framesSent === 3 * published(), 10_000, 'every batch on the receiving node');
    const batches = published();
    await waitFor(() => json.frames.length === batches + 1 && seed.frames.length === batches && narrow.frames.length === batches + 1, 5_000, 'the frames on the wire');

    const jsonMessages = json.frames.slice(1).flatMap((f) => {
      expect(f.rsv1).toBe(true);
      const value = JSON.parse(inflateMessage(f.payload, 15).toString()) as { seq: number; messages: { n: number }[] };
      return value.messages.map((m, i) => [value.seq + i, m.n]);
    });
    expect(jsonMessages).toEqual([...Array(600).keys()].map((n) => [n, n]));
    const seedMessages = seed.frames.flatMap((f) => {
      expect(f.payload[0]).toBe(0x78); // zlib, checked by inflateSync's Adler-32 test
      return (JSON.parse(inflateSync(f.payload).toString()) as { n: number }[]).map((m) => m.n);
    });
    expect(seedMessages).toEqual([...Array(600).keys()]);
    const narrowMessages = narrow.frames.slice(1).flatMap((f) => {
      expect(f.rsv1).toBe(false); // the publisher deflated with a 12-bit window: this client gets the plain body
      const decoded = decodeFrame(new Uint8Array(f.payload));
      return decoded.kind === 'batch' ? decoded.messages.map((m) => (m as { n: number }).n) : [];
    });
    expect(narrowMessages).toEqual([...Array(600).keys()]);
    const forms = receiver.stats().forms;
    expect(forms.bodiesInflated).toBe(published()); // the narrow window only: seed's checksum came with the frame
    expect(forms.smallDeflates).toBe(0);
    expect(publisher.stats().forms.laidOut).toBe(0); // nothing laid out where no client is
  });
});
