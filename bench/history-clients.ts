/**
 * History bench, client side (a child process of bench/lib/history.ts): N raw ws
 * clients on one channel that read only envelope headers (no decoding: the client
 * process must not be the bottleneck). On `disconnect` they drop their connections
 * at once (terminate, like a network loss) and keep their positions; on `reconnect`
 * they all reconnect at once and recover with `since`. The report says how long until
 * every client was live again, and checks nobody saw a gap or got a message twice.
 */
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { KIND_NOTICE, readEnvelopeHeader } from '../src/protocol/envelope.js';

export interface HistoryClientsArgs {
  port: number;
  clients: number;
  channel: string;
}

export type ToHistoryClients = { type: 'disconnect' } | { type: 'reconnect' } | { type: 'stop' };

export interface StormReport {
  type: 'storm';
  clients: number;
  /** From the reconnect until the last client was live again. */
  allLiveMs: number;
  liveP50Ms: number;
  liveP99Ms: number;
  /** Messages each client recovered (median). */
  recoveredPerClient: number;
  gaps: number;
  duplicateMessages: number;
  statuses: Record<string, number>;
}

const args = JSON.parse(process.argv[2]!) as HistoryClientsArgs;
const utf8 = new TextDecoder();

class Follower {
  ws!: WebSocket;
  epoch = '';
  expected = -1;
  subscribed = false;
  /** During a recovery: the live start (`to`), and when it reached it. */
  target = -1;
  since = -1;
  liveAtMs = -1;
  gaps = 0;
  duplicates = 0;
  status = '';

  open(url: string, onOpen?: (ws: WebSocket) => void): void {
    this.ws = new WebSocket(url);
    this.ws.on('error', () => {});
    if (onOpen !== undefined) this.ws.once('open', () => onOpen(this.ws));
    this.ws.on('message', (data: Buffer) => this.#read(data));
  }

  #read(data: Buffer): void {
    const header = readEnvelopeHeader(data);
    if (typeof header === 'string') return;
    if (header.kind === KIND_NOTICE) {
      const notice = JSON.parse(utf8.decode(data.subarray(header.bodyOffset))) as Record<string, unknown>;
      if (notice.op === 'subscribed') {
        const position = (notice.positions as Record<string, { epoch: string; seq: number }>)[args.channel]!;
        this.epoch = position.epoch;
        if (this.expected < 0) this.expected = position.seq;
        this.subscribed = true;
      } else if (notice.op === 'recovery') {
        this.status = String(notice.status);
        this.target = notice.to as number;
        if ((notice.from as number) > this.expected) this.expected = notice.from as number;
        this.#checkLive();
      }
      return;
    }
    if (this.expected >= 0 && header.firstSeq > this.expected) this.gaps++;
    const end = header.firstSeq + header.count;
    if (this.expected >= 0) this.duplicates += Math.max(0, Math.min(end, this.expected) - header.firstSeq);
    this.expected = Math.max(this.expected, end);
    this.#checkLive();
  }

  #checkLive(): void {
    if (this.target >= 0 && this.liveAtMs < 0 && this.expected >= this.target) this.liveAtMs = performance.now();
  }
}

const base = `ws://127.0.0.1:${args.port}/`;
const followers = Array.from({ length: args.clients }, () => new Follower());
for (const follower of followers) follower.open(`${base}?channels=${args.channel}`);
const until = async (predicate: () => boolean, timeoutMs: number) => {
  const deadline = performance.now() + timeoutMs;
  while (!predicate() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  return predicate();
};
await until(() => followers.every((f) => f.subscribed), 60_000);
process.send!({ type: 'ready' });

process.on('message', (message: ToHistoryClients) => {
  if (message.type === 'disconnect') {
    for (const follower of followers) follower.ws.terminate();
    process.send!({ type: 'disconnected', positions: followers.filter((f) => f.expected >= 0).length });
  } else if (message.type === 'reconnect') {
    void (async () => {
      const started = performance.now();
      for (const follower of followers) {
        follower.since = follower.expected;
        follower.target = -1;
        follower.liveAtMs = -1;
        follower.open(base, (ws) => ws.send(JSON.stringify({ op: 'subscribe', channels: [args.channel], since: { [args.channel]: { epoch: follower.epoch, seq: follower.since } } })));
      }
      await until(() => followers.every((f) => f.liveAtMs >= 0), 120_000);
      const live = followers.map((f) => (f.liveAtMs < 0 ? Number.POSITIVE_INFINITY : f.liveAtMs - started)).sort((a, b) => a - b);
      const recovered = followers.map((f) => f.target - f.since).sort((a, b) => a - b);
      const statuses: Record<string, number> = {};
      for (const f of followers) statuses[f.status] = (statuses[f.status] ?? 0) + 1;
      const report: StormReport = {
        type: 'storm', clients: followers.length, allLiveMs: live.at(-1)!, liveP50Ms: live[Math.floor(live.length / 2)]!,
        liveP99Ms: live[Math.min(live.length - 1, Math.floor(live.length * 0.99))]!, recoveredPerClient: recovered[Math.floor(recovered.length / 2)]!,
        gaps: followers.reduce((sum, f) => sum + f.gaps, 0), duplicateMessages: followers.reduce((sum, f) => sum + f.duplicates, 0), statuses,
      };
      process.send!(report);
    })();
  } else if (message.type === 'stop') {
    for (const follower of followers) follower.ws.terminate();
    process.exit(0);
  }
});
