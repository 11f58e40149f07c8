/** Small numeric helpers shared by the bench processes. */
import { readFileSync } from 'node:fs';

/**
 * The main thread's scheduler accounting on Linux (/proc/self/task/<pid>/schedstat):
 * nanoseconds run on a CPU, and nanoseconds spent runnable but waiting for one.
 * Null where the file does not exist (other systems).
 */
export function mainThreadSched(): { runNs: number; waitNs: number } | null {
  try {
    const [run, wait] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ');
    return { runNs: Number(run), waitNs: Number(wait) };
  } catch {
    return null;
  }
}

/** Median of `values` (NaN when empty). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile (0..100) of `values` (NaN when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Rounds to `digits` significant digits (keeps JSON readable; NaN and ±Infinity become null). */
export function sig(value: number, digits = 4): number | null {
  if (!Number.isFinite(value)) return null;
  if (value === 0) return 0;
  return Number(value.toPrecision(digits));
}

/** Fixed-width number for tables: `-` for missing values. */
export function fmt(value: number | null | undefined, decimals = 2): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  if (Math.abs(value) >= 1e6) return `${(value / 1e6).toFixed(decimals > 0 ? 2 : 0)}M`;
  if (Math.abs(value) >= 1e4 && decimals <= 1) return `${(value / 1e3).toFixed(1)}k`;
  return value.toFixed(decimals);
}

/** `1m05s` style durations for progress lines. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
