/** `batchcast serve`: the standalone server (WebSocket endpoint, HTTP publish, health, stats and metrics), logging JSON lines with pino. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { createBroadcaster, type Broadcaster } from '../broadcaster.js';
import type { ConfigOptions, ServerConfig } from '../config.js';
import { LiveFeed } from '../observe/live.js';
import type { Logger } from '../observe/logger.js';
import { createHttpApi } from '../server/http-api.js';
import { startDemoFeed } from './demo.js';

export interface ServeOptions extends ServerConfig {
  demo: boolean;
  /** Broadcaster settings given as flags (the environment is read by createBroadcaster). */
  settings: ConfigOptions;
  /** Where to log (default: pino, JSON lines on stdout, at `logLevel`). */
  logger?: Logger;
}

/** A running server. */
export interface Served {
  server: Server;
  broadcaster: Broadcaster;
  port: number;
  logger: Logger;
  /** Stops the demo feed, closes the broadcaster gracefully, then the HTTP server. */
  close: () => Promise<void>;
}

/** Starts the server; resolves once it listens. */
export async function serve(options: ServeOptions): Promise<Served> {
  const log = options.logger ?? pino({ level: options.logLevel, base: { name: 'batchcast' } });
  const server = createServer();
  const broadcaster = createBroadcaster({
    ...options.settings, server, path: options.path, allowedOrigins: options.allowedOrigins, metrics: { defaultMetrics: true }, logger: log,
  });
  const live = new LiveFeed(broadcaster);
  broadcaster.ready.catch(() => live.close());
  const api = createHttpApi(broadcaster, {
    publishToken: options.publishToken,
    maxBodyBytes: broadcaster.config.maxMessageBytes,
    live,
  });
  server.on('request', api);
  // In a cluster: Redis must answer before we take clients (ready rejects with a clear BrokerError, reported by the CLI).
  await broadcaster.ready;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // After start, errors (e.g. accept failing with EMFILE) are reported and the server keeps serving.
  server.on('error', (error: NodeJS.ErrnoException) => log.error({ err: error, code: error.code }, `server error${error.code === undefined ? '' : ` ${error.code}`}: ${error.message}`));
  const { port } = server.address() as AddressInfo;
  const shown = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  const { config } = broadcaster;
  log.info({ port, path: options.path, preset: config.preset, codec: config.codec, poolSize: config.poolSize },
    `batchcast listening on ws://${shown}:${port}${options.path} (preset ${config.preset}, codec ${config.codec}, ${config.poolSize} encoder thread${config.poolSize === 1 ? '' : 's'}, batches of ${config.batchSize} / ${config.batchDelayMs} ms)`);
  if (config.redisUrl !== undefined) log.info({}, `cluster node: Redis ${config.redisUrl.replace(/\/\/[^@/]*@/, '//…@')}, key prefix "${config.redisPrefix}"`);
  log.info({}, `live page http://${shown}:${port}/   POST /publish/:channel   GET /stats   GET /metrics   GET /healthz${options.publishToken === undefined ? '   (publish: loopback only; set BATCHCAST_PUBLISH_TOKEN to open it)' : ''}`);

  const stopDemo = options.demo ? startDemoFeed(broadcaster, options.demoRate) : null;
  if (stopDemo !== null) {
    log.info({ demoRate: options.demoRate }, `demo feed: ~${options.demoRate} trades/s, each published on "trades" and on its ticker.<symbol> channel (BTC-USD, ETH-USD, SOL-USD, DOGE-USD)`);
    log.info({}, `try: npx batchcast tail ws://127.0.0.1:${port}${options.path} trades`);
  }

  const close = async (): Promise<void> => {
    stopDemo?.();
    live.close();
    await broadcaster.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  };
  return { server, broadcaster, port, logger: log, close };
}

/** SIGINT/SIGTERM close the server gracefully; a second signal exits at once. */
export function closeOnSignals(served: Served, log: Logger): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      log.error({ signal }, `second ${signal}: exiting now`);
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, `${signal}: flushing batches and closing clients`);
    // The broadcaster logs its own shutdown ('closed after N messages').
    void served.close().then(() => (process.exitCode = 0));
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}
