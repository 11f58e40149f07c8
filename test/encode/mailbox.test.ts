/**
 * Worker mailboxes (src/encode/mailbox.ts, workers/serve.ts), on real Piscina threads: a
 * worker that had a batch lately polls for the next one, so handing it one does not wake
 * it; an idle worker parks and the next batch wakes it; `workerPollMs: 0` wakes it for
 * every batch; batches that queue are taken at once, not a poll later. The pool never
 * keeps the process alive while idle, and always while a batch is out (real child processes).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { EncoderPool } from '../../src/encode/pool.js';
import type { EncodeTask } from '../../src/encode/task.js';
import { readEnvelopeHeader, type EnvelopeHeader } from '../../src/protocol/envelope.js';

const pools: EncoderPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.destroy()));
});

function pool(workerPollMs: number, maxQueue = 8): EncoderPool {
  const created = new EncoderPool({ poolSize: 1, maxQueue, encodeTimeoutMs: 30_000, workerPollMs });
  pools.push(created);
  return created;
}

function task(seq: number): EncodeTask {
  return {
    channel: 'ticks', codec: 'json', compressionThreshold: 1 << 20, compressionLevel: 6, compressionWindowBits: 15, maxMessageBytes: 1 << 20,
    validateSerialized: true, smallWindowBits: 0, adler32: false, items: [{ seq }, { seq: seq + 0.5 }], serialized: null,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Encodes `count` batches `gapMs` apart; returns how many had to wake their worker, and checks every frame. */
async function run(encoder: EncoderPool, count: number, gapMs: number): Promise<number> {
  const before = encoder.snapshot().wakeups;
  for (let i = 0; i < count; i++) {
    await sleep(gapMs);
    const result = await encoder.encode(task(i));
    const envelope = new Uint8Array(result.frame, result.envelopeOffset);
    const header = readEnvelopeHeader(envelope) as EnvelopeHeader;
    expect(JSON.parse(Buffer.from(envelope.subarray(header.bodyOffset)).toString())).toEqual([{ seq: i }, { seq: i + 0.5 }]);
  }
  return encoder.snapshot().wakeups - before;
}

describe('worker mailboxes', () => {
  it('a worker busy lately finds each batch on its own poll: nobody wakes it', async () => {
    const encoder = pool(1);
    await encoder.encode(task(-1));
    // 2 ms apart, far inside the 100 ms a worker keeps polling after a batch.
    expect(await run(encoder, 20, 2)).toBeLessThanOrEqual(2);
    // None of them waited for the worker, so none was worth nudging it for.
    expect(encoder.snapshot().nudges).toBe(0);
  });

  it('batches queued behind a busy worker are taken at once, not a poll later', async () => {
    // A 50 ms poll: left to sleep it out after each answer, the worker would idle ~25 ms per
    // batch on average (~1 s for these 40); it polls finely right after an answer, and a queued
    // batch that finds it in its long sleep wakes it.
    const encoder = pool(50, 64);
    await encoder.encode(task(-1));
    const started = performance.now();
    const frames = await Promise.all(Array.from({ length: 40 }, (_, i) => encoder.encode(task(i))));
    const elapsed = performance.now() - started;
    frames.forEach((result, i) => {
      const envelope = new Uint8Array(result.frame, result.envelopeOffset);
      const header = readEnvelopeHeader(envelope) as EnvelopeHeader;
      expect(JSON.parse(Buffer.from(envelope.subarray(header.bodyOffset)).toString())).toEqual([{ seq: i }, { seq: i + 0.5 }]);
    });
    expect(elapsed).toBeLessThan(500);
    // At most the first, had the worker parked before it came.
    expect(encoder.snapshot().wakeups).toBeLessThanOrEqual(1);
  });

  it('a queued batch the main thread posts late wakes the worker from its long poll sleep', async () => {
    const encoder = pool(50, 64);
    await encoder.encode(task(-1));
    // The main thread busy 3 ms of every 4: answers wait past the worker's fine polling, which has gone to its 50 ms sleep.
    const busy = setInterval(() => {
      const until = performance.now() + 3;
      while (performance.now() < until);
    }, 1);
    const started = performance.now();
    try {
      const frames = await Promise.all(Array.from({ length: 20 }, (_, i) => encoder.encode(task(i))));
      expect(frames.map((result) => result.count)).toEqual(Array.from({ length: 20 }, () => 2));
    } finally {
      clearInterval(busy);
    }
    // Left to sleep, ~25 ms per batch on average (~500 ms); woken, the main thread's own pace (~4 ms a batch).
    expect(performance.now() - started).toBeLessThan(300);
    expect(encoder.snapshot().nudges).toBeGreaterThan(0);
  });

  it('with workerPollMs 0 every batch wakes its worker', async () => {
    const encoder = pool(0);
    await encoder.encode(task(-1));
    expect(await run(encoder, 20, 2)).toBe(20);
  });

  it('a worker idle for longer than 100 ms parks, and the next batch wakes it', async () => {
    const encoder = pool(1);
    await encoder.encode(task(-1));
    expect(await run(encoder, 1, 400)).toBe(1);
    // Polling again right after the batch that woke it.
    expect(await run(encoder, 5, 2)).toBeLessThanOrEqual(1);
  });
});

/** Runs a script in a fresh Node process; resolves with its exit code (null: killed at the timeout) and output. */
function node(script: string, timeoutMs: number): Promise<{ code: number | null; stdout: string }> {
  const pool = fileURLToPath(new URL('../../dist/src/encode/pool.js', import.meta.url));
  const source = `import { EncoderPool } from ${JSON.stringify(pool)};\n${script}`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', source], { timeout: timeoutMs }, (error, stdout) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout });
    });
  });
}

const TASK = `{ channel: 'c', codec: 'json', compressionThreshold: 1000, compressionLevel: 6, compressionWindowBits: 15, maxMessageBytes: 1000000,
  validateSerialized: true, smallWindowBits: 0, adler32: false, items: [{ a: 1 }], serialized: null }`;

describe('worker mailboxes and the process lifetime', () => {
  it('an idle pool that was never destroyed lets the process exit', async () => {
    const { code, stdout } = await node(`
      const pool = new EncoderPool({ poolSize: 2, maxQueue: 8, encodeTimeoutMs: 10000, workerPollMs: 1 });
      const result = await pool.encode(${TASK});
      console.log('encoded', result.count);`, 10_000);
    expect(stdout).toBe('encoded 1\n');
    expect(code).toBe(0);
  });

  it('a batch still out keeps the process alive until its frame is back', async () => {
    const { code, stdout } = await node(`
      const pool = new EncoderPool({ poolSize: 1, maxQueue: 8, encodeTimeoutMs: 10000, workerPollMs: 1 });
      pool.submit(${TASK}, (error, result) => { console.log('encoded', result.count); void pool.destroy(); });`, 10_000);
    expect(stdout).toBe('encoded 1\n');
    expect(code).toBe(0);
  });
});
