/**
 * The form a batch takes on its way to a worker, chosen by measurement
 * (bench/micro/handoff.ts, 500 messages of ~160 B, main-thread µs per batch):
 *   objects:                 structured clone ~290   < stringify/pack on main ~330-430
 *   pre-serialized JSON:     clone string[]   ~70    ≈ join on main ~70 < encode+transfer ~110
 *   pre-serialized msgpack:  clone Uint8Array[] ~150 > concatenate + transfer ~85
 * So only all-pre-serialized msgpack batches change form: their bytes are
 * concatenated into one ArrayBuffer that is moved, not copied, to the worker.
 */
import type { EncodeTask } from './task.js';

/** A task ready for `Piscina.run`, with the buffers to transfer. */
export interface Handoff {
  task: EncodeTask;
  transferList: ArrayBuffer[] | undefined;
}

/** Builds the cheapest hand-off for `task`. Called per attempt: a transfer detaches the buffer. */
export function prepareHandoff(task: EncodeTask): Handoff {
  if (task.codec !== 'msgpack' || task.serialized !== true || task.items.length === 0) return { task, transferList: undefined };
  const items = task.items as Uint8Array[];
  let total = 0;
  for (const item of items) total += item.byteLength;
  // Layout: the messages back to back, then one u32 length per message (read by unpackHandoff).
  const buffer = new ArrayBuffer(total + items.length * 4);
  const bytes = new Uint8Array(buffer);
  const lengths = new DataView(buffer, total);
  let offset = 0;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    bytes.set(item, offset);
    offset += item.byteLength;
    lengths.setUint32(i * 4, item.byteLength, true);
  }
  return { task: { ...task, items: [], packed: { buffer, count: items.length } }, transferList: [buffer] };
}

/** Splits a packed hand-off back into per-message views (no copies). */
export function unpackHandoff(packed: NonNullable<EncodeTask['packed']>): { body: Uint8Array; items: Uint8Array[] } {
  const total = packed.buffer.byteLength - packed.count * 4;
  const lengths = new DataView(packed.buffer, total);
  const items: Uint8Array[] = new Array(packed.count);
  let offset = 0;
  for (let i = 0; i < packed.count; i++) {
    const length = lengths.getUint32(i * 4, true);
    items[i] = new Uint8Array(packed.buffer, offset, length);
    offset += length;
  }
  return { body: new Uint8Array(packed.buffer, 0, total), items };
}
