/** The options and events of a broadcaster: what users configure and what they listen to. */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Cluster, Redis } from 'ioredis';
import type { AdaptiveDecision } from './adaptive/controller.js';
import type { ConfigOptions } from './config.js';
import type { WorkerFault } from './encode/pool.js';
import type { BrokerError, CallbackError, EncodeError, InvalidMessageError, ListenError, MessageTooLargeError } from './errors.js';
import type { Logger } from './observe/logger.js';
import type { MetricsOption } from './observe/metrics.js';
import type { RecoveryStatus } from './fanout/notice.js';
import type { Connection } from './server/connection.js';
import type { CanSubscribe } from './server/control-handler.js';
import type { AuthorizeResult } from './server/upgrade-gate.js';

/** Options of {@link createBroadcaster}: where to listen, hooks, and every tunable of {@link ConfigOptions}. */
export interface BroadcasterOptions extends ConfigOptions {
  /** Attach to this HTTP(S) server's `upgrade` event. */
  server?: HttpServer | HttpsServer;
  /** Listen on this port (0: any free port) with a server of our own. */
  port?: number;
  /** Host for `port` (default: all interfaces). */
  host?: string;
  /** Accept no connections by itself: call `handleUpgrade` from your framework. */
  noServer?: boolean;
  /** Only upgrade requests for this pathname (default: any path). */
  path?: string;
  /** Accepted `Origin` headers; requests from other origins get 403. Default: any origin. */
  allowedOrigins?: string[];
  /** Decides on each upgrade request, before the WebSocket is accepted (see {@link AuthorizeResult}). */
  authorize?: (request: IncomingMessage) => AuthorizeResult | Promise<AuthorizeResult>;
  /** Decides each subscription (may return a promise); a refusal reaches the client as an error notice. */
  canSubscribe?: CanSubscribe;
  /** Environment to read settings from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Advanced: a worker module to run instead of the built-in encoder (it must return the same results; importing the built-in one also applies `workerNice`). */
  workerFilename?: string;
  /**
   * Makes this broadcaster a node of a cluster: a redis:// URL (seed URLs, comma-separated,
   * with `redisCluster`), or an ioredis Redis or Cluster whose settings are copied (it is
   * duplicated, not used; a Cluster means Redis Cluster). Overrides `redisUrl` / `BATCHCAST_REDIS_URL`.
   */
  redis?: string | Redis | Cluster;
  /**
   * Prometheus metrics (prom-client): `true` (default) keeps them in a registry of the
   * broadcaster's own (`broadcaster.metrics`), `false` leaves them out, or settings to
   * register them into the application's registry (`MetricsSettings`).
   */
  metrics?: MetricsOption;
  /** Logs what an operator acts on (never per message) to a logger with pino's interface, e.g. `pino()`. */
  logger?: Logger;
}

/** Events of a {@link Broadcaster}. */
export interface BroadcasterEvents {
  listening: [AddressInfo];
  /** Our own server (`port` mode) could not listen; `ready` rejects with the same error and the broadcaster closes. */
  listenError: [ListenError];
  /** Our own server reported an error after it started listening (e.g. EMFILE on accept); it keeps serving. */
  serverError: [Error];
  connection: [Connection];
  disconnect: [Connection, number];
  /** A message was left out of its batch (its batch-mates were delivered). */
  messageError: [InvalidMessageError | MessageTooLargeError];
  /** A write to one client failed; the others were unaffected. */
  sendError: [{ connection: Connection; error: Error }];
  /** A worker failed a batch; the batch was retried or encoded inline. */
  fault: [WorkerFault];
  /** A batch could not be encoded at all (a bug: please report it); its messages became a gap in the channel's sequence. */
  encodeError: [EncodeError];
  /** A slow client had batches skipped (`drop`) or was closed (`close`). */
  slowClient: [{ connection: Connection; policy: 'drop' | 'close'; bufferedBytes: number }];
  /** User code failed: a listener threw or rejected, or `authorize`/`canSubscribe` threw. Everything else went on. */
  callbackError: [CallbackError];
  /** In a cluster: Redis cannot be reached (at start `ready` rejects too), was lost, or a batch could not reach it. */
  brokerError: [BrokerError];
  /** An upgrade request was refused with an HTTP status (path, origin, authorize, format, shutdown). */
  upgradeRejected: [{ request: IncomingMessage; status: number; reason: string }];
  /** A client subscribed with a position: `ok` (nothing lost), `evicted` (`missed` messages gone), `epoch` (another history). */
  recovery: [{ connection: Connection; channel: string; status: RecoveryStatus; missed: number | null }];
  /** The adaptive controller changed batching or compression (see README "Adaptive tuning"). */
  adaptive: [AdaptiveDecision];
  /** close() has begun. */
  closing: [];
  /** close() has finished: clients closed, workers stopped. */
  closed: [];
}
