/**
 * Bad input around formats and compression: malformed extension offers, unknown or
 * impossible formats (clear HTTP 400s, nothing else affected), and compressed control
 * messages from clients (inflated, bounded by maxPayload, refused without the extension).
 */
import { deflateRawSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broadcaster } from '../../src/index.js';
import { decodeFrame } from '../../src/protocol/decode.js';
import { RawClient, startBroadcaster, waitFor, zlibInflate } from '../helpers/harness.js';
import { WireClient } from '../helpers/raw-ws.js';

let broadcaster: Broadcaster | undefined;
const clients: WireClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await broadcaster?.close();
});

async function start(options: Record<string, unknown> = {}): Promise<string> {
  const started = await startBroadcaster({ closeTimeoutMs: 200, ...options });
  broadcaster = started.broadcaster;
  return started.url;
}

function wire(url: string, offer: string | null): WireClient {
  const client = new WireClient(url, offer);
  clients.push(client);
  return client;
}

/** The close code of the close frame a client received, if any. */
function closeCode(client: WireClient): number | undefined {
  const frame = client.frames.find((f) => f.opcode === 0x8);
  return frame === undefined ? undefined : frame.payload.readUInt16BE(0);
}

/** Notices a batchcast client received, by op. */
function notices(client: WireClient): Record<string, unknown>[] {
  return client.frames.filter((f) => f.opcode === 2).map((f) => decodeFrame(new Uint8Array(f.payload), zlibInflate)).flatMap((d) => (d.kind === 'notice' ? [d.notice] : []));
}

describe('extension offers', () => {
  it.for([
    'permessage-deflate; server_max_window_bits=abc',
    'permessage-deflate; server_max_window_bits=16',
    'permessage-deflate; client_max_window_bits=7',
    'permessage-deflate; no_such_parameter',
    'permessage-deflate; server_no_context_takeover=1',
    'permessage-deflate;; ;',
    '"permessage-deflate"',
  ])('refuses %j with 400 and says why; the server carries on', async (offer) => {
    const url = await start();
    const healthy = await RawClient.open(url, ['feed']);
    const refused = await wire(`${url}?channels=feed`, offer).upgrade;
    expect(refused.status).toBe(400);
    expect(refused.body).toMatch(/Sec-WebSocket-Extensions/);
    broadcaster!.publish('feed', { still: 'delivering' });
    await healthy.waitFor(() => healthy.messages.length === 1, 5_000, 'the healthy client to be served');
    healthy.close();
  });

  it('ignores extensions it does not know, and every offer when perMessageDeflate is off', async () => {
    const url = await start();
    expect(await wire(url, 'x-webkit-deflate-frame').upgrade).toMatchObject({ status: 101, extensions: '' });
    expect(await wire(url, 'permessage-deflate, x-other').upgrade).toMatchObject({ status: 101, extensions: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover' });
    await broadcaster!.close();
    const plain = await start({ perMessageDeflate: false });
    expect(await wire(plain, 'permessage-deflate; server_max_window_bits=abc').upgrade).toMatchObject({ status: 101, extensions: '' });
    expect(broadcaster!.stats().forms.connections.transportCompressed).toBe(0);
  });
});

describe('formats', () => {
  it('refuses an unknown format with 400 naming it and the accepted ones', async () => {
    const url = await start();
    const refused = await wire(`${url}?format=protobuf`, null).upgrade;
    expect(refused).toMatchObject({ status: 400, body: 'unknown format "protobuf": expected batchcast, json, seed' });
    expect(broadcaster!.stats().upgradesRejected).toBe(1);
  });

  it('refuses json and seed on a msgpack server (they carry JSON), and takes the server default when none is asked', async () => {
    const url = await start({ codec: 'msgpack' });
    for (const format of ['json', 'seed']) {
      const refused = await wire(`${url}?format=${format}`, null).upgrade;
      expect(refused).toMatchObject({ status: 400, body: `format ${format} carries JSON; this server's codec is msgpack (use format=batchcast)` });
    }
    expect((await wire(`${url}?format=batchcast`, null).upgrade).status).toBe(101);
    await broadcaster!.close();
    const json = await start({ format: 'json' });
    const client = wire(`${json}?channels=t`, null);
    expect((await client.upgrade).status).toBe(101);
    await waitFor(() => client.frames.length === 1, 5_000, 'the subscribed notice');
    expect(client.frames[0]!.opcode).toBe(1);
    expect(JSON.parse(client.frames[0]!.payload.toString())).toMatchObject({ op: 'subscribed', channels: ['t'] });
  });

  it('refuses a json or seed default with a msgpack codec at construction, naming both', async () => {
    await expect(start({ codec: 'msgpack', format: 'seed' })).rejects.toThrow(/format: "seed" carries JSON text; it needs codec "json" \(the codec is "msgpack"\)/);
  });
});

describe('compressed control messages from clients', () => {
  it('are inflated and applied, in order with uncompressed ones', async () => {
    const url = await start();
    const client = wire(url, 'permessage-deflate');
    expect((await client.upgrade).extensions).toMatch(/^permessage-deflate/);
    client.sendText(JSON.stringify({ op: 'subscribe', channels: ['a', 'b'] }), true);
    client.sendText(JSON.stringify({ op: 'unsubscribe', channels: ['a'] }));
    client.sendText(JSON.stringify({ op: 'subscribe', channels: ['c'] }), true);
    await waitFor(() => notices(client).length === 3, 5_000, 'three notices');
    expect(notices(client).map((n) => [n.op, n.channels])).toEqual([['subscribed', ['a', 'b']], ['unsubscribed', ['a']], ['subscribed', ['c']]]);
    expect(broadcaster!.stats().subscribers).toEqual({ b: 1, c: 1 });
  });

  it('are bounded by maxPayload after inflating: a small frame that inflates past it closes that client with 1009, and only it', async () => {
    const url = await start({ maxPayload: 4096 });
    const healthy = await RawClient.open(url, ['feed']);
    const bomb = wire(url, 'permessage-deflate');
    await bomb.upgrade;
    const text = JSON.stringify({ op: 'subscribe', channels: ['feed'], pad: ' '.repeat(1_000_000) });
    expect(deflateRawSync(text).byteLength).toBeLessThan(4096); // small on the wire
    bomb.sendText(text, true);
    await bomb.closed();
    expect(closeCode(bomb)).toBe(1009);
    broadcaster!.publish('feed', { after: 'bomb' });
    await healthy.waitFor(() => healthy.messages.length === 1, 5_000, 'the healthy client to be served');
    healthy.close();
  });

  it('are refused with 1002 from a client that did not negotiate the extension', async () => {
    const url = await start();
    const client = wire(url, null);
    await client.upgrade;
    client.sendText(JSON.stringify({ op: 'subscribe', channels: ['a'] }), true);
    await client.closed();
    expect(closeCode(client)).toBe(1002);
  });
});
