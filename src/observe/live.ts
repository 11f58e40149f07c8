/**
 * The live page of `serve`: once a second a snapshot of the broadcaster (rates, delay,
 * pool, event-loop delay, slow clients, current settings) goes to every open page over
 * Server-Sent Events; the page (public/live.html, public/live.js) draws it with uPlot,
 * served from the package. Nothing polls `/stats`, and nothing runs per message.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Broadcaster } from '../broadcaster.js';

/** One second of a broadcaster, as the page gets it. */
export interface LiveSnapshot {
  /** Unix ms at the end of the second. */
  time: number;
  messagesPerSecond: number;
  framesPerSecond: number;
  /** Bytes written to sockets per second, all subscribers. */
  wireBytesPerSecond: number;
  /** Raw ÷ wire bytes of the batches encoded in this second (1 when none). */
  compressionRatio: number;
  connections: number;
  subscriptions: number;
  /** Broadcast delay of this second's batches (first publish → written). */
  delayMs: { p50: number; p99: number; batches: number };
  pool: { utilization: number; queue: number; threads: number };
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** Slow-client events in this second: batches skipped (drop), clients closed (close); clients catching up now. */
  slowClients: { batchesSkipped: number; closed: number; lagging: number };
  settings: { preset: string; codec: string; batchSize: number; batchDelayMs: number; compressionThreshold: number; compressionLevel: number; adaptive: boolean };
}

/** Seconds of snapshots a page gets when it opens, so its charts start filled. */
const BACKLOG = 120;

// public/ is two levels up from src/observe/ (tests run the sources) and three from dist/src/observe/ (the package).
const PUBLIC = [new URL('../../public/', import.meta.url), new URL('../../../public/', import.meta.url)]
  .find((url) => existsSync(new URL('live.html', url))) ?? new URL('../../../public/', import.meta.url);
/** monitorEventLoopDelay's resolution; the histogram records whole timer intervals, this included. */
const LOOP_RESOLUTION_MS = 10;
const require = createRequire(import.meta.url);

interface Asset {
  body: Buffer;
  type: string;
}

/** The page's files, read once at start. */
function loadAssets(): Map<string, Asset> {
  const uplot = (file: string) => readFileSync(require.resolve(`uplot/dist/${file}`));
  return new Map<string, Asset>([
    ['/', { body: readFileSync(new URL('live.html', PUBLIC)), type: 'text/html; charset=utf-8' }],
    ['/live/live.js', { body: readFileSync(new URL('live.js', PUBLIC)), type: 'text/javascript; charset=utf-8' }],
    ['/live/uPlot.iife.min.js', { body: uplot('uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' }],
    ['/live/uPlot.min.css', { body: uplot('uPlot.min.css'), type: 'text/css; charset=utf-8' }],
  ]);
}

/** Samples a broadcaster once a second and streams the samples to live pages. */
export class LiveFeed {
  readonly #broadcaster: Broadcaster;
  readonly #assets = loadAssets();
  readonly #clients = new Set<ServerResponse>();
  readonly #backlog: string[] = [];
  readonly #loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  readonly #timer: NodeJS.Timeout;
  #last: ReturnType<Broadcaster['stats']>;

  constructor(broadcaster: Broadcaster) {
    this.#broadcaster = broadcaster;
    this.#last = broadcaster.stats();
    this.#loopDelay.enable();
    this.#timer = setInterval(() => this.#tick(), 1000);
    this.#timer.unref();
  }

  /** Serves the page, its files and the event stream; false when the request is not for them. */
  handle(request: IncomingMessage, response: ServerResponse, path: string): boolean {
    if (request.method !== 'GET') return false;
    if (path === '/live/events') {
      this.#subscribe(request, response);
      return true;
    }
    const asset = this.#assets.get(path);
    if (asset === undefined) return false;
    response.writeHead(200, { 'content-type': asset.type, 'content-length': asset.body.byteLength, 'cache-control': 'no-cache' });
    response.end(asset.body);
    return true;
  }

  /** Pages open now. */
  get viewers(): number {
    return this.#clients.size;
  }

  /** Ends every stream and stops sampling. */
  close(): void {
    clearInterval(this.#timer);
    this.#loopDelay.disable();
    for (const response of this.#clients) response.end();
    this.#clients.clear();
  }

  #subscribe(request: IncomingMessage, response: ServerResponse): void {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    // The backlog first, so the charts start with the last minutes, then one event a second.
    response.write(`retry: 2000\n\n${this.#backlog.join('')}`);
    this.#clients.add(response);
    request.once('close', () => this.#clients.delete(response));
  }

  #tick(): void {
    const event = `data: ${JSON.stringify(this.#snapshot())}\n\n`;
    this.#backlog.push(event);
    if (this.#backlog.length > BACKLOG) this.#backlog.shift();
    // A page that does not read is not waited for: past 1 MiB queued its stream is closed (EventSource reconnects).
    for (const response of this.#clients) {
      if (response.writableLength > 1 << 20) response.destroy();
      else response.write(event);
    }
  }

  #snapshot(): LiveSnapshot {
    const now = this.#broadcaster.stats();
    const last = this.#last;
    this.#last = now;
    const loop = this.#loopDelay;
    // The delay is what is beyond the timer's own interval.
    const lag = (ns: number) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);
    const eventLoopDelayMs = { p50: lag(loop.percentile(50)), p99: lag(loop.percentile(99)), max: lag(loop.max) };
    loop.reset();
    const raw = now.rawBytes - last.rawBytes;
    const wire = now.wireBytes - last.wireBytes;
    const delay = now.broadcastDelayLastSecondMs;
    const { config } = this.#broadcaster;
    const tuned = now.adaptive;
    return {
      time: Date.now(),
      messagesPerSecond: now.messagesPublished - last.messagesPublished,
      framesPerSecond: now.framesSent - last.framesSent,
      wireBytesPerSecond: now.bytesSent - last.bytesSent,
      compressionRatio: wire === 0 ? 1 : raw / wire,
      connections: now.connections,
      subscriptions: now.subscriptions,
      delayMs: { p50: delay.p50, p99: delay.p99, batches: delay.samples },
      pool: { utilization: now.pool.utilization, queue: now.pool.queueSize, threads: now.pool.threads },
      eventLoopDelayMs,
      slowClients: { batchesSkipped: now.batchesSkipped - last.batchesSkipped, closed: now.slowClientsClosed - last.slowClientsClosed, lagging: now.catchUp.lagging },
      settings: {
        preset: config.preset, codec: config.codec,
        batchSize: tuned.batchSize, batchDelayMs: tuned.batchDelayMs, compressionThreshold: tuned.compressionThreshold, compressionLevel: tuned.compressionLevel,
        adaptive: tuned.enabled,
      },
    };
  }
}
