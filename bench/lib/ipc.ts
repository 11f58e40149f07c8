/** What the bench processes tell each other over the fork IPC channel, and small helpers for it. */
import type { ChildProcess } from 'node:child_process';
import type { Shape } from './workload.js';

/** Server implementations under test (`producer*` rows publish into nothing: the floor). */
export type VariantName =
  | 'naive'
  | 'seed-inline'
  | 'inline-async'
  | 'ws-pmd'
  | 'write-floor'
  | 'batchcast'
  | 'batchcast-pre'
  | 'batchcast-msgpack'
  | 'batchcast-pmd'
  | 'batchcast-adaptive'
  | 'producer'
  | 'producer-pre';

export const VARIANTS: readonly VariantName[] = [
  'producer', 'producer-pre', 'naive', 'seed-inline', 'inline-async', 'ws-pmd', 'write-floor', 'batchcast', 'batchcast-pre', 'batchcast-msgpack', 'batchcast-pmd', 'batchcast-adaptive',
];

/** How the client process reads a variant's frames. */
export type WireFormat = 'envelope' | 'text-each' | 'pmd-json' | 'pmd-envelope' | 'none';

export interface VariantInfo {
  /** The producer hands over objects, or JSON text it already holds. */
  input: 'object' | 'json';
  wire: WireFormat;
  /** batchcast clients wait for the `subscribed` notice before they count as ready. */
  awaitNotice: boolean;
  description: string;
}

export const VARIANT_INFO: Readonly<Record<VariantName, VariantInfo>> = {
  producer: { input: 'object', wire: 'none', awaitNotice: false, description: 'floor: makes the messages (objects) and drops them; no server' },
  'producer-pre': { input: 'json', wire: 'none', awaitNotice: false, description: 'floor: makes the messages (JSON text) and drops them; no server' },
  naive: { input: 'object', wire: 'text-each', awaitNotice: false, description: 'ws: JSON.stringify each message once, ws.send(text) to every client' },
  'seed-inline': { input: 'object', wire: 'envelope', awaitNotice: false, description: 'ws: batch, JSON.stringify + zlib.deflateRawSync on the main thread, ws.send(frame) per client' },
  'inline-async': { input: 'object', wire: 'envelope', awaitNotice: false, description: 'ws: batch, JSON.stringify on main + zlib.deflateRaw (libuv pool), ws.send(frame) per client, in order' },
  'ws-pmd': { input: 'object', wire: 'pmd-json', awaitNotice: false, description: 'ws: batch, JSON.stringify on main, ws permessage-deflate per client (level 6, threshold 1000)' },
  'write-floor': { input: 'object', wire: 'envelope', awaitNotice: false, description: 'floor: seed-inline encoding, one raw socket.write(prepared frame) per client' },
  batchcast: { input: 'object', wire: 'envelope', awaitNotice: true, description: 'batchcast publish(objects), codec json' },
  'batchcast-pre': { input: 'json', wire: 'envelope', awaitNotice: true, description: 'batchcast publishSerialized(JSON text), codec json' },
  'batchcast-msgpack': { input: 'object', wire: 'envelope', awaitNotice: true, description: 'batchcast publish(objects), codec msgpack' },
  'batchcast-pmd': {
    input: 'object', wire: 'pmd-envelope', awaitNotice: true,
    description: 'batchcast; clients negotiate permessage-deflate: one deflate per batch on a worker, the same message to every client (RFC 7692, no context takeover)',
  },
  'batchcast-adaptive': {
    input: 'object', wire: 'envelope', awaitNotice: true,
    description: 'batchcast with adaptive tuning: targetLatencyMs 20 (broadcast delay p95), checked every 250 ms; batching starts from the preset',
  },
};

export type Scenario = 'fanout' | 'large' | 'saturation' | 'overload';

/** One measured row: a variant, a workload and a client count. */
export interface RowSpec {
  scenario: Scenario;
  variant: VariantName;
  subscribers: number;
  /** Target publish rate, messages per second. */
  rate: number;
  shape: Shape;
  /** Rows per snapshot message (shape `snapshot`). */
  rows: number;
  payloadBytes: number;
  warmupMs: number;
  durationMs: number;
  /** How long clients may take to receive everything after publishing stops. */
  graceMs: number;
  tickMs: number;
  eldResolutionMs: number;
  probes: number;
  /** Probe clients decode every n-th batch frame (1 = all); keeps the clients light at high rates. */
  decodeEvery: number;
  /** CPU each non-probe client spends per frame, in µs (busy loop): 'overload' makes clients that cannot keep up. */
  clientWorkUs: number;
  poolSize: number;
  /** batchcast's encoder threads' nice increment (the library's default unless --worker-nice). */
  workerNice: number;
  /** batchcast's fanoutSliceMs (the library's default unless --fanout-slice-ms). */
  fanoutSliceMs: number;
  /** batchcast's handoffSliceMs (the library's default unless --handoff-slice-ms; 0: off). */
  handoffSliceMs: number;
  /** batchcast's workerPollMs (the library's default unless --worker-poll-ms; 0: workers sleep until woken). */
  workerPollMs: number;
  batchSize: number;
  batchDelayMs: number;
  compressionThreshold: number;
  compressionLevel: number;
  preset: string;
  channel: string;
  repeat: number;
}

/** What the server process measured over the window. */
export interface ServerReport {
  published: number;
  publishedTotal: number;
  windowMs: number;
  elu: number;
  activeMs: number;
  /** Median over slices of main-thread busy µs per published message. */
  busyUsPerMsgMedian: number;
  /** Whole-window busy µs per published message. */
  busyUsPerMsg: number;
  /** Time spent making messages (part of busy), µs per message. */
  produceUsPerMsg: number;
  /** Time inside publish()/sink calls, µs per message. */
  publishCallUsPerMsg: number;
  /** Main-thread CPU time per message (Linux schedstat; NaN elsewhere): busy time less time preempted. */
  mainCpuUsPerMsg: number;
  /** Time the main thread was runnable but waiting for a CPU during the window (Linux). */
  mainWaitMs: number;
  eldP50Ms: number;
  eldP99Ms: number;
  eldMaxMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  /** Process CPU (all threads) as a share of one core. */
  cpuCores: number;
  peakRssMB: number;
  rssEndMB: number;
  lateTicks: number;
  server: Record<string, number>;
}

/** What the client process measured. */
export interface ClientReport {
  clients: number;
  probes: number;
  /** Fewest and most messages any client received. */
  minMessages: number;
  maxMessages: number;
  totalMessages: number;
  /** Messages received by all clients inside the window. */
  windowMessages: number;
  frames: number;
  wireBytes: number;
  probeWireBytes: number;
  probeRawBytes: number;
  probeMessages: number;
  gaps: number;
  errors: number;
  latencySamples: number;
  decodeEvery: number;
  latP50Ms: number;
  latP90Ms: number;
  latP99Ms: number;
  latMaxMs: number;
  elu: number;
  cpuCores: number;
  eldMaxMs: number;
  drainMs: number;
}

export type ToServer =
  | { type: 'start'; spec: RowSpec }
  | { type: 'run'; startAt: number; windowStart: number; windowEnd: number }
  | { type: 'close' };
export type FromServer =
  | { type: 'listening'; port: number }
  | { type: 'report'; report: ServerReport }
  | { type: 'closed'; server: Record<string, number> }
  | { type: 'error'; message: string };

export type ToClient =
  | { type: 'connect'; port: number; clients: number; probes: number; wire: WireFormat; awaitNotice: boolean; channel: string; decodeEvery: number; workUs: number }
  | { type: 'window'; windowStart: number; windowEnd: number }
  | { type: 'expect'; total: number; graceMs: number };
export type FromClient =
  | { type: 'connected' }
  | { type: 'report'; report: ClientReport }
  | { type: 'error'; message: string };

/** Sends to the parent over IPC (the processes here are always forked). */
export function toParent(message: FromServer | FromClient | Record<string, unknown>): void {
  process.send?.(message);
}

/**
 * Runs a child process's side of the IPC: `handle` gets each message from the parent;
 * any failure is reported to the parent as `{type: 'error'}` and ends the process.
 */
export function serveParent<T>(name: string, handle: (message: T) => Promise<void>): void {
  const fail = (error: unknown) => {
    toParent({ type: 'error', message: `${name}: ${(error as Error).stack ?? String(error)}` });
    process.exit(1);
  };
  process.on('uncaughtException', fail);
  process.on('message', (message: T) => void handle(message).catch(fail));
}

/** Resolves with the first IPC message from `child` that `accept` takes; rejects on exit, error or timeout. */
export function nextMessage<T>(child: ChildProcess, accept: (message: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (message: T) => {
      const error = (message as { type?: string; message?: string });
      if (error.type === 'error') {
        cleanup();
        reject(new Error(`${what}: ${error.message ?? 'error'}`));
      } else if (accept(message)) {
        cleanup();
        resolve(message);
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      cleanup();
      reject(new Error(`${what}: process exited (code ${code}, signal ${signal})`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/**
 * Sends `message` to `child` (null: sends nothing) and resolves with its next message of
 * `type`; rejects if the child exits or reports an error first, or after `timeoutMs`.
 */
export function ask<T>(child: ChildProcess, message: unknown, type: string, timeoutMs = 600_000): Promise<T> {
  const answer = nextMessage<T>(child, (reply) => (reply as { type?: string }).type === type, timeoutMs, type);
  if (message !== null) child.send(message as never);
  return answer;
}
