/**
 * Fuzz: over 10 000 random and mutated frames (text and binary, through `ws` and as
 * raw bytes on TCP, from several clients that reconnect whenever the server closes
 * them) while a healthy client listens to a steady feed. Afterwards the healthy
 * client must have every message in order, the server must have no leftover
 * connections or subscriptions, and it must never have closed anyone with 1011.
 * Seeded: a failure names the seed that reproduces it (FUZZ_SEED=...).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { fuzzSeed, prng, type Rng } from '../helpers/prng.js';
import { Resources, sleep } from './support.js';

const resources = new Resources();
afterEach(() => resources.cleanup());

const SEED = fuzzSeed();
const TARGET_FRAMES = 20_000;
const MAX_PAYLOAD = 4096;
/** Close codes a fuzzed client may legitimately get; 1011 (server error) is not among them. */
const EXPECTED_CLOSES = new Set([1002, 1003, 1005, 1006, 1007, 1009, 1000]);


const CHANNELS = ['feed', 'a', 'b', 'c', 'x'.repeat(129), '', 'bad name', 'ünï', 'a,b', '../etc', 42, null, {}, []] as const;

function randomChannel(rng: Rng): unknown {
  return rng.chance(0.5) ? `ch${rng.int(40)}` : rng.pick(CHANNELS);
}

function validControl(rng: Rng): string {
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
function wsMessage(rng: Rng): [string | Buffer, boolean] {
  const roll = rng.next();
  if (roll < 0.25) return [validControl(rng), false];
  if (roll < 0.6) return [mutate(rng, validControl(rng)), false];
  if (roll < 0.8) return [JSON.stringify(randomJson(rng)) ?? 'undefined', false];
  if (roll < 0.9) return [rng.bytes(rng.int(40)).toString('utf8'), false];
  if (roll < 0.94) return [rng.bytes(1 + rng.int(40)), false]; // text frame, likely invalid UTF-8 → 1007
  if (roll < 0.97) return [rng.bytes(rng.int(64)), true]; // binary → 1003
  return ['x'.repeat(MAX_PAYLOAD + 1 + rng.int(MAX_PAYLOAD)), false]; // → 1009
}

/** A client-to-server WebSocket frame, often broken. */
function rawFrame(rng: Rng): Buffer {
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
  } else if (roll < 0.86) declared = MAX_PAYLOAD + 1 + rng.int(1 << 20); // oversized length
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

describe('fuzz', () => {
  it(`survives ${TARGET_FRAMES} random and mutated client frames (seed ${SEED})`, async () => {
    const rng = prng(SEED);
    const { broadcaster, url } = await resources.start({ maxPayload: MAX_PAYLOAD, maxSubscriptionsPerClient: 20, batchSize: 100, batchDelayMs: 5 });
    const port = broadcaster.address()!.port;
    const healthy = await resources.client(url, ['feed']);

    // A steady feed for the healthy client, on channels the fuzzers also (un)subscribe to.
    let published = 0;
    const feed = setInterval(() => {
      for (let i = 0; i < 20; i++) broadcaster.publish('feed', { n: published++ });
      broadcaster.publish(rng.pick(['a', 'b', 'c', 'ch1', 'ch2']), { noise: true });
    }, 5);

    let sent = 0;
    const closeCodes = new Map<number, number>();
    const live = new Set<WebSocket | Socket>();
    let errorNotices = 0;
    let rawSessions = 0;

    async function wsFuzzer(): Promise<void> {
      while (sent < TARGET_FRAMES) {
        const query = rng.chance(0.3) ? `?channels=${encodeURIComponent([randomChannel(rng), randomChannel(rng)].join(','))}` : '';
        const ws = new WebSocket(`${url}${query}`);
        live.add(ws);
        ws.on('error', () => {});
        ws.on('message', (data: Buffer) => {
          // Error notices carry "op":"error" in their JSON body.
          if (data.includes('"op":"error"')) errorNotices++;
        });
        const done = once(ws, 'close').then(([code]) => {
          closeCodes.set(code as number, (closeCodes.get(code as number) ?? 0) + 1);
          live.delete(ws);
        });
        const opened = await Promise.race([once(ws, 'open').then(() => true), done.then(() => false)]);
        if (!opened) continue;
        for (let burst = 0; ws.readyState === WebSocket.OPEN && sent < TARGET_FRAMES && burst < 1 + rng.int(8); burst++) {
          for (let i = 0; i < 25 && ws.readyState === WebSocket.OPEN; i++) {
            const [data, binary] = wsMessage(rng);
            ws.send(data, { binary });
            sent++;
          }
          await tick();
        }
        if (ws.readyState === WebSocket.OPEN && rng.chance(0.5)) ws.close(1000);
        else if (ws.readyState === WebSocket.OPEN) ws.terminate();
        await done;
      }
    }

    async function rawFuzzer(): Promise<void> {
      while (sent < TARGET_FRAMES) {
        const socket = connect(port, '127.0.0.1');
        live.add(socket);
        socket.on('error', () => {});
        const gone = once(socket, 'close').then(() => live.delete(socket));
        await Promise.race([once(socket, 'connect'), gone]);
        if (socket.destroyed) continue;
        const key = randomBytes(16).toString('base64');
        const broken = rng.chance(0.05);
        socket.write(
          `GET /?channels=feed,${String(randomChannel(rng))} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${broken ? 'short' : key}\r\nSec-WebSocket-Version: ${broken ? 8 : 13}\r\n\r\n`,
        );
        let head = '';
        const upgraded = await new Promise<boolean>((resolve) => {
          const onData = (chunk: Buffer) => {
            head += chunk.toString('latin1');
            if (head.includes('\r\n\r\n')) {
              socket.off('data', onData);
              socket.resume();
              resolve(head.startsWith('HTTP/1.1 101'));
            }
          };
          socket.on('data', onData);
          void gone.then(() => resolve(false));
        });
        if (upgraded) {
          rawSessions++;
          for (let i = 0; i < 1 + rng.int(40) && !socket.destroyed && sent < TARGET_FRAMES; i++) {
            socket.write(rawFrame(rng));
            sent++;
            if (i % 5 === 4) await tick();
          }
          await sleep(rng.int(3));
        }
        socket.destroy();
        await gone;
      }
    }

    const started = Date.now();
    await Promise.all([wsFuzzer(), wsFuzzer(), wsFuzzer(), wsFuzzer(), rawFuzzer(), rawFuzzer()]);
    const fuzzMs = Date.now() - started;
    clearInterval(feed);

    // The healthy client got every message of the feed, in order, sequence numbers contiguous.
    await healthy.waitFor(() => healthy.messages.length === published, 10_000, `${published} feed messages`);
    expect(healthy.messages.map((m) => m.seq)).toEqual([...Array(published).keys()]);
    expect(healthy.messages.map((m) => (m.data as { n: number }).n)).toEqual([...Array(published).keys()]);
    expect(healthy.notices.filter((n) => n.op === 'error')).toEqual([]);
    expect(healthy.ws.readyState).toBe(WebSocket.OPEN);

    // The fuzz did reach the server's error paths, and never hit an internal error.
    expect(sent).toBeGreaterThanOrEqual(TARGET_FRAMES);
    expect(errorNotices).toBeGreaterThan(500);
    expect(rawSessions).toBeGreaterThan(50);
    for (const code of closeCodes.keys()) expect(EXPECTED_CLOSES, `unexpected close code ${code} (seed ${SEED})`).toContain(code);
    expect(closeCodes.get(1003) ?? 0).toBeGreaterThan(0);
    expect(closeCodes.get(1009) ?? 0).toBeGreaterThan(0);

    // Nothing left behind: only the healthy client, only its subscription.
    await healthy.waitFor(() => broadcaster.stats().connections === 1, 5_000, 'fuzz connections to be gone');
    expect(live.size).toBe(0);
    expect(broadcaster.stats().subscribers).toEqual({ feed: 1 });

    // And a newcomer is served as usual.
    const late = await resources.client(url, ['feed']);
    broadcaster.publish('feed', { n: published });
    await late.waitFor(() => late.messages.length === 1, 5_000, 'delivery to a new client');
    expect(late.messages[0]).toMatchObject({ seq: published, data: { n: published } });
    console.log(`fuzz seed ${SEED}: ${sent} frames in ${fuzzMs} ms, ${broadcaster.stats().connectionsTotal} connections, closes ${JSON.stringify([...closeCodes])}, ${errorNotices} error notices, ${rawSessions} raw sessions`);
  });
});
