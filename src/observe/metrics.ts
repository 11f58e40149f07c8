/**
 * Prometheus metrics through prom-client. Counters and gauges are read from `stats()`
 * when the registry is scraped (the pipeline keeps those counts anyway); the two
 * histograms get one value per batch, never per message, handed over at the scrape. Label sets are fixed and
 * small: no per-channel label unless the user opts in with a bound (`channelLabels`),
 * and then past the bound channels share the label value `_other`.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { InvalidConfigError } from '../errors.js';
import type { Stats } from '../stats.js';
import { DeferredObservations } from './deferred-observations.js';

/** The `metrics` option: `true` (a registry of the broadcaster's own), `false` (none), or settings. */
export type MetricsOption = boolean | MetricsSettings;

export interface MetricsSettings {
  /** Register into this registry (the application's) instead of a new one. */
  registry?: Registry;
  /** Name prefix (default `batchcast_`); give each broadcaster its own when several share a registry. */
  prefix?: string;
  /** Also collect prom-client's default Node metrics (event-loop lag, heap, GC; their standard names, unprefixed). Default: false. */
  defaultMetrics?: boolean;
  /** Per-channel counters for at most this many channels (default 0: none). */
  channelLabels?: number;
}

/** Channels past the `channelLabels` bound are counted under this label value. */
export const OTHER_CHANNELS = '_other';

/** How long one reading of stats() serves a scrape. */
const SCRAPE_MS = 100;
const ENCODE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const DELAY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Counters read from stats(): [name without prefix, help, value]. */
const COUNTERS: [string, string, (s: Stats) => number][] = [
  ['messages_published_total', 'Messages accepted by publish() and publishSerialized().', (s) => s.messagesPublished],
  ['messages_rejected_total', 'Messages a worker could not encode (messageError); their batch-mates went out.', (s) => s.messagesRejected],
  ['messages_dropped_total', 'Messages dropped past maxPendingMessages while the pool was busy (clients see the gap).', (s) => s.messagesDropped],
  ['messages_failed_total', 'Messages of batches no thread could encode (clients see the gap).', (s) => s.messagesFailed],
  ['batches_total', 'Batches encoded.', (s) => s.batches],
  ['batches_failed_total', 'Batches no thread could encode.', (s) => s.batchesFailed],
  ['batches_unheard_total', 'Batches not encoded because nobody would read them (no subscriber, no history, no broker).', (s) => s.batchesUnheard],
  ['bytes_raw_total', 'Serialized bytes of encoded batches, before compression.', (s) => s.rawBytes],
  ['bytes_wire_total', 'Bytes of the encoded frames, once per batch (what one subscriber receives).', (s) => s.wireBytes],
  ['bytes_sent_total', 'Bytes written to sockets, all subscribers.', (s) => s.bytesSent],
  ['frames_sent_total', 'Frames written to sockets, all subscribers.', (s) => s.framesSent],
  ['batches_skipped_total', 'Batches a slow client did not get (drop policy; it catches up from history or sees a gap).', (s) => s.batchesSkipped],
  ['slow_clients_closed_total', 'Slow clients closed (close policy, 1013).', (s) => s.slowClientsClosed],
  ['send_errors_total', 'Socket writes that failed.', (s) => s.sendErrors],
  ['callback_errors_total', 'Event listeners and hooks that threw or rejected.', (s) => s.callbackErrors],
  ['connections_opened_total', 'Connections accepted.', (s) => s.connectionsTotal],
  ['upgrades_rejected_total', 'Upgrade requests refused (path, origin, authorize, format, shutdown).', (s) => s.upgradesRejected],
  ['heartbeat_terminated_total', 'Connections terminated for not answering pings.', (s) => s.heartbeatTerminated],
  ['history_evicted_messages_total', 'Messages evicted from history by its bounds.', (s) => s.history.evictedMessages],
  ['frames_replayed_total', 'Frames replayed from history (recoveries, slow clients catching up).', (s) => s.catchUp.framesReplayed],
  ['worker_wakeups_total', 'Batches handed to a parked encoder thread, which had to be woken (workerPollMs).', (s) => s.pool.wakeups],
  ['worker_nudges_total', 'Batches that had waited for an encoder thread and woke it from its workerPollMs sleep (a backlog).', (s) => s.pool.nudges],
  ['handoffs_sliced_total', 'Batches whose packing for a worker was spread over several event-loop turns (handoffSliceMs).', (s) => s.pool.slicedHandoffs.spread],
  ['adaptive_decisions_total', 'Changes the adaptive controller made to batching or compression.', (s) => s.adaptive.decisions],
];

const GAUGES: [string, string, (s: Stats) => number][] = [
  ['connections', 'Open connections.', (s) => s.connections],
  ['subscriptions', 'Subscriptions over all connections.', (s) => s.subscriptions],
  ['channels', 'Channels with live state.', (s) => s.channels],
  ['messages_pending', 'Messages in open batches.', (s) => s.messagesPending],
  ['pool_threads', 'Encoder worker threads.', (s) => s.pool.threads],
  ['pool_utilization', 'Share of the workers\' time spent encoding over the last second (0..1).', (s) => s.pool.utilization],
  ['pool_queue', 'Batches waiting for a worker.', (s) => s.pool.queueSize],
  ['pool_in_flight', 'Batches handed to the pool and not finished.', (s) => s.pool.inFlight],
  ['history_bytes', 'Bytes history holds (frames plus their counted overhead).', (s) => s.history.bytes],
  ['lagging_clients', 'Clients catching up from history.', (s) => s.catchUp.lagging],
  ['batch_size', 'Largest batch in force (the adaptive controller may lower it).', (s) => s.adaptive.batchSize],
  ['batch_delay_seconds', 'Batch delay in force.', (s) => s.adaptive.batchDelayMs / 1000],
  ['compression_threshold_bytes', 'Compression threshold in force.', (s) => s.adaptive.compressionThreshold],
  ['compression_level', 'Compression level in force.', (s) => s.adaptive.compressionLevel],
];

/** A broadcaster's metrics. */
export class BatchcastMetrics {
  readonly registry: Registry;
  /** Worker time per batch and broadcast delay, observed at scrape time (deferred-observations.ts). */
  readonly #encode = new DeferredObservations();
  readonly #delay = new DeferredObservations();
  readonly #channelLimit: number;
  /** Per-channel message counts (opted in), bounded by channelLabels; the rest under OTHER_CHANNELS. */
  readonly #channelMessages: Counter<'channel'> | null;
  readonly #labelled = new Set<string>();
  readonly #read: () => Stats;
  #cached: Stats | null = null;
  #cachedAt = 0;

  /** `read` is called at most once per scrape. */
  constructor(read: () => Stats, settings: MetricsSettings = {}) {
    const prefix = settings.prefix ?? 'batchcast_';
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) throw new InvalidConfigError('metrics.prefix', `expected a Prometheus name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*), got ${JSON.stringify(prefix)}`);
    const limit = settings.channelLabels ?? 0;
    if (!Number.isInteger(limit) || limit < 0 || limit > 10_000) throw new InvalidConfigError('metrics.channelLabels', `expected an integer 0..10000, got ${String(limit)}`);
    this.registry = settings.registry ?? new Registry();
    this.#read = read;
    this.#channelLimit = limit;
    const registers = [this.registry];
    // A scrape collects every metric in turn (in registration order): read stats() once for all of them,
    // when the first of ours is collected.
    const stats = (): Stats => this.#scrapeStats();
    new Gauge({ name: `${prefix}up`, help: 'Always 1; collected first, so one scrape reads stats() once.', registers, collect: () => {
      this.#cached = null;
    } }).set(1);
    for (const [name, help, value] of COUNTERS) {
      let last = 0;
      new Counter({
        name: prefix + name, help, registers,
        collect() {
          const now = value(stats());
          if (now > last) this.inc(now - last);
          last = now;
        },
      });
    }
    for (const [name, help, value] of GAUGES) {
      new Gauge({ name: prefix + name, help, registers, collect() { this.set(value(stats())); } });
    }
    // Counters with a label of a few fixed values, each read from stats() as a record.
    const labelled = <L extends string>(name: string, help: string, label: string, read: (s: Stats) => Record<L, number>) => {
      const last = new Map<L, number>();
      new Counter({
        name: prefix + name, help, labelNames: [label], registers,
        collect() {
          for (const [value, now] of Object.entries(read(stats())) as [L, number][]) {
            this.inc({ [label]: value }, Math.max(0, now - (last.get(value) ?? 0)));
            last.set(value, now);
          }
        },
      });
    };
    labelled('worker_faults_total', 'Worker faults by kind: error (threw), crash (thread died), timeout, inline (encoded on the main thread as a last resort).', 'kind', (s) => s.pool.faults);
    labelled('recoveries_total', 'Subscriptions with a position, by outcome: ok (nothing lost), evicted (part gone), epoch (another history).', 'status', (s) => s.recoveries);
    const encode = this.#encode;
    const delay = this.#delay;
    encode.attach(new Histogram({
      name: `${prefix}encode_duration_seconds`, help: 'Worker time to serialize and compress one batch.', buckets: ENCODE_BUCKETS, registers,
      collect: () => encode.flush(),
    }));
    delay.attach(new Histogram({
      name: `${prefix}broadcast_delay_seconds`, help: 'From the first publish of a batch to its frame written to the sockets (in a cluster: to Redis confirming it).', buckets: DELAY_BUCKETS, registers,
      collect: () => delay.flush(),
    }));
    this.#channelMessages = limit === 0 ? null : new Counter({
      name: `${prefix}channel_messages_total`, help: `Messages delivered per channel, for at most ${limit} channels (the rest: channel="${OTHER_CHANNELS}").`, labelNames: ['channel'], registers,
    });
    if (settings.defaultMetrics === true) collectDefaultMetrics({ register: this.registry });
  }

  /** One batch encoded, in `micros` of worker time. */
  encoded(micros: number): void {
    this.#encode.add(micros / 1e6);
  }

  /** One batch of `messages` on `channel` delivered `delayMs` after its first publish. */
  delivered(channel: string, messages: number, delayMs: number): void {
    this.#delay.add(delayMs / 1e3);
    const perChannel = this.#channelMessages;
    if (perChannel === null) return;
    if (!this.#labelled.has(channel)) {
      if (this.#labelled.size >= this.#channelLimit) return perChannel.inc({ channel: OTHER_CHANNELS }, messages);
      this.#labelled.add(channel);
    }
    perChannel.inc({ channel }, messages);
  }

  /** The text exposition (what `GET /metrics` serves). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** stats(), read once per scrape (and never older than {@link SCRAPE_MS} if a metric is read on its own). */
  #scrapeStats(): Stats {
    const now = performance.now();
    if (this.#cached === null || now - this.#cachedAt > SCRAPE_MS) {
      this.#cached = this.#read();
      this.#cachedAt = now;
    }
    return this.#cached;
  }
}
