/**
 * A raw DEFLATE inflater on pako, for browsers (Node has node:zlib). Its own module so
 * that browser code loads pako only when an envelope-compressed frame arrives.
 */
import { Inflate as PakoInflate } from 'pako';
import type { Inflate } from './decode.js';

/** pako, stopped as soon as its output passes `maxBytes`. */
export const pakoInflate: Inflate = (body, maxBytes) => {
  const inflator = new PakoInflate({ raw: true });
  const chunks: Uint8Array[] = [];
  let total = 0;
  inflator.onData = (chunk) => {
    total += chunk.byteLength;
    if (total > maxBytes) throw new Error(`inflated body passes ${maxBytes} bytes`);
    chunks.push(chunk);
  };
  inflator.push(body, true);
  if (inflator.err !== 0) throw new Error(inflator.msg || `inflate error ${inflator.err}`);
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
};

