// Reads `perf script` output of one thread (a bench server's main thread, sampled with
// `perf record -e cpu-clock -F <hz> -g -t <pid>` and node's --perf-basic-prof) and splits
// its samples into the steps of a broadcast: each sample goes to the first category whose
// pattern matches any frame of its stack, in the order below (so a socket write made from a
// worker's reply counts as a write, not as the reply). Prints ms and µs per message.
//
// Run (see BENCHMARKS.md, *Why goal 1 is not met*):
//   perf script -i s.data > s.txt
//   node dist/bench/micro/perf-categories.js s.txt --hz=4000 --messages=100000
import { readFileSync } from 'node:fs';
import { argNum, f1, f2, table } from './format.js';

const CATEGORIES: [string, RegExp][] = [
  ['garbage collection', /Heap::|Scaveng|MarkCompact|GarbageCollect|ConcurrentMarking|IncrementalMarking|MinorGC|Sweeper/],
  ['JIT compilation', /Compile|Optimiz|Deoptimiz|BaselineBatch/],
  ['socket writes (kernel TCP included)', /StreamBase::Write|writeOrBuffer|DoTryWrite|writev|tcp_sendmsg/],
  ['JSON.stringify', /JsonStringif/],
  ['zlib: call and completion', /zlib|Zlib|processChunk/],
  ['msgpackr records pack', /msgpackr/],
  ['worker reply received (MessagePort)', /MessagePort::OnMessage/],
  ['hand-off: task, post, pool', /postMessage|PostMessage|mailbox\.js|pool\.js|handoff\.js|dispatch\.js|task\.js/],
  ['publish()', /broadcaster\.js|batcher\.js|channels\.js|publish\/check/],
  ['producer (the bench)', /server-proc\.js|workload\.js|lib\/servers\.js/],
  ['scheduler, epoll, futex', /schedule|epoll|futex|uv__io_poll/],
  ['timers, event loop', /uv_run|processTimers|listOnTimeout/],
];

const file = process.argv[2];
if (file === undefined || file.startsWith('--')) throw new Error('usage: perf-categories.js <perf script output> [--hz=4000] [--messages=N]');
const sampleUs = 1e6 / argNum('hz', 4000);
const messagesArg = process.argv.find((a) => a.startsWith('--messages='));
const messages = messagesArg === undefined ? 0 : argNum('messages', 1);

const counts = new Map<string, number>();
let total = 0;
for (const sample of readFileSync(file, 'utf8').split(/\n\s*\n/)) {
  if (sample.trim() === '') continue;
  total++;
  const name = CATEGORIES.find(([, pattern]) => pattern.test(sample))?.[0] ?? 'other';
  counts.set(name, (counts.get(name) ?? 0) + 1);
}
const rows = [...CATEGORIES.map(([name]) => name), 'other'].map((name) => {
  const n = counts.get(name) ?? 0;
  return [name, String(n), f1((100 * n) / total) + '%', f1((n * sampleUs) / 1000), messages ? f2((n * sampleUs) / messages) : '-'];
});
rows.push(['all', String(total), '100%', f1((total * sampleUs) / 1000), messages ? f2((total * sampleUs) / messages) : '-']);
console.log(table(['step', 'samples', 'share', 'ms', 'µs/msg'], rows));
