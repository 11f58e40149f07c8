/**
 * Wire forms. Each connection takes batches in one form: its format (`batchcast`,
 * `json`, `seed`) and, for the first two, whether its permessage-deflate lets the
 * server compress for it, and with which window. A form is a small integer, so
 * fan-out picks a subscriber's frame with one comparison in the common case (every
 * subscriber on the canonical form) and one array lookup otherwise.
 */
import { FORMATS, type Format } from '../protocol/formats.js';

/** A wire form: format index × 16 + the permessage-deflate window (0: frames go uncompressed by the transport). */
export type FormKey = number;

/** The canonical form: batchcast envelopes, no transport compression. The worker's frame as it is. */
export const CANONICAL_FORM: FormKey = 0;
/** Keys are below this (three formats × 16), for arrays indexed by form. */
export const FORM_KEYS = FORMATS.length * 16;
/** zlib cannot deflate with a 256-byte window (it uses 512): clients that allow only 8 bits get uncompressed frames. */
export const MIN_WINDOW_BITS = 9;

/** The form of a connection: `window` is what its permessage-deflate allows (0 when not negotiated). */
export function formKey(format: Format, window: number): FormKey {
  // Seed frames are zlib-compressed in the message itself: never compressed again by the transport.
  const transport = format === 'seed' || window < MIN_WINDOW_BITS ? 0 : window;
  return FORMATS.indexOf(format) * 16 + transport;
}

/** The format of a form. */
export function formatOf(key: FormKey): Format {
  return FORMATS[key >> 4]!;
}

/** The permessage-deflate window of a form: 9..15, or 0 for uncompressed transport. */
export function windowOf(key: FormKey): number {
  return key & 15;
}

/**
 * The window ws negotiated for server-to-client messages, from the parameters it
 * accepted (`server_max_window_bits`, absent: 15); 0 when the extension is off.
 */
export function negotiatedWindow(params: Record<string, unknown> | undefined): number {
  if (params === undefined) return 0;
  const bits = params.server_max_window_bits;
  return typeof bits === 'number' ? bits : 15;
}

/**
 * The window of the extra deflate a batch needs: the smallest window (9 or more) among
 * `forms` that is below the canonical frame's `windowBits`; 0 when none is.
 */
export function smallWindowNeeded(forms: ReadonlyMap<FormKey, number> | null, windowBits: number): number {
  if (forms === null) return 0;
  let smallest = 0;
  for (const key of forms.keys()) {
    const window = key & 15;
    if (window !== 0 && window < windowBits && (smallest === 0 || window < smallest)) smallest = window;
  }
  return smallest;
}

/** Whether any of `forms` is the `seed` format (its zlib frames need the body's Adler-32). */
export function seedNeeded(forms: ReadonlyMap<FormKey, number> | null): boolean {
  if (forms === null) return false;
  for (const key of forms.keys()) if (formatOf(key) === 'seed') return true;
  return false;
}
