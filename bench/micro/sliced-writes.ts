// Micro-benchmark for issue 12's goal 5: does a socket write cost the writer more when the
// same writes are spread over event-loop turns (batchcast's time-sliced fan-out) than when
// they are made in one go, and is the difference the reader's, not the writer's code?
//
// One prepared WebSocket frame (--bytes, default 2048: a batch of ~200 trades) is written to
// --clients (default 5000) `ws` clients with one `socket.write` each, a round every 100 ms:
//
//   one-turn   every write in one loop (the bench's write-floor)
//   sliced     at most --slice-ms (default 4) of writes per turn, the rest in the next turns
//              via setImmediate (what src/fanout/slices.ts does), the same write per client
//
// Both with the client process (this file forked with "client", holding every socket)
//
//   reading    reading and parsing as it goes (the bench's client)
//   stopped    SIGSTOPped for the rounds (the kernel buffers the frames), resumed after
//
// --client-work-us=N makes the client spend N µs of CPU per frame (the bench's client decodes
// each batch), so that it is still busy reading while the writer's later slices run.
//
// Reported per mode (medians over --reps interleaved blocks of --rounds rounds): the writer's
// main-thread CPU per write (/proc/self/task/<pid>/schedstat; Linux), the wall time a round
// spans, and the client process's context switches per round (/proc/<pid>/status). Every
// frame is counted by the client before the next block.
//
// Run (after `npm run build`):  node dist/bench/micro/sliced-writes.js [--clients=5000]
//   [--bytes=2048] [--rounds=10] [--reps=3] [--slice-ms=4] [--client-work-us=0]
//   [--pollers=0] [--frame-from-worker]
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { WebSocket, WebSocketServer } from 'ws';
import { argNum, f2, median, table } from './format.js';

const CLIENTS = argNum('clients', 5000);
const BYTES = argNum('bytes', 2048);
const ROUNDS = argNum('rounds', 10);
const REPS = argNum('reps', 3);
const SLICE_MS = argNum('slice-ms', 4);
const ROUND_GAP_MS = 100;
const CHECK_EVERY = 32;
/** CPU the client spends per frame, µs (the bench's client decodes each batch: ~50-100 µs). */
const CLIENT_WORK_US = argNum('client-work-us', 0);
/** Threads that poll like batchcast's encoder threads do while batches flow (Atomics.wait, 1 ms). */
const POLLERS = argNum('pollers', 0);
/** Whether the frame is made in a worker and transferred, as batchcast's frames are. */
const FRAME_FROM_WORKER = process.argv.includes('--frame-from-worker');

type ToParent = { t: 'ready' } | { t: 'count'; frames: number };

// ================================================================ client side

function runClients(port: number): void {
  let open = 0;
  let frames = 0;
  for (let c = 0; c < CLIENTS; c++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
    ws.on('open', () => {
      if (++open === CLIENTS) process.send!({ t: 'ready' } satisfies ToParent);
    });
    ws.on('error', (error) => {
      console.error(`client ${c}: ${error.message}`);
      process.exit(1);
    });
    ws.on('message', () => {
      frames++;
      if (CLIENT_WORK_US > 0) for (const until = performance.now() + CLIENT_WORK_US / 1000; performance.now() < until; );
    });
  }
  process.on('message', (m: { t: 'count' }) => {
    if (m.t === 'count') process.send!({ t: 'count', frames } satisfies ToParent);
  });
}

// ================================================================ writer side

const mainCpuUs = (): number => Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;

function contextSwitches(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(/(\d+)/.exec(status.slice(status.indexOf(name)))?.[1] ?? NaN);
  return field('voluntary_ctxt_switches') + field('nonvoluntary_ctxt_switches');
}

/** One frame, written to every socket in one loop or in slices; resolves when all are written. */
function writeRound(sockets: Socket[], frame: Buffer, sliced: boolean): Promise<void> {
  if (!sliced) {
    for (const socket of sockets) socket.write(frame);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    let next = 0;
    const turn = (): void => {
      const deadline = performance.now() + SLICE_MS;
      while (next < sockets.length) {
        sockets[next++]!.write(frame);
        if (next % CHECK_EVERY === 0 && performance.now() >= deadline) {
          setImmediate(turn);
          return;
        }
      }
      resolve();
    };
    turn();
  });
}

function makeFrame(): Buffer {
  const frame = Buffer.alloc(4 + BYTES, 7);
  frame.writeUInt8(0x82, 0);
  frame.writeUInt8(126, 1);
  frame.writeUInt16BE(BYTES, 2);
  return frame;
}

/** The same frame, built in a worker thread and transferred (its memory was allocated there). */
async function frameFromWorker(): Promise<Buffer> {
  const source = `const { parentPort } = require('node:worker_threads');
    const frame = new Uint8Array(${4 + BYTES}).fill(7);
    frame[0] = 0x82; frame[1] = 126; frame[2] = ${BYTES} >> 8; frame[3] = ${BYTES} & 255;
    parentPort.postMessage(frame, [frame.buffer]);`;
  const worker = new Worker(source, { eval: true });
  const [bytes] = (await once(worker, 'message')) as [Uint8Array];
  await worker.terminate();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const POLLER = `const cell = new Int32Array(new SharedArrayBuffer(4)); for (;;) Atomics.wait(cell, 0, 0, 1);`;

async function main(): Promise<void> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await once(wss, 'listening');
  const sockets: Socket[] = [];
  wss.on('connection', (ws) => sockets.push((ws as unknown as { _socket: Socket })._socket));
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['client', String((wss.address() as AddressInfo).port), ...process.argv.slice(2)]);
  const replies: ToParent[] = [];
  const waiters: (() => void)[] = [];
  child.on('message', (m: ToParent) => {
    replies.push(m);
    waiters.shift()?.();
  });
  const reply = async (): Promise<ToParent> => {
    if (replies.length === 0) await new Promise<void>((resolve) => waiters.push(resolve));
    return replies.shift()!;
  };
  await reply();
  // A binary frame (FIN, opcode 2, 16-bit length) around BYTES of payload.
  const frame = FRAME_FROM_WORKER ? await frameFromWorker() : makeFrame();
  for (let i = 0; i < POLLERS; i++) new Worker(POLLER, { eval: true }).unref();
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  let expected = 0;
  const modes = [
    { sliced: false, stopped: false },
    { sliced: true, stopped: false },
    { sliced: false, stopped: true },
    { sliced: true, stopped: true },
  ];
  const results = new Map<string, { cpu: number[]; wall: number[]; switches: number[] }>();
  console.log(`${CLIENTS} ws clients in one child process, ${BYTES} B frames, ${ROUNDS} rounds per block, ${REPS} blocks per mode, slices of ${SLICE_MS} ms, client work ${CLIENT_WORK_US} µs/frame, ${POLLERS} polling threads, frame ${FRAME_FROM_WORKER ? 'from a worker' : 'made here'}; node ${process.version}`);
  for (let rep = -1; rep < REPS; rep++) {
    for (const mode of modes) {
      const name = `${mode.sliced ? 'sliced' : 'one-turn'} · ${mode.stopped ? 'stopped' : 'reading'}`;
      if (mode.stopped) child.kill('SIGSTOP');
      let cpu = 0;
      let wall = 0;
      const switchesBefore = contextSwitches(child.pid!);
      for (let round = 0; round < ROUNDS; round++) {
        const cpuBefore = mainCpuUs();
        const start = performance.now();
        await writeRound(sockets, frame, mode.sliced);
        wall += performance.now() - start;
        cpu += mainCpuUs() - cpuBefore;
        await sleep(ROUND_GAP_MS);
      }
      const switches = contextSwitches(child.pid!) - switchesBefore;
      if (mode.stopped) child.kill('SIGCONT');
      expected += ROUNDS * CLIENTS;
      for (;;) {
        child.send({ t: 'count' });
        const m = await reply();
        if (m.t === 'count' && m.frames === expected) break;
        if (m.t === 'count' && m.frames > expected) throw new Error(`client counted ${m.frames} frames, more than the ${expected} written`);
        await sleep(50);
      }
      if (rep < 0) continue; // a warm-up block per mode
      const r = results.get(name) ?? { cpu: [], wall: [], switches: [] };
      r.cpu.push(cpu / (ROUNDS * CLIENTS));
      r.wall.push(wall / ROUNDS);
      r.switches.push(switches / ROUNDS);
      results.set(name, r);
    }
  }
  const floor = median(results.get('one-turn · reading')!.cpu);
  console.log(
    table(
      ['writes', 'writer CPU µs/write', '× one-turn · reading', 'round spans ms', 'client context switches/round'],
      [...results].map(([name, r]) => [name, f2(median(r.cpu)), f2(median(r.cpu) / floor), f2(median(r.wall)), f2(median(r.switches))]),
    ),
  );
  console.log(`every frame counted by the client: ${expected} frames`);
  child.kill();
  wss.close();
  for (const socket of sockets) socket.destroy();
}

if (process.argv[2] === 'client') runClients(Number(process.argv[3]));
else await main();
