/**
 * The servers under test. Baselines are what an application would write instead,
 * each a plain `ws` WebSocketServer on 127.0.0.1:0 with the same batching rules as
 * batchcast (close a batch at `batchSize` messages or `batchDelayMs` after its first
 * message; compress bodies over `compressionThreshold` at `compressionLevel`).
 * seed-inline, inline-async and write-floor send batchcast envelopes (the same bytes
 * batchcast's json codec sends), so one client decoder reads them all.
 */
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { deflateRaw, deflateRawSync } from 'node:zlib';
import { WebSocketServer, type WebSocket } from 'ws';
import { createBroadcaster, type Broadcaster } from '../../src/index.js';
import { KIND_BATCH, envelopeHeaderLength, writeEnvelopeHeader } from '../../src/protocol/envelope.js';
import { OPCODE_BINARY, wsFrameHeaderLength, writeWsFrameHeader } from '../../src/protocol/ws-frame.js';
import type { RowSpec, VariantName } from './ipc.js';

/** A server under test, as the producer sees it. */
export interface BenchServer {
  readonly port: number;
  /** Hands one message over (an object, or JSON text for `*-pre` variants). */
  publish(message: unknown): void;
  /** Closes open batches now (end of the run). */
  flush(): void;
  /** Counters of the server's own (frames, bytes); read at the end. */
  counters(): Record<string, number>;
  close(): Promise<void>;
}

/** Same batching rule as batchcast's Batcher, for one channel, without its back-pressure machinery. */
class SimpleBatcher {
  #items: unknown[] = [];
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly size: number,
    private readonly delayMs: number,
    private readonly onBatch: (items: unknown[]) => void,
  ) {}

  append(message: unknown): void {
    const items = this.#items;
    items.push(message);
    if (items.length === 1) this.#timer = setTimeout(this.#onTimer, this.delayMs);
    else if (items.length >= this.size) this.flush();
  }

  readonly #onTimer = (): void => {
    this.#timer = null;
    if (this.#items.length > 0) this.flush();
  };

  flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#items.length === 0) return;
    const items = this.#items;
    this.#items = [];
    this.onBatch(items);
  }
}

/** A baseline server as the producer sees it: messages go to its batcher. */
function batchedServer(host: WsHost, batcher: SimpleBatcher, counters: Record<string, number>): BenchServer {
  return {
    port: host.port,
    publish: (message) => batcher.append(message),
    flush: () => batcher.flush(),
    counters: () => ({ ...counters }),
    close: () => closeHost(host),
  };
}

/** A batchcast envelope (no WebSocket header) around an encoded body. */
function envelope(channel: string, firstSeq: number, count: number, compressed: boolean, payload: Uint8Array, wsHeader: boolean): Buffer {
  const envelopeLength = envelopeHeaderLength(channel) + payload.byteLength;
  const offset = wsHeader ? wsFrameHeaderLength(envelopeLength) : 0;
  const frame = Buffer.allocUnsafe(offset + envelopeLength);
  if (wsHeader) writeWsFrameHeader(frame, envelopeLength, OPCODE_BINARY);
  const bodyOffset = writeEnvelopeHeader(frame, offset, KIND_BATCH, 'json', compressed, count, firstSeq, channel);
  frame.set(payload, bodyOffset);
  return frame;
}

interface WsHost {
  wss: WebSocketServer;
  port: number;
  clients: Set<WebSocket>;
}

async function listen(perMessageDeflate: boolean | object): Promise<WsHost> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: perMessageDeflate as false, clientTracking: false, maxPayload: 64 * 1024 });
  const clients = new Set<WebSocket>();
  wss.on('connection', (ws) => {
    clients.add(ws);
    ws.on('error', () => {});
    ws.on('close', () => clients.delete(ws));
  });
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve);
    wss.once('error', reject);
  });
  return { wss, port: (wss.address() as AddressInfo).port, clients };
}

async function closeHost(host: WsHost): Promise<void> {
  for (const ws of host.clients) ws.terminate();
  await new Promise<void>((resolve) => host.wss.close(() => resolve()));
}

/** Encodes a batch the way the seed code does: one stringify, one synchronous raw deflate, on this thread. */
function encodeInline(items: unknown[], spec: RowSpec): { body: Buffer; payload: Uint8Array; compressed: boolean } {
  const body = Buffer.from(JSON.stringify(items));
  if (spec.compressionLevel > 0 && body.byteLength > spec.compressionThreshold) {
    const deflated = deflateRawSync(body, { level: spec.compressionLevel });
    if (deflated.byteLength < body.byteLength) return { body, payload: deflated, compressed: true };
  }
  return { body, payload: body, compressed: false };
}

async function naive(): Promise<BenchServer> {
  const host = await listen(false);
  const c = { framesSent: 0, bytesSent: 0 };
  return {
    port: host.port,
    publish(message) {
      const text = JSON.stringify(message);
      for (const ws of host.clients) ws.send(text);
      c.framesSent += host.clients.size;
      c.bytesSent += text.length * host.clients.size;
    },
    flush() {},
    counters: () => ({ ...c, rawBytes: c.bytesSent }),
    close: () => closeHost(host),
  };
}

async function seedInline(spec: RowSpec, rawWrite: boolean): Promise<BenchServer> {
  const host = await listen(false);
  const c = { batches: 0, framesSent: 0, bytesSent: 0, rawBytes: 0, wireBytes: 0 };
  let seq = 0;
  // write-floor keeps the raw sockets: fan-out is exactly one socket.write per subscriber.
  const sockets = new Map<WebSocket, Duplex>();
  if (rawWrite) {
    host.wss.on('connection', (ws) => {
      sockets.set(ws, (ws as unknown as { _socket: Duplex })._socket);
      ws.on('close', () => sockets.delete(ws));
    });
  }
  const batcher = new SimpleBatcher(spec.batchSize, spec.batchDelayMs, (items) => {
    const { body, payload, compressed } = encodeInline(items, spec);
    const frame = envelope(spec.channel, seq, items.length, compressed, payload, rawWrite);
    seq += items.length;
    c.batches++;
    c.rawBytes += body.byteLength;
    c.wireBytes += frame.byteLength;
    if (rawWrite) {
      for (const socket of sockets.values()) socket.write(frame);
      c.framesSent += sockets.size;
      c.bytesSent += frame.byteLength * sockets.size;
    } else {
      for (const ws of host.clients) ws.send(frame, { binary: true });
      c.framesSent += host.clients.size;
      c.bytesSent += frame.byteLength * host.clients.size;
    }
  });
  return batchedServer(host, batcher, c);
}

async function inlineAsync(spec: RowSpec): Promise<BenchServer> {
  const host = await listen(false);
  const c = { batches: 0, framesSent: 0, bytesSent: 0, rawBytes: 0, wireBytes: 0 };
  let seq = 0;
  // Deflates run on the libuv pool and may finish out of order: release frames in batch order.
  const queue: { frame: Buffer | null }[] = [];
  const release = () => {
    while (queue.length > 0 && queue[0]!.frame !== null) {
      const frame = queue.shift()!.frame!;
      for (const ws of host.clients) ws.send(frame, { binary: true });
      c.framesSent += host.clients.size;
      c.bytesSent += frame.byteLength * host.clients.size;
    }
  };
  const batcher = new SimpleBatcher(spec.batchSize, spec.batchDelayMs, (items) => {
    const body = Buffer.from(JSON.stringify(items));
    const firstSeq = seq;
    seq += items.length;
    c.batches++;
    c.rawBytes += body.byteLength;
    const slot: { frame: Buffer | null } = { frame: null };
    queue.push(slot);
    const finish = (payload: Uint8Array, compressed: boolean) => {
      slot.frame = envelope(spec.channel, firstSeq, items.length, compressed, payload, false);
      c.wireBytes += slot.frame.byteLength;
      release();
    };
    if (spec.compressionLevel > 0 && body.byteLength > spec.compressionThreshold) {
      deflateRaw(body, { level: spec.compressionLevel }, (error, deflated) => {
        if (error !== null || deflated.byteLength >= body.byteLength) finish(body, false);
        else finish(deflated, true);
      });
    } else {
      finish(body, false);
    }
  });
  return batchedServer(host, batcher, c);
}

async function wsPmd(spec: RowSpec): Promise<BenchServer> {
  const host = await listen({ threshold: spec.compressionThreshold, zlibDeflateOptions: { level: spec.compressionLevel } });
  const c = { batches: 0, framesSent: 0, rawBytes: 0 };
  let seq = 0;
  const batcher = new SimpleBatcher(spec.batchSize, spec.batchDelayMs, (items) => {
    // A JSON text frame; `seq` and `n` up front let clients count without parsing the whole array.
    const data = Buffer.from(`{"seq":${seq},"n":${items.length},"messages":${JSON.stringify(items)}}`);
    seq += items.length;
    c.batches++;
    c.rawBytes += data.byteLength;
    for (const ws of host.clients) ws.send(data, { binary: false });
    c.framesSent += host.clients.size;
  });
  return batchedServer(host, batcher, c);
}

/** The `batchcast-adaptive` variant's latency target and control interval. */
const ADAPTIVE = { targetLatencyMs: 20, adaptiveIntervalMs: 250 };

async function batchcast(spec: RowSpec, codec: 'json' | 'msgpack', serialized: boolean, adaptive = false): Promise<BenchServer> {
  const broadcaster: Broadcaster = createBroadcaster({
    ...(adaptive ? ADAPTIVE : {}),
    port: 0,
    host: '127.0.0.1',
    poolSize: spec.poolSize,
    workerNice: spec.workerNice,
    fanoutSliceMs: spec.fanoutSliceMs,
    handoffSliceMs: spec.handoffSliceMs,
    workerPollMs: spec.workerPollMs,
    codec,
    batchSize: spec.batchSize,
    batchDelayMs: spec.batchDelayMs,
    compressionThreshold: spec.compressionThreshold,
    compressionLevel: spec.compressionLevel,
    heartbeatIntervalMs: 0,
    maxPayload: 64 * 1024,
    env: {},
  });
  await broadcaster.ready;
  const channel = spec.channel;
  return {
    port: broadcaster.address()!.port,
    publish: serialized
      ? (message) => broadcaster.publishSerialized(channel, message as string)
      : (message) => broadcaster.publish(channel, message),
    flush: () => broadcaster.flush(),
    counters() {
      const s = broadcaster.stats();
      return {
        batches: s.batches, framesSent: s.framesSent, bytesSent: s.bytesSent, rawBytes: s.rawBytes, wireBytes: s.wireBytes,
        messagesDropped: s.messagesDropped, batchesSkipped: s.batchesSkipped, sendErrors: s.sendErrors, reorderedBatches: s.reorderedBatches,
        poolThreads: s.pool.threads, poolUtilization: s.pool.utilization, encodeMicrosP50: s.encodeMicros.p50, encodeMicrosP99: s.encodeMicros.p99,
        faults: s.pool.faults.error + s.pool.faults.crash + s.pool.faults.timeout,
      };
    },
    close: () => broadcaster.close(),
  };
}

/** A sink that drops everything: measures what making and handing over messages costs by itself. */
function producerOnly(): BenchServer {
  let kept: unknown = null;
  return {
    port: 0,
    publish(message) {
      kept = message;
    },
    flush() {
      void kept;
    },
    counters: () => ({}),
    close: async () => {},
  };
}

/** Starts the server of `variant`. */
export function startServer(variant: VariantName, spec: RowSpec): Promise<BenchServer> {
  switch (variant) {
    case 'naive': return naive();
    case 'seed-inline': return seedInline(spec, false);
    case 'write-floor': return seedInline(spec, true);
    case 'inline-async': return inlineAsync(spec);
    case 'ws-pmd': return wsPmd(spec);
    case 'batchcast': return batchcast(spec, 'json', false);
    case 'batchcast-pre': return batchcast(spec, 'json', true);
    case 'batchcast-msgpack': return batchcast(spec, 'msgpack', false);
    // The same server as `batchcast`: its clients offer permessage-deflate (client-proc.ts), so it sends them the transport-compressed form.
    case 'batchcast-pmd': return batchcast(spec, 'json', false);
    case 'batchcast-adaptive': return batchcast(spec, 'json', false, true);
    case 'producer':
    case 'producer-pre': return Promise.resolve(producerOnly());
  }
}
