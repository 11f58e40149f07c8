/**
 * The adaptive controller (the reference design's "Performance Tuning", made safe). Opt-in
 * targets, checked once per interval:
 *
 *   targetLatencyMs       broadcast delay p95 (first publish → written). Over it: halve the
 *                         batch delay, and once that is at its minimum, halve the batch size.
 *                         Under it with room to spare: raise them back toward the configured
 *                         values (bigger batches cost less per message), size first, by ×1.5,
 *                         but only while the delay this adds (the step in batch delay) keeps
 *                         p95 under 70% of the target, so a raise never crosses the target.
 *   targetBytesPerSecond  bytes written to sockets per second. Over it, while the pool has
 *                         spare capacity (utilization < 0.7, nothing queued) and latency is not
 *                         over its target: raise the compression level by one and halve the
 *                         threshold. Under 60% of it: step back toward the configured values
 *                         (cheaper encodes).
 *
 * Hysteresis: a cut needs 2 intervals in a row over the latency target, so one stray spike
 * (a GC pause, a busy neighbour on the machine) changes nothing; a raise needs 3
 * intervals in a row with room to spare; no change follows another of the opposite
 * direction on the same knob within 3 intervals; and a raise that had to be cut back soon
 * after becomes a ceiling for the next 60 intervals, so the controller does not probe the
 * same step again and again. An interval with no batch decides nothing about latency.
 * Every change is bounded (tunables.ts), one step at a time, and reported (stats().adaptive,
 * metrics, the `adaptive` event).
 */
import type { Percentiles } from '../stats.js';
import type { TunableBounds, TunedSettings } from './tunables.js';

/** One change the controller made. */
export interface AdaptiveDecision {
  /** Unix ms. */
  at: number;
  knob: 'batching' | 'compression';
  direction: 'down' | 'up';
  /** The settings in force after the change. */
  settings: TunedSettings;
  reason: string;
}

/** What the controller reads each interval. */
export interface AdaptiveReadings {
  /** Broadcast delay of the batches delivered during the interval. */
  delay: Percentiles;
  /** Bytes written to sockets so far (all subscribers). */
  bytesSent: number;
  /** Share of worker time spent encoding (0..1) and batches waiting for a worker. */
  poolUtilization: number;
  poolQueue: number;
}

export interface AdaptiveOptions {
  /** 0: no latency target. */
  targetLatencyMs: number;
  /** 0: no bandwidth target. */
  targetBytesPerSecond: number;
  intervalMs: number;
  bounds: TunableBounds;
  /** The live settings; the controller changes them in place. */
  settings: TunedSettings;
  read: () => AdaptiveReadings;
  onDecision: (decision: AdaptiveDecision) => void;
}

/** Intervals with room to spare before a raise, and intervals a knob holds after a change before it may go the other way. */
const PATIENCE = 3;
/** Intervals in a row over the latency target before a cut. */
const OVER_INTERVALS = 2;
/** How long a raise that had to be cut back caps later raises of the same setting, in intervals. */
const CEILING_INTERVALS = 60;
/** A raise must keep the predicted p95 under this share of the latency target. */
const RAISE_MARGIN = 0.7;
/** Bandwidth under this share of its target allows stepping compression back. */
const BANDWIDTH_HEADROOM = 0.6;
/** The pool has spare capacity for more compression below this utilization (and with nothing queued). */
const POOL_SPARE = 0.7;

type Knob = AdaptiveDecision['knob'];

/** Steers batching and compression toward the targets. */
export class AdaptiveController {
  readonly #options: AdaptiveOptions;
  readonly #timer: NodeJS.Timeout;
  #lastBytes: number;
  #lastAt = performance.now();
  /** Intervals in a row with room to spare, per knob. */
  readonly #calm: Record<Knob, number> = { batching: 0, compression: 0 };
  /** The last change per knob: its direction and the interval it was made in. */
  readonly #lastChange: Record<Knob, { direction: 'down' | 'up'; tick: number } | null> = { batching: null, compression: null };
  #tick = 0;
  /** Intervals in a row over the latency target. */
  #over = 0;
  /** Values that had to be cut back soon after a raise: raises stay below them until `until` (an interval number). */
  readonly #ceilings: { batchSize: number; batchDelayMs: number; until: number } = { batchSize: Infinity, batchDelayMs: Infinity, until: 0 };
  /** Decisions so far, and the last one. */
  decisions = 0;
  lastDecision: AdaptiveDecision | null = null;
  /** The last interval's readings that decisions were based on. */
  lastReadings: { delayP95Ms: number; bytesPerSecond: number } = { delayP95Ms: 0, bytesPerSecond: 0 };

  constructor(options: AdaptiveOptions) {
    this.#options = options;
    this.#lastBytes = options.read().bytesSent;
    this.#timer = setInterval(() => this.step(), options.intervalMs);
    this.#timer.unref();
  }

  /** One control interval (normally run by the timer). */
  step(): void {
    this.#tick++;
    const readings = this.#options.read();
    const now = performance.now();
    const bytesPerSecond = ((readings.bytesSent - this.#lastBytes) * 1000) / Math.max(1, now - this.#lastAt);
    this.#lastBytes = readings.bytesSent;
    this.#lastAt = now;
    this.lastReadings = { delayP95Ms: readings.delay.p95, bytesPerSecond };
    const latencyOver = this.#steerLatency(readings.delay);
    this.#steerBandwidth(bytesPerSecond, readings, latencyOver);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Returns whether latency is over its target this interval. */
  #steerLatency(delay: Percentiles): boolean {
    const target = this.#options.targetLatencyMs;
    if (target === 0 || delay.samples === 0) return false;
    const settings = this.#options.settings;
    const { batchSize: [minSize, maxSize], batchDelayMs: [minDelay, maxDelay] } = this.#options.bounds;
    const p95 = delay.p95;
    if (p95 > target) {
      this.#calm.batching = 0;
      if (++this.#over < OVER_INTERVALS) return true;
      if (this.#holding('batching', 'down')) return true;
      this.#rememberCeiling(settings);
      const why = `broadcast delay p95 ${p95.toFixed(1)} ms over the ${target} ms target`;
      if (settings.batchDelayMs > minDelay) {
        this.#change('batching', 'down', { batchDelayMs: Math.max(minDelay, Math.floor(settings.batchDelayMs / 2)) }, why);
      } else if (settings.batchSize > minSize) {
        this.#change('batching', 'down', { batchSize: Math.max(minSize, Math.floor(settings.batchSize / 2)) }, why);
      }
      return true;
    }
    this.#over = 0;
    if (settings.batchSize >= maxSize && settings.batchDelayMs >= maxDelay) return false;
    // Room to spare: raise one step, if the step's own added wait keeps p95 well under the target.
    if (++this.#calm.batching < PATIENCE || this.#holding('batching', 'up')) return false;
    const capped = this.#tick < this.#ceilings.until;
    if (settings.batchSize < maxSize) {
      // A bigger batch fills later only when it fills before the delay: its added wait is at most the delay, already in p95.
      const next = Math.min(maxSize, Math.ceil(settings.batchSize * 1.5));
      if (p95 < target * RAISE_MARGIN && !(capped && next >= this.#ceilings.batchSize)) {
        this.#change('batching', 'up', { batchSize: next }, `p95 ${p95.toFixed(1)} ms, room under the ${target} ms target`);
      }
      return false;
    }
    const next = Math.min(maxDelay, Math.max(settings.batchDelayMs + 1, Math.ceil(settings.batchDelayMs * 1.5)));
    if (capped && next >= this.#ceilings.batchDelayMs) return false;
    if (p95 + (next - settings.batchDelayMs) < target * RAISE_MARGIN) {
      this.#change('batching', 'up', { batchDelayMs: next }, `p95 ${p95.toFixed(1)} ms, room under the ${target} ms target`);
    }
    return false;
  }

  #steerBandwidth(bytesPerSecond: number, readings: AdaptiveReadings, latencyOver: boolean): void {
    const target = this.#options.targetBytesPerSecond;
    if (target === 0) return;
    const settings = this.#options.settings;
    const { compressionLevel: [minLevel, maxLevel], compressionThreshold: [minThreshold, maxThreshold] } = this.#options.bounds;
    if (bytesPerSecond > target) {
      this.#calm.compression = 0;
      const spare = readings.poolUtilization < POOL_SPARE && readings.poolQueue === 0;
      if (!spare || latencyOver || this.#holding('compression', 'up')) return;
      if (settings.compressionLevel >= maxLevel && settings.compressionThreshold <= minThreshold) return;
      this.#change('compression', 'up', {
        compressionLevel: Math.min(maxLevel, settings.compressionLevel + 1),
        compressionThreshold: Math.max(minThreshold, Math.floor(settings.compressionThreshold / 2)),
      }, `${Math.round(bytesPerSecond)} bytes/s over the ${target} bytes/s target, pool ${(readings.poolUtilization * 100).toFixed(0)}% busy`);
      return;
    }
    if (bytesPerSecond >= target * BANDWIDTH_HEADROOM || (settings.compressionLevel <= minLevel && settings.compressionThreshold >= maxThreshold)) {
      this.#calm.compression = 0;
      return;
    }
    if (++this.#calm.compression < PATIENCE || this.#holding('compression', 'down')) return;
    this.#change('compression', 'down', {
      compressionLevel: Math.max(minLevel, settings.compressionLevel - 1),
      compressionThreshold: Math.min(maxThreshold, settings.compressionThreshold * 2),
    }, `${Math.round(bytesPerSecond)} bytes/s, room under the ${target} bytes/s target`);
  }

  /** Before a cut: if batching was raised only a few intervals ago, that raise went too far; remember its values as a ceiling. */
  #rememberCeiling(settings: TunedSettings): void {
    const last = this.#lastChange.batching;
    if (last === null || last.direction !== 'up' || this.#tick - last.tick > 2 * PATIENCE) return;
    this.#ceilings.batchSize = settings.batchSize;
    this.#ceilings.batchDelayMs = settings.batchDelayMs;
    this.#ceilings.until = this.#tick + CEILING_INTERVALS;
  }

  /** Whether `knob` changed the other way too recently to go `direction` now. */
  #holding(knob: Knob, direction: 'down' | 'up'): boolean {
    const last = this.#lastChange[knob];
    return last !== null && last.direction !== direction && this.#tick - last.tick < PATIENCE;
  }

  #change(knob: Knob, direction: 'down' | 'up', change: Partial<TunedSettings>, reason: string): void {
    const settings = this.#options.settings;
    Object.assign(settings, change);
    this.#lastChange[knob] = { direction, tick: this.#tick };
    this.#calm[knob] = 0;
    const decision: AdaptiveDecision = {
      at: Date.now(), knob, direction, reason,
      settings: { batchSize: settings.batchSize, batchDelayMs: settings.batchDelayMs, compressionThreshold: settings.compressionThreshold, compressionLevel: settings.compressionLevel },
    };
    this.decisions++;
    this.lastDecision = decision;
    this.#options.onDecision(decision);
  }
}

/** The controller a configuration asks for (null when neither target is set), reading the observer and stats. */
export function adaptiveFor(
  config: { targetLatencyMs: number; targetBytesPerSecond: number; adaptiveIntervalMs: number },
  bounds: TunableBounds,
  settings: TunedSettings,
  read: () => AdaptiveReadings,
  onDecision: (decision: AdaptiveDecision) => void,
): AdaptiveController | null {
  if (config.targetLatencyMs === 0 && config.targetBytesPerSecond === 0) return null;
  return new AdaptiveController({
    targetLatencyMs: config.targetLatencyMs, targetBytesPerSecond: config.targetBytesPerSecond, intervalMs: config.adaptiveIntervalMs, bounds, settings, read, onDecision,
  });
}

/** `stats().adaptive`: the settings in force, the targets, and the controller's last decision. */
export function adaptiveStats(config: { targetLatencyMs: number; targetBytesPerSecond: number }, settings: TunedSettings, controller: AdaptiveController | null) {
  return {
    enabled: controller !== null,
    targetLatencyMs: config.targetLatencyMs,
    targetBytesPerSecond: config.targetBytesPerSecond,
    batchSize: settings.batchSize,
    batchDelayMs: settings.batchDelayMs,
    compressionThreshold: settings.compressionThreshold,
    compressionLevel: settings.compressionLevel,
    decisions: controller?.decisions ?? 0,
    lastDecision: controller?.lastDecision ?? null,
    lastReadings: controller?.lastReadings ?? null,
  };
}
