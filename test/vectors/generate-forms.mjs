// Regenerates the wire-form test vectors from the built encoder and layout:
// `npm run build && node test/vectors/generate-forms.mjs`. Each vector in forms/ is <name>.hex (one
// WebSocket message payload, as the server writes it) and <name>.json (its opcode, RSV1, the window
// a permessage-deflate receiver needs, and what it reads as). docs/protocol.md describes the forms.
import { mkdirSync, writeFileSync } from 'node:fs';
import { encodeBatch } from '../../dist/src/encode/encode-batch.js';
import { formKey } from '../../dist/src/fanout/forms.js';
import { BatchFrames } from '../../dist/src/fanout/layout.js';
import { writeFirstSeq } from '../../dist/src/protocol/envelope.js';
import { wsPayloadOffset } from '../../dist/src/protocol/ws-frame.js';

const dir = new URL('./forms/', import.meta.url);
mkdirSync(dir, { recursive: true });
const ticks = Array.from({ length: 40 }, (_, i) => ({ s: 'ETH-USD', p: 2300 + i / 4, q: i % 5, side: i % 2 ? 'b' : 'a' }));
const base = { codec: 'json', compressionThreshold: 1000, compressionLevel: 6, compressionWindowBits: 12, maxMessageBytes: 1 << 20, validateSerialized: true, serialized: null };

function frames(channel, items, firstSeq, smallWindowBits) {
  const result = encodeBatch({ ...base, channel, items, smallWindowBits, adler32: true });
  writeFirstSeq(new DataView(result.frame), result.envelopeOffset, firstSeq);
  const batch = { firstSeq, count: result.count, frame: Buffer.from(result.frame), deflate: result.deflate };
  return new BatchFrames(channel, batch, result.small, { formsLaidOut: 0, bodiesInflated: 0 });
}

function write(name, frame, reads) {
  const offset = wsPayloadOffset(frame);
  writeFileSync(new URL(`${name}.hex`, dir), `${frame.subarray(offset).toString('hex')}\n`);
  const meta = { opcode: frame[0] & 0x0f, rsv1: (frame[0] & 0x40) !== 0, ...reads };
  writeFileSync(new URL(`${name}.json`, dir), `${JSON.stringify(meta, null, 2)}\n`);
}

const big = frames('ticker.ETH-USD', ticks, 1000, 10);
const envelope = { kind: 'batch', channel: 'ticker.ETH-USD', firstSeq: 1000, codec: 'json', compressed: false, messages: ticks };
write('batchcast-pmd', big.for(formKey('batchcast', 15)), { windowBits: 12, envelope });
write('batchcast-pmd-window10', big.for(formKey('batchcast', 10)), { windowBits: 10, envelope });
write('batchcast-pmd-window9', big.for(formKey('batchcast', 9)), { windowBits: 0, envelope });
const json = { channel: 'ticker.ETH-USD', seq: 1000, messages: ticks };
write('json-plain', big.for(formKey('json', 0)), { windowBits: 0, json });
write('json-pmd', big.for(formKey('json', 15)), { windowBits: 12, json });
write('seed-zlib', big.for(formKey('seed', 0)), { windowBits: 0, seed: ticks });
const small = frames('greetings', [{ hello: 'world' }, 42], 7, 0);
write('seed-plain', small.for(formKey('seed', 0)), { windowBits: 0, seed: [{ hello: 'world' }, 42] });
write('json-small-pmd', small.for(formKey('json', 15)), { windowBits: 0, json: { channel: 'greetings', seq: 7, messages: [{ hello: 'world' }, 42] } });
console.log('form vectors written');
