/**
 * Frames a hostile or broken server might send a client: random bytes, valid frames
 * (from the test vectors and built here), valid frames mutated (bits flipped, cut,
 * extended, header fields overwritten), valid headers over random bodies, notices
 * that are not objects, and legacy text frames with awkward values.
 */
import { deflateRawSync } from 'node:zlib';
import { Packr } from 'msgpackr';
import { CODEC_IDS, FLAG_COMPRESSED, KIND_BATCH, KIND_NOTICE, envelopeHeaderLength, writeEnvelopeHeader } from '../../src/protocol/envelope.js';
import type { Rng } from '../helpers/prng.js';
import { loadVectors } from '../helpers/vectors.js';
import { noticeEnvelope } from './frames.js';

const packr = new Packr({ useRecords: false });
const VECTORS = loadVectors().map((vector) => new Uint8Array(vector.bytes));

function randomValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 2 ? 5 : 7)) {
    case 0: return rng.int(2 ** 31) - 2 ** 30;
    case 1: return rng.pick([true, false, null, 1.5, -0, 1e300, 'x', '', '__proto__', 2 ** 60]);
    case 2: return rng.bytes(rng.int(12)).toString('latin1');
    case 3: return { toString: rng.int(3), valueOf: rng.pick([null, 1, {}]) };
    case 4: return rng.pick<unknown>([JSON.parse('{"__proto__":{"polluted":true}}'), { constructor: { prototype: 1 } }, []]);
    case 5: return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1));
    default: {
      const value: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--) value[rng.pick(['a', 'op', 'channel', 'messages', 'code', '__proto__', 'toString'])] = randomValue(rng, depth + 1);
      return value;
    }
  }
}

/** A well-formed batch envelope (JSON or msgpack, compressed or not), sometimes with a lying count. */
function batch(rng: Rng): Uint8Array {
  const codec = rng.chance(0.5) ? 'json' : 'msgpack';
  const messages = Array.from({ length: rng.int(6) }, () => randomValue(rng));
  let body: Uint8Array = codec === 'json' ? Buffer.from(JSON.stringify(messages)) : packr.pack(messages);
  const compressed = rng.chance(0.4);
  if (compressed) body = deflateRawSync(body);
  const channel = rng.pick(['c', 'ticker.BTC-USD', 'a/b:c@d-e_f', 'x'.repeat(128)]);
  const count = rng.chance(0.85) ? messages.length : rng.int(2 ** 32);
  const frame = new Uint8Array(envelopeHeaderLength(channel) + body.byteLength);
  const offset = writeEnvelopeHeader(frame, 0, KIND_BATCH, codec, compressed, count, rng.chance(0.9) ? rng.int(1e6) : 0, channel);
  frame.set(body, offset);
  if (rng.chance(0.1)) new DataView(frame.buffer).setUint32(8, 0x00200000 + rng.int(0xffe00000)); // seq past 2^53
  return frame;
}

function notice(rng: Rng): Uint8Array {
  const body = rng.pick([
    () => JSON.stringify({ op: 'subscribed', channels: ['a'] }),
    () => JSON.stringify(randomValue(rng)),
    () => rng.pick(['5', '"op"', 'null', '[]', '[{"op":"x"}]', '{"op":5}', '{"op":"x"', '', '{"op":"error","code":{"toString":1}}']),
    () => rng.bytes(rng.int(30)).toString('latin1'),
  ])();
  return noticeEnvelope(body, rng.chance(0.8) ? '' : rng.pick(['c', 'bad name', 'ü']));
}

/** Overwrites header fields of a valid frame with random values. */
function corruptHeader(rng: Rng, frame: Uint8Array): Uint8Array {
  const copy = new Uint8Array(frame);
  const view = new DataView(copy.buffer);
  switch (rng.int(6)) {
    case 0: copy[2] = rng.pick([0, KIND_BATCH, KIND_NOTICE, 3, 255]); break;
    case 1: copy[3] = rng.int(256); break;
    case 2: copy[3] = (copy[3]! & ~FLAG_COMPRESSED) | (rng.chance(0.5) ? FLAG_COMPRESSED : 0) | (rng.pick(Object.values(CODEC_IDS)) << 4); break;
    case 3: if (copy.byteLength >= 8) view.setUint32(4, rng.int(2 ** 32)); break;
    case 4: if (copy.byteLength >= 18) view.setUint16(16, rng.int(65536)); break;
    default: copy[1] = rng.int(4);
  }
  return copy;
}

function mutate(rng: Rng, frame: Uint8Array): Uint8Array {
  let bytes = Buffer.from(frame);
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const at = rng.int(bytes.length + 1);
    switch (rng.int(5)) {
      case 0: if (at < bytes.length) bytes[at] = bytes[at]! ^ (1 << rng.int(8)); break;
      case 1: bytes = bytes.subarray(0, at); break;
      case 2: bytes = Buffer.concat([bytes.subarray(0, at), rng.bytes(1 + rng.int(16)), bytes.subarray(at)]); break;
      case 3: bytes = Buffer.concat([bytes, bytes.subarray(0, rng.int(bytes.length + 1))]); break;
      default: if (at < bytes.length) bytes[at] = rng.int(256);
    }
  }
  return new Uint8Array(bytes);
}

/** One binary frame a hostile server might send. */
export function hostileFrame(rng: Rng): Uint8Array {
  const roll = rng.next();
  if (roll < 0.15) return new Uint8Array(rng.bytes(rng.int(rng.chance(0.5) ? 20 : 200)));
  const valid = rng.chance(0.2) ? rng.pick(VECTORS) : rng.chance(0.7) ? batch(rng) : notice(rng);
  if (roll < 0.4) return valid;
  if (roll < 0.7) return mutate(rng, valid);
  if (roll < 0.9) return corruptHeader(rng, valid);
  // A valid header over a random body.
  const header = valid.subarray(0, Math.min(valid.byteLength, 18 + (valid[17] ?? 0)));
  return new Uint8Array(Buffer.concat([header, rng.bytes(rng.int(100))]));
}

/** One text frame (the legacy JSON format) a hostile server might send. */
export function hostileText(rng: Rng): string {
  return rng.pick([
    () => JSON.stringify(randomValue(rng)),
    () => JSON.stringify({ channel: randomValue(rng), messages: Array.from({ length: rng.int(3) }, () => randomValue(rng)) }),
    () => '{"channel":{"toString":1},"messages":[1]}',
    () => rng.bytes(rng.int(40)).toString('utf8'),
  ])();
}
