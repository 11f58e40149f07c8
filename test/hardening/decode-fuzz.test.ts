/**
 * decodeFrame against a hostile server: for any bytes it returns a well-formed
 * DecodedFrame or throws ProtocolError, nothing else. 100 000 frames, seeded; the
 * seed is printed and FUZZ_SEED=<seed> reproduces a run.
 */
import { inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/errors.js';
import { decodeFrame, type Inflate } from '../../src/protocol/decode.js';
import { pakoInflate } from '../../src/protocol/pako-inflate.js';
import { fuzzSeed, prng } from '../helpers/prng.js';
import { hostileFrame } from './hostile-frames.js';

const SEED = fuzzSeed();
const FRAMES = 100_000;
const MAX_BODY = 1 << 20;
const zlibInflate: Inflate = (body, maxBytes) => inflateRawSync(body, { maxOutputLength: maxBytes });

describe('decodeFrame fuzz', () => {
  it(`throws ProtocolError and nothing else for ${FRAMES} random and mutated frames (seed ${SEED})`, () => {
    console.log(`decode fuzz seed ${SEED} (FUZZ_SEED=${SEED} reproduces this run)`);
    const rng = prng(SEED);
    const outcomes = { batch: 0, notice: 0, protocolError: 0 };
    for (let i = 0; i < FRAMES; i++) {
      const frame = hostileFrame(rng);
      const inflate = i % 2 === 0 ? pakoInflate : zlibInflate;
      let decoded;
      try {
        decoded = decodeFrame(frame, inflate, MAX_BODY);
      } catch (error) {
        if (error instanceof ProtocolError) {
          outcomes.protocolError++;
          continue;
        }
        throw new Error(`frame #${i} (seed ${SEED}) threw ${String(error)} instead of ProtocolError; bytes ${Buffer.from(frame).toString('hex').slice(0, 400)}`);
      }
      if (decoded.kind === 'batch') {
        if (!Array.isArray(decoded.messages) || !Number.isSafeInteger(decoded.firstSeq + decoded.messages.length)) {
          throw new Error(`frame #${i} (seed ${SEED}) decoded to a malformed batch`);
        }
        outcomes.batch++;
      } else {
        if (decoded.notice === null || typeof decoded.notice !== 'object' || typeof decoded.notice.op !== 'string') {
          throw new Error(`frame #${i} (seed ${SEED}) decoded to a notice that is not an object with an op: ${JSON.stringify(decoded.notice)}`);
        }
        outcomes.notice++;
      }
    }
    console.log(`decode fuzz outcomes: ${JSON.stringify(outcomes)}`);
    // The generator reaches every outcome: valid batches and notices, and many kinds of refusal.
    expect(outcomes.batch).toBeGreaterThan(FRAMES * 0.1);
    expect(outcomes.notice).toBeGreaterThan(FRAMES * 0.005);
    expect(outcomes.protocolError).toBeGreaterThan(FRAMES * 0.3);
  }, 120_000);
});
