/**
 * A WebSocket client on a bare TCP socket, for tests that must see the wire: it sends
 * the upgrade with whatever `Sec-WebSocket-Extensions` offer it is given (well-formed
 * or not), and hands over each server frame with its RSV1 bit and payload as sent.
 * It can send masked text frames, compressed (RSV1) or not.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { constants, deflateRawSync } from 'node:zlib';
import { Inflate as PakoInflate, Z_SYNC_FLUSH } from 'pako';

/** One frame from the server. */
export interface WireFrame {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  payload: Buffer;
}

/** The outcome of an upgrade: accepted (with its negotiated extensions) or refused with an HTTP status. */
export interface Upgrade {
  status: number;
  /** The `Sec-WebSocket-Extensions` header of the 101 response ('' when none). */
  extensions: string;
  /** The response body of a refusal. */
  body: string;
}

export class WireClient {
  readonly frames: WireFrame[] = [];
  readonly #socket: Socket;
  #buffer = Buffer.alloc(0);
  #upgraded = false;
  readonly upgrade: Promise<Upgrade>;

  /** Connects to `url` (ws://host:port/path?query) and sends the upgrade with `extensions` (null: no header). */
  constructor(url: string, extensions: string | null) {
    const { hostname, port, pathname, search } = new URL(url);
    this.#socket = connect(Number(port), hostname);
    this.#socket.on('error', () => {});
    const key = randomBytes(16).toString('base64');
    const headers = [
      `GET ${pathname}${search} HTTP/1.1`, `Host: ${hostname}:${port}`, 'Upgrade: websocket', 'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13', ...(extensions === null ? [] : [`Sec-WebSocket-Extensions: ${extensions}`]),
    ];
    this.#socket.write(`${headers.join('\r\n')}\r\n\r\n`);
    this.upgrade = new Promise((resolve, reject) => {
      let refusal = 0;
      const onData = (chunk: Buffer) => {
        this.#buffer = Buffer.concat([this.#buffer, chunk]);
        if (this.#upgraded) return this.#parse();
        if (refusal !== 0) return;
        const end = this.#buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = this.#buffer.subarray(0, end).toString('latin1');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
        const extensionsHeader = /^sec-websocket-extensions: *(.*)$/im.exec(head)?.[1] ?? '';
        this.#buffer = this.#buffer.subarray(end + 4);
        if (status !== 101) {
          refusal = status; // the body follows; the server closes once it is sent
          return;
        }
        this.#upgraded = true;
        resolve({ status, extensions: extensionsHeader.trim(), body: '' });
        this.#parse();
      };
      this.#socket.on('data', onData);
      this.#socket.once('close', () => {
        if (!this.#upgraded) resolve({ status: refusal, extensions: '', body: this.#buffer.toString() });
      });
      this.#socket.once('error', reject);
    });
  }

  /** Sends a masked text frame; `compress` deflates it as a permessage-deflate message (RSV1). */
  sendText(text: string, compress = false): void {
    let payload = Buffer.from(text);
    if (compress) {
      const flushed = deflateRawSync(payload, { finishFlush: constants.Z_SYNC_FLUSH });
      payload = flushed.subarray(0, flushed.byteLength - 4);
    }
    const mask = randomBytes(4);
    const length = payload.byteLength;
    const head = length < 126 ? Buffer.from([0x81 | (compress ? 0x40 : 0), 0x80 | length]) : Buffer.alloc(length < 65536 ? 4 : 10);
    if (length >= 126) {
      head[0] = 0x81 | (compress ? 0x40 : 0);
      if (length < 65536) {
        head[1] = 0x80 | 126;
        head.writeUInt16BE(length, 2);
      } else {
        head[1] = 0x80 | 127;
        head.writeBigUInt64BE(BigInt(length), 2);
      }
    }
    const masked = Buffer.from(payload);
    for (let i = 0; i < masked.byteLength; i++) masked[i]! ^= mask[i & 3]!;
    this.#socket.write(Buffer.concat([head, mask, masked]));
  }

  /** Resolves when the server closes the TCP connection. */
  closed(): Promise<unknown> {
    return this.#socket.destroyed ? Promise.resolve() : once(this.#socket, 'close');
  }

  close(): void {
    this.#socket.destroy();
  }

  #parse(): void {
    for (;;) {
      const b = this.#buffer;
      if (b.byteLength < 2) return;
      const short = b[1]! & 0x7f;
      const headerLength = short < 126 ? 2 : short === 126 ? 4 : 10;
      if (b.byteLength < headerLength) return;
      const length = short < 126 ? short : short === 126 ? b.readUInt16BE(2) : Number(b.readBigUInt64BE(2));
      if (b.byteLength < headerLength + length) return;
      this.frames.push({ fin: (b[0]! & 0x80) !== 0, rsv1: (b[0]! & 0x40) !== 0, opcode: b[0]! & 0x0f, payload: Buffer.from(b.subarray(headerLength, headerLength + length)) });
      this.#buffer = b.subarray(headerLength + length);
    }
  }
}

/**
 * Reads a permessage-deflate message as a receiver with `windowBits` would (RFC 7692
 * 7.2.2), keeping only its window of history (pako writing 256-byte chunks), so a
 * message that reaches further back than the window fails.
 */
export function inflateMessage(payload: Uint8Array, windowBits: number): Buffer {
  const inflater = new PakoInflate({ raw: true, windowBits, chunkSize: 256 });
  const chunks: Uint8Array[] = [];
  inflater.onData = (chunk: Uint8Array) => chunks.push(chunk);
  inflater.push(Buffer.concat([payload, Buffer.from([0x00, 0x00, 0xff, 0xff])]), Z_SYNC_FLUSH);
  if (inflater.err !== 0) throw new Error(`inflate (window ${windowBits}): ${inflater.msg}`);
  return Buffer.concat(chunks);
}
