import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { deflateRawSync } from 'node:zlib';
import { inflateRaw } from 'pako';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { connect, type BatchcastClient, type ClientMessage, type Gap } from '../src/client/index.js';
import { InvalidConfigError } from '../src/errors.js';
import { pakoInflate } from '../src/protocol/pako-inflate.js';
import { KIND_BATCH, envelopeHeaderLength, writeEnvelopeHeader } from '../src/protocol/envelope.js';
import type { Broadcaster } from '../src/index.js';
import { writeFirstSeq } from '../src/protocol/envelope.js';
import { startBroadcaster, trade, waitFor } from './helpers/harness.js';
import { loadVectors } from './helpers/vectors.js';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function track(client: BatchcastClient) {
  const messages: ClientMessage[] = [];
  const gaps: Gap[] = [];
  const notices: Record<string, unknown>[] = [];
  client.on('message', (m) => messages.push(m));
  client.on('gap', (g) => gaps.push(g));
  client.on('notice', (n) => notices.push(n));
  closers.push(() => client.close());
  return { messages, gaps, notices };
}

/** A plain ws server that sends each connecting client the given frames. */
async function scriptedServer(frames: (Uint8Array | string)[]) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  wss.on('connection', (ws: WebSocket) => {
    for (const frame of frames) ws.send(frame, { binary: typeof frame !== 'string' });
  });
  closers.push(() => new Promise((resolve) => wss.close(resolve)));
  return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
}

describe('client (batchcast/client)', () => {
  const vectors = loadVectors();
  const batches = vectors.filter((v) => v.expected.kind === 'batch');

  it.each([
    ['node:zlib (the Node default)', undefined],
    ['pako (the browser path)', pakoInflate],
    ['a custom inflater (pako without a bound)', (body: Uint8Array) => inflateRaw(body)],
  ] as const)('decodes every test vector with %s', async (_label, inflate) => {
    // One client per vector: several vectors carry the same channel and sequence numbers, which one client would drop as repeats.
    for (const vector of vectors) {
      const url = await scriptedServer([vector.bytes]);
      const client = connect(url, { inflate, reconnect: false });
      const { messages, notices } = track(client);
      if (vector.expected.kind === 'batch') {
        const expected = vector.expected.messages!.map((data, i) => ({ channel: vector.expected.channel, seq: vector.expected.firstSeq! + i, data }));
        await waitFor(() => messages.length === expected.length, 5_000, `the messages of ${vector.name}`);
        expect(messages).toEqual(expected);
        expect(client.stats.frames).toBe(1);
      } else {
        await waitFor(() => notices.length === 1, 5_000, `the notice of ${vector.name}`);
        expect(notices).toEqual([vector.expected.notice]);
      }
      client.close();
    }
    expect(batches.length).toBe(4);
  });

  it('emits a gap when sequence numbers skip, and none when they follow on', async () => {
    const plain = vectors.find((v) => v.name === 'json-plain')!; // 5 messages from seq 7
    const next = plain.bytes.slice();
    writeFirstSeq(new DataView(next.buffer), 0, 12);
    const skipped = plain.bytes.slice();
    writeFirstSeq(new DataView(skipped.buffer), 0, 20);
    const url = await scriptedServer([plain.bytes, next, skipped]);
    const client = connect(url, { reconnect: false });
    const { messages, gaps } = track(client);
    await waitFor(() => messages.length === 15, 5_000, '15 messages');
    expect(gaps).toEqual([{ channel: 'greetings', reason: 'dropped', expected: 17, received: 20, missed: 3, epoch: null }]);
    expect(client.stats).toMatchObject({ gaps: 1, missed: 3 });
  });

  it('reads legacy JSON text frames: arrays, {channel, messages} and single values', async () => {
    const url = await scriptedServer(['[{"a":1},{"b":2}]', '{"channel":"ticks","messages":[3,4]}', '"solo"']);
    const client = connect(url, { reconnect: false });
    const { messages } = track(client);
    await waitFor(() => messages.length === 5, 5_000, 'legacy messages');
    expect(messages).toEqual([
      { channel: '', seq: null, data: { a: 1 } },
      { channel: '', seq: null, data: { b: 2 } },
      { channel: 'ticks', seq: null, data: 3 },
      { channel: 'ticks', seq: null, data: 4 },
      { channel: '', seq: null, data: 'solo' },
    ]);
  });

  it('reports a frame that is not batchcast as an error and keeps going', async () => {
    const url = await scriptedServer([Uint8Array.of(1, 2, 3), vectors.find((v) => v.name === 'json-plain')!.bytes]);
    const client = connect(url, { reconnect: false });
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    const { messages } = track(client);
    await waitFor(() => messages.length === 5, 5_000, 'messages after the bad frame');
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['BATCHCAST_PROTOCOL']);
  });

  it('throws InvalidConfigError at once for a URL it cannot connect to', () => {
    for (const url of ['localhost:8080', 'not a url', 'ftp://example.com/ws']) {
      expect(() => connect(url)).toThrow(InvalidConfigError);
    }
    expect(() => connect('localhost:8080')).toThrow(/url: "localhost:8080" has protocol localhost:; expected ws:, wss:/);
  });

  it.each([
    ['node:zlib', undefined],
    ['pako', pakoInflate],
    ['a custom inflater', (body: Uint8Array) => inflateRaw(body)],
  ] as const)('refuses a frame that inflates past maxBodyBytes (%s) and keeps going', async (_label, inflate) => {
    // 4 MB of one JSON string compresses to ~4 KB: a small frame, a big body.
    const body = Buffer.from(JSON.stringify(['z'.repeat(4 << 20)]));
    const deflated = deflateRawSync(body);
    const bomb = new Uint8Array(envelopeHeaderLength('c') + deflated.byteLength);
    writeEnvelopeHeader(bomb, 0, KIND_BATCH, 'json', true, 1, 0, 'c');
    bomb.set(deflated, envelopeHeaderLength('c'));
    const fine = vectors.find((v) => v.name === 'json-plain')!.bytes;
    const url = await scriptedServer([bomb, fine]);
    const client = connect(url, { reconnect: false, inflate, maxBodyBytes: 1 << 20 });
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    const { messages } = track(client);
    await waitFor(() => messages.length === 5, 5_000, 'the frame after the refused one');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'BATCHCAST_PROTOCOL', message: expect.stringMatching(/1048576/) });
  });

  describe('against a broadcaster', () => {
    let broadcaster: Broadcaster | undefined;
    afterEach(async () => {
      await broadcaster?.close();
      broadcaster = undefined;
    });

    it.each(['json', 'msgpack'] as const)('receives %s messages with channel and seq, and subscribes later channels', async (codec) => {
      const started = await startBroadcaster({ codec, batchDelayMs: 2 });
      broadcaster = started.broadcaster;
      const client = connect(started.url, { channels: ['a'] });
      const { messages, notices } = track(client);
      await waitFor(() => notices.some((n) => n.op === 'subscribed'), 5_000, 'subscribed');
      client.subscribe('b');
      await waitFor(() => notices.filter((n) => n.op === 'subscribed').length === 2, 5_000, 'second subscribe');
      for (let i = 0; i < 600; i++) broadcaster.publish(i % 2 ? 'b' : 'a', trade(i));
      await waitFor(() => messages.length === 600, 5_000, '600 messages');
      expect(messages.filter((m) => m.channel === 'a').map((m) => m.seq)).toEqual([...Array(300).keys()]);
      expect(messages.filter((m) => m.channel === 'b').map((m) => m.data)).toEqual([...Array(300).keys()].map((i) => trade(2 * i + 1)));
    });

    it('applies subscribe and unsubscribe calls made while the socket is still connecting', async () => {
      const started = await startBroadcaster({ batchDelayMs: 2 });
      broadcaster = started.broadcaster;
      const client = connect(started.url, { channels: ['a', 'gone'] });
      const { messages } = track(client);
      client.subscribe('x'); // before 'open': not in the URL the socket was opened with
      client.unsubscribe('gone');
      await new Promise((resolve) => client.once('open', () => resolve(undefined)));
      await waitFor(() => JSON.stringify(broadcaster!.stats().subscribers) === JSON.stringify({ a: 1, x: 1 }), 5_000, 'a and x only');
      broadcaster.publish('x', 'for x');
      broadcaster.publish('gone', 'not for us');
      broadcaster.publish('a', 'for a');
      await waitFor(() => messages.length === 2, 5_000, 'two messages');
      expect(messages.map((m) => m.data).sort()).toEqual(['for a', 'for x']);
    });

    it('reconnects with backoff after the server restarts and resubscribes every channel', async () => {
      const first = await startBroadcaster({ batchDelayMs: 2 });
      broadcaster = first.broadcaster;
      const port = first.broadcaster.address()!.port;
      const client = connect(first.url, { channels: ['r1'], reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
      const { messages, notices } = track(client);
      const closes: boolean[] = [];
      client.on('close', (c) => closes.push(c.willReconnect));
      await waitFor(() => notices.some((n) => n.op === 'subscribed'), 5_000, 'subscribed');
      client.subscribe('r2');
      await waitFor(() => notices.filter((n) => n.op === 'subscribed').length === 2, 5_000, 'r2');
      broadcaster.publish('r1', 'before');
      await waitFor(() => messages.length === 1, 5_000, 'first message');

      await broadcaster.close();
      const second = await startBroadcaster({ batchDelayMs: 2, port });
      broadcaster = second.broadcaster;
      expect(second.url).toBe(first.url);
      await waitFor(() => broadcaster!.stats().subscribers.r2 === 1 && broadcaster!.stats().subscribers.r1 === 1, 10_000, 'resubscription');
      broadcaster.publish('r1', 'after-1');
      broadcaster.publish('r2', 'after-2');
      await waitFor(() => messages.length === 3, 5_000, 'messages after reconnect');
      expect(messages.map((m) => m.data)).toEqual(['before', 'after-1', 'after-2']);
      expect(closes[0]).toBe(true);
      expect(client.stats.reconnects).toBeGreaterThanOrEqual(1);
    });
  });
});
