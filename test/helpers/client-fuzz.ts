/**
 * Frames a hostile client might send a server: control messages valid, mutated or
 * random, text that is not UTF-8, binary frames, oversized frames, and raw
 * WebSocket frames that break RFC 6455 in many ways. Shared by the fuzz and chaos tests.
 */
import type { Rng } from './prng.js';

const CHANNELS = ['feed', 'a', 'b', 'c', 'x'.repeat(129), '', 'bad name', 'ünï', 'a,b', '../etc', 42, null, {}, []] as const;

/** A channel name, valid or not (wrong type, too long, bad characters, a comma). */
export function randomChannel(rng: Rng): unknown {
  return rng.chance(0.5) ? `ch${rng.int(40)}` : rng.pick(CHANNELS);
}

/** A well-formed control message, often naming invalid channels. */
export function validControl(rng: Rng): string {
  const channels = Array.from({ length: 1 + rng.int(4) }, () => randomChannel(rng));
  return JSON.stringify({ op: rng.pick(['subscribe', 'unsubscribe', 'subscribe']), channels });
}

function randomJson(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 3 ? 4 : 7)) {
    case 0: return rng.int(1e9) - 5e8;
    case 1: return rng.pick([true, false, null, 1e308, -0, 0.5]);
    case 2: return rng.bytes(rng.int(20)).toString('latin1');
    case 3: return rng.pick(['subscribe', 'unsubscribe', 'op', 'channels', '__proto__', 'constructor']);
    case 4: return Array.from({ length: rng.int(5) }, () => randomJson(rng, depth + 1));
    default: {
      const value: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--) value[String(randomJson(rng, 4))] = randomJson(rng, depth + 1);
      if (rng.chance(0.5)) value.op = rng.pick(['subscribe', 'unsubscribe', 'SUBSCRIBE', '', 7]);
      return value;
    }
  }
}

function mutate(rng: Rng, text: string): string {
  const chars = [...text];
  for (let n = 1 + rng.int(4); n > 0; n--) {
    const at = rng.int(chars.length + 1);
    switch (rng.int(6)) {
      case 0: chars.splice(at, 1); break;
      case 1: chars.splice(at, 0, String.fromCharCode(rng.int(0x3000))); break;
      case 2: chars.splice(at, 0, rng.pick(['{', '}', '[', ']', '"', ',', ':', '\\', '\u0000', '\ud800'])); break;
      case 3: chars.length = at; break;
      case 4: chars.splice(at, 0, ...chars.slice(0, rng.int(chars.length))); break;
      default: chars[at] = rng.pick(['"', "'", '0', 'e', '-']);
    }
  }
  return chars.join('');
}

/** One fuzzed message for a `ws` client: [data, binary]. */
export function wsMessage(rng: Rng, maxPayload: number): [string | Buffer, boolean] {
  const roll = rng.next();
  if (roll < 0.25) return [validControl(rng), false];
  if (roll < 0.6) return [mutate(rng, validControl(rng)), false];
  if (roll < 0.8) return [JSON.stringify(randomJson(rng)) ?? 'undefined', false];
  if (roll < 0.9) return [rng.bytes(rng.int(40)).toString('utf8'), false];
  if (roll < 0.94) return [rng.bytes(1 + rng.int(40)), false]; // text frame, likely invalid UTF-8 → 1007
  if (roll < 0.97) return [rng.bytes(rng.int(64)), true]; // binary → 1003
  return ['x'.repeat(maxPayload + 1 + rng.int(maxPayload)), false]; // → 1009
}

/** A client-to-server WebSocket frame, often broken. */
export function rawFrame(rng: Rng, maxPayload: number): Buffer {
  const roll = rng.next();
  let opcode = 0x1;
  let payload: Buffer = Buffer.from(rng.chance(0.5) ? validControl(rng) : mutate(rng, validControl(rng)));
  let fin = true;
  let rsv = 0;
  let masked = true;
  let declared: number | null = null;
  if (roll < 0.45) {
    // a well-formed text frame
  } else if (roll < 0.5) opcode = 0x2;
  else if (roll < 0.55) masked = false;
  else if (roll < 0.6) rsv = 1 + rng.int(7);
  else if (roll < 0.65) opcode = rng.pick([0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf]);
  else if (roll < 0.7) opcode = 0x0; // continuation with nothing to continue
  else if (roll < 0.75) fin = false; // a fragment; the next frame may or may not continue it
  else if (roll < 0.8) {
    opcode = 0x9; // ping, sometimes too long for a control frame
    payload = rng.bytes(rng.chance(0.7) ? rng.int(126) : 126 + rng.int(200));
  } else if (roll < 0.83) {
    opcode = 0x8; // close with a random code (often invalid) and reason
    payload = Buffer.concat([Buffer.from([rng.int(256), rng.int(256)]), rng.bytes(rng.int(10))]);
  } else if (roll < 0.86) declared = maxPayload + 1 + rng.int(1 << 20); // oversized length
  else if (roll < 0.88) declared = 2 ** 53 + rng.int(1000); // absurd 64-bit length
  else if (roll < 0.93) payload = rng.bytes(rng.int(200)); // invalid UTF-8 text
  else return rng.bytes(1 + rng.int(64)); // not a frame at all
  const length = declared ?? payload.length;
  const header: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  const maskBit = masked ? 0x80 : 0;
  if (length < 126) header.push(maskBit | length);
  else if (length < 65536) header.push(maskBit | 126, length >> 8, length & 0xff);
  else {
    header.push(maskBit | 127);
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(length));
    header.push(...big);
  }
  const key = rng.bytes(4);
  const body = Buffer.from(payload);
  if (masked) for (let i = 0; i < body.length; i++) body[i]! ^= key[i % 4]!;
  return Buffer.concat([Buffer.from(header), masked ? key : Buffer.alloc(0), body]);
}
