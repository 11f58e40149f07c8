/**
 * The broadcaster: wires publish → batch → encode (worker pool) → order → fan-out,
 * and owns the WebSocket endpoint, subscriptions, heartbeats and shutdown.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { checkServerOption, resolveConfig, type ConfigOptions, type ResolvedConfig } from './config.js';
import { EncoderPool, type WorkerFault } from './encode/pool.js';
import { Sequencer } from './encode/sequencer.js';
import type { EncodeResult, EncodeSettings, EncodeTask } from './encode/task.js';
import {
  ClosedError,
  EncodeError,
  InvalidChannelError,
  InvalidConfigError,
  InvalidMessageError,
  MessageTooLargeError,
} from './errors.js';
import { fanOut, sendNotice, whenFlushed, type FanoutCounters, type FanoutOptions } from './fanout/fanout.js';
import { noticeFrame, type Notice } from './fanout/notice.js';
import { Subscriptions } from './fanout/subscriptions.js';
import { isValidChannel } from './protocol/channel.js';
import { writeFirstSeq } from './protocol/envelope.js';
import { Batcher, type Batch } from './publish/batcher.js';
import { Connection } from './server/connection.js';
import { channelsFromUrl } from './server/control.js';
import { ControlHandler, type CanSubscribe } from './server/control-handler.js';
import { admitUpgrade, rejectUpgrade, type AuthorizeResult, type UpgradeVerdict } from './server/upgrade-gate.js';
import { RateMeter, SampleRing } from './stats.js';

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
  /** Advanced: a worker module to run instead of the built-in encoder (it must return the same results). */
  workerFilename?: string;
}

/** Events of a {@link Broadcaster}. */
export interface BroadcasterEvents {
  listening: [AddressInfo];
  connection: [Connection];
  disconnect: [Connection, number];
  /** A message was left out of its batch (its batch-mates were delivered). */
  messageError: [InvalidMessageError | MessageTooLargeError];
  /** A write to one client failed; the others were unaffected. */
  sendError: [{ connection: Connection; error: Error }];
  /** A worker failed a batch; the batch was retried or encoded inline. */
  fault: [WorkerFault];
  /** A batch could not be encoded at all (a bug: please report it). */
  encodeError: [EncodeError];
  /** A slow client had batches skipped (`drop`) or was closed (`close`). */
  slowClient: [{ connection: Connection; policy: 'drop' | 'close'; bufferedBytes: number }];
}

interface Released {
  result: EncodeResult;
  droppedBefore: number;
}

/** A running broadcaster; create with {@link createBroadcaster}. */
export class Broadcaster extends EventEmitter<BroadcasterEvents> {
  /** The resolved configuration (options > environment > preset > defaults). */
  readonly config: Readonly<ResolvedConfig>;
  /** Resolves once the endpoint accepts connections (at once unless `port` was given). */
  readonly ready: Promise<void>;

  readonly #options: BroadcasterOptions;
  readonly #settings: EncodeSettings;
  readonly #wss: WebSocketServer;
  readonly #ownServer: HttpServer | null = null;
  readonly #attachedServer: HttpServer | HttpsServer | null = null;
  readonly #pool: EncoderPool;
  readonly #batcher: Batcher;
  readonly #sequencer: Sequencer<Released>;
  readonly #subscriptions = new Subscriptions();
  readonly #control: ControlHandler;
  readonly #connections = new Set<Connection>();
  readonly #nextSeq = new Map<string, number>();
  /** Resolved when the last batch in the pool finishes (see #settled). */
  readonly #idle: (() => void)[] = [];
  readonly #fanoutOptions: FanoutOptions;
  readonly #encodeMicros = new SampleRing();
  readonly #rate: RateMeter;
  readonly #encodeRate: RateMeter;
  readonly #heartbeat: NodeJS.Timeout | null = null;
  #closing: Promise<void> | null = null;
  #counters = {
    messagesPublished: 0,
    messagesDelivered: 0,
    messagesRejected: 0,
    batches: 0,
    rawBytes: 0,
    wireBytes: 0,
    sendErrors: 0,
    connectionsTotal: 0,
    heartbeatTerminated: 0,
    upgradesRejected: 0,
    encodeMicros: 0,
  };
  readonly #fanoutCounters: FanoutCounters = { framesSent: 0, bytesSent: 0, batchesSkipped: 0, slowClosed: 0 };

  constructor(options: BroadcasterOptions = {}) {
    super();
    this.#options = options;
    const modes = [options.server !== undefined, options.port !== undefined, options.noServer === true].filter(Boolean).length;
    if (modes !== 1) throw new InvalidConfigError('server/port/noServer', 'set exactly one of server, port or noServer');
    const config = resolveConfig(options, options.env);
    if (options.path !== undefined) checkServerOption('path', options.path);
    if (options.allowedOrigins !== undefined) checkServerOption('allowedOrigins', options.allowedOrigins);
    this.config = Object.freeze(config);
    this.#settings = {
      codec: config.codec,
      compressionThreshold: config.compressionThreshold,
      compressionLevel: config.compressionLevel,
      maxMessageBytes: config.maxMessageBytes,
      validateSerialized: config.validateSerialized,
    };
    this.#fanoutOptions = {
      maxBufferedBytes: config.maxBufferedBytes,
      slowClientPolicy: config.slowClientPolicy,
      onSendError: this.#onSendError,
      onSlowClient: (connection, policy) => {
        if (this.listenerCount('slowClient') > 0) this.emit('slowClient', { connection, policy, bufferedBytes: connection.bufferedBytes });
      },
    };

    this.#pool = new EncoderPool({
      poolSize: config.poolSize,
      maxQueue: config.maxQueue,
      encodeTimeoutMs: config.encodeTimeoutMs,
      workerFilename: options.workerFilename,
    });
    this.#pool.on('fault', (fault) => this.emit('fault', fault));
    this.#control = new ControlHandler({
      subscriptions: this.#subscriptions,
      maxSubscriptionsPerClient: config.maxSubscriptionsPerClient,
      canSubscribe: options.canSubscribe,
      notify: (connection, notice) => this.#notify(connection, notice),
    });
    this.#sequencer = new Sequencer<Released>(this.#release);
    this.#batcher = new Batcher({
      batchSize: config.batchSize,
      batchDelayMs: config.batchDelayMs,
      maxPendingMessages: config.maxPendingMessages,
      hasCapacity: () => this.#pool.hasCapacity(),
      onBatch: this.#encode,
    });
    this.#rate = new RateMeter(() => this.#counters.messagesPublished);
    this.#encodeRate = new RateMeter(() => this.#counters.encodeMicros);

    // Our own compression, one frame for all: ws's per-client permessage-deflate stays off.
    this.#wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: config.maxPayload, clientTracking: false });
    this.#wss.on('connection', this.#onConnection);

    if (options.server !== undefined) {
      this.#attachedServer = options.server;
      options.server.on('upgrade', this.#onUpgrade);
      this.ready = Promise.resolve();
    } else if (options.port !== undefined) {
      const server = createServer((_request, response) => {
        response.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket endpoint: upgrade required\n');
      });
      server.on('upgrade', this.#onUpgrade);
      this.#ownServer = server;
      this.ready = new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.host, () => {
          server.off('error', reject);
          this.emit('listening', server.address() as AddressInfo);
          resolve();
        });
      });
    } else {
      this.ready = Promise.resolve();
    }

    if (config.heartbeatIntervalMs > 0) {
      this.#heartbeat = setInterval(this.#beat, config.heartbeatIntervalMs);
      this.#heartbeat.unref();
    }
  }

  /** Address of the server when listening on `port`; `null` otherwise. */
  address(): AddressInfo | null {
    return (this.#ownServer?.address() as AddressInfo | null) ?? null;
  }

  /**
   * Appends `message` to the open batch of `channel`. O(1): serialization happens on
   * a worker. Throws at once for an invalid channel, a value with no encoding
   * (function, symbol, undefined, and BigInt under JSON) or after `close()`; errors
   * found while encoding arrive as `messageError` events and spare the rest of the batch.
   */
  publish(channel: string, message: unknown): void {
    if (this.#closing !== null) throw new ClosedError('publish');
    if (!isValidChannel(channel)) throw new InvalidChannelError(channel);
    const type = typeof message;
    if (type === 'object' || type === 'number' || type === 'string' || type === 'boolean') {
      this.#counters.messagesPublished++;
      this.#batcher.append(channel, message, false);
      return;
    }
    if (type === 'bigint' && this.config.codec === 'msgpack') {
      this.#counters.messagesPublished++;
      this.#batcher.append(channel, message, false);
      return;
    }
    throw new InvalidMessageError(channel, `${type} has no ${this.config.codec} representation`);
  }

  /**
   * Appends an already-serialized message: a JSON text for the `json` codec, the
   * bytes of one msgpack value for `msgpack`. It is spliced into the batch without
   * being parsed on the main thread (workers validate it when `validateSerialized`).
   */
  publishSerialized(channel: string, data: string | Uint8Array): void {
    if (this.#closing !== null) throw new ClosedError('publishSerialized');
    if (!isValidChannel(channel)) throw new InvalidChannelError(channel);
    const limit = this.config.maxMessageBytes;
    if (this.config.codec === 'json') {
      if (typeof data !== 'string') throw new InvalidMessageError(channel, 'pre-serialized messages for the json codec must be strings');
      // UTF-8 takes at most 3 bytes per UTF-16 unit: count bytes only when the length alone cannot settle it.
      if (data.length > limit || (data.length * 3 > limit && Buffer.byteLength(data) > limit)) {
        throw new MessageTooLargeError(channel, Buffer.byteLength(data), limit);
      }
    } else {
      if (!(data instanceof Uint8Array)) throw new InvalidMessageError(channel, 'pre-serialized messages for the msgpack codec must be Uint8Arrays');
      if (data.byteLength > limit) throw new MessageTooLargeError(channel, data.byteLength, limit);
    }
    this.#counters.messagesPublished++;
    this.#batcher.append(channel, data, true);
  }

  /** Closes every open batch now instead of waiting for its size or delay. */
  flush(): void {
    this.#batcher.flushAll();
  }

  /** Subscribes a connection to a channel on the application's behalf (no `canSubscribe` check). */
  subscribe(connection: Connection, channel: string): boolean {
    if (!isValidChannel(channel)) throw new InvalidChannelError(channel);
    return this.#subscriptions.add(connection, channel);
  }

  /** Unsubscribes a connection from a channel. */
  unsubscribe(connection: Connection, channel: string): boolean {
    return this.#subscriptions.remove(connection, channel);
  }

  /** True once `close()` has been called. */
  get closing(): boolean {
    return this.#closing !== null;
  }

  /** Connections currently open. */
  get connections(): ReadonlySet<Connection> {
    return this.#connections;
  }

  /**
   * Completes a WebSocket upgrade (for `noServer` mode, or a framework's own
   * `upgrade` handler): checks path, origin and `authorize`, then accepts or rejects.
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#onUpgrade(request, socket, head);
  }

  /** Counters and gauges; cheap enough to poll every second. */
  stats() {
    const c = this.#counters;
    const f = this.#fanoutCounters;
    return {
      messagesPublished: c.messagesPublished,
      messagesPerSecond: this.#rate.perSecond,
      messagesRejected: c.messagesRejected,
      messagesDropped: this.#batcher.droppedMessages,
      messagesPending: this.#batcher.pendingMessages,
      batches: c.batches,
      rawBytes: c.rawBytes,
      wireBytes: c.wireBytes,
      compressionRatio: c.wireBytes === 0 ? 1 : c.rawBytes / c.wireBytes,
      framesSent: f.framesSent,
      bytesSent: f.bytesSent,
      batchesSkipped: f.batchesSkipped,
      slowClientsClosed: f.slowClosed,
      sendErrors: c.sendErrors,
      connections: this.#connections.size,
      connectionsTotal: c.connectionsTotal,
      upgradesRejected: c.upgradesRejected,
      heartbeatTerminated: c.heartbeatTerminated,
      subscribers: this.#subscriptions.counts(),
      reorderedBatches: this.#sequencer.reordered,
      pool: this.#poolStats(),
      encodeMicros: this.#encodeMicros.percentiles(),
    };
  }

  #poolStats() {
    const pool = this.#pool.snapshot();
    // Worker busy time over the last second, from the workers' own timings (Piscina's figure rounds each task to whole ms).
    const utilization = Math.min(1, this.#encodeRate.perSecond / 1e6 / Math.max(1, pool.threads));
    return { ...pool, utilization };
  }

  /**
   * Stops accepting publishes, flushes open batches, waits for encodes and socket
   * writes (bounded by `closeTimeoutMs`), closes clients with 1001, then stops the
   * pool and any server of our own. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const deadline = Date.now() + this.config.closeTimeoutMs;
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#rate.stop();
    this.#encodeRate.stop();
    this.#batcher.flushAll(true);
    await withDeadline(this.#settled(), deadline);
    this.#batcher.clear();
    // Each client is closed as soon as its own socket has flushed, so one stalled reader cannot use up the others' time.
    await Promise.all([...this.#connections].map((connection) => this.#closeWhenFlushed(connection, deadline)));
    await this.#pool.destroy();
    // Only now: until here upgrades get a 503 from us, not whatever the server does with unclaimed upgrades.
    this.#attachedServer?.off('upgrade', this.#onUpgrade);
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    if (this.#ownServer !== null) {
      const server = this.#ownServer;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** Resolves once no batch is being encoded. */
  #settled(): Promise<void> {
    if (this.#pool.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #closeWhenFlushed(connection: Connection, deadline: number): Promise<void> {
    if (connection.ws.readyState === WebSocket.OPEN) await withDeadline(whenFlushed(connection), deadline);
    if (connection.ws.readyState !== WebSocket.CLOSED) {
      const closed = new Promise<void>((resolve) => connection.ws.once('close', () => resolve()));
      connection.ws.close(1001, 'server shutting down');
      await withDeadline(closed, deadline);
    }
    connection.ws.terminate();
  }

  readonly #encode = (batch: Batch): void => {
    const ticket = this.#sequencer.ticket(batch.channel);
    const task: EncodeTask = { ...this.#settings, channel: batch.channel, items: batch.items, serialized: batch.serialized };
    this.#pool.submit(task, (error, result) => {
      if (result !== null) {
        this.#reportRejected(batch, result);
        this.#sequencer.complete(batch.channel, ticket, { result, droppedBefore: batch.droppedBefore });
      } else {
        this.emit('encodeError', new EncodeError(batch.channel, error!.message, { cause: error }));
        this.#sequencer.complete(batch.channel, ticket, null);
      }
      if (this.#pool.inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
      this.#batcher.drain();
    });
  };

  #reportRejected(batch: Batch, result: EncodeResult): void {
    if (result.rejected === null) return;
    this.#counters.messagesRejected += result.rejected.length;
    for (const rejected of result.rejected) {
      const error = rejected.code === 'BATCHCAST_MESSAGE_TOO_LARGE'
        ? new MessageTooLargeError(batch.channel, rejected.bytes ?? 0, this.config.maxMessageBytes, rejected.index)
        : new InvalidMessageError(batch.channel, rejected.reason, rejected.index);
      this.emit('messageError', error);
    }
  }

  readonly #release = (channel: string, { result, droppedBefore }: Released): void => {
    const firstSeq = (this.#nextSeq.get(channel) ?? 0) + droppedBefore;
    this.#nextSeq.set(channel, firstSeq + result.count);
    const c = this.#counters;
    c.batches++;
    c.rawBytes += result.rawBytes;
    c.wireBytes += result.frame.byteLength;
    this.#encodeMicros.add(result.encodeMicros);
    c.encodeMicros += result.encodeMicros;
    if (result.count === 0) return;
    // A Buffer over the transferred memory (no copy): socket.write converts any other Uint8Array per call, i.e. per subscriber.
    const frame = Buffer.from(result.frame);
    // Sequence numbers are stamped here, in release order, so rejected messages leave no gap.
    writeFirstSeq(new DataView(result.frame), result.envelopeOffset, firstSeq);
    const subscribers = this.#subscriptions.of(channel);
    c.messagesDelivered += result.count * subscribers.size;
    fanOut(subscribers, frame, channel, firstSeq, result.count, this.#fanoutOptions, this.#fanoutCounters);
  };

  readonly #onSendError = (connection: Connection, error: Error): void => {
    this.#counters.sendErrors++;
    if (this.listenerCount('sendError') > 0) this.emit('sendError', { connection, error });
  };

  readonly #onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    void this.#upgrade(request, socket, head);
  };

  async #upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    let verdict: UpgradeVerdict = this.#closing !== null ? SHUTTING_DOWN : await admitUpgrade(request, this.#options);
    // close() may have begun while authorize() ran: a connection accepted now would miss its 1001.
    if (verdict.accept && this.#closing !== null) verdict = SHUTTING_DOWN;
    if (!verdict.accept) {
      this.#counters.upgradesRejected++;
      rejectUpgrade(socket, verdict.status, verdict.reason);
      return;
    }
    if (socket.destroyed) return;
    this.#wss.handleUpgrade(request, socket, head, (ws) => this.#wss.emit('connection', ws, request, verdict.identity));
  }

  readonly #onConnection = (ws: WebSocket, request: IncomingMessage, identity: unknown): void => {
    const connection = new Connection(ws, request, identity);
    this.#connections.add(connection);
    this.#counters.connectionsTotal++;
    ws.on('pong', () => {
      connection.alive = true;
    });
    ws.on('message', (data, isBinary) => this.#control.onMessage(connection, data, isBinary));
    ws.on('error', () => {
      // ws closes the connection after a protocol error (e.g. maxPayload); 'close' cleans up.
    });
    // A reset or broken pipe surfaces here (ws also listens, and closes the connection).
    connection.socket.on('error', (error) => this.#onSendError(connection, error));
    ws.on('close', (code) => {
      this.#connections.delete(connection);
      this.#subscriptions.removeAll(connection);
      this.emit('disconnect', connection, code);
    });
    this.emit('connection', connection);
    this.#control.subscribeFromUrl(connection, channelsFromUrl(request.url));
  };

  #notify(connection: Connection, notice: Notice): void {
    sendNotice(connection, noticeFrame(notice), this.#fanoutOptions, this.#fanoutCounters);
  }

  readonly #beat = (): void => {
    for (const connection of this.#connections) {
      if (!connection.alive) {
        this.#counters.heartbeatTerminated++;
        connection.ws.terminate();
        continue;
      }
      connection.alive = false;
      try {
        connection.ws.ping();
      } catch {
        // a socket closing under us; the next beat or its 'close' cleans up
      }
    }
  };
}

const SHUTTING_DOWN: UpgradeVerdict = { accept: false, status: 503, reason: 'server shutting down' };

/** Creates a broadcaster; see {@link BroadcasterOptions}. Throws `InvalidConfigError` for bad settings. */
export function createBroadcaster(options: BroadcasterOptions): Broadcaster {
  return new Broadcaster(options);
}

async function withDeadline(promise: Promise<unknown>, deadline: number): Promise<void> {
  const remaining = deadline - Date.now();
  if (remaining <= 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, remaining)))]);
  clearTimeout(timer);
}
