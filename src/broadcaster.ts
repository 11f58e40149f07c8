/**
 * The broadcaster wires the data flow together:
 *
 *   publish → Batcher (per channel) → EncoderPool (workers) → Sequencer (channel order)
 *   → ReleaseStep (seq, counters) → HistoryStore → fan-out to the channel's subscribers
 *                                        └──────── CatchUp (recovery, slow clients) ──┘
 *
 * and the endpoint (upgrades), the connection registry and control messages around it.
 * User code (event listeners, hooks) never runs inside a pipeline step: events raised
 * during a release or fan-out are emitted after it has finished, every listener is
 * called guarded, and a failure is reported as `callbackError`, never thrown back in.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { BroadcasterEvents, BroadcasterOptions } from './broadcaster-options.js';
import { createCluster, type Cluster } from './broker/cluster.js';
import { ChannelTable } from './channels.js';
import { checkServerOption, resolveConfig, type ResolvedConfig } from './config.js';
import { adaptiveFor, adaptiveStats, type AdaptiveController } from './adaptive/controller.js';
import { boundsOf, type TunedSettings } from './adaptive/tunables.js';
import { EncodeDispatch } from './encode/dispatch.js';
import { EncoderPool } from './encode/pool.js';
import type { EncodeSettings } from './encode/task.js';
import { ClosedError, InvalidChannelError, InvalidConfigError, type BrokerError, type ListenError } from './errors.js';
import { CatchUp } from './fanout/catch-up.js';
import { corkSubscribers, sendNotice, type FanoutCounters, type FanoutOptions } from './fanout/fanout.js';
import { ReplayForms, type LayoutCounters } from './fanout/layout.js';
import { FanoutSlices } from './fanout/slices.js';
import { noticeFrame, type Notice } from './fanout/notice.js';
import { Subscriptions } from './fanout/subscriptions.js';
import { HistoryStore } from './history/history.js';
import { readHistory, type HistoryPage, type HistoryQuery } from './history/read.js';
import { Recovery } from './history/recovery.js';
import { isValidChannel } from './protocol/channel.js';
import { Batcher } from './publish/batcher.js';
import { checkMessage, checkSerialized } from './publish/check.js';
import { ReleaseStep } from './release/release.js';
import { Sequencer } from './release/sequencer.js';
import type { Connection } from './server/connection.js';
import { ControlHandler } from './server/control-handler.js';
import { Endpoint } from './server/endpoint.js';
import { ConnectionRegistry, withDeadline } from './server/registry.js';
import { attachLogger } from './observe/logger.js';
import type { BatchcastMetrics } from './observe/metrics.js';
import { Observer } from './observe/observer.js';
import { assembleStats, type Stats } from './stats.js';
import { UserEvents } from './user-events.js';

export type { BroadcasterEvents, BroadcasterOptions } from './broadcaster-options.js';

/** What replays may keep of batches laid out in non-canonical forms (fanout/layout.ts ReplayForms). */
const REPLAY_FORMS_BYTES = 8 * 1024 * 1024;

/** A running broadcaster; create with {@link createBroadcaster}. */
export class Broadcaster extends EventEmitter<BroadcasterEvents> {
  /** The resolved configuration (options > environment > preset > defaults). */
  readonly config: Readonly<ResolvedConfig>;
  /** Resolves once the endpoint accepts connections (at once unless `port` was given); rejects with `ListenError`. */
  readonly ready: Promise<void>;

  readonly #settings: EncodeSettings & TunedSettings;
  readonly #channels = new ChannelTable();
  readonly #subscriptions = new Subscriptions(this.#channels, (state) => this.#cluster?.relay.release(state));
  readonly #cluster: Cluster | null;
  readonly #pool: EncoderPool;
  readonly #batcher: Batcher;
  readonly #sequencer: Sequencer;
  readonly #dispatch: EncodeDispatch;
  readonly #slices: FanoutSlices;
  readonly #adaptive: AdaptiveController | null;
  readonly #releaseStep: ReleaseStep;
  readonly #history: HistoryStore;
  readonly #catchUp: CatchUp;
  readonly #recovery: Recovery;
  readonly #control: ControlHandler;
  readonly #endpoint: Endpoint;
  readonly #registry: ConnectionRegistry;
  readonly #fanoutOptions: FanoutOptions;
  readonly #fanoutCounters: FanoutCounters = { framesSent: 0, bytesSent: 0, batchesSkipped: 0, slowClosed: 0 };
  readonly #layoutCounters: LayoutCounters = { formsLaidOut: 0, bodiesInflated: 0 };
  readonly #observer: Observer;
  readonly #events = new UserEvents<BroadcasterEvents>(this);
  #closing: Promise<void> | null = null;
  readonly #counters = { messagesPublished: 0, sendErrors: 0 };

  constructor(options: BroadcasterOptions = {}) {
    super();
    const modes = [options.server !== undefined, options.port !== undefined, options.noServer === true].filter(Boolean).length;
    if (modes !== 1) throw new InvalidConfigError('server/port/noServer', 'set exactly one of server, port or noServer');
    const config = resolveConfig(options, options.env);
    if (options.path !== undefined) checkServerOption('path', options.path);
    if (options.allowedOrigins !== undefined) checkServerOption('allowedOrigins', options.allowedOrigins);
    this.config = Object.freeze(config);
    // One live object: the batcher reads the batching half, every encode task the compression half (the adaptive controller tunes both).
    this.#settings = {
      codec: config.codec, compressionWindowBits: config.compressionWindowBits, maxMessageBytes: config.maxMessageBytes, validateSerialized: config.validateSerialized,
      batchSize: config.batchSize, batchDelayMs: config.batchDelayMs, compressionThreshold: config.compressionThreshold, compressionLevel: config.compressionLevel,
    };
    this.#fanoutOptions = {
      maxBufferedBytes: config.maxBufferedBytes,
      slowClientPolicy: config.slowClientPolicy,
      onSendError: this.#onSendError,
      onSlowClient: (connection, policy) => this.#events.defer('slowClient', { connection, policy, bufferedBytes: connection.bufferedBytes }),
      startLag: (connection, state, cursor) => this.#catchUp.start(connection, state, cursor),
    };
    this.#history = new HistoryStore(
      { messages: config.historyMessages, bytes: config.historyBytes, ttlMs: config.historyTtlMs, totalBytes: config.historyTotalBytes },
      (state) => this.#channels.dropIfIdle(state),
    );
    this.#catchUp = new CatchUp({
      maxBufferedBytes: config.maxBufferedBytes,
      counters: this.#fanoutCounters,
      forms: new ReplayForms(REPLAY_FORMS_BYTES, this.#layoutCounters),
      onSendError: this.#onSendError,
    });
    this.#recovery = new Recovery(this.#catchUp, (connection, { channel, status, missed }) => this.#events.defer('recovery', { connection, channel, status, missed }));

    // Before the pool: bad metrics settings throw here, with no worker thread started.
    this.#observer = new Observer({
      published: () => this.#counters.messagesPublished, encodeMicros: () => this.#releaseStep.counters.encodeMicros, stats: () => this.stats(),
    }, options.metrics ?? true);
    this.#pool = new EncoderPool({
      poolSize: config.poolSize,
      maxQueue: config.maxQueue,
      encodeTimeoutMs: config.encodeTimeoutMs,
      workerFilename: options.workerFilename,
      workerNice: config.workerNice,
      workerPollMs: config.workerPollMs,
      handoffSliceMs: config.handoffSliceMs,
      onCallbackError: (error) => this.#events.failed('batch completion', error),
    });
    this.#pool.on('fault', (fault) => this.#events.defer('fault', fault));
    const redis = options.redis ?? config.redisUrl;
    this.#cluster = redis === undefined ? null : createCluster(config, redis, {
      channels: this.#channels,
      forgetHistory: (state) => this.#history.forget(state),
      deliver: (state, firstSeq, count, frame, deflate) => this.#releaseStep.deliver(state, firstSeq, count, frame, deflate),
      onSendError: this.#onSendError,
      onBrokerError: (error) => this.#events.defer('brokerError', error),
    });
    const relay = this.#cluster?.relay ?? null;
    this.#slices = new FanoutSlices(this.#fanoutOptions, this.#fanoutCounters, config.fanoutSliceMs);
    this.#releaseStep = new ReleaseStep(this.#slices, this.#layoutCounters, this.#observer, this.#history, relay?.publish ?? null);
    this.#sequencer = new Sequencer({
      release: this.#releaseStep.release,
      caughtUp: (state) => this.#channels.dropIfIdle(state),
      onError: (error) => this.#events.failed('release', error),
      holdWrites: corkSubscribers,
    });
    this.#dispatch = new EncodeDispatch({
      pool: this.#pool, sequencer: this.#sequencer, settings: this.#settings, clustered: this.#cluster !== null,
      needsFrame: (state) => state.subscribers.size > 0 || this.#history.enabled || this.#cluster !== null,
      onRejected: (errors) => errors.forEach((error) => this.#events.defer('messageError', error)),
      onEncodeError: (error) => this.#events.defer('encodeError', error),
      onDone: () => this.#batcher.drain(),
    });
    this.#batcher = new Batcher({
      channels: this.#channels, batching: this.#settings, maxPendingMessages: config.maxPendingMessages, hasCapacity: () => this.#pool.hasCapacity(), onBatch: this.#dispatch.encode,
    });
    this.#control = new ControlHandler({
      subscriptions: this.#subscriptions,
      channels: this.#channels,
      recovery: this.#recovery,
      maxSubscriptionsPerClient: config.maxSubscriptionsPerClient,
      canSubscribe: options.canSubscribe,
      notify: (connection, notice) => this.#notify(connection, notice),
      onCallbackError: this.#events.failed,
      cluster: relay === null ? undefined : { prepare: (state, since) => relay.prepare(state, since), settle: (state) => relay.releaseIfUnused(state) },
    });
    this.#registry = new ConnectionRegistry({
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      subscriptions: this.#subscriptions,
      control: this.#control,
      onSendError: this.#onSendError,
      onConnection: (connection) => this.#events.emit('connection', connection),
      onDisconnect: (connection, code) => {
        this.#catchUp.forget(connection);
        this.#events.emit('disconnect', connection, code);
      },
    });
    this.#endpoint = new Endpoint({
      gate: { format: config.format, codec: config.codec, path: options.path, allowedOrigins: options.allowedOrigins, authorize: options.authorize },
      maxPayload: config.maxPayload,
      perMessageDeflate: config.perMessageDeflate,
      closing: () => this.#closing !== null,
      onConnection: (ws, request, identity, format) => this.#registry.accept(ws, request, identity, format),
      onCallbackError: this.#events.failed,
      onServerError: (error) => this.#events.emit('serverError', error),
      onRejected: (request, status, reason) => this.#events.defer('upgradeRejected', { request, status, reason }),
    });
    if (options.logger !== undefined) attachLogger(this, options.logger);
    this.#observer.start();
    const delays = this.#observer.openDelayWindow();
    this.#adaptive = adaptiveFor(config, boundsOf(config), this.#settings, () => {
      const { pool, bytesSent } = this.stats();
      const delay = delays.percentiles();
      delays.clear();
      return { delay, bytesSent, poolUtilization: pool.utilization, poolQueue: pool.queueSize };
    }, (decision) => this.#events.emit('adaptive', decision));

    let listening: Promise<void>;
    if (options.server !== undefined) {
      this.#endpoint.attach(options.server);
      listening = Promise.resolve();
    } else if (options.port !== undefined) {
      listening = this.#endpoint.listen(options.port, options.host).then(
        () => {
          if (this.#closing === null) this.#events.emit('listening', this.#endpoint.address()!);
        },
        (error: ListenError) => {
          this.#events.emit('listenError', error);
          void this.close();
          throw error;
        },
      );
    } else {
      listening = Promise.resolve();
    }
    const brokerReady = this.#cluster?.broker.ready.catch((error: BrokerError) => {
      this.#events.emit('brokerError', error);
      void this.close();
      throw error;
    });
    this.ready = brokerReady === undefined ? listening : Promise.all([listening, brokerReady]).then(() => undefined);
    // Handled here so a caller who never awaits `ready` gets no unhandled rejection; awaiting it still throws.
    this.ready.catch(() => {});
  }

  /** Address of the server when listening on `port`; `null` otherwise. */
  address(): AddressInfo | null {
    return this.#endpoint.address();
  }

  /**
   * Appends `message` to the open batch of `channel`. O(1): serialization happens on
   * a worker. Throws at once for an invalid channel, a value with no encoding
   * (function, symbol, undefined, and BigInt under JSON) or after `close()`; errors
   * found while encoding arrive as `messageError` events and spare the rest of the batch.
   * A batch nobody would read (no subscriber at its close, history off, no broker) is not encoded.
   */
  publish(channel: string, message: unknown): void {
    if (this.#closing !== null) throw new ClosedError('publish');
    // A live channel's name was checked when its state was made: one lookup, no pattern test.
    const state = this.#channels.get(channel);
    if (state === undefined && !isValidChannel(channel)) throw new InvalidChannelError(channel);
    checkMessage(channel, message, this.config.codec);
    this.#counters.messagesPublished++;
    this.#batcher.append(state ?? this.#channels.open(channel), message, false);
  }

  /**
   * Appends an already-serialized message: a JSON text for the `json` codec, the
   * bytes of one msgpack value for `msgpack`. It is spliced into the batch without
   * being parsed on the main thread (workers validate it when `validateSerialized`).
   */
  publishSerialized(channel: string, data: string | Uint8Array): void {
    if (this.#closing !== null) throw new ClosedError('publishSerialized');
    const state = this.#channels.get(channel);
    if (state === undefined && !isValidChannel(channel)) throw new InvalidChannelError(channel);
    checkSerialized(channel, data, this.config.codec, this.config.maxMessageBytes);
    this.#counters.messagesPublished++;
    this.#batcher.append(state ?? this.#channels.open(channel), data, true);
  }

  /**
   * Reads a channel's history: the messages from `since` (default: the oldest held) on,
   * at most `limit` (default 1000), decoded. Also says where the stream is and what
   * history still holds, so a caller can tell whether `since` was covered. In a cluster
   * it reads the channel's Redis stream when this node's own history does not hold `since`.
   */
  async history(channel: string, query: HistoryQuery = {}): Promise<HistoryPage> {
    if (!isValidChannel(channel)) throw new InvalidChannelError(channel);
    const state = this.#channels.get(channel);
    if (this.#cluster !== null) return this.#cluster.relay.history(state, channel, query);
    return readHistory(state ?? null, channel, this.#channels.epoch, this.#channels.nextSeq(channel), query);
  }

  /** Closes every open batch now instead of waiting for its size or delay. */
  flush(): void {
    this.#batcher.flushAll();
  }

  /**
   * Subscribes a connection to a channel on the application's behalf (no `canSubscribe`
   * check). Returns false if it was subscribed already, or is closing or closed (then nothing is kept).
   */
  subscribe(connection: Connection, channel: string): boolean {
    if (!isValidChannel(channel)) throw new InvalidChannelError(channel);
    const added = this.#subscriptions.add(connection, channel);
    // In a cluster the channel's frames come from Redis: link it (frames flow once Redis confirms).
    if (added && this.#cluster !== null) this.#cluster.relay.sync(this.#channels.open(channel)).catch((error: BrokerError) => this.#events.defer('brokerError', error));
    return added;
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
    return this.#registry.connections;
  }

  /**
   * Completes a WebSocket upgrade (for `noServer` mode, or a framework's own
   * `upgrade` handler): checks path, origin and `authorize`, then accepts or rejects.
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#endpoint.handleUpgrade(request, socket, head);
  }

  /** Prometheus metrics (prom-client), unless the `metrics` option is false; `metrics.text()` is the exposition. */
  get metrics(): BatchcastMetrics | null {
    return this.#observer.metrics;
  }

  /** Counters and gauges; cheap enough to poll every second. */
  stats(): Stats {
    return assembleStats({
      counters: { ...this.#counters, messagesRejected: this.#dispatch.messagesRejected, callbackErrors: this.#events.callbackErrors },
      release: this.#releaseStep.counters,
      fanout: this.#fanoutCounters,
      slices: this.#slices,
      registry: this.#registry.counters,
      formats: this.#registry.formats,
      layout: this.#layoutCounters,
      endpoint: this.#endpoint.counters,
      observer: this.#observer,
      batcher: this.#batcher,
      subscriptions: this.#subscriptions,
      channels: this.#channels,
      sequencer: this.#sequencer,
      pool: this.#pool,
      history: this.#history,
      catchUp: this.#catchUp,
      recovery: this.#recovery,
      cluster: this.#cluster,
      adaptive: adaptiveStats(this.config, this.#settings, this.#adaptive),
      connections: this.#registry.connections.size,
      upgradesPending: this.#endpoint.pendingUpgrades,
      controlPending: this.#control.pending,
    });
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
    this.#events.emit('closing');
    this.#registry.stop();
    this.#observer.stop();
    this.#adaptive?.stop();
    this.#batcher.flushAll(true);
    await withDeadline(this.#dispatch.settled(), deadline);
    this.#batcher.clear();
    // Batches still being written to a large audience, then clients catching up from history, get out first (until the deadline).
    await withDeadline(this.#slices.whenIdle(), deadline);
    this.#slices.stop();
    await withDeadline(this.#catchUp.whenCaughtUp(), deadline);
    await this.#registry.closeAll(deadline);
    this.#catchUp.stop();
    this.#history.clear();
    // Batches still encoding past the deadline are abandoned: not faults, not retried, not encoded inline.
    await this.#pool.destroy();
    await this.#cluster?.broker.close();
    // Only now: until here upgrades get a 503 from us, not whatever the server does with unclaimed upgrades.
    await this.#endpoint.close();
    this.#events.emit('closed');
  }

  readonly #onSendError = (connection: Connection, error: Error): void => {
    this.#counters.sendErrors++;
    this.#events.defer('sendError', { connection, error });
  };

  #notify(connection: Connection, notice: Notice): void {
    const frame = noticeFrame(notice, connection.format);
    if (frame !== null) sendNotice(connection, frame, this.#fanoutOptions, this.#fanoutCounters);
  }
}

/** Creates a broadcaster; see {@link BroadcasterOptions}. Throws `InvalidConfigError` for bad settings. */
export function createBroadcaster(options: BroadcasterOptions): Broadcaster {
  return new Broadcaster(options);
}
