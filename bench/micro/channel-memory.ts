/**
 * What per-channel state costs in memory (README, "Limits"): heap bytes per live
 * channel (a ChannelState with one subscriber-less entry) and per idle channel (only
 * its sequence counter kept), for names like `ephemeral.user-123456`.
 *
 *   node --expose-gc dist/bench/micro/channel-memory.js [--channels=200000]
 */
import { ChannelTable } from '../../src/channels.js';

const count = Number(/--channels=(\d+)/.exec(process.argv.join(' '))?.[1] ?? 200_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

function heap(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

// The names exist in both cases (they are the application's strings): build them first, and measure them.
const empty = heap();
const names = Array.from({ length: count }, (_, i) => `ephemeral.user-${String(i).padStart(6, '0')}`);
const table = new ChannelTable();
const before = heap();
const perName = (before - empty) / count - 8; // less the array slot
const states = names.map((name) => table.open(name));
const live = heap();
for (const state of states) {
  state.nextSeq = 1 + (state.name.length % 7); // published once: worth remembering
  table.dropIfIdle(state);
}
states.length = 0;
const idle = heap();
console.log(`channels: ${count} (names like "${names[0]}", ${names[0]!.length} characters)`);
console.log(`live ChannelState: ${((live - before) / count).toFixed(0)} bytes per channel`);
console.log(`idle (sequence counter only): ${((idle - before) / count).toFixed(0)} bytes per channel, plus the name the table keeps (${perName.toFixed(0)} bytes each here)`);
console.log(`live channels now: ${table.size}, idle counters: ${table.idleCounters}`);
