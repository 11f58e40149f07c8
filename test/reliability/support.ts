/** Plumbing shared by the reliability suite (on top of test/helpers/harness.ts). */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import type { Broadcaster, BroadcasterOptions } from '../../src/index.js';
import { RawClient, startBroadcaster } from '../helpers/harness.js';

/** Absolute path of a fixture worker in test/fixtures/. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
}

/** A fresh temporary directory, removed by the returned `cleanup`. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'batchcast-reliability-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Tracks what a test starts (broadcasters, clients) so `afterEach(cleanup)` stops it
 * even when an assertion failed halfway through.
 */
export class Resources {
  readonly broadcasters: Broadcaster[] = [];
  readonly sockets: WebSocket[] = [];
  readonly cleanups: (() => void)[] = [];

  async start(options: Omit<BroadcasterOptions, 'port' | 'server' | 'noServer'> = {}): Promise<{ broadcaster: Broadcaster; url: string }> {
    const started = await startBroadcaster(options);
    this.broadcasters.push(started.broadcaster);
    return started;
  }

  async client(url: string, channels: string[] = []): Promise<RawClient> {
    const client = await RawClient.open(url, channels);
    this.sockets.push(client.ws);
    return client;
  }

  track(ws: WebSocket): WebSocket {
    this.sockets.push(ws);
    return ws;
  }

  async cleanup(): Promise<void> {
    for (const ws of this.sockets.splice(0)) ws.terminate();
    await Promise.all(this.broadcasters.splice(0).map((b) => b.close()));
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  }
}

/** Resolves with the close code and reason a `ws` socket sees. */
export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.reject(new Error('socket already closed'));
  return once(ws, 'close').then(([code, reason]) => ({ code: code as number, reason: String(reason) }));
}

/** Resolves with the HTTP status a rejected upgrade gets (ws 'unexpected-response'), or 101 when accepted. */
export function upgradeStatus(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<{ status: number; ws: WebSocket }> {
  const ws = new WebSocket(url, options);
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_request, response) => {
      resolve({ status: response.statusCode ?? 0, ws });
      response.resume();
      ws.terminate();
    });
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('error', (error) => {
      // 'unexpected-response' has a listener, so ws reports no error for rejections; anything else is one.
      reject(error);
    });
  });
}

/** Expects `seqs` to be exactly from..from+length-1, reporting the first break. */
export function firstBreak(seqs: number[], from = 0): string | null {
  for (let i = 0; i < seqs.length; i++) {
    if (seqs[i] !== from + i) return `index ${i}: expected ${from + i}, got ${seqs[i]}`;
  }
  return null;
}

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A raw TCP client that completes the WebSocket handshake and then lets the test
 * write arbitrary bytes; `socket.pause()` stops it reading.
 */
export async function rawUpgrade(port: number, path = '/'): Promise<import('node:net').Socket> {
  const { connect } = await import('node:net');
  const { randomBytes } = await import('node:crypto');
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let head = '';
  while (!head.includes('\r\n\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    head += chunk.toString('latin1');
  }
  if (!head.startsWith('HTTP/1.1 101')) throw new Error(`upgrade refused: ${head.split('\r\n')[0]}`);
  return socket;
}

/** A masked client-to-server frame. */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const header = payload.length < 126 ? Buffer.from([0x80 | opcode, 0x80 | payload.length]) : Buffer.from([0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i % 4]!;
  return Buffer.concat([header, key, body]);
}
