/**
 * Runs one row: a fresh server process and a fresh client process, a shared
 * schedule (start, warm-up, window) in epoch milliseconds, then the reports of
 * both and the numbers derived from them.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { CostRow, EncodeArgs, EncodeRow } from '../encode-proc.js';
import {
  VARIANT_INFO,
  nextMessage,
  type ClientReport,
  type FromClient,
  type FromServer,
  type RowSpec,
  type ServerReport,
  type ToClient,
  type ToServer,
} from './ipc.js';
import { epochNow } from './workload.js';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const SERVER_PROC = here('../server-proc.js');
const CLIENT_PROC = here('../client-proc.js');
const ENCODE_PROC = here('../encode-proc.js');

/** The client process counts as saturated (its row does not count) above this event-loop utilization. */
export const CLIENT_SATURATED_ELU = 0.9;
/** A rate is sustained when at least this share of the scheduled messages was published in the window. */
export const PUBLISHED_SHARE = 0.98;

export interface Derived {
  /** Messages published per second in the window. */
  achievedRate: number;
  /** achievedRate / target rate. */
  publishedShare: number;
  /** Fewest messages any client received / messages published (null without clients). */
  deliveredFraction: number | null;
  /** Messages received by all clients per second of window. */
  deliveredPerSec: number | null;
  /** Socket bytes received per message per client. */
  wireBytesPerMsg: number | null;
  /** Serialized bytes / socket bytes, on the probe clients. */
  compressionRatio: number | null;
  /** Messages per frame (batch size as it happened). */
  avgBatch: number;
  clientSaturated: boolean;
  /** Every client got every message, in order, the producer kept its schedule and the clients were not saturated. */
  sustained: boolean;
}

export interface RowResult {
  spec: RowSpec;
  ok: boolean;
  error?: string;
  server?: ServerReport;
  client?: ClientReport;
  derived?: Derived;
  wallMs: number;
}

/** Extra node flags for server processes (e.g. --cpu-prof) from BENCH_SERVER_NODE_ARGS. */
function serverExecArgv(): string[] {
  const extra = process.env.BENCH_SERVER_NODE_ARGS;
  return extra === undefined || extra.trim() === '' ? [] : extra.trim().split(/\s+/);
}

function spawn(file: string, execArgv: string[] = []): ChildProcess {
  return fork(file, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
}

function exited(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function stop(child: ChildProcess | null): void {
  if (child !== null && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** Runs one row end to end. Never throws: a failed row comes back with `ok: false` and the error. */
export async function runRow(spec: RowSpec): Promise<RowResult> {
  const started = performance.now();
  const info = VARIANT_INFO[spec.variant];
  let server: ChildProcess | null = null;
  let client: ChildProcess | null = null;
  try {
    server = spawn(SERVER_PROC, serverExecArgv());
    const send = (message: ToServer) => server!.send(message);
    send({ type: 'start', spec });
    const { port } = await nextMessage<FromServer>(server, (m) => m.type === 'listening', 20_000, 'server start') as Extract<FromServer, { type: 'listening' }>;
    const withClients = spec.subscribers > 0 && info.wire !== 'none';
    if (withClients) {
      client = spawn(CLIENT_PROC);
      const connect: ToClient = { type: 'connect', port, clients: spec.subscribers, probes: spec.probes, wire: info.wire, awaitNotice: info.awaitNotice, channel: spec.channel, decodeEvery: spec.decodeEvery, workUs: spec.clientWorkUs };
      client.send(connect);
      await nextMessage<FromClient>(client, (m) => m.type === 'connected', 60_000, 'clients connect');
    }
    const startAt = epochNow() + 100;
    const windowStart = startAt + spec.warmupMs;
    const windowEnd = windowStart + spec.durationMs;
    client?.send({ type: 'window', windowStart, windowEnd } satisfies ToClient);
    send({ type: 'run', startAt, windowStart, windowEnd });
    const { report } = await nextMessage<FromServer>(server, (m) => m.type === 'report', spec.warmupMs + spec.durationMs + 60_000, 'server run') as Extract<FromServer, { type: 'report' }>;
    let clientReport: ClientReport | undefined;
    if (client !== null) {
      client.send({ type: 'expect', total: report.publishedTotal, graceMs: spec.graceMs } satisfies ToClient);
      clientReport = (await nextMessage<FromClient>(client, (m) => m.type === 'report', spec.graceMs + 60_000, 'clients report') as Extract<FromClient, { type: 'report' }>).report;
    }
    send({ type: 'close' });
    const closed = await nextMessage<FromServer>(server, (m) => m.type === 'closed', 30_000, 'server close').catch(() => null);
    report.server = closed !== null && closed.type === 'closed' ? closed.server : {};
    // Let it exit by itself (a --cpu-prof profile is written at exit).
    await exited(server, 10_000);
    return { spec, ok: true, server: report, client: clientReport, derived: derive(spec, report, clientReport), wallMs: performance.now() - started };
  } catch (error) {
    return { spec, ok: false, error: (error as Error).message, wallMs: performance.now() - started };
  } finally {
    stop(client);
    stop(server);
  }
}

function derive(spec: RowSpec, server: ServerReport, client: ClientReport | undefined): Derived {
  const windowS = server.windowMs / 1000;
  const achievedRate = server.published / windowS;
  const publishedShare = achievedRate / spec.rate;
  const batches = server.server.batches;
  const avgBatch = spec.variant === 'naive' ? 1 : batches !== undefined && batches > 0 ? server.publishedTotal / batches : Number.NaN;
  if (client === undefined) {
    return { achievedRate, publishedShare, deliveredFraction: null, deliveredPerSec: null, wireBytesPerMsg: null, compressionRatio: null, avgBatch, clientSaturated: false, sustained: publishedShare >= PUBLISHED_SHARE };
  }
  const deliveredFraction = server.publishedTotal === 0 ? 0 : client.minMessages / server.publishedTotal;
  const clientSaturated = client.elu > CLIENT_SATURATED_ELU;
  return {
    achievedRate,
    publishedShare,
    deliveredFraction,
    deliveredPerSec: client.windowMessages / windowS,
    wireBytesPerMsg: client.totalMessages === 0 ? null : client.wireBytes / client.totalMessages,
    compressionRatio: client.probeWireBytes === 0 ? null : client.probeRawBytes / client.probeWireBytes,
    avgBatch,
    clientSaturated,
    sustained: publishedShare >= PUBLISHED_SHARE && deliveredFraction === 1 && client.gaps === 0 && client.errors === 0 && !clientSaturated,
  };
}

/** Runs the encode-only scenario (and the cost model) in its own process. */
export async function runEncode(args: EncodeArgs): Promise<{ rows: EncodeRow[]; costs: CostRow[] }> {
  const child = spawn(ENCODE_PROC, ['--expose-gc']);
  try {
    child.send(args);
    const budget = (args.codecs.length * args.levels.length * (args.poolSizes.length + 1) * (args.roundMs * args.rounds + args.warmupMs)) + 60_000;
    const message = await nextMessage<{ type: string; rows?: EncodeRow[]; costs?: CostRow[] }>(child, (m) => m.type === 'encode', budget + 120_000, 'encode scenario');
    return { rows: message.rows ?? [], costs: message.costs ?? [] };
  } finally {
    stop(child);
  }
}
