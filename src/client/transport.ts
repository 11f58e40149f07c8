/**
 * The client's transport: the WebSocket it needs (the browser's own, or ws in Node
 * without permessage-deflate), and how it tells that a frame needs an inflater. Browser-safe
 * (ws is imported only in Node).
 */
import type { Inflate } from '../protocol/decode.js';
import { FLAG_COMPRESSED, MAGIC } from '../protocol/envelope.js';

/** The part of a WebSocket (browser or ws) the client uses. */
export interface MinimalWebSocket {
  binaryType: string;
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
}
export type WebSocketConstructor = new (url: string) => MinimalWebSocket;

/** Running in Node (not a browser). */
export const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** True for a binary frame that is an envelope with a compressed body (flags bit 0), whatever else it holds. */
export function isCompressedEnvelope(data: unknown): boolean {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data, 0, Math.min(4, data.byteLength)) : data instanceof Uint8Array ? data : null;
  return bytes !== null && bytes.byteLength >= 4 && bytes[0] === MAGIC && (bytes[3]! & FLAG_COMPRESSED) !== 0;
}

/** An inflater for when none could be loaded: each compressed frame becomes an error event. */
export const FAILING_INFLATE: Inflate = () => {
  throw new Error('no inflater could be loaded');
};

/**
 * ws in Node, without permessage-deflate: envelopes arrive compressed once by the server's
 * worker and node:zlib inflates them here, synchronously, in order (ws would inflate on
 * the libuv pool and keep a zlib context per connection).
 */
export async function nodeWebSocket(): Promise<WebSocketConstructor> {
  const { WebSocket } = await import('ws');
  return class extends WebSocket {
    constructor(url: string) {
      super(url, { perMessageDeflate: false });
    }
  } as unknown as WebSocketConstructor;
}

