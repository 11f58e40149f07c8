/**
 * The form a batch takes on its way to a worker, and back into messages there.
 * Chosen by measurement (500 trades of ~160 B, µs per batch, Node 20, 2 cores;
 * bench/micro/handoff.ts and the bench's cost model):
 *
 *   plain values        msgpackr records packed on main + moved:  main ~115-130, worker unpack ~50
 *                       structured clone (postMessage):           main ~170-190, worker ~250
 *                       JSON.stringify on main:                   main ~230-260
 *   pre-serialized JSON clone of the string[] ~35-70  ≈ join on main < encode + move
 *   pre-serialized msgpack  concatenate + move ~40-85 < clone of the Uint8Array[] ~105-150
 *
 * In the live fan-out bench the main thread paid the same for records as for a clone
 * (within noise); the worker ~20% less per batch, and a 1 MB message stalls ~1.6 ms, not ~2.0.
 *
 * Records (msgpackr's `useRecords`) write each object shape once per batch, so
 * packing and unpacking cost far less than structured clone for the repeated
 * shapes of a feed; the worker then serializes the rebuilt values for the wire
 * exactly as it would cloned ones. Batches mixing plain and pre-serialized
 * messages are cloned (rare, and nothing measured cheaper for them).
 */
import { PROTO_KEY, recordPackr, recordUnpackr } from './records.js';
import { readSegments, type SegmentOp } from './segments.js';
import type { EncodeTask } from './task.js';

/** A task ready for `Piscina.run`, with the buffers to transfer. */
export interface Handoff {
  task: EncodeTask;
  transferList: ArrayBuffer[] | undefined;
}

/** How the messages of a task travel when not as `items`. */
export type PackedForm = 'records' | 'msgpack-values' | 'record-segments';

/** Messages packed into one buffer that is moved, not copied, to the worker. */
export interface PackedItems {
  form: PackedForm;
  buffer: ArrayBuffer;
  count: number;
  /** `record-segments` only: the byte length of each segment, in order, and how they make up the messages (segments.ts). */
  segments?: number[];
  plan?: SegmentOp[];
}

/** Whether `task`'s messages travel as msgpackr records: plain values only (also what segments.ts packs). */
export function packsAsRecords(task: EncodeTask): boolean {
  return task.serialized === null && task.items.length > 0;
}

/** Builds the cheapest hand-off for `task`. Called per attempt: a transfer detaches the buffer. */
export function prepareHandoff(task: EncodeTask): Handoff {
  if (packsAsRecords(task)) return packRecords(task);
  if (task.items.length === 0) return { task, transferList: undefined };
  if (task.serialized === true && task.codec === 'msgpack') return concatMsgpack(task);
  return { task, transferList: undefined };
}

function packRecords(task: EncodeTask): Handoff {
  let packed: Buffer;
  try {
    packed = recordPackr.pack(task.items);
  } catch {
    // Circular structures, symbols, BigInts past 64 bits: structured clone carries them, and the
    // worker reports the culprits per message (or the pool encodes the batch inline).
    return { task, transferList: undefined };
  }
  // ~1 µs for a batch of 500; a "__proto__" anywhere, even in a value, only costs this batch a clone.
  if (packed.indexOf(PROTO_KEY) !== -1) return { task, transferList: undefined };
  // pack() returns a view of msgpackr's reusable buffer: copy it into one we can move.
  const buffer = new ArrayBuffer(packed.byteLength);
  new Uint8Array(buffer).set(packed);
  return movedHandoff(task, { form: 'records', buffer, count: task.items.length });
}

function concatMsgpack(task: EncodeTask): Handoff {
  const items = task.items as Uint8Array[];
  let total = 0;
  for (const item of items) total += item.byteLength;
  // Layout: the messages back to back, then one u32 length per message.
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
  return movedHandoff(task, { form: 'msgpack-values', buffer, count: items.length });
}

/** The hand-off of `task` with its messages in `packed` (also for messages packed beforehand, over several turns: segments.ts). */
export function movedHandoff(task: EncodeTask, packed: PackedItems): Handoff {
  return { task: { ...task, items: [], packed }, transferList: [packed.buffer] };
}

/** A task with its messages back in `items`; `spliced` is the contiguous run of pre-serialized msgpack values, if any. */
export interface ReceivedTask {
  task: EncodeTask;
  spliced: Uint8Array | undefined;
}

/** Restores the messages of a task prepared by {@link prepareHandoff} (the worker side). */
export function receiveHandoff(task: EncodeTask): ReceivedTask {
  const packed = task.packed;
  if (packed === undefined) return { task, spliced: undefined };
  if (packed.form === 'records') {
    const items: unknown = recordUnpackr.unpack(new Uint8Array(packed.buffer));
    if (!Array.isArray(items) || items.length !== packed.count) {
      throw new Error(`records hand-off holds ${Array.isArray(items) ? `${items.length} messages` : typeof items}, expected ${packed.count}`);
    }
    return { task: { ...task, items, packed: undefined }, spliced: undefined };
  }
  if (packed.form === 'record-segments') return { task: { ...task, items: readSegments(packed), packed: undefined }, spliced: undefined };
  const total = packed.buffer.byteLength - packed.count * 4;
  const lengths = new DataView(packed.buffer, total);
  const items: Uint8Array[] = new Array(packed.count);
  let offset = 0;
  for (let i = 0; i < packed.count; i++) {
    const length = lengths.getUint32(i * 4, true);
    items[i] = new Uint8Array(packed.buffer, offset, length);
    offset += length;
  }
  return { task: { ...task, items, packed: undefined }, spliced: new Uint8Array(packed.buffer, 0, total) };
}
