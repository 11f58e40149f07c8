/**
 * `batchcast tail` (a child process) connected to a hostile server: thousands of
 * random, mutated and awkward frames, binary and text. It reports them as errors
 * and never crashes: after them it still prints the valid messages that follow and
 * exits 0 at the end of --duration.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { fuzzSeed, prng } from '../helpers/prng.js';
import { batchEnvelope } from './frames.js';
import { hostileFrame, hostileText } from './hostile-frames.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const SEED = fuzzSeed();
const HOSTILE = 3000;
let wss: WebSocketServer | undefined;
afterEach(() => wss?.close());

describe('tail against a hostile server', () => {
  it(`survives ${HOSTILE} fuzzed frames and prints the valid ones after them (seed ${SEED})`, async () => {
    const rng = prng(SEED);
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await once(wss, 'listening');
    wss.on('connection', (ws) => {
      for (let i = 0; i < HOSTILE; i++) {
        if (rng.chance(0.3)) ws.send(hostileText(rng));
        else ws.send(hostileFrame(rng), { binary: true });
      }
      for (let seq = 0; seq < 100; seq += 10) ws.send(batchEnvelope('final', seq, Array.from({ length: 10 }, (_, i) => ({ n: seq + i }))));
    });
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`;
    const child = spawn(process.execPath, [CLI, 'tail', url, 'final', '--messages', '--json', '--duration', '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];

    // Every line on stderr is one of tail's own reports; a crash would add a stack trace.
    const foreign = stderr.split('\n').filter((line) => line !== '' && !line.startsWith('error: ') && !line.startsWith('server: '));
    expect({ code, signal, foreign: foreign.slice(0, 5) }).toEqual({ code: 0, signal: null, foreign: [] });
    const finals = stdout.split('\n').filter((line) => line.startsWith('{"channel":"final"')).map((line) => JSON.parse(line) as { seq: number; data: { n: number } });
    expect(finals.map((m) => m.seq)).toEqual([...Array(100).keys()]);
    expect(finals.map((m) => m.data.n)).toEqual([...Array(100).keys()]);
    expect(stderr).toMatch(/error: /); // the hostile frames were reported
  }, 30_000);
});
