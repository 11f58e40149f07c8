// Micro-benchmark: per-client main-thread cost of writing one prepared ~10 KB
// binary payload to N connected `ws` clients on 127.0.0.1.
//
//   (A) ws.send(payload, { binary: true })
//   (B) ws.send(payload, { binary: true, compress: false, fin: true })
//   (C) frame built once per batch (Sender.frame -> Buffer.concat), then
//       ws._socket.write(frame) per client (one write)
//   (D) header built once per batch, then ws._socket.write(header);
//       ws._socket.write(payload) per client (two uncorked writes)
//
// The clients run in a CHILD process (this same file, forked with argv "client"),
// verify every message (sequence, length, CRC32 of the body) and ack each
// sequence number once all N clients have it. The server waits for that ack and
// for every ws.bufferedAmount to be 0 before the next write round.
//
// Run (see README.md):  node <outDir>/fanout-write.js [--clients=200] [--rounds=300]

import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import type { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import * as wsModule from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import { argNum, f2, median, pct, table } from './format.js';


const N_CLIENTS = argNum('clients', 200);
const ROUNDS = argNum('rounds', 300);
const WARMUP_ROUNDS = argNum('warmup', 30);
const PAYLOAD_BYTES = argNum('bytes', 10 * 1024);
const HEADER_BYTES = 16; // [u32 seq][u32 method][u32 total length][u32 crc32(body)]

const METHODS = ['A', 'B', 'C', 'D'] as const;
type Method = (typeof METHODS)[number];
const METHOD_LABEL: Record<Method, string> = {
  A: 'ws.send(payload, { binary: true })',
  B: 'ws.send(payload, { binary, compress:false, fin })',
  C: 'prepared frame, _socket.write(frame)',
  D: 'prepared header, write(header)+write(payload)',
};

// ws exports Sender at runtime (ESM wrapper), but @types/ws does not declare it.
interface FrameOptions { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean }
interface SenderStatic { frame(data: Buffer, options: FrameOptions): Buffer[] }
const Sender = (wsModule as unknown as { Sender: SenderStatic }).Sender;
const FRAME_OPTS: FrameOptions = { fin: true, rsv1: false, opcode: 2, mask: false, readOnly: false };

// IPC messages
type ToParent =
  | { t: 'ready'; open: number }
  | { t: 'ack'; seq: number }
  | { t: 'report'; perMethod: Record<string, MethodReport>; errors: string[] };
type ToChild = { t: 'report' } | { t: 'exit' };

interface MethodReport {
  messages: number; // total over all clients
  bytes: number;
  minPerClient: number;
  maxPerClient: number;
  badLength: number;
  badCrc: number;
  outOfOrder: number;
}

// ================================================================ client side

function runClients(port: number, n: number): void {
  const send = (m: ToParent): void => {
    process.send?.(m);
  };
  const perMethod = new Map<number, { perClient: number[]; bytes: number; badLength: number; badCrc: number; outOfOrder: number }>();
  const errors: string[] = [];
  const seenCount = new Map<number, number>();
  let open = 0;

  for (let c = 0; c < n; c++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
    let nextSeq = 0;
    ws.on('open', () => {
      open++;
      if (open === n) send({ t: 'ready', open });
    });
    ws.on('error', (err) => {
      if (errors.length < 20) errors.push(`client ${c}: ${err.message}`);
    });
    ws.on('message', (data, isBinary) => {
      if (!Buffer.isBuffer(data) || !isBinary) {
        if (errors.length < 20) errors.push(`client ${c}: non-binary or fragmented message`);
        return;
      }
      const seq = data.readUInt32BE(0);
      const method = data.readUInt32BE(4);
      const len = data.readUInt32BE(8);
      const crc = data.readUInt32BE(12);
      let st = perMethod.get(method);
      if (!st) {
        st = { perClient: new Array<number>(n).fill(0), bytes: 0, badLength: 0, badCrc: 0, outOfOrder: 0 };
        perMethod.set(method, st);
      }
      st.perClient[c] = (st.perClient[c] ?? 0) + 1;
      st.bytes += data.length;
      if (data.length !== len) st.badLength++;
      else if (crc32(data.subarray(HEADER_BYTES)) !== crc) st.badCrc++;
      if (seq !== nextSeq) st.outOfOrder++;
      nextSeq = seq + 1;
      const seen = (seenCount.get(seq) ?? 0) + 1;
      if (seen === n) {
        seenCount.delete(seq);
        send({ t: 'ack', seq });
      } else seenCount.set(seq, seen);
    });
  }

  process.on('message', (m: ToChild) => {
    if (m.t === 'report') {
      const out: Record<string, MethodReport> = {};
      for (const [method, st] of perMethod) {
        out[METHODS[method] ?? String(method)] = {
          messages: st.perClient.reduce((a, b) => a + b, 0),
          bytes: st.bytes,
          minPerClient: Math.min(...st.perClient),
          maxPerClient: Math.max(...st.perClient),
          badLength: st.badLength,
          badCrc: st.badCrc,
          outOfOrder: st.outOfOrder,
        };
      }
      send({ t: 'report', perMethod: out, errors });
    } else if (m.t === 'exit') {
      process.exit(0);
    }
  });
}

// ================================================================ server side

interface Conn { ws: WebSocket; sock: Socket }

function makePayload(seq: number, method: number): Buffer {
  const buf = Buffer.allocUnsafeSlow(PAYLOAD_BYTES);
  randomFillSync(buf, HEADER_BYTES);
  buf.writeUInt32BE(seq, 0);
  buf.writeUInt32BE(method, 4);
  buf.writeUInt32BE(PAYLOAD_BYTES, 8);
  buf.writeUInt32BE(crc32(buf.subarray(HEADER_BYTES)), 12);
  return buf;
}

/** The timed part. Returns [frame build µs (once per batch), loop µs (all clients)]. */
function writeAll(method: Method, conns: readonly Conn[], payload: Buffer): [number, number] {
  const OPEN = WebSocket.OPEN;
  switch (method) {
    case 'A': {
      const t0 = performance.now();
      for (const c of conns) c.ws.send(payload, { binary: true });
      return [0, (performance.now() - t0) * 1000];
    }
    case 'B': {
      const t0 = performance.now();
      for (const c of conns) c.ws.send(payload, { binary: true, compress: false, fin: true });
      return [0, (performance.now() - t0) * 1000];
    }
    case 'C': {
      const tb = performance.now();
      const frame = Buffer.concat(Sender.frame(payload, FRAME_OPTS));
      const t0 = performance.now();
      for (const c of conns) if (c.ws.readyState === OPEN) c.sock.write(frame);
      return [(t0 - tb) * 1000, (performance.now() - t0) * 1000];
    }
    case 'D': {
      const tb = performance.now();
      const header = Sender.frame(payload, FRAME_OPTS)[0];
      if (!header) throw new Error('no header');
      const t0 = performance.now();
      for (const c of conns) {
        if (c.ws.readyState !== OPEN) continue;
        c.sock.write(header);
        c.sock.write(payload);
      }
      return [(t0 - tb) * 1000, (performance.now() - t0) * 1000];
    }
  }
}

async function runServer(): Promise<void> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const port = (wss.address() as AddressInfo).port;
  const conns: Conn[] = [];
  wss.on('connection', (ws) => {
    const sock = (ws as unknown as { _socket: Socket })._socket;
    conns.push({ ws, sock });
  });

  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['client', String(port), String(N_CLIENTS)]);
  const acks = new Map<number, () => void>();
  const ackedEarly = new Set<number>();
  let onReady: (() => void) | undefined;
  let onReport: ((m: Extract<ToParent, { t: 'report' }>) => void) | undefined;
  child.on('message', (m: ToParent) => {
    if (m.t === 'ack') {
      const r = acks.get(m.seq);
      if (r) {
        acks.delete(m.seq);
        r();
      } else ackedEarly.add(m.seq);
    } else if (m.t === 'ready') onReady?.();
    else if (m.t === 'report') onReport?.(m);
  });
  await new Promise<void>((resolve) => { onReady = resolve; });
  while (conns.length < N_CLIENTS) await new Promise((r) => setImmediate(r));

  const waitAck = (seq: number): Promise<void> =>
    ackedEarly.delete(seq) ? Promise.resolve() : new Promise((resolve) => acks.set(seq, resolve));
  const drained = async (): Promise<void> => {
    for (;;) {
      if (conns.every((c) => c.ws.bufferedAmount === 0)) return;
      await new Promise((r) => setImmediate(r));
    }
  };

  const results = new Map<Method, { loop: number[]; build: number[]; queued: number[] }>();
  for (const m of METHODS) results.set(m, { loop: [], build: [], queued: [] });

  const t0 = performance.now();
  let seq = 0;
  for (let r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
    for (let k = 0; k < METHODS.length; k++) {
      const mi = (r + k) % METHODS.length; // rotate order each round
      const method = METHODS[mi] ?? 'A';
      const payload = makePayload(seq, mi);
      const [build, loop] = writeAll(method, conns, payload);
      // bytes still held in Node's writable buffers right after the loop
      let queued = 0;
      for (const c of conns) queued += c.ws.bufferedAmount;
      await waitAck(seq);
      await drained();
      if (r >= WARMUP_ROUNDS) {
        const res = results.get(method);
        if (!res) throw new Error('unreachable');
        res.loop.push(loop);
        res.build.push(build);
        res.queued.push(queued / conns.length);
      }
      seq++;
    }
  }
  const elapsed = (performance.now() - t0) / 1000;

  child.send({ t: 'report' } satisfies ToChild);
  const report = await new Promise<Extract<ToParent, { t: 'report' }>>((resolve) => { onReport = resolve; });

  console.log('# fanout-write micro-benchmark');
  console.log(`node ${process.version}, ${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'}), loadavg ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`${N_CLIENTS} ws clients in a child process on 127.0.0.1, perMessageDeflate off, payload ${PAYLOAD_BYTES} B; ${WARMUP_ROUNDS} warm-up + ${ROUNDS} measured rounds per method (method order rotated every round); wait for all clients to receive + bufferedAmount 0 between writes\n`);

  const get = (m: Method): { loop: number[]; build: number[]; queued: number[] } => {
    const v = results.get(m);
    if (!v) throw new Error('missing');
    return v;
  };
  const perClient = (m: Method): number[] => get(m).loop.map((x) => x / N_CLIENTS);
  const perClientInclBuild = (m: Method): number[] => get(m).loop.map((x, i) => (x + (get(m).build[i] ?? 0)) / N_CLIENTS);
  const baseA = median(perClient('A'));
  const rows = METHODS.map((m) => {
    const pc = perClient(m);
    const pcb = perClientInclBuild(m);
    return [
      `(${m}) ${METHOD_LABEL[m]}`,
      f2(median(pc)),
      f2(pct(pc, 0.9)),
      f2(median(pcb)),
      f2(median(pcb) / baseA) + 'x',
      f2(median(get(m).build)),
      f2(median(get(m).loop) / 1000),
      f2(median(get(m).queued)),
    ];
  });
  console.log('### Main-thread write cost per client per batch (µs; median over rounds; loop time / N)\n');
  console.log(table(
    ['method', 'per client', 'p90', 'incl. frame build', 'ratio vs A', 'frame build µs/batch', 'loop ms/batch', 'bufferedAmount after loop (B/client)'],
    rows,
  ));

  const expectPerClient = WARMUP_ROUNDS + ROUNDS;
  console.log(`\n### Correctness (child process, every message: seq order, length, CRC32 of body); expected ${expectPerClient} messages x ${PAYLOAD_BYTES} B per client per method\n`);
  const crow = METHODS.map((m) => {
    const rep = report.perMethod[m];
    if (!rep) return [`(${m})`, 'NO MESSAGES', '', '', '', '', ''];
    const ok = rep.minPerClient === expectPerClient && rep.maxPerClient === expectPerClient &&
      rep.bytes === expectPerClient * N_CLIENTS * PAYLOAD_BYTES && rep.badLength === 0 && rep.badCrc === 0 && rep.outOfOrder === 0;
    return [
      `(${m})`,
      String(rep.messages),
      `${rep.minPerClient}..${rep.maxPerClient}`,
      String(rep.bytes),
      String(rep.badLength + rep.badCrc),
      String(rep.outOfOrder),
      ok ? 'OK' : 'FAIL',
    ];
  });
  console.log(table(['method', 'messages (all clients)', 'per client min..max', 'bytes', 'bad len/crc', 'out of order', 'result'], crow));
  if (report.errors.length) console.log('client errors:', report.errors);
  console.log(`\nelapsed ${elapsed.toFixed(1)} s`);

  child.send({ t: 'exit' } satisfies ToChild);
  for (const c of conns) c.ws.terminate();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
}

if (process.argv[2] === 'client') {
  runClients(Number(process.argv[3]), Number(process.argv[4]));
} else {
  runServer().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
