/**
 * What permessage-deflate context takeover would save over batchcast's one compression
 * per batch (a fresh DEFLATE stream per message, valid for every client whatever its
 * inflater saw before). Compresses consecutive batches of the bench workloads as
 * permessage-deflate messages (sync flush, tail stripped) four ways: fresh stream with a
 * 12-bit window (batchcast's default) and a 15-bit one, and one stream kept across
 * messages (what ws and browsers do per client by default) with each window.
 *
 *   npm run build && node dist/bench/micro/context-takeover.js [--batches=200]
 */
import { Deflate, Z_SYNC_FLUSH } from 'pako';
import { makeWorkload, type Shape } from '../lib/workload.js';
import { argNum, table } from './format.js';

const BATCHES = argNum('batches', 200);

/** Bytes of each message of `bodies` compressed by one deflater kept across them (takeover) or a fresh one each. */
function compressed(bodies: Uint8Array[], windowBits: number, takeover: boolean): number {
  let total = 0;
  let deflater = new Deflate({ raw: true, level: 6, windowBits });
  for (const body of bodies) {
    if (!takeover) deflater = new Deflate({ raw: true, level: 6, windowBits });
    const chunks: Uint8Array[] = [];
    deflater.onData = (chunk: Uint8Array) => chunks.push(chunk);
    deflater.push(body, Z_SYNC_FLUSH);
    // RFC 7692: the message is the sync-flushed output less its 4-byte tail.
    total += chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0) - 4;
  }
  return total;
}

const rows: string[][] = [];
for (const shape of ['trade', 'book'] as Shape[]) {
  for (const size of [10, 100, 500]) {
    const workload = makeWorkload(shape);
    let seq = 0;
    const t0 = 1_732_550_000_000;
    const bodies = Array.from({ length: BATCHES }, () => {
      const batch = Array.from({ length: size }, () => workload.object(seq, t0 + seq++ * 0.05));
      return new TextEncoder().encode(JSON.stringify(batch));
    });
    const messages = BATCHES * size;
    const raw = bodies.reduce((sum, body) => sum + body.byteLength, 0);
    const fresh12 = compressed(bodies, 12, false);
    const fresh15 = compressed(bodies, 15, false);
    const keep15 = compressed(bodies, 15, true);
    const keep12 = compressed(bodies, 12, true);
    const perMsg = (bytes: number) => (bytes / messages).toFixed(1);
    rows.push([
      shape, String(size), perMsg(raw), perMsg(fresh12), perMsg(fresh15), perMsg(keep15), perMsg(keep12),
      `${(((fresh12 - keep15) / fresh12) * 100).toFixed(1)}%`,
    ]);
  }
}
console.log(`permessage-deflate bytes per message, level 6, ${BATCHES} consecutive batches each\n`);
console.log(table(
  ['shape', 'msgs/batch', 'raw B/msg', 'fresh, 12-bit (batchcast)', 'fresh, 15-bit', 'takeover, 15-bit (ws, browsers)', 'takeover, 12-bit', 'takeover 15-bit saves vs batchcast'],
  rows,
  2,
));
