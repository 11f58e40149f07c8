/**
 * batchcast/client against throwing listeners and Node's event helpers, and the
 * limits on how it asks for channels (URL length, control-message size, bad names).
 */
import { on, once, type EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { connect, type BatchcastClient, type ClientMessage, type Gap } from '../../src/client/index.js';
import type { CallbackError, Connection } from '../../src/index.js';
import { waitFor } from '../helpers/harness.js';
import { Resources } from '../reliability/support.js';
import { batchEnvelope } from './frames.js';

const resources = new Resources();
const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await resources.cleanup();
});

function client(url: string, options: Parameters<typeof connect>[1] = {}): BatchcastClient {
  const c = connect(url, { reconnect: false, ...options });
  closers.push(() => c.close());
  return c;
}

/** A plain ws server that sends each connecting client `frames`, and records the text messages it gets. */
async function scriptedServer(frames: Uint8Array[]) {
  const received: string[] = [];
  const requests: string[] = [];
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
  wss.on('connection', (ws: WebSocket, request) => {
    requests.push(request.url ?? '');
    ws.on('message', (data) => received.push(data.toString()));
    for (const frame of frames) ws.send(frame);
  });
  closers.push(() => new Promise((resolve) => wss.close(resolve)));
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, received, requests };
}

describe('listeners that throw', () => {
  it('a throwing message listener loses neither the rest of the batch, nor other listeners, nor gap tracking', async () => {
    const frames = [batchEnvelope('c', 0, [0, 1, 2, 3, 4]), batchEnvelope('c', 5, [5, 6, 7]), batchEnvelope('c', 20, [20, 21])];
    const { url } = await scriptedServer(frames);
    const c = client(url, { channels: ['c'] });
    const messages: ClientMessage[] = [];
    const gaps: Gap[] = [];
    const errors: Error[] = [];
    c.on('message', (m) => {
      if ((m.data as number) % 2 === 0) throw new Error(`listener bug at ${String(m.data)}`);
    });
    c.on('message', (m) => messages.push(m));
    c.on('gap', (gap) => {
      gaps.push(gap);
      throw new Error('gap listener bug');
    });
    c.on('error', (error) => errors.push(error));
    await waitFor(() => messages.length === 10, 5_000, 'ten messages');
    expect(messages.map((m) => m.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 20, 21]);
    expect(gaps).toEqual([{ channel: 'c', reason: 'dropped', expected: 8, received: 20, missed: 12, epoch: null }]);
    // The listener threw for 0, 2, 4, 6 and 20, the gap listener before 20; each became an error event.
    expect(errors.map((e) => (e as CallbackError).callback)).toEqual([...Array(4).fill('message listener'), 'gap listener', 'message listener']);
    expect(errors.every((e) => (e as CallbackError).code === 'BATCHCAST_CALLBACK_FAILED')).toBe(true);
    expect(c.stats.listenerErrors).toBe(6);
    expect(c.stats.gaps).toBe(1);
  });

  it('an error listener that throws is counted, not looped', async () => {
    const { url } = await scriptedServer([Uint8Array.of(1, 2, 3)]);
    const c = client(url);
    let calls = 0;
    c.on('error', () => {
      calls++;
      throw new Error('error listener bug');
    });
    await waitFor(() => c.stats.listenerErrors === 1, 5_000, 'the error listener to run');
    expect(calls).toBe(1);
  });
});

describe('the emitter behaves like Node\'s', () => {
  it('works with events.once and events.on, and removes what they added', async () => {
    const { url } = await scriptedServer([batchEnvelope('c', 0, [0, 1, 2, 3, 4, 5])]);
    const c = client(url, { channels: ['c'] });
    // Node's helpers are typed for its own EventEmitter class; at run time they need on/once/removeListener.
    const emitter = c as unknown as EventEmitter;
    const opened = once(emitter, 'open');
    // Registered before the socket opens: the frames may arrive in the same read as the handshake.
    const iterator = on(emitter, 'message') as AsyncIterableIterator<[ClientMessage]>;
    await opened;
    expect(c.listenerCount('open')).toBe(0);
    expect(c.listenerCount('error')).toBe(1); // events.once removed its own; events.on's stays while iterating
    const seen: number[] = [];
    for await (const [message] of iterator) {
      seen.push(message.data as number);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual([0, 1, 2]);
    expect(c.listenerCount('message')).toBe(0);
    expect(c.listenerCount('error')).toBe(0);
  });

  it('off/removeListener remove a once listener; a listener added twice runs twice; emit uses the listeners present when it began', async () => {
    const { url } = await scriptedServer([batchEnvelope('c', 0, ['a'])]);
    const c = client(url, { channels: ['c'] });
    const calls: string[] = [];
    const never = () => calls.push('never');
    c.once('message', never);
    c.off('message', never);
    const twice = () => calls.push('twice');
    c.on('message', twice).on('message', twice);
    c.on('message', () => {
      calls.push('adder');
      c.on('message', () => calls.push('added late'));
    });
    c.once('message', () => calls.push('once'));
    await waitFor(() => calls.length >= 4, 5_000, 'the message');
    expect(calls).toEqual(['twice', 'twice', 'adder', 'once']);
    c.removeListener('message', twice);
    expect(c.listenerCount('message')).toBe(3); // one "twice", the adder, the late one
    c.removeAllListeners('message');
    expect(c.listenerCount('message')).toBe(0);
  });
});

describe('asking for channels', () => {
  it('splits thousands of long channel names over the URL and control messages within the server limits', async () => {
    const channels = Array.from({ length: 3000 }, (_, i) => `channel.${String(i).padStart(4, '0')}.${'n'.repeat(100)}`);
    // maxPayload 8 KiB: a control message above that would close the client with 1009.
    const { broadcaster, url } = await resources.start({ maxSubscriptionsPerClient: 10_000, maxPayload: 8192 });
    const accepted = once(broadcaster, 'connection') as Promise<[Connection]>;
    const c = client(url, { channels: channels.slice(0, 2000) });
    const closes: number[] = [];
    c.on('close', ({ code }) => closes.push(code));
    const [connection] = await accepted;
    await waitFor(() => connection.channels.size === 2000, 10_000, '2000 subscriptions');
    expect(connection.request.url!.length).toBeLessThan(2200);
    c.subscribe(...channels.slice(2000));
    await waitFor(() => connection.channels.size === 3000, 10_000, '3000 subscriptions');
    c.unsubscribe(...channels.slice(0, 2500));
    await waitFor(() => connection.channels.size === 500, 10_000, '500 left');
    expect([...connection.channels].sort()).toEqual(channels.slice(2500));
    expect(connection.badMessages).toBe(0);
    expect(closes).toEqual([]);
  });

  it('a name with "," (or any invalid name) is refused the same way on the URL and in a control message', async () => {
    const { url, received, requests } = await scriptedServer([]);
    expect(() => connect(url, { channels: ['ok', 'a,b'] })).toThrowError(expect.objectContaining({ code: 'BATCHCAST_INVALID_CHANNEL', name: 'InvalidChannelError' }));
    const c = client(url, { channels: ['ok'] });
    await new Promise<void>((resolve) => c.once('open', () => resolve()));
    expect(() => c.subscribe('a,b')).toThrowError(expect.objectContaining({ code: 'BATCHCAST_INVALID_CHANNEL', name: 'InvalidChannelError' }));
    expect(() => c.subscribe('fine', 'bad name')).toThrowError(expect.objectContaining({ code: 'BATCHCAST_INVALID_CHANNEL' }));
    expect(() => c.unsubscribe('a,b')).toThrowError(expect.objectContaining({ code: 'BATCHCAST_INVALID_CHANNEL' }));
    c.subscribe('fine');
    await waitFor(() => received.length === 1, 5_000, 'the valid subscribe');
    expect(received).toEqual([JSON.stringify({ op: 'subscribe', channels: ['fine'] })]); // nothing of the refused calls was sent
    expect(requests).toEqual(['/?channels=ok']);
    expect([...c.channels]).toEqual(['ok', 'fine']);
  });
});
