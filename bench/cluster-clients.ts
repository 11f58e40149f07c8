/**
 * Cluster bench, the clients (a child process of bench/lib/cluster.ts): `perNode` raw
 * WebSocket clients on each node's `bench` channel. The first client of each node decodes
 * every frame and records publish→receive latency (messages carry their publish time);
 * the others only count frames and bytes.
 */
import { inflateRawSync } from 'node:zlib';
import { decodeFrame } from '../src/protocol/decode.js';
import { openRaw, FrameReader } from './lib/ws-reader.js';
import { epochNow } from './lib/workload.js';

export interface ClusterClientsArgs {
  ports: number[];
  perNode: number;
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
const sockets: import('node:net').Socket[] = [];

for (const [n, port] of args.ports.entries()) {
  for (let c = 0; c < args.perNode; c++) {
    const probe = c === 0;
    const { socket, head } = await openRaw(`ws://127.0.0.1:${port}/?channels=bench`);
    sockets.push(socket);
    const reader = new FrameReader(probe, (_opcode, payload, _peek, length) => {
      if (!measuring) return;
      perNode[n]!.wireBytes += length;
      if (!probe || payload === null) return;
      const frame = decodeFrame(payload, inflate);
      if (frame.kind !== 'batch') return;
      const now = epochNow();
      perNode[n]!.messages += frame.messages.length;
      for (const message of frame.messages) perNode[n]!.latencies.push(now - (message as { t: number }).t);
    });
    if (head.length > 0) reader.push(head);
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
  }
}

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
