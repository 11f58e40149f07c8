import { readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultPoolSize, resolveConfig } from '../../src/config.js';
import { EncoderPool } from '../../src/encode/pool.js';
import { THREAD_PRIORITY_SUPPORTED, lowerThreadPriority } from '../../src/encode/priority.js';
import type { EncodeTask } from '../../src/encode/task.js';

const task: EncodeTask = {
  channel: 'c', codec: 'json', compressionThreshold: 1000, compressionLevel: 6, maxMessageBytes: 1 << 20, validateSerialized: true,
  compressionWindowBits: 12, smallWindowBits: 0, adler32: false, items: [{ n: 1 }], serialized: null,
};

/** Nice value of every thread of this process, by thread id (Linux /proc). */
function threadNice(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, nice field 19.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(rest[19 - 3]));
  }
  return out;
}

let pool: EncoderPool | null = null;
afterEach(async () => {
  await pool?.destroy();
  pool = null;
});

describe('encoder thread priority', () => {
  it.runIf(THREAD_PRIORITY_SUPPORTED)('lowers each encoder thread by workerNice and leaves the event loop thread alone', async () => {
    const before = threadNice();
    const mainNice = before.get(process.pid)!;
    pool = new EncoderPool({ poolSize: 2, maxQueue: 8, encodeTimeoutMs: 10_000, workerNice: 7 });
    // Both workers have run the module (and so set their priority) once each has encoded a batch.
    await Promise.all([pool.encode(task), pool.encode(task)]);
    const after = threadNice();
    const lowered = [...after].filter(([tid, nice]) => !before.has(tid) && nice === Math.min(19, mainNice + 7));
    expect(lowered.length).toBe(2);
    expect(after.get(process.pid)).toBe(mainNice);
  });

  it.runIf(THREAD_PRIORITY_SUPPORTED)('leaves encoder threads at the process priority with workerNice 0', async () => {
    const mainNice = threadNice().get(process.pid)!;
    pool = new EncoderPool({ poolSize: 1, maxQueue: 4, encodeTimeoutMs: 10_000, workerNice: 0 });
    await pool.encode(task);
    expect([...threadNice().values()].every((nice) => nice === mainNice)).toBe(true);
  });

  it('changes nothing for an increment of 0 (or less)', () => {
    expect(lowerThreadPriority(0)).toBeNull();
    expect(lowerThreadPriority(-3)).toBeNull();
  });

  it('defaults to one encoder per core when encoders run below the event loop, else cores - 1', () => {
    const cores = availableParallelism();
    expect(defaultPoolSize(0)).toBe(Math.max(1, cores - 1));
    expect(defaultPoolSize(10)).toBe(THREAD_PRIORITY_SUPPORTED ? cores : Math.max(1, cores - 1));
    expect(resolveConfig({}, {}).poolSize).toBe(defaultPoolSize(resolveConfig({}, {}).workerNice));
    expect(resolveConfig({ workerNice: 0 }, {}).poolSize).toBe(Math.max(1, cores - 1));
  });

  it('takes BATCHCAST_WORKER_NICE and rejects values outside 0..19 by name', () => {
    expect(resolveConfig({}, { BATCHCAST_WORKER_NICE: '4' }).workerNice).toBe(4);
    expect(() => resolveConfig({}, { BATCHCAST_WORKER_NICE: '20' })).toThrow(/BATCHCAST_WORKER_NICE/);
    expect(() => resolveConfig({ workerNice: -1 }, {})).toThrow(/workerNice/);
  });
});
