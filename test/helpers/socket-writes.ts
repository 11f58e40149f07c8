import type { Duplex } from 'node:stream';

/**
 * Counts a real socket's calls into its two write paths from now on (`_write` for one
 * chunk, `_writev` for several queued or corked ones); the calls pass through unchanged.
 */
export function countWrites(socket: Duplex): { write: number; writev: number } {
  const counts = { write: 0, writev: 0 };
  const target = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
  const write = target._write.bind(socket);
  const writev = target._writev.bind(socket);
  target._write = (...args) => (counts.write++, write(...args));
  target._writev = (...args) => (counts.writev++, writev(...args));
  return counts;
}
