/**
 * Cluster bench, the clients (a child process of bench/lib/cluster.ts): `perNode` raw
 * WebSocket clients on each node's `bench` channel (batchcast) or room (Socket.IO, its
 * engine.io protocol spoken by hand: connect the namespace, answer pings). The first
 * client of each node decodes every frame and records publish→receive latency (messages
 * carry their publish time); the others only count frames and bytes.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { inflateRawSync } from 'node:zlib';
import { decodeFrame } from '../src/protocol/decode.js';
import { openRaw, FrameReader } from './lib/ws-reader.js';
import { epochNow } from './lib/workload.js';

export interface ClusterClientsArgs {
  ports: number[];
  perNode: number;
  protocol: 'batchcast' | 'socketio';
}

export type ToClusterClients = { type: 'measure-start' } | { type: 'measure-stop' } | { type: 'stop' };

export interface ClientsMeasure {
  type: 'measure';
  /** Per node: the probe's messages and latency percentiles, and wire bytes over all its clients. */
  nodes: { messages: number; latP50Ms: number; latP99Ms: number; wireBytes: number }[];
}

const args = JSON.parse(process.argv[2]!) as ClusterClientsArgs;
const inflate = (body: Uint8Array, max: number) => inflateRawSync(body, { maxOutputLength: max });
let measuring = false;
const perNode = args.ports.map(() => ({ messages: 0, latencies: [] as number[], wireBytes: 0 }));
const sockets: Socket[] = [];

/** A masked client text frame (RFC 6455: clients mask). */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, payload]);
}

/** Records one batch of messages for node `n` (the probe only). */
function record(n: number, messages: unknown[]): void {
  const now = epochNow();
  perNode[n]!.messages += messages.length;
  for (const message of messages) perNode[n]!.latencies.push(now - (message as { t: number }).t);
}

function onBatchcast(n: number, probe: boolean, payload: Buffer | null): void {
  if (!probe || payload === null) return;
  const frame = decodeFrame(payload, inflate);
  if (frame.kind === 'batch') record(n, frame.messages);
}

/** engine.io over a raw socket: '0' open → connect the namespace ('40'); '2' ping → '3'; '42[…]' an event. */
function onSocketIo(socket: Socket, n: number, probe: boolean, payload: Buffer | null, peek: Buffer): void {
  const type = peek[0];
  if (type === 0x30 /* 0: open */) socket.write(textFrame('40'));
  else if (type === 0x32 /* 2: ping */) socket.write(textFrame('3'));
  else if (probe && payload !== null && payload[0] === 0x34 && payload[1] === 0x32 /* 42: event */) {
    const [, messages] = JSON.parse(payload.toString('utf8', 2)) as [string, unknown[]];
    record(n, messages);
  }
}

for (const [n, port] of args.ports.entries()) {
  for (let c = 0; c < args.perNode; c++) {
    const probe = c === 0;
    const url = args.protocol === 'batchcast' ? `ws://127.0.0.1:${port}/?channels=bench` : `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`;
    const { socket, head } = await openRaw(url);
    sockets.push(socket);
    const reader = new FrameReader(probe, (_opcode, payload, peek, length) => {
      if (args.protocol === 'socketio') onSocketIo(socket, n, probe && measuring, payload, peek);
      if (!measuring) return;
      perNode[n]!.wireBytes += length;
      if (args.protocol === 'batchcast') onBatchcast(n, probe, payload);
    });
    if (head.length > 0) reader.push(head);
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
  }
}
// Socket.IO clients join the room on connection; give the namespace connects a moment.
await new Promise((resolve) => setTimeout(resolve, 300));

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
};

process.on('message', (message: ToClusterClients) => {
  if (message.type === 'measure-start') {
    for (const node of perNode) Object.assign(node, { messages: 0, latencies: [], wireBytes: 0 });
    measuring = true;
  } else if (message.type === 'measure-stop') {
    measuring = false;
    const measure: ClientsMeasure = {
      type: 'measure',
      nodes: perNode.map((node) => ({ messages: node.messages, latP50Ms: percentile(node.latencies, 0.5), latP99Ms: percentile(node.latencies, 0.99), wireBytes: node.wireBytes })),
    };
    process.send!(measure);
  } else if (message.type === 'stop') {
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  }
});
process.send!({ type: 'ready' });
