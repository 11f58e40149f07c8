// Regenerates the protocol test vectors from the built encoder: `npm run build && node test/vectors/generate.mjs`.
// Each vector is <name>.hex (one WebSocket message payload: the envelope) and <name>.json (what it decodes to).
// Only rerun when the protocol changes: the files are the contract clients are tested against.
import { writeFileSync } from 'node:fs';
import { encodeBatch } from '../../dist/src/encode/encode-batch.js';
import { writeFirstSeq } from '../../dist/src/protocol/envelope.js';
import { noticeFrame } from '../../dist/src/fanout/notice.js';
import { wsPayloadOffset } from '../../dist/src/protocol/ws-frame.js';

const dir = new URL('./', import.meta.url);
const ticks = Array.from({ length: 40 }, (_, i) => ({ s: 'ETH-USD', p: 2300 + i / 4, q: i % 5, side: i % 2 ? 'b' : 'a' }));
const base = { compressionThreshold: 1000, compressionLevel: 6, maxMessageBytes: 1 << 20, validateSerialized: true };

function write(name, frame, offset, expected) {
  writeFileSync(new URL(`${name}.hex`, dir), `${Buffer.from(frame).subarray(offset).toString('hex')}\n`);
  writeFileSync(new URL(`${name}.json`, dir), `${JSON.stringify(expected, null, 2)}\n`);
}

function batch(name, codec, items, firstSeq, channel, compressed) {
  const result = encodeBatch({ ...base, codec, channel, items, serialized: null });
  if (result.compressed !== compressed) throw new Error(`${name}: expected compressed=${compressed}`);
  writeFirstSeq(new DataView(result.frame), result.envelopeOffset, firstSeq);
  write(name, result.frame, result.envelopeOffset, { kind: 'batch', channel, firstSeq, codec, compressed, messages: items });
}

batch('json-plain', 'json', [{ hello: 'world' }, 42, 'text', null, [1, 2]], 7, 'greetings', false);
batch('json-deflate', 'json', ticks, 1000, 'ticker.ETH-USD', true);
batch('msgpack-plain', 'msgpack', [{ a: 1, b: [true, false] }, 'x', -3.5], 2 ** 40 + 5, 'm', false);
batch('msgpack-deflate', 'msgpack', ticks, 0, 'ticker.ETH-USD', true);
const recovery = { op: 'recovery', channel: 'trades', status: 'evicted', epoch: 'x9QdV2aK', since: 11000, from: 12000, to: 13500, missed: 1000 };
const notice = noticeFrame(recovery);
write('notice-recovery', notice, wsPayloadOffset(notice), { kind: 'notice', channel: 'trades', notice: recovery });
console.log('vectors written');
