/**
 * The Redis side of a batchcast cluster (ioredis): one connection for commands, one for
 * subscriptions. It publishes finished frames with the publish script (keys.ts), keeps
 * the node subscribed to the channels it has local subscribers for, reads history back
 * from the streams, and bounds what waits for Redis when Redis is slow or gone.
 *
 * ioredis reconnects by itself and re-subscribes; while it is down, publishes wait in
 * its offline queue, up to `maxPending` batches; past that a publish is refused at once
 * (the caller counts the batch as dropped and the next publish of its channel carries
 * the count, so every node's subscribers see the gap).
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { BrokerError } from '../errors.js';
import type { DeflateInfo } from '../encode/task.js';
import { restoreFastStringPrototype } from './string-prototype.js';
import { channelKeys, channelOfFramesKey, deflateToken, parseDeflateToken, POSITION_SCRIPT, publishScript } from './keys.js';

let loaded: typeof import('ioredis') | undefined;

/**
 * ioredis, loaded when the first broker is made, not when batchcast is imported. Loading it
 * turns `String.prototype` into a slow (dictionary-mode) object, which made msgpackr's
 * records packing on the main thread (every batch's hand-off) 2-3× slower; right after
 * loading it, {@link restoreFastStringPrototype} undoes that (string-prototype.ts).
 */
function ioredis(): typeof import('ioredis') {
  if (loaded === undefined) {
    loaded = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    restoreFastStringPrototype();
  }
  return loaded;
}

export interface RedisBrokerOptions {
  /**
   * A redis:// URL (with `cluster`: comma-separated seed URLs), or an ioredis client or
   * Cluster to take settings from (duplicated, not used directly; a Cluster means cluster mode).
   */
  redis: string | Redis | Cluster;
  /** Redis Cluster: sharded pub/sub, keys spread by the channel's hash tag. */
  cluster: boolean;
  prefix: string;
  maxPending: number;
  streamLength: number;
  keyTtlMs: number;
  connectTimeoutMs: number;
}

/** A frame as it came from Redis (seq not stamped yet). */
export interface BrokerFrame {
  channel: string;
  epoch: string;
  firstSeq: number;
  count: number;
  /** The complete WebSocket frame; the envelope's seq field is still 0. */
  frame: Buffer;
  deflate: DeflateInfo | null;
}

/** A frame read back from a stream (seq not stamped yet). */
export interface StreamFrame {
  firstSeq: number;
  count: number;
  frame: Buffer;
  deflate: DeflateInfo | null;
}

export interface BrokerCounters {
  published: number;
  refused: number;
  received: number;
  /** Messages on our pub/sub channels that were not batchcast frames (dropped). */
  malformed: number;
  reconnects: number;
}

type Client = Redis | Cluster;
type Scripted = Client & {
  bcPublish(
    e: string, n: string, s: string, f: string, epoch: string, ttl: number, count: number, dropped: number, frame: Buffer, maxLen: number, deflate: string,
  ): Promise<[string, string]>;
  bcPosition(e: string, n: string, s: string, epoch: string, ttl: number): Promise<[string, string]>;
};

/** Talks to Redis for one node. Emits `frame` (BrokerFrame), `down` and `up` (after a reconnect). */
export class RedisBroker extends EventEmitter<{ frame: [BrokerFrame]; down: [BrokerError]; up: [] }> {
  readonly counters: BrokerCounters = { published: 0, refused: 0, received: 0, malformed: 0, reconnects: 0 };
  /** Resolves once both connections are up; rejects with BrokerError after `connectTimeoutMs`. */
  readonly ready: Promise<void>;
  readonly #options: RedisBrokerOptions;
  readonly #cmd: Scripted;
  readonly #sub: Client;
  readonly #sharded: boolean;
  /** Channel → local reasons to stay subscribed. */
  readonly #subscribed = new Map<string, number>();
  #pending = 0;
  #wasReady = false;
  /** Lost after having been up, and not back yet. */
  #down = false;
  /** The last connection error, to name in a failed start. */
  #lastError: Error | null = null;
  #closed = false;

  constructor(options: RedisBrokerOptions) {
    super();
    this.#options = options;
    const settings: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: null, enableAutoPipelining: false };
    const { Cluster, Redis } = ioredis();
    this.#sharded = options.cluster || options.redis instanceof Cluster;
    if (this.#sharded) {
      const seeds = typeof options.redis === 'string' ? options.redis.split(',').map((url) => url.trim()) : null;
      const make = (shardedSubscribers: boolean): Cluster => (seeds === null
        ? (options.redis as Cluster).duplicate(undefined, { lazyConnect: true, shardedSubscribers, redisOptions: settings })
        : new Cluster(seeds, { lazyConnect: true, shardedSubscribers, redisOptions: settings }));
      this.#cmd = make(false) as Scripted;
      this.#sub = make(true);
    } else {
      const cmd = typeof options.redis === 'string' ? new Redis(options.redis, settings) : (options.redis as Redis).duplicate(settings);
      this.#cmd = cmd as Scripted;
      this.#sub = cmd.duplicate(settings);
    }
    // Reported through 'down', and through `ready` at start.
    for (const client of [this.#cmd, this.#sub]) client.on('error', (error: Error) => (this.#lastError = error));
    this.#cmd.defineCommand('bcPublish', { numberOfKeys: 4, lua: publishScript(this.#sharded) });
    this.#cmd.defineCommand('bcPosition', { numberOfKeys: 3, lua: POSITION_SCRIPT });
    this.#sub.on(this.#sharded ? 'smessageBuffer' : 'messageBuffer', (key: Buffer, message: Buffer) => this.#onMessage(key, message));
    this.#cmd.on('close', () => {
      if (!this.#wasReady || this.#closed || this.#down) return;
      this.#down = true;
      this.emit('down', new BrokerError(`connection to Redis lost (${this.#describe()})`));
    });
    // Back once the subscriber is: ioredis has re-subscribed by then.
    this.#sub.on('ready', () => {
      if (!this.#down || this.#closed) return;
      this.#down = false;
      this.counters.reconnects++;
      this.emit('up');
    });
    this.ready = this.#connect();
    this.ready.catch(() => {});
  }

  /** Batches sent to Redis and not yet answered. */
  get pending(): number {
    return this.#pending;
  }

  /** How long a start, or a subscription while Redis is away, may wait for Redis. */
  get timeoutMs(): number {
    return this.#options.connectTimeoutMs;
  }

  /** Whether the command connection is up. */
  get connected(): boolean {
    return this.#cmd.status === 'ready';
  }

  /**
   * Publishes one batch; resolves with its epoch and first seq. Rejects at once with
   * BrokerError when `maxPending` batches already wait for Redis.
   */
  async publish(channel: string, count: number, dropped: number, frame: Buffer, deflate: DeflateInfo | null): Promise<{ epoch: string; firstSeq: number }> {
    if (this.#pending >= this.#options.maxPending) {
      this.counters.refused++;
      throw new BrokerError(`${this.#pending} batches already wait for Redis (maxPending ${this.#options.maxPending})`);
    }
    const [e, n, s, f] = channelKeys(this.#options.prefix, channel);
    this.#pending++;
    try {
      const [epoch, first] = await this.#cmd.bcPublish(
        e, n, s, f, newEpoch(), this.#options.keyTtlMs, count, dropped, frame, this.#options.streamLength, deflateToken(deflate),
      );
      this.counters.published++;
      return { epoch, firstSeq: Number(first) };
    } finally {
      this.#pending--;
    }
  }

  /** The channel's position in Redis (its epoch is made if it has none). */
  async position(channel: string): Promise<{ epoch: string; nextSeq: number }> {
    const [e, n, s] = channelKeys(this.#options.prefix, channel);
    const [epoch, next] = await this.#cmd.bcPosition(e, n, s, newEpoch(), this.#options.keyTtlMs);
    return { epoch, nextSeq: Number(next) };
  }

  /** Subscribes to the channel's frames (counted: call unsubscribe as often); resolves once Redis confirmed. */
  async subscribe(channel: string): Promise<void> {
    const holders = this.#subscribed.get(channel) ?? 0;
    this.#subscribed.set(channel, holders + 1);
    if (holders === 0) {
      const key = channelKeys(this.#options.prefix, channel)[3];
      await (this.#sharded ? this.#sub.ssubscribe(key) : this.#sub.subscribe(key));
      // Released while Redis was answering: undo, or the subscription would outlive every holder.
      if (!this.#subscribed.has(channel)) await (this.#sharded ? this.#sub.sunsubscribe(key) : this.#sub.unsubscribe(key)).catch(() => {});
    }
  }

  /** Releases one subscription; unsubscribes from Redis when the last one goes. */
  unsubscribe(channel: string): void {
    const holders = this.#subscribed.get(channel) ?? 0;
    if (holders <= 1) {
      this.#subscribed.delete(channel);
      const key = channelKeys(this.#options.prefix, channel)[3];
      if (holders === 1) (this.#sharded ? this.#sub.sunsubscribe(key) : this.#sub.unsubscribe(key)).catch(() => {});
    } else this.#subscribed.set(channel, holders - 1);
  }

  /** Channels this node is subscribed to in Redis. */
  get channels(): IterableIterator<string> {
    return this.#subscribed.keys();
  }

  /**
   * Reads the stream: the frames holding sequence numbers `from`..`to − 1` (the first may
   * start before `from`), oldest first, at most `limit`. Seqs are not stamped.
   */
  async read(channel: string, from: number, to: number, limit = 100_000): Promise<StreamFrame[]> {
    if (to <= from) return [];
    const stream = channelKeys(this.#options.prefix, channel)[2];
    // The entry holding `from` may start before it: the last entry with an id at or below it.
    const before = await this.#cmd.xrevrangeBuffer(stream, `${from}-1`, '-', 'COUNT', 1);
    const start = before.length > 0 ? before[0]![0].toString() : '0-1';
    const entries = await this.#cmd.xrangeBuffer(stream, start, `${to - 1}-1`, 'COUNT', limit);
    return entries.map(([id, fields]) => {
      const record: Record<string, Buffer> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!.toString()] = fields[i + 1]!;
      const deflate = parseDeflateToken(record.d?.toString() ?? '');
      return { firstSeq: Number(id.toString().split('-')[0]), count: Number(record.c!.toString()), frame: record.f!, deflate: deflate ?? null };
    }).filter((entry) => entry.firstSeq + entry.count > from);
  }

  /**
   * Closes both connections: politely (QUIT) when Redis is there, at once when it is not
   * (a QUIT would wait for a reconnect that may never come). Publishes still waiting fail.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const polite = (client: Client) => (client.status === 'ready' ? client.quit().then(() => undefined, () => undefined) : Promise.resolve());
    await Promise.race([Promise.all([polite(this.#cmd), polite(this.#sub)]), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
    this.#cmd.disconnect();
    this.#sub.disconnect();
  }

  async #connect(): Promise<void> {
    const timeout = this.#options.connectTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new BrokerError(`cannot reach Redis at ${this.#describe()} within ${timeout} ms`)), timeout);
    });
    try {
      await Promise.race([Promise.all([this.#cmd.connect(), this.#sub.connect()]), deadline]);
      this.#wasReady = true;
    } catch (error) {
      this.#cmd.disconnect();
      this.#sub.disconnect();
      if (error instanceof BrokerError) throw error;
      const cause = this.#lastError ?? (error as Error);
      throw new BrokerError(`cannot reach Redis at ${this.#describe()}: ${cause.message}`, { cause });
    } finally {
      clearTimeout(timer);
    }
  }

  #onMessage(key: Buffer, message: Buffer): void {
    const channel = channelOfFramesKey(this.#options.prefix, key.toString());
    if (channel === null) return;
    // `<epoch>:<firstSeq>:<count>:<deflate token>:<frame>`
    const a = message.indexOf(0x3a);
    const b = message.indexOf(0x3a, a + 1);
    const c = message.indexOf(0x3a, b + 1);
    const d = c < 0 ? -1 : message.indexOf(0x3a, c + 1);
    const epoch = a > 0 ? message.toString('latin1', 0, a) : '';
    const firstSeq = b > a + 1 ? Number(message.toString('latin1', a + 1, b)) : Number.NaN;
    const count = c > b + 1 ? Number(message.toString('latin1', b + 1, c)) : Number.NaN;
    const deflate = d > c ? parseDeflateToken(message.toString('latin1', c + 1, d)) : undefined;
    // Someone else publishing on our key names (a prefix shared by mistake) must not break a channel: drop what is not ours.
    if (epoch === '' || !Number.isSafeInteger(firstSeq) || firstSeq < 0 || !Number.isSafeInteger(count) || count < 1 || deflate === undefined || d + 1 >= message.length) {
      this.counters.malformed++;
      return;
    }
    this.counters.received++;
    this.emit('frame', { channel, epoch, firstSeq, count, frame: message.subarray(d + 1), deflate });
  }

  #describe(): string {
    if (this.#sharded) return `cluster ${typeof this.#options.redis === 'string' ? this.#options.redis : '(from the given client)'}`;
    const { host, port } = (this.#cmd as Redis).options;
    return `${host ?? '127.0.0.1'}:${port ?? 6379}`;
  }
}

/** A fresh epoch, used only if Redis has none for the channel. */
function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}
