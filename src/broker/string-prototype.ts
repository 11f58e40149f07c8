/**
 * Undoes a V8 slowdown that loading ioredis causes in the whole process. ioredis defines
 * `class VerbatimString extends String` (its RESP3 decoder), and V8 turns the prototype of
 * a new subclass's parent, here `String.prototype`, into a dictionary-mode object. Optimized
 * code can then no longer inline string methods such as `charCodeAt`: msgpackr's packer,
 * which writes short strings with a `charCodeAt` loop, packed a batch of trades 2-3× slower
 * (BENCHMARKS.md, *Why goal 1 is not met*, "Cause, found"). A load through a `String` wrapper object,
 * once its inline cache has feedback, makes V8 turn the prototype back into a fast one.
 */

/** Property loads through a String wrapper: enough for V8 to allocate feedback and re-optimize the prototype. */
const LOADS = 1_000;

/** Makes `String.prototype` a fast-mode object again (see the module comment). */
export function restoreFastStringPrototype(): void {
  const wrapper = new String('');
  let found = 0;
  for (let i = 0; i < LOADS; i++) if (loadCharCodeAt(wrapper) !== undefined) found++;
  if (found !== LOADS) throw new Error('String.prototype.charCodeAt is missing');
}

function loadCharCodeAt(value: { readonly charCodeAt: unknown }): unknown {
  return value.charCodeAt;
}
