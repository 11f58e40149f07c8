/**
 * The client process of one row: opens every simulated subscriber, counts what
 * each receives and checks sequence continuity, and measures publish→receive
 * latency on a few "probe" clients (the first and the last to subscribe, so the
 * fan-out spread is covered) that decode every frame in full. The other clients
 * read only the 16-byte envelope header of each frame, so that the clients are
 * not the bottleneck; the process reports its own load so rows where it was
 * saturated can be set aside.
 */
import { createHistogram, monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { constants, inflateRawSync } from 'node:zlib';
import { WebSocket } from 'ws';
import { decodeFrame } from '../src/protocol/decode.js';
import { serveParent, toParent, type ClientReport, type ToClient, type WireFormat } from './lib/ipc.js';
import { FrameReader, openRaw } from './lib/ws-reader.js';
import { epochNow } from './lib/workload.js';

interface SimClient {
  probe: boolean;
  ready: boolean;
  messages: number;
  frames: number;
  bytes: number;
  rawBytes: number;
  /** Next expected sequence number (-1 before the first batch). */
  expected: number;
  decodedRaw: number;
  decodedMessages: number;
  rawPerMessage: number;
  close(): void;
}

const SYNC_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const clients: SimClient[] = [];
const latency = createHistogram({ lowest: 1, highest: 600_000_000, figures: 3 });
let windowStart = Number.POSITIVE_INFINITY;
let windowEnd = Number.POSITIVE_INFINITY;
let gaps = 0;
let errors = 0;
let windowMessages = 0;
let elu = 0;
let decodeEvery = 1;
/** µs of busy work per frame on non-probe clients (the overload scenario); 0: none. */
let workUs = 0;
let cpuCores = 0;
const eld = monitorEventLoopDelay({ resolution: 10 });

serveParent<ToClient>('client process', handle);

async function handle(message: ToClient): Promise<void> {
  if (message.type === 'connect') {
    const { port, clients: count, probes, wire, awaitNotice, channel } = message;
    decodeEvery = message.decodeEvery;
    workUs = message.workUs;
    const url = `ws://127.0.0.1:${port}/?channels=${channel}`;
    const probeSet = pickProbes(count, probes);
    for (let i = 0; i < count; i += 25) {
      const group = [];
      for (let j = i; j < Math.min(count, i + 25); j++) group.push(open(url, wire, probeSet.has(j), awaitNotice));
      clients.push(...(await Promise.all(group)));
    }
    await waitUntil(() => clients.every((c) => c.ready), 10_000);
    toParent({ type: 'connected' });
  } else if (message.type === 'window') {
    ({ windowStart, windowEnd } = message);
    scheduleWindow();
  } else if (message.type === 'expect') {
    const started = performance.now();
    await waitUntil(() => clients.every((c) => c.messages >= message.total), message.graceMs);
    toParent({ type: 'report', report: report(performance.now() - started) });
    for (const client of clients) client.close();
    setTimeout(() => process.exit(0), 20);
  }
}

/** Keeps this thread busy for `us` microseconds: a client that does real work per frame. */
function spin(us: number): void {
  const until = performance.now() + us / 1000;
  while (performance.now() < until);
}

/** The first and last clients, then evenly spaced ones. */
function pickProbes(count: number, probes: number): Set<number> {
  const set = new Set<number>();
  const n = Math.min(count, probes);
  if (n === 1) set.add(0);
  else for (let k = 0; k < n; k++) set.add(Math.round((k * (count - 1)) / (n - 1)));
  return set;
}

function scheduleWindow(): void {
  let elu0 = performance.eventLoopUtilization();
  let cpu0 = process.cpuUsage();
  let messages0 = 0;
  setTimeout(() => {
    elu0 = performance.eventLoopUtilization();
    cpu0 = process.cpuUsage();
    messages0 = total();
    eld.enable();
  }, windowStart - epochNow());
  setTimeout(() => {
    const delta = performance.eventLoopUtilization(elu0);
    const cpu = process.cpuUsage(cpu0);
    elu = delta.utilization;
    cpuCores = (cpu.user + cpu.system) / 1000 / (delta.idle + delta.active);
    windowMessages = total() - messages0;
    eld.disable();
  }, windowEnd - epochNow());
}

function total(): number {
  let sum = 0;
  for (const client of clients) sum += client.messages;
  return sum;
}

function recordLatency(t: unknown, now: number): void {
  if (typeof t !== 'number' || t < windowStart || t >= windowEnd) return;
  latency.record(Math.max(1, Math.round((now - t) * 1000)));
}

/** Sequence continuity: a batch must start where the previous one ended. */
function checkSeq(client: SimClient, firstSeq: number, count: number): void {
  if (client.expected >= 0 && firstSeq !== client.expected) gaps++;
  client.expected = firstSeq + count;
}

async function open(url: string, wire: WireFormat, probe: boolean, awaitNotice: boolean): Promise<SimClient> {
  if (wire === 'pmd-json') return openWs(url, probe);
  // batchcast-pmd clients offer what a browser offers.
  const { socket, head } = await openRaw(url, wire === 'pmd-envelope' ? 'permessage-deflate; client_max_window_bits' : undefined);
  const client: SimClient = { probe, ready: !awaitNotice, messages: 0, frames: 0, bytes: 0, rawBytes: 0, expected: -1, decodedRaw: 0, decodedMessages: 0, rawPerMessage: 0, close: () => socket.destroy() };
  const handler = wire === 'envelope' || wire === 'pmd-envelope' ? envelopeHandler(client) : textHandler(client);
  const onFrame: typeof handler = workUs > 0 && !probe ? (...args) => (handler(...args), spin(workUs)) : handler;
  const reader = new FrameReader(probe, onFrame);
  const onData = (chunk: Buffer) => {
    client.bytes += chunk.length;
    reader.push(chunk);
  };
  socket.on('data', onData);
  socket.on('error', () => errors++);
  if (head.length > 0) onData(head);
  return client;
}

/**
 * batchcast envelopes (batchcast itself, seed-inline, inline-async, write-floor). A
 * transport-compressed one (RSV1) holds the envelope header in a stored block 5 bytes in:
 * counted from there; probes inflate it (RFC 7692: append 00 00 ff ff) to decode.
 */
function envelopeHandler(client: SimClient) {
  return (opcode: number, framePayload: Buffer | null, framePeek: Buffer, _length: number, rsv1: boolean) => {
    if (opcode !== 2) return;
    const peek = rsv1 ? framePeek.subarray(5) : framePeek;
    const payload = framePayload;
    const kind = peek[2];
    if (kind === 2) {
      client.ready = true;
      return;
    }
    const count = peek.readUInt32BE(4);
    const firstSeq = peek.readUInt32BE(8) * 2 ** 32 + peek.readUInt32BE(12);
    checkSeq(client, firstSeq, count);
    client.messages += count;
    client.frames++;
    if (payload === null) return;
    client.rawBytes += count * client.rawPerMessage;
    if (client.frames % decodeEvery !== 0) return;
    try {
      const message = rsv1 ? inflateRawSync(Buffer.concat([payload, SYNC_TAIL]), { finishFlush: constants.Z_SYNC_FLUSH }) : payload;
      const frame = decodeFrame(new Uint8Array(message.buffer, message.byteOffset, message.byteLength), (body) => inflateRawSync(body));
      if (frame.kind !== 'batch') return;
      // Frames not decoded are credited with the mean serialized size seen so far.
      client.rawBytes += frame.rawBytes - count * client.rawPerMessage;
      client.decodedRaw += frame.rawBytes;
      client.decodedMessages += count;
      client.rawPerMessage = client.decodedRaw / client.decodedMessages;
      const now = epochNow();
      for (const m of frame.messages) recordLatency((m as { t?: unknown }).t, now);
    } catch {
      errors++;
    }
  };
}

/** naive: one JSON text frame per message. */
function textHandler(client: SimClient) {
  return (opcode: number, payload: Buffer | null, _peek: Buffer, length: number) => {
    if (opcode !== 1) return;
    client.messages++;
    client.frames++;
    client.rawBytes += length;
    if (payload === null) return;
    try {
      const m = JSON.parse(payload.toString()) as { t?: unknown; seq: number };
      checkSeq(client, m.seq, 1);
      recordLatency(m.t, epochNow());
    } catch {
      errors++;
    }
  };
}

/** ws-pmd: JSON text frames compressed per client by ws; the ws client inflates them. */
function openWs(url: string, probe: boolean): Promise<SimClient> {
  const ws = new WebSocket(url, { perMessageDeflate: true });
  const client: SimClient = { probe, ready: false, messages: 0, frames: 0, bytes: 0, rawBytes: 0, expected: -1, decodedRaw: 0, decodedMessages: 0, rawPerMessage: 0, close: () => ws.terminate() };
  const prefix = /^\{"seq":(\d+),"n":(\d+),/;
  ws.on('message', (data: Buffer) => {
    client.frames++;
    client.rawBytes += data.byteLength;
    if (probe && client.frames % decodeEvery === 0) {
      try {
        const batch = JSON.parse(data.toString()) as { seq: number; n: number; messages: { t?: unknown }[] };
        checkSeq(client, batch.seq, batch.messages.length);
        client.messages += batch.messages.length;
        const now = epochNow();
        for (const m of batch.messages) recordLatency(m.t, now);
      } catch {
        errors++;
      }
      return;
    }
    const match = prefix.exec(data.toString('latin1', 0, 48));
    if (match === null) {
      errors++;
      return;
    }
    checkSeq(client, Number(match[1]), Number(match[2]));
    client.messages += Number(match[2]);
  });
  ws.on('error', () => errors++);
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      (ws as unknown as { _socket: NodeJS.EventEmitter })._socket.on('data', (chunk: Buffer) => {
        client.bytes += chunk.length;
      });
      client.ready = true;
      resolve(client);
    });
    ws.once('error', reject);
  });
}

function report(drainMs: number): ClientReport {
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  let frames = 0;
  let wireBytes = 0;
  let probeWire = 0;
  let probeRaw = 0;
  let probeMessages = 0;
  const probes = clients.filter((c) => c.probe);
  for (const client of clients) {
    min = Math.min(min, client.messages);
    max = Math.max(max, client.messages);
    frames += client.frames;
    wireBytes += client.bytes;
    if (client.probe) {
      probeWire += client.bytes;
      probeRaw += client.rawBytes;
      probeMessages += client.messages;
    }
  }
  const ms = (us: number) => us / 1000;
  const sampled = latency.count > 0;
  return {
    clients: clients.length,
    probes: probes.length,
    minMessages: clients.length === 0 ? 0 : min,
    maxMessages: max,
    totalMessages: total(),
    windowMessages,
    frames,
    wireBytes,
    probeWireBytes: probeWire,
    probeRawBytes: probeRaw,
    probeMessages,
    gaps,
    errors,
    latencySamples: latency.count,
    latP50Ms: sampled ? ms(latency.percentile(50)) : Number.NaN,
    latP90Ms: sampled ? ms(latency.percentile(90)) : Number.NaN,
    latP99Ms: sampled ? ms(latency.percentile(99)) : Number.NaN,
    latMaxMs: sampled ? ms(latency.max) : Number.NaN,
    decodeEvery,
    elu,
    cpuCores,
    eldMaxMs: eld.max / 1e6,
    drainMs,
  };
}

async function waitUntil(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}
