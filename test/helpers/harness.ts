/** Shared test plumbing: a broadcaster on 127.0.0.1:0 and clients that collect what they receive. */
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { createBroadcaster, type Broadcaster, type BroadcasterOptions } from '../../src/index.js';
import { inflateRawSync } from 'node:zlib';
import { decodeFrame, type DecodedFrame, type Inflate } from '../../src/protocol/decode.js';

/** node:zlib as the protocol decoder's inflater. */
export const zlibInflate: Inflate = (body, maxBytes) => inflateRawSync(body, { maxOutputLength: maxBytes });

/** Starts a broadcaster on a free loopback port; `close()` it in afterEach. */
export async function startBroadcaster(options: Omit<BroadcasterOptions, 'server' | 'noServer'> = {}): Promise<{ broadcaster: Broadcaster; url: string }> {
  const broadcaster = createBroadcaster({ poolSize: 1, heartbeatIntervalMs: 0, env: {}, port: 0, ...options, host: '127.0.0.1' });
  await broadcaster.ready;
  return { broadcaster, url: `ws://127.0.0.1:${broadcaster.address()!.port}/` };
}

/**
 * A raw `ws` client that decodes every binary frame with the protocol decoder. It does
 * not offer permessage-deflate unless asked (`transport`), so it sees envelopes as the
 * worker made them; ws inflates transport-compressed frames when it does.
 */
export class RawClient {
  readonly ws: WebSocket;
  readonly frames: DecodedFrame[] = [];
  readonly notices: Record<string, unknown>[] = [];
  readonly messages: { channel: string; seq: number; data: unknown }[] = [];

  constructor(url: string, transport = false) {
    this.ws = new WebSocket(url, { perMessageDeflate: transport });
    this.ws.on('message', (data: Buffer) => {
      const frame = decodeFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), zlibInflate);
      this.frames.push(frame);
      if (frame.kind === 'notice') this.notices.push(frame.notice);
      else frame.messages.forEach((m, i) => this.messages.push({ channel: frame.channel, seq: frame.firstSeq + i, data: m }));
    });
  }

  /** Connects and waits for the `subscribed` notice when channels were requested. */
  static async open(url: string, channels: string[] = [], transport = false): Promise<RawClient> {
    const full = channels.length > 0 ? `${url}?channels=${channels.join(',')}` : url;
    const client = new RawClient(full, transport);
    await once(client.ws, 'open');
    if (channels.length > 0) await client.waitFor(() => client.notices.some((n) => n.op === 'subscribed'));
    return client;
  }

  /** Polls `predicate` until it holds or `timeoutMs` passes (then throws with `what`). */
  async waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    await waitFor(predicate, timeoutMs, what);
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Polls `predicate` every 5 ms until it holds; throws after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** {@link waitFor} with an async predicate, polled every 5 ms. */
export async function waitForAsync(predicate: () => Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A ~160-byte trade message. */
export function trade(i: number) {
  return { type: 'trade', symbol: 'BTC-USD', price: 43125.5 + i * 0.01, size: 0.0123 + (i % 7) * 0.001, side: i % 2 ? 'buy' : 'sell', ts: 1732550000000 + i, id: `T${i}`, exchange: 'coinbase', seq: i };
}

/** A TCP port free on 127.0.0.1 right now (taken and released). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
