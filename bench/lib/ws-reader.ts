/**
 * A minimal WebSocket client for the load generator: the HTTP upgrade, then a
 * frame parser over the raw socket that hands each server frame over whole
 * (`capture`) or only its first 24 payload bytes, so that most simulated clients
 * count batches from the envelope header without copying or inflating them.
 * Server frames are unmasked and unfragmented. permessage-deflate is offered only when
 * asked: batchcast's transport-compressed messages begin with the envelope header in a
 * stored block (5 bytes in), so even those are counted without inflating.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Socket } from 'node:net';

export const PEEK_BYTES = 24;

/** Called once per frame: `payload` when capturing, else null; `peek` holds up to 24 bytes of the payload; `rsv1`: compressed (permessage-deflate). */
export type OnFrame = (opcode: number, payload: Buffer | null, peek: Buffer, length: number, rsv1: boolean) => void;

/** Incremental frame parser. */
export class FrameReader {
  readonly #onFrame: OnFrame;
  readonly #capture: boolean;
  readonly #head = Buffer.alloc(14);
  #headLength = 0;
  #remaining = -1;
  #length = 0;
  #opcode = 0;
  #rsv1 = false;
  #chunks: Buffer[] = [];
  readonly #peek = Buffer.alloc(PEEK_BYTES);
  #peekLength = 0;

  constructor(capture: boolean, onFrame: OnFrame) {
    this.#capture = capture;
    this.#onFrame = onFrame;
  }

  push(chunk: Buffer): void {
    let i = 0;
    const end = chunk.length;
    while (i < end) {
      if (this.#remaining < 0) {
        // Collect the header: 2 bytes, then 2 or 8 bytes of extended length.
        const head = this.#head;
        head[this.#headLength++] = chunk[i++]!;
        if (this.#headLength < 2) continue;
        const b1 = head[1]! & 0x7f;
        const need = b1 < 126 ? 2 : b1 === 126 ? 4 : 10;
        if (this.#headLength < need) continue;
        if ((head[0]! & 0x80) === 0) throw new Error('fragmented frames are not expected from these servers');
        if ((head[1]! & 0x80) !== 0) throw new Error('masked server frame');
        this.#opcode = head[0]! & 0x0f;
        this.#rsv1 = (head[0]! & 0x40) !== 0;
        this.#length = b1 < 126 ? b1 : b1 === 126 ? head.readUInt16BE(2) : head.readUInt32BE(2) * 2 ** 32 + head.readUInt32BE(6);
        this.#remaining = this.#length;
        this.#headLength = 0;
        this.#peekLength = 0;
        if (this.#remaining === 0) this.#emit();
        continue;
      }
      const take = Math.min(this.#remaining, end - i);
      if (this.#capture) this.#chunks.push(chunk.subarray(i, i + take));
      if (this.#peekLength < PEEK_BYTES) {
        const n = Math.min(PEEK_BYTES - this.#peekLength, take);
        chunk.copy(this.#peek, this.#peekLength, i, i + n);
        this.#peekLength += n;
      }
      i += take;
      this.#remaining -= take;
      if (this.#remaining === 0) this.#emit();
    }
  }

  #emit(): void {
    let payload: Buffer | null = null;
    if (this.#capture) {
      payload = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
      this.#chunks = [];
    }
    this.#remaining = -1;
    this.#onFrame(this.#opcode, payload, this.#peek, this.#length, this.#rsv1);
  }
}

/**
 * Opens a WebSocket on `url` (ws://host:port/path) and resolves with the upgraded socket
 * and any bytes that followed the handshake. With `extensions`, offers them and fails
 * unless the server accepted permessage-deflate.
 */
export function openRaw(url: string, extensions?: string): Promise<{ socket: Socket; head: Buffer }> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: target.hostname,
      port: target.port,
      path: `${target.pathname}${target.search}`,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        ...(extensions === undefined ? {} : { 'Sec-WebSocket-Extensions': extensions }),
      },
    });
    req.on('upgrade', (response, socket, head) => {
      if (response.statusCode !== 101) {
        socket.destroy();
        reject(new Error(`upgrade refused: ${response.statusCode}`));
        return;
      }
      if (extensions !== undefined && !String(response.headers['sec-websocket-extensions'] ?? '').startsWith('permessage-deflate')) {
        socket.destroy();
        reject(new Error('permessage-deflate was not negotiated'));
        return;
      }
      socket.setNoDelay(true);
      resolve({ socket, head });
    });
    req.on('response', (response) => reject(new Error(`no upgrade: HTTP ${response.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}
