/**
 * The history scenario: (1) what history costs in memory while a batchcast server
 * publishes at a given rate (one channel, and the same rate spread over 100 channels),
 * and (2) a reconnect storm: N clients drop at once, stay away for a while, and all
 * reconnect at once recovering what they missed. It reports the server's worst
 * event-loop stall during the storm and how long until every client is live again.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { PRESETS, SETTINGS, type PresetName } from '../../src/config.js';
import { FRAME_OVERHEAD_BYTES } from '../../src/history/history.js';
import type { HistoryClientsArgs, StormReport } from '../history-clients.js';
import type { HistorySample, HistoryServerArgs, StormMeasure, ToHistoryServer } from '../history-server.js';
import { ask } from './ipc.js';
import { table } from './report.js';
import { fmt } from './stats.js';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export interface HistoryBenchOptions {
  seconds: number;
  rate: number;
  stormClients: number;
  stormRate: number;
  stormOutageMs: number;
  preset: PresetName;
  poolSize: number;
}

export interface MemoryRow {
  channels: number;
  rate: number;
  seconds: number;
  /** History held at the end of the window, all channels. */
  historyBytes: number;
  historyMessages: number;
  frames: number;
  /** Growth rate of history, bytes per second of stream (no eviction in the window). */
  bytesPerSecond: number;
  bytesPerMessage: number;
  perChannelBytesPerSecond: number;
  rssGrowthBytes: number;
  /** Growth of the JS heap plus external memory (ArrayBuffers) over the window. */
  heapAndBuffersGrowthBytes: number;
  /** What a held frame costs beyond its bytes (entry, Buffer view, backing store), from that growth. */
  overheadPerFrameBytes: number;
  /** Seconds of stream the default bounds hold per channel, and over all channels. */
  defaultCoverSeconds: number;
}

export interface StormRow extends Omit<StormReport, 'type'> {
  rate: number;
  outageMs: number;
  server: Omit<StormMeasure, 'type'>;
}

export interface HistoryBenchResult {
  memory: MemoryRow[];
  storm: StormRow | null;
  error?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function startServer(args: HistoryServerArgs): { child: ChildProcess; ready: Promise<{ port: number }> } {
  const child = fork(here('../history-server.js'), [JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--expose-gc'] });
  return { child, ready: ask<{ port: number }>(child, null, 'ready') };
}

async function stop(child: ChildProcess, message: unknown): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, 'exit');
  child.send(message as ToHistoryServer);
  await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
}

async function memoryRow(o: HistoryBenchOptions, channels: number): Promise<MemoryRow> {
  const { child, ready } = startServer({ rate: o.rate, channels, preset: o.preset, poolSize: o.poolSize, tickMs: 5 });
  try {
    await ready;
    await sleep(500);
    const first = await ask<HistorySample>(child, { type: 'sample' }, 'sample');
    await sleep(o.seconds * 1000);
    const last = await ask<HistorySample>(child, { type: 'sample' }, 'sample');
    const seconds = (last.atMs - first.atMs) / 1000;
    const bytesPerSecond = (last.history.bytes - first.history.bytes) / seconds;
    const messages = last.published - first.published;
    const perChannel = bytesPerSecond / channels;
    const perChannelBound = Number(SETTINGS.historyBytes.fallback({}));
    const totalBound = Number(SETTINGS.historyTotalBytes.fallback({}));
    const ttlSeconds = Number(SETTINGS.historyTtlMs.fallback({})) / 1000;
    return {
      channels, rate: o.rate, seconds, historyBytes: last.history.bytes, historyMessages: last.history.messages, frames: last.history.frames,
      bytesPerSecond, bytesPerMessage: (last.history.bytes - first.history.bytes) / messages, perChannelBytesPerSecond: perChannel,
      rssGrowthBytes: last.rssBytes - first.rssBytes,
      heapAndBuffersGrowthBytes: last.heapUsedBytes + last.externalBytes - first.heapUsedBytes - first.externalBytes,
      // history.bytes counts FRAME_OVERHEAD_BYTES per frame already: add it back to get what a frame costs beyond its own bytes.
      overheadPerFrameBytes:
        (last.heapUsedBytes + last.externalBytes - first.heapUsedBytes - first.externalBytes - (last.history.bytes - first.history.bytes)) /
          Math.max(1, last.history.frames - first.history.frames) + FRAME_OVERHEAD_BYTES,
      defaultCoverSeconds: Math.min(ttlSeconds, perChannelBound / perChannel, totalBound / bytesPerSecond),
    };
  } finally {
    await stop(child, { type: 'stop' });
  }
}

async function stormRow(o: HistoryBenchOptions): Promise<StormRow> {
  const { child: server, ready } = startServer({ rate: o.stormRate, channels: 1, preset: o.preset, poolSize: o.poolSize, tickMs: 5 });
  let clients: ChildProcess | null = null;
  try {
    const { port } = await ready;
    const args: HistoryClientsArgs = { port, clients: o.stormClients, channel: 'bench' };
    clients = fork(here('../history-clients.js'), [JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await ask(clients, null, 'ready');
    await sleep(1000);
    await ask(clients, { type: 'disconnect' }, 'disconnected');
    await sleep(o.stormOutageMs);
    server.send({ type: 'measure-start' } satisfies ToHistoryServer);
    const report = await ask<StormReport>(clients, { type: 'reconnect' }, 'storm');
    const measure = await ask<StormMeasure>(server, { type: 'measure-stop' }, 'measure');
    const { type: _report, ...storm } = report;
    const { type: _measure, ...serverFigures } = measure;
    return { ...storm, rate: o.stormRate, outageMs: o.stormOutageMs, server: serverFigures };
  } finally {
    if (clients !== null) await stop(clients, { type: 'stop' });
    await stop(server, { type: 'stop' });
  }
}

/** Runs both parts; a failure is reported in the result, not thrown. */
export async function runHistoryBench(o: HistoryBenchOptions, progress: (label: string) => void): Promise<HistoryBenchResult> {
  const result: HistoryBenchResult = { memory: [], storm: null };
  try {
    for (const channels of [1, 100]) {
      progress(`history · memory · ${channels} channel${channels === 1 ? '' : 's'} · ${fmt(o.rate, 0)} msg/s · ${o.seconds} s`);
      result.memory.push(await memoryRow(o, channels));
    }
    progress(`history · reconnect storm · ${o.stormClients} clients · ${fmt(o.stormRate, 0)} msg/s · away ${o.stormOutageMs} ms`);
    result.storm = await stormRow(o);
  } catch (error) {
    result.error = (error as Error).message;
  }
  return result;
}

const MiB = 1024 * 1024;

/** The text section of the report. */
export function historyText(result: HistoryBenchResult, o: HistoryBenchOptions): string {
  const preset = PRESETS[o.preset];
  const parts = [`\n== History: memory at ${fmt(o.rate, 0)} trade msgs/s (${o.preset}: ${preset.batchSize} msgs / ${preset.batchDelayMs} ms, level ${preset.compressionLevel}) ==`];
  parts.push(table(
    ['channels', 'window s', 'held MiB (counted)', 'frames', 'messages', 'B/msg', 'KiB/s', 'KiB/s per channel', 'heap+external growth MiB', 'B/frame beyond its bytes', 'RSS growth MiB', 'default bounds hold (s)'],
    result.memory.map((m) => [
      String(m.channels), fmt(m.seconds, 1), fmt(m.historyBytes / MiB, 2), String(m.frames), String(m.historyMessages), fmt(m.bytesPerMessage, 1),
      fmt(m.bytesPerSecond / 1024, 0), fmt(m.perChannelBytesPerSecond / 1024, 1), fmt(m.heapAndBuffersGrowthBytes / MiB, 1), fmt(m.overheadPerFrameBytes, 0),
      fmt(m.rssGrowthBytes / MiB, 1), fmt(m.defaultCoverSeconds, 0),
    ]),
  ));
  const s = result.storm;
  if (s !== null) {
    parts.push(`\n== History: reconnect storm (${s.clients} clients drop at once, away ${s.outageMs} ms at ${fmt(s.rate, 0)} msgs/s, reconnect at once with since) ==`);
    parts.push(table(
      ['clients', 'recovered/client', 'all live ms', 'live p50 ms', 'live p99 ms', 'eld max ms', 'eld p99 ms', 'ELU', 'frames replayed', 'MiB replayed', 'gaps', 'statuses'],
      [[
        String(s.clients), String(s.recoveredPerClient), fmt(s.allLiveMs, 0), fmt(s.liveP50Ms, 0), fmt(s.liveP99Ms, 0), fmt(s.server.eldMaxMs, 1),
        fmt(s.server.eldP99Ms, 1), fmt(s.server.elu, 2), String(s.server.framesReplayed), fmt(s.server.bytesReplayed / MiB, 1), String(s.gaps), JSON.stringify(s.statuses),
      ]],
    ));
    parts.push(`  repeated messages the clients dropped (replay sends whole batches): ${s.duplicateMessages}`);
  }
  if (result.error !== undefined) parts.push(`  history scenario failed: ${result.error}`);
  return parts.join('\n');
}
