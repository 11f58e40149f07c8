/**
 * The hand-off of a large batch in segments. Packing a batch is one synchronous call
 * (handoff.ts); for a ~1 MB snapshot that call blocks the event loop for 2-3 ms on an
 * idle 2-core VM and 5-9 ms while the workers and clients compete for the cores (the
 * bench's `large` rows, with `--cpu-prof`). Packed in segments of at most
 * {@link SEGMENT_VALUES} values, the same work can stop between any two segments and go
 * on in a later turn (sliced-handoff.ts).
 *
 * Splits happen at the top two levels only: a run of messages; a message that is a long
 * array; a plain-object message whose own properties hold long arrays (the rest of it
 * travels as a "skeleton" segment with those properties set to null, which keeps the key
 * order). Anything deeper is packed whole. Every segment is a self-contained records
 * buffer, and the worker rebuilds exactly the values one pack of the batch would give.
 */
import type { PackedItems } from './handoff.js';
import { PROTO_KEY, recordPackr, recordUnpackr } from './records.js';

/** Values per segment: ~0.1 ms of packing for rows of ~170 bytes of JSON. */
export const SEGMENT_VALUES = 256;

/** How consecutive segments make up the messages (the worker follows it in order). */
export type SegmentOp =
  /** The next segment is an array of `run` messages. */
  | { run: number }
  /** The next `chunks` segments are one message, an array, in pieces. */
  | { chunks: number }
  /** The next segment is a message with `keys` set to null; then `chunks[i]` segments make up the array at `keys[i]`. */
  | { keys: string[]; chunks: number[] };

/** A value to pack as one segment: `values[from, to)`, or `value` itself. */
type Piece = { values: unknown[]; from: number; to: number } | { value: unknown };

/**
 * Where segments are written before {@link SegmentWriter.finish} copies them out: one per
 * queue of writers that run one at a time, kept at the largest size seen (as msgpackr keeps
 * its own buffer), so a large batch does not allocate a buffer for every doubling.
 */
export interface SegmentScratch {
  bytes: Uint8Array;
}

/** A scratch buffer for writers that run one at a time. */
export function segmentScratch(): SegmentScratch {
  return { bytes: new Uint8Array(64 * 1024) };
}

/** What {@link SegmentWriter.step} did. */
export type StepOutcome = 'done' | 'more' | 'clone';

/** Packs a batch's messages segment by segment; {@link step} until it says `done`. */
export class SegmentWriter {
  readonly #items: readonly unknown[];
  /** The next message not planned yet. */
  #next = 0;
  readonly #pieces: Piece[] = [];
  #piece = 0;
  readonly #plan: SegmentOp[] = [];
  readonly #lengths: number[] = [];
  readonly #scratch: SegmentScratch;
  #used = 0;

  /** `scratch` must not be written by another writer until this one has finished. */
  constructor(items: readonly unknown[], scratch: SegmentScratch = segmentScratch()) {
    this.#items = items;
    this.#scratch = scratch;
  }

  /**
   * Packs segments until all are packed (`done`) or `performance.now()` passes `deadline`
   * after at least one (`more`). `clone` means a segment holds a `"__proto__"` key, which
   * records cannot carry faithfully (see records.ts): the batch must be cloned instead.
   * Throws what msgpackr throws for values it cannot pack.
   */
  step(deadline: number): StepOutcome {
    for (;;) {
      if (this.#piece === this.#pieces.length && !this.#planNext()) return 'done';
      const piece = this.#pieces[this.#piece++]!;
      const packed = recordPackr.pack('value' in piece ? piece.value : piece.values.slice(piece.from, piece.to));
      if (packed.indexOf(PROTO_KEY) !== -1) return 'clone';
      this.#append(packed);
      if (performance.now() >= deadline) return this.#piece === this.#pieces.length && this.#next === this.#items.length ? 'done' : 'more';
    }
  }

  /** The packed messages, copied into a buffer of their own to move to a worker. */
  finish(): PackedItems {
    const buffer = new ArrayBuffer(this.#used);
    new Uint8Array(buffer).set(this.#scratch.bytes.subarray(0, this.#used));
    return { form: 'record-segments', buffer, count: this.#items.length, segments: this.#lengths, plan: this.#plan };
  }

  /** Plans the next message, or the next run of messages that need no split; false when none is left. */
  #planNext(): boolean {
    const items = this.#items;
    const start = this.#next;
    if (start === items.length) return false;
    let end = start;
    let keys: string[] | null = null;
    while (end < items.length && end - start < SEGMENT_VALUES && (keys = longArrayKeys(items[end])) === null) end++;
    if (end > start) {
      this.#plan.push({ run: end - start });
      this.#pieces.push({ values: items as unknown[], from: start, to: end });
      this.#next = end;
      return true;
    }
    // The message at `start` needs a split: `keys` are its long arrays ([] when it is one itself).
    const message = items[start];
    this.#next = start + 1;
    if (Array.isArray(message)) {
      this.#plan.push({ chunks: this.#chunk(message) });
      return true;
    }
    const split = keys!;
    const skeleton: Record<string, unknown> = { ...(message as Record<string, unknown>) };
    for (const key of split) skeleton[key] = null;
    this.#pieces.push({ value: skeleton });
    this.#plan.push({ keys: split, chunks: split.map((key) => this.#chunk((message as Record<string, unknown[]>)[key]!)) });
    return true;
  }

  /** Queues `values` in pieces of at most SEGMENT_VALUES; returns how many. */
  #chunk(values: unknown[]): number {
    let chunks = 0;
    for (let from = 0; from < values.length; from += SEGMENT_VALUES, chunks++) {
      this.#pieces.push({ values, from, to: Math.min(values.length, from + SEGMENT_VALUES) });
    }
    return chunks;
  }

  #append(packed: Uint8Array): void {
    const scratch = this.#scratch;
    if (this.#used + packed.byteLength > scratch.bytes.byteLength) {
      const grown = new Uint8Array(Math.max(scratch.bytes.byteLength * 2, this.#used + packed.byteLength));
      grown.set(scratch.bytes.subarray(0, this.#used));
      scratch.bytes = grown;
    }
    // pack() returns a view of msgpackr's reusable buffer: copy it out before the next pack.
    scratch.bytes.set(packed, this.#used);
    this.#used += packed.byteLength;
    this.#lengths.push(packed.byteLength);
  }
}

/**
 * The own properties of a plain-object message that hold arrays longer than a segment,
 * or the message itself (`[]`) when it is such an array; null when it needs no split.
 */
function longArrayKeys(message: unknown): string[] | null {
  if (typeof message !== 'object' || message === null) return null;
  if (Array.isArray(message)) return message.length > SEGMENT_VALUES ? [] : null;
  // Only plain objects: records write a class instance's own properties too, but a copy would lose its prototype.
  if (Object.getPrototypeOf(message) !== Object.prototype) return null;
  let keys: string[] | null = null;
  for (const key in message) {
    const value = (message as Record<string, unknown>)[key];
    // A "__proto__" own key cannot be assigned back on the worker; the batch is cloned anyway (PROTO_KEY).
    if (Array.isArray(value) && value.length > SEGMENT_VALUES && key !== '__proto__' && Object.hasOwn(message, key)) (keys ??= []).push(key);
  }
  return keys;
}

/** Rebuilds the messages of a `record-segments` hand-off (the worker side). */
export function readSegments(packed: PackedItems): unknown[] {
  const { buffer, count } = packed;
  const lengths = packed.segments ?? [];
  const plan = packed.plan ?? [];
  let offset = 0;
  let segment = 0;
  const read = (): unknown => {
    if (segment === lengths.length) throw new Error(`segmented hand-off: the plan needs more than its ${lengths.length} segments`);
    const length = lengths[segment++]!;
    const value: unknown = recordUnpackr.unpack(new Uint8Array(buffer, offset, length));
    offset += length;
    return value;
  };
  const readArray = (chunks: number): unknown[] => {
    const values: unknown[] = [];
    for (let i = 0; i < chunks; i++) {
      const part = read();
      if (!Array.isArray(part)) throw new Error(`segmented hand-off: segment ${segment - 1} is not an array`);
      for (const value of part) values.push(value);
    }
    return values;
  };
  const items: unknown[] = [];
  for (const op of plan) {
    if ('run' in op) {
      const run = readArray(1);
      if (run.length !== op.run) throw new Error(`segmented hand-off: a run of ${run.length} messages, expected ${op.run}`);
      for (const item of run) items.push(item);
    } else if ('keys' in op) {
      const skeleton = read() as Record<string, unknown>;
      op.keys.forEach((key, i) => (skeleton[key] = readArray(op.chunks[i]!)));
      items.push(skeleton);
    } else items.push(readArray(op.chunks));
  }
  if (items.length !== count || segment !== lengths.length) {
    throw new Error(`segmented hand-off holds ${items.length} messages in ${segment} of ${lengths.length} segments, expected ${count}`);
  }
  return items;
}
