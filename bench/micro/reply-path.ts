// Micro-benchmark: what the way back from an encoder thread costs the main thread. A worker
// polls shared memory every 1 ms (as batchcast's mailboxes do, mailbox.ts), "encodes" for 1 ms
// and answers; the main thread sends a batch every 20 ms (26 KB packed, as ~400 trades) and
// gets a 15 KB frame back.
//   port    the request and the reply as MessagePort messages, the buffers transferred, the
//           reply an EncodeResult-like object (batchcast's path)
//   shared  the request and the frame copied into and out of shared memory; the worker says
//           it is done with Atomics.notify, which resolves the main thread's Atomics.waitAsync
// Reported: the main thread's CPU from the post to the frame in a Buffer
// (/proc/self/task/<pid>/schedstat; Linux), p50 and p90, medians over alternating reps.
//
// Run (see README.md):  node dist/bench/micro/reply-path.js [--samples=300] [--reps=3]
import { readFileSync } from 'node:fs';
import { MessageChannel, type MessagePort, Worker, isMainThread, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { argNum, f1, median, pct, table } from './format.js';

const IN_BYTES = 64 * 1024;
const OUT_BYTES = 64 * 1024;
const FRAME_BYTES = 15_000;
/** Control words: batches posted, bytes in, last batch done, bytes out. */
const POSTED = 0;
const LEN_IN = 1;
const DONE = 2;
const LEN_OUT = 3;

interface Shared {
  control: Int32Array;
  memory: SharedArrayBuffer;
  port: MessagePort;
}

function serve({ control, memory, port }: Shared): void {
  const input = new Uint8Array(memory, 0, IN_BYTES);
  const output = new Uint8Array(memory, IN_BYTES, OUT_BYTES);
  let seen = 0;
  for (;;) {
    Atomics.wait(control, POSTED, seen, 1);
    const posted = Atomics.load(control, POSTED);
    if (posted === seen) continue;
    if (posted < 0) return;
    seen = posted;
    const request = receiveMessageOnPort(port)?.message as { id: number; task: { packed: { buffer: ArrayBuffer } } } | undefined;
    const bytes = request ? new Uint8Array(request.task.packed.buffer) : input.subarray(0, Atomics.load(control, LEN_IN));
    const until = performance.now() + 1;
    let sum = 0;
    while (performance.now() < until) sum += bytes[sum & 1023]!;
    if (request) {
      const frame = new ArrayBuffer(FRAME_BYTES);
      new Uint8Array(frame)[0] = sum & 255;
      const result = { frame, envelopeOffset: 4, count: 400, rawBytes: 64_000, compressed: true, deflate: { windowBits: 12, adler32: null }, small: null, encodeMicros: 1000, rejected: null };
      port.postMessage({ id: request.id, result }, [frame]);
    } else {
      output[0] = sum & 255;
      Atomics.store(control, LEN_OUT, FRAME_BYTES);
      Atomics.store(control, DONE, seen);
      Atomics.notify(control, DONE);
    }
  }
}

/** Atomics.waitAsync (ES2024; Node 16+), not in this project's `lib`. */
const waitAsync = (Atomics as unknown as { waitAsync(array: Int32Array, index: number, value: number): { value: Promise<string> | string } }).waitAsync;

const mainCpuUs = (): number => Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(mode: 'port' | 'shared', samples: number): Promise<number[]> {
  const control = new Int32Array(new SharedArrayBuffer(16));
  const memory = new SharedArrayBuffer(IN_BYTES + OUT_BYTES);
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL(import.meta.url), { workerData: { control, memory, port: port2 } satisfies Shared, transferList: [port2] });
  const packed = new Uint8Array(26_000).fill(7);
  const settings = { codec: 'json', compressionThreshold: 1000, compressionLevel: 6, compressionWindowBits: 12, maxMessageBytes: 1 << 24, validateSerialized: true, channel: 'bench', items: [], serialized: null, smallWindowBits: 0, adler32: false };
  let replied: ((reply: { result: { frame: ArrayBuffer } }) => void) | null = null;
  port1.on('message', (reply) => replied?.(reply));
  const cpu: number[] = [];
  for (let i = 0; i < samples + 30; i++) {
    await sleep(20);
    const started = mainCpuUs();
    let frame: Buffer;
    if (mode === 'port') {
      const buffer = new ArrayBuffer(packed.byteLength);
      new Uint8Array(buffer).set(packed);
      const reply = new Promise<{ result: { frame: ArrayBuffer } }>((resolve) => (replied = resolve));
      port1.postMessage({ id: i + 1, task: { ...settings, packed: { form: 'records', buffer, count: 400 } } }, [buffer]);
      Atomics.add(control, POSTED, 1);
      frame = Buffer.from((await reply).result.frame);
    } else {
      new Uint8Array(memory, 0, IN_BYTES).set(packed);
      Atomics.store(control, LEN_IN, packed.byteLength);
      const done = waitAsync(control, DONE, i);
      Atomics.add(control, POSTED, 1);
      await done.value;
      const length = Atomics.load(control, LEN_OUT);
      frame = Buffer.allocUnsafe(length);
      frame.set(new Uint8Array(memory, IN_BYTES, length));
    }
    if (frame.byteLength !== FRAME_BYTES) throw new Error(`${mode}: a frame of ${frame.byteLength} bytes`);
    if (i >= 30) cpu.push(mainCpuUs() - started);
  }
  Atomics.store(control, POSTED, -1);
  Atomics.notify(control, POSTED);
  port1.close();
  await worker.terminate();
  return cpu;
}

if (!isMainThread) serve(workerData as Shared);
else {
  const samples = argNum('samples', 300);
  const reps = argNum('reps', 3);
  const p50 = { port: [] as number[], shared: [] as number[] };
  const p90 = { port: [] as number[], shared: [] as number[] };
  for (let rep = 0; rep < reps; rep++) {
    for (const mode of ['port', 'shared'] as const) {
      const cpu = await measure(mode, samples);
      p50[mode].push(median(cpu));
      p90[mode].push(pct(cpu, 0.9));
    }
  }
  console.log(`a batch every 20 ms to a worker polling every 1 ms; main-thread CPU µs per round trip; medians of ${reps} alternating reps of ${samples}`);
  console.log(table(['reply', 'CPU µs p50', 'p90', 'reps p50'], (['port', 'shared'] as const).map((m) => [m, f1(median(p50[m])), f1(median(p90[m])), p50[m].map(f1).join(' / ')])));
}
