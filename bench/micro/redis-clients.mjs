// Measures the two maintained Redis clients on what a batchcast node does per batch:
// one EVALSHA (INCRBY + XADD + PUBLISH of a ~7 KB binary frame), and receiving that
// frame on a subscriber connection. Main-thread CPU per operation and throughput.
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
const require = createRequire(import.meta.url);
const SCRIPT = `
local first = redis.call('INCRBY', KEYS[1], ARGV[1]) - ARGV[1]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000', '*', 'f', ARGV[2])
redis.call('PUBLISH', KEYS[3], ARGV[2])
return first`;
const N = Number(process.env.N ?? 20000);
const frame = randomBytes(7000);
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };

async function run(name, { connect, evalsha, load, subscribe, quit }) {
  const pub = await connect();
  const sub = await connect();
  const sha = await load(pub, SCRIPT);
  let received = 0;
  let done;
  const all = new Promise((r) => (done = r));
  await subscribe(sub, `bench:${name}`, () => { if (++received === N) done(); });
  for (const inflight of [1, 32]) {
    received = 0;
    const allReceived = new Promise((r) => (done = r));
    const c0 = cpu(); const t0 = performance.now();
    let sent = 0;
    async function worker() { while (sent < N) { sent++; await evalsha(pub, sha, [`bench:${name}:seq`, `bench:${name}:stream`, `bench:${name}`], ['3', frame]); } }
    await Promise.all(Array.from({ length: inflight }, worker));
    await allReceived;
    const ms = performance.now() - t0; const us = cpu() - c0;
    console.log(`${name.padEnd(14)} in flight ${String(inflight).padStart(2)}: ${(N / ms * 1000).toFixed(0).padStart(6)} scripts/s, main-thread CPU ${(us / N).toFixed(1)} µs per script + receive`);
  }
  await quit(pub); await quit(sub);
  void all;
}

const Redis = require('ioredis').default ?? require('ioredis');
await run('ioredis', {
  connect: async () => new Redis({ host: '127.0.0.1', port: 6379 }),
  load: (c, s) => c.script('LOAD', s),
  evalsha: (c, sha, keys, args) => c.evalsha(sha, keys.length, ...keys, ...args),
  subscribe: async (c, ch, cb) => { await c.subscribe(ch); c.on('messageBuffer', (_ch, msg) => cb(msg)); },
  quit: (c) => c.quit(),
});
const { createClient } = require('@redis/client');
await run('node-redis', {
  connect: async () => { const c = createClient({ socket: { host: '127.0.0.1', port: 6379 } }); await c.connect(); return c; },
  load: (c, s) => c.scriptLoad(s),
  evalsha: (c, sha, keys, args) => c.evalSha(sha, { keys, arguments: args }),
  subscribe: (c, ch, cb) => c.subscribe(ch, (msg) => cb(msg), true),
  quit: (c) => c.quit(),
});
