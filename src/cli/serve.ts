/** `batchcast serve`: the standalone server (WebSocket endpoint, HTTP publish, health and stats). */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBroadcaster } from '../broadcaster.js';
import type { ConfigOptions, ServerConfig } from '../config.js';
import { createHttpApi } from '../server/http-api.js';
import { startDemoFeed } from './demo.js';

export interface ServeOptions extends ServerConfig {
  demo: boolean;
  /** Broadcaster settings given as flags (the environment is read by createBroadcaster). */
  settings: ConfigOptions;
}

/** Starts the server; resolves once it listens. SIGINT/SIGTERM close it gracefully. */
export async function serve(options: ServeOptions): Promise<void> {
  const server = createServer();
  const broadcaster = createBroadcaster({ ...options.settings, server, path: options.path, allowedOrigins: options.allowedOrigins });
  const api = createHttpApi(broadcaster, {
    publishToken: options.publishToken,
    maxBodyBytes: broadcaster.config.maxMessageBytes,
  });
  server.on('request', api);
  broadcaster.on('encodeError', (error) => console.error(`[batchcast] ${error.message}`));
  broadcaster.on('messageError', (error) => console.error(`[batchcast] ${error.code}: ${error.message}`));
  broadcaster.on('fault', (fault) => console.error(`[batchcast] worker ${fault.kind} on channel "${fault.channel}" (attempt ${fault.attempt}); ${fault.recovery === 'retry' ? 'retrying' : 'encoding inline'}: ${fault.error.message}`));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const shown = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  const { config } = broadcaster;
  console.log(`batchcast listening on ws://${shown}:${port}${options.path} (preset ${config.preset}, codec ${config.codec}, ${config.poolSize} encoder thread${config.poolSize === 1 ? '' : 's'}, batches of ${config.batchSize} / ${config.batchDelayMs} ms)`);
  console.log(`  POST http://${shown}:${port}/publish/:channel   GET /stats   GET /healthz${options.publishToken === undefined ? '   (publish: loopback only; set BATCHCAST_PUBLISH_TOKEN to open it)' : ''}`);

  const stopDemo = options.demo ? startDemoFeed(broadcaster, options.demoRate) : null;
  if (stopDemo !== null) {
    console.log(`  demo feed: ~${options.demoRate} msgs/s on channels trades, ticker.BTC-USD, ticker.ETH-USD, ticker.SOL-USD, ticker.DOGE-USD`);
    console.log(`  try: npx batchcast tail ws://127.0.0.1:${port}${options.path} trades`);
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      console.error(`[batchcast] second ${signal}: exiting now`);
      process.exit(1);
    }
    stopping = true;
    console.log(`[batchcast] ${signal}: flushing batches and closing clients`);
    stopDemo?.();
    void broadcaster.close().then(() => {
      server.close();
      server.closeAllConnections();
      const stats = broadcaster.stats();
      console.log(`[batchcast] closed after ${stats.messagesPublished} messages in ${stats.batches} batches`);
      process.exitCode = 0;
    });
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}
