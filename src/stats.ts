/** `stats()`: its measurement helpers (a sample ring with percentiles, a per-second rate) and its assembly. */
import type { ChannelTable } from './channels.js';
import type { EncoderPool } from './encode/pool.js';
import type { CatchUp } from './fanout/catch-up.js';
import type { HistoryStore } from './history/history.js';
import type { Recovery } from './history/recovery.js';
import type { Cluster } from './broker/cluster.js';
import type { FanoutCounters } from './fanout/fanout.js';
import type { FanoutSlices } from './fanout/slices.js';
import type { LayoutCounters } from './fanout/layout.js';
import type { Subscriptions } from './fanout/subscriptions.js';
import type { Batcher } from './publish/batcher.js';
import type { ReleaseCounters } from './release/release.js';
import type { Sequencer } from './release/sequencer.js';
import type { EndpointCounters } from './server/endpoint.js';
import type { ConnectionRegistry, RegistryCounters } from './server/registry.js';
import type { Observer } from './observe/observer.js';
import type { adaptiveStats } from './adaptive/controller.js';

export interface Percentiles {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  samples: number;
}

/** Keeps the last `capacity` samples; percentiles are computed on demand, never on the hot path. */
export class SampleRing {
  readonly #samples: Float64Array;
  #next = 0;
  #size = 0;

  constructor(capacity = 1024) {
    this.#samples = new Float64Array(capacity);
  }

  /** Records one sample. */
  add(value: number): void {
    this.#samples[this.#next] = value;
    this.#next = (this.#next + 1) % this.#samples.length;
    if (this.#size < this.#samples.length) this.#size++;
  }

  /** p50/p90/p95/p99/max of the retained samples (zeros when empty). */
  percentiles(): Percentiles {
    if (this.#size === 0) return { p50: 0, p90: 0, p95: 0, p99: 0, max: 0, samples: 0 };
    const sorted = this.#samples.slice(0, this.#size).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return { p50: at(0.5), p90: at(0.9), p95: at(0.95), p99: at(0.99), max: sorted[sorted.length - 1]!, samples: this.#size };
  }

  /** Forgets every sample. */
  clear(): void {
    this.#next = 0;
    this.#size = 0;
  }
}

/** Messages per second over the last whole second, from a counter sampled once a second. */
export class RateMeter {
  #last = 0;
  #lastAt = 0;
  #rate = 0;
  readonly #read: () => number;
  #timer: NodeJS.Timeout | null = null;

  constructor(read: () => number) {
    this.#read = read;
  }

  /** Starts sampling (once its owner is fully built: the counter may live on a part made after it). */
  start(): void {
    this.#lastAt = performance.now();
    this.#timer ??= setInterval(() => {
      const now = performance.now();
      const value = this.#read();
      this.#rate = ((value - this.#last) * 1000) / (now - this.#lastAt);
      this.#last = value;
      this.#lastAt = now;
    }, 1000);
    this.#timer.unref();
  }

  get perSecond(): number {
    return Math.round(this.#rate);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
  }
}

/** Where {@link assembleStats} reads each figure: the parts of a broadcaster. */
export interface StatsSources {
  counters: { messagesPublished: number; messagesRejected: number; sendErrors: number; callbackErrors: number };
  release: ReleaseCounters;
  fanout: FanoutCounters;
  slices: FanoutSlices;
  registry: RegistryCounters;
  formats: ConnectionRegistry['formats'];
  layout: LayoutCounters;
  endpoint: EndpointCounters;
  observer: Observer;
  batcher: Batcher;
  subscriptions: Subscriptions;
  channels: ChannelTable;
  sequencer: Sequencer;
  pool: EncoderPool;
  history: HistoryStore;
  catchUp: CatchUp;
  recovery: Recovery;
  cluster: Cluster | null;
  adaptive: ReturnType<typeof adaptiveStats>;
  connections: number;
  upgradesPending: number;
  controlPending: number;
}

/** The object `broadcaster.stats()` returns (README lists every field). */
export function assembleStats(s: StatsSources) {
  const pool = s.pool.snapshot();
  // Worker busy time over the last second, from the workers' own timings (Piscina's figure rounds each task to whole ms).
  const o = s.observer;
  const utilization = Math.min(1, o.encodeRate.perSecond / 1e6 / Math.max(1, pool.threads));
  const r = s.release;
  return {
    messagesPublished: s.counters.messagesPublished,
    messagesPerSecond: o.rate.perSecond,
    messagesRejected: s.counters.messagesRejected,
    messagesDropped: s.batcher.droppedMessages,
    messagesPending: s.batcher.pendingMessages,
    messagesFailed: r.messagesFailed,
    batches: r.batches,
    batchesFailed: r.batchesFailed,
    batchesUnheard: r.batchesUnheard,
    messagesUnheard: r.messagesUnheard,
    rawBytes: r.rawBytes,
    wireBytes: r.wireBytes,
    compressionRatio: r.wireBytes === 0 ? 1 : r.rawBytes / r.wireBytes,
    framesSent: s.fanout.framesSent,
    bytesSent: s.fanout.bytesSent,
    batchesSkipped: s.fanout.batchesSkipped,
    fanoutSlices: { ...s.slices.counters, pending: s.slices.pending },
    slowClientsClosed: s.fanout.slowClosed,
    sendErrors: s.counters.sendErrors,
    callbackErrors: s.counters.callbackErrors,
    connections: s.connections,
    connectionsTotal: s.registry.connectionsTotal,
    upgradesRejected: s.endpoint.upgradesRejected,
    upgradesAborted: s.endpoint.upgradesAborted,
    upgradesPending: s.upgradesPending,
    controlPending: s.controlPending,
    heartbeatTerminated: s.registry.heartbeatTerminated,
    subscriptions: s.subscriptions.total,
    subscribers: s.subscriptions.counts(),
    channels: s.channels.size,
    idleChannelCounters: s.channels.idleCounters,
    reorderedBatches: s.sequencer.reordered,
    forms: {
      connections: { ...s.formats },
      laidOut: s.layout.formsLaidOut,
      bodiesInflated: s.layout.bodiesInflated,
      smallDeflates: r.smallDeflates,
    },
    history: { enabled: s.history.enabled, ...s.history.counters },
    catchUp: { lagging: s.catchUp.lagging, ...s.catchUp.counters },
    recoveries: { ...s.recovery.counters },
    cluster: s.cluster === null ? null : {
      connected: s.cluster.broker.connected, pending: s.cluster.broker.pending, ...s.cluster.broker.counters, ...s.cluster.relay.counters,
    },
    pool: { ...pool, utilization },
    encodeMicros: o.encodeSamples.percentiles(),
    broadcastDelayMs: o.delaySamples.percentiles(),
    broadcastDelayLastSecondMs: o.lastSecondDelay,
    adaptive: s.adaptive,
  };
}

/** What `broadcaster.stats()` returns. */
export type Stats = ReturnType<typeof assembleStats>;
