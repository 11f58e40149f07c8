/**
 * The four settings the adaptive controller may change while the broadcaster runs, and
 * their bounds. The batcher and the encode task read them live (one object each), so a
 * change applies to the next batch that closes.
 */
import type { ResolvedConfig } from '../config.js';

/** The batching and compression settings in force. */
export interface TunedSettings {
  batchSize: number;
  batchDelayMs: number;
  compressionThreshold: number;
  compressionLevel: number;
}

/**
 * Bounds of every change: batching goes no lower than these minimums and no higher than
 * the configured values; compression goes no further than level 9 and a 64-byte
 * threshold, and no lower than the configured level and no higher than the configured threshold.
 */
export const MIN_BATCH_SIZE = 10;
export const MIN_BATCH_DELAY_MS = 1;
export const MIN_COMPRESSION_THRESHOLD = 64;
export const MAX_COMPRESSION_LEVEL = 9;

export interface TunableBounds {
  batchSize: [min: number, max: number];
  batchDelayMs: [min: number, max: number];
  compressionThreshold: [min: number, max: number];
  compressionLevel: [min: number, max: number];
}

/** The bounds for a configuration (the configured values are the batching maximums and the compression starting point). */
export function boundsOf(config: Pick<ResolvedConfig, keyof TunedSettings>): TunableBounds {
  return {
    batchSize: [Math.min(MIN_BATCH_SIZE, config.batchSize), config.batchSize],
    batchDelayMs: [Math.min(MIN_BATCH_DELAY_MS, config.batchDelayMs), config.batchDelayMs],
    compressionThreshold: [Math.min(MIN_COMPRESSION_THRESHOLD, config.compressionThreshold), config.compressionThreshold],
    compressionLevel: [config.compressionLevel, Math.max(MAX_COMPRESSION_LEVEL, config.compressionLevel)],
  };
}
