/**
 * Cluster bench, the Socket.IO side (a child process of bench/lib/cluster.ts): what an
 * application would run instead of a batchcast cluster: Socket.IO with its Redis adapter
 * (`@socket.io/redis-adapter`, ioredis), the same trade messages batched the same way
 * (arrays of up to 500 every 20 ms, one `emit` per batch to the room). Every node
 * serializes each batch for its own sockets; the adapter carries the packet between nodes.
 * Same IPC and measurements as cluster-node.ts.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { answerMeasurements } from './lib/node-measure.js';
import { epochNow, makeWorkload } from './lib/workload.js';

export interface SocketIoNodeArgs {
  redis: string;
  prefix: string;
  rate: number;
  batchSize: number;
  batchDelayMs: number;
}

const args = JSON.parse(process.argv[2]!) as SocketIoNodeArgs;
const http = createServer();
const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false });
const pub = new Redis(args.redis);
const sub = pub.duplicate();
io.adapter(createAdapter(pub, sub, { key: args.prefix }));
let framesSent = 0;
io.on('connection', (socket) => {
  void socket.join('bench');
});
await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));

const workload = makeWorkload('trade');
let published = 0;
let carry = 0;
let batch: unknown[] = [];
let batchTimer: NodeJS.Timeout | null = null;
const TICK_MS = 5;
const send = () => {
  if (batchTimer !== null) clearTimeout(batchTimer);
  batchTimer = null;
  if (batch.length === 0) return;
  io.to('bench').emit('batch', batch);
  framesSent += io.sockets.adapter.rooms.get('bench')?.size ?? 0;
  batch = [];
};
const feed = args.rate === 0 ? null : setInterval(() => {
  carry += (args.rate * TICK_MS) / 1000;
  const count = Math.floor(carry);
  carry -= count;
  const t = epochNow();
  for (let i = 0; i < count; i++) {
    batch.push(workload.object(published++, t));
    if (batch.length === 1) batchTimer = setTimeout(send, args.batchDelayMs);
    if (batch.length >= args.batchSize) send();
  }
}, TICK_MS);

answerMeasurements(() => ({ published, framesSent }), async () => {
  if (feed !== null) clearInterval(feed);
  await io.close();
  pub.disconnect();
  sub.disconnect();
});
process.send!({ type: 'ready', port: (http.address() as AddressInfo).port });
