/**
 * What a broadcaster measures about itself beyond its counters: message and encode
 * rates, encode time and broadcast delay samples (per batch, never per message), and the
 * Prometheus metrics fed from them. Read by `stats()`, `GET /metrics`, the live page and
 * the adaptive controller.
 */
import { RateMeter, SampleRing, type Percentiles, type Stats } from '../stats.js';
import { BatchcastMetrics, type MetricsOption } from './metrics.js';

export interface ObserverSources {
  /** Messages published so far (for the rate). */
  published: () => number;
  /** Worker microseconds spent so far (for pool utilization). */
  encodeMicros: () => number;
  /** The broadcaster's stats(), read when metrics are scraped. */
  stats: () => Stats;
}

/** Per-batch samples, rates and metrics of one broadcaster. */
export class Observer {
  readonly rate: RateMeter;
  readonly encodeRate: RateMeter;
  /** Worker µs per batch, the last 1024 batches. */
  readonly encodeSamples = new SampleRing();
  /** Broadcast delay in ms per batch (first publish → written to the sockets), the last 1024 batches. */
  readonly delaySamples = new SampleRing();
  /** Windows opened by readers that look once per interval (the last-second figure below, the adaptive controller). */
  readonly #windows: SampleRing[] = [];
  /** Broadcast delay percentiles of the last whole second (live page, adaptive controller). */
  lastSecondDelay: Percentiles;
  #timer: NodeJS.Timeout | null = null;
  readonly #lastSecond: SampleRing;
  readonly metrics: BatchcastMetrics | null;

  /** Validates the metrics settings (throws naming a bad one); starts no timer: see {@link start}. */
  constructor(sources: ObserverSources, metrics: MetricsOption) {
    this.metrics = metrics === false ? null : new BatchcastMetrics(sources.stats, metrics === true ? {} : metrics);
    this.rate = new RateMeter(sources.published);
    this.encodeRate = new RateMeter(sources.encodeMicros);
    this.#lastSecond = this.openDelayWindow();
    this.lastSecondDelay = this.#lastSecond.percentiles();
  }

  /** Starts the once-a-second sampling, when the broadcaster is built (a constructor that threw leaves no timer). */
  start(): void {
    this.rate.start();
    this.encodeRate.start();
    this.#timer ??= setInterval(() => {
      this.lastSecondDelay = this.#lastSecond.percentiles();
      this.#lastSecond.clear();
    }, 1000);
    this.#timer.unref();
  }

  /** A batch came back from the pool after `micros` of worker time. */
  encoded(micros: number): void {
    this.encodeSamples.add(micros);
    this.metrics?.encoded(micros);
  }

  /** A batch of `messages` on `channel` was written to its subscribers `delayMs` after its first publish. */
  delivered(channel: string, messages: number, delayMs: number): void {
    this.delaySamples.add(delayMs);
    for (const window of this.#windows) window.add(delayMs);
    this.metrics?.delivered(channel, messages, delayMs);
  }

  /** A window that receives every broadcast delay sample from now on; its reader clears it. */
  openDelayWindow(): SampleRing {
    const window = new SampleRing(4096);
    this.#windows.push(window);
    return window;
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.rate.stop();
    this.encodeRate.stop();
  }
}
