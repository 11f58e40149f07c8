/**
 * batchcast client for Node and browsers: connects, subscribes, decodes frames
 * (compressed or not, JSON or msgpack, and legacy JSON text frames), and reconnects
 * with backoff. It keeps its position on every channel (positions.ts): on each
 * reconnect it asks for what it missed, drops what it already has, and reports every
 * gap with its reason, so across reconnects messages arrive once and in order as long
 * as the server's history covers the outage.
 *
 * Nothing a server sends and nothing a listener throws stops it: a frame that does
 * not decode becomes an `error` event (a ProtocolError) and the connection carries
 * on; a listener that throws is reported (`error` with a CallbackError, and
 * `stats.listenerErrors`) while the other listeners and the rest of the batch still run.
 */
import { CallbackError, ProtocolError } from '../errors.js';
import { DEFAULT_MAX_BODY_BYTES, decodeFrame, type DecodedFrame, type Inflate } from '../protocol/decode.js';
import { checkChannels, checkPosition, checkUrl, controlMessages, urlChannels } from './control.js';
import { Emitter } from './emitter.js';
import { Positions, type Gap, type Position, type Recovered } from './positions.js';
import { FAILING_INFLATE, isCompressedEnvelope, isNode, nodeWebSocket, type MinimalWebSocket, type WebSocketConstructor } from './transport.js';

export type { Gap, GapReason, Position, Recovered } from './positions.js';

/** One delivered message. `seq` is its per-channel sequence number (`null` for legacy text frames). */
export interface ClientMessage {
  channel: string;
  seq: number | null;
  data: unknown;
}

export interface ReconnectOptions {
  /** First delay in ms (default 250). */
  initialDelayMs?: number;
  /** Longest delay in ms (default 10 000). */
  maxDelayMs?: number;
  /** Growth per failed attempt (default 2). */
  factor?: number;
}

/** Options of {@link connect}. */
export interface ClientOptions {
  /** Channels to subscribe to on every connect. */
  channels?: string[];
  /** Positions to recover from, by channel (e.g. `client.positions` stored before a page reload); implies subscribing. */
  since?: Record<string, Position>;
  /** Reconnect with exponential backoff and jitter (default true). */
  reconnect?: boolean | ReconnectOptions;
  /** WebSocket implementation (default: `ws` in Node, the global one in browsers). */
  WebSocket?: WebSocketConstructor;
  /** Raw DEFLATE inflater (default: node:zlib in Node; in browsers pako, loaded on the first envelope-compressed frame). */
  inflate?: Inflate;
  /** Largest body a frame may inflate to; bigger frames are refused with an `error` event (default 256 MiB). */
  maxBodyBytes?: number;
}

export interface ClientEvents extends Record<string, unknown[]> {
  open: [];
  close: [{ code: number; reason: string; willReconnect: boolean }];
  message: [ClientMessage];
  /** A whole decoded batch, before its messages are emitted one by one. */
  batch: [Extract<DecodedFrame, { kind: 'batch' }>];
  /** Messages this client will not get, and why (`dropped`, `evicted`, `epoch`). */
  gap: [Gap];
  /** A recovery completed: what was missed has been delivered (less any gap reported). */
  recovered: [Recovered];
  notice: [Record<string, unknown>];
  error: [Error];
}

const OPEN = 1;

/** Counters kept by the client, e.g. for `batchcast tail`. */
export interface ClientStats {
  messages: number;
  frames: number;
  /** Envelope bytes received (WebSocket payloads). */
  wireBytes: number;
  /** Body bytes after inflating. */
  rawBytes: number;
  gaps: number;
  missed: number;
  reconnects: number;
  /** Recoveries completed, and the messages they delivered. */
  recoveries: number;
  recovered: number;
  /** Messages dropped because they had been delivered already (replayed whole batches). */
  duplicates: number;
  /** Listeners that threw or rejected (each also reported as an `error` event when one is listened to). */
  listenerErrors: number;
}

/** A channel to subscribe to, optionally from a stored position. */
export type Subscription = string | { channel: string; since?: Position };

/** A batchcast connection; create with {@link connect}. */
export class BatchcastClient extends Emitter<ClientEvents> {
  readonly url: string;
  readonly stats: ClientStats = {
    messages: 0, frames: 0, wireBytes: 0, rawBytes: 0, gaps: 0, missed: 0, reconnects: 0, recoveries: 0, recovered: 0, duplicates: 0, listenerErrors: 0,
  };
  readonly #channels: Set<string>;
  readonly #reconnect: Required<ReconnectOptions> | null;
  readonly #positions = new Positions();
  #socket: MinimalWebSocket | null = null;
  #WebSocket: WebSocketConstructor | undefined;
  #inflate: Inflate | undefined;
  /** Frames received while the inflater loads (see #loadInflater); null otherwise. */
  #waiting: unknown[] | null = null;
  readonly #maxBodyBytes: number;
  /** The channels named in the URL of the current socket: what the server subscribed at upgrade. */
  #urlChannels: Set<string> = new Set();
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;

  /**
   * Throws {@link InvalidConfigError} at once for a URL that is not ws://, wss://, http://
   * or https://, and `InvalidChannelError` for a channel name that is not valid.
   */
  constructor(url: string, options: ClientOptions = {}) {
    super();
    checkUrl(url);
    const since = options.since ?? {};
    checkChannels([...(options.channels ?? []), ...Object.keys(since)]);
    this.url = url;
    this.#channels = new Set([...(options.channels ?? []), ...Object.keys(since)]);
    for (const [channel, position] of Object.entries(since)) this.#positions.set(channel, checkPosition(channel, position));
    const reconnect = options.reconnect ?? true;
    this.#reconnect = reconnect === false ? null : {
      initialDelayMs: 250, maxDelayMs: 10_000, factor: 2, ...(reconnect === true ? {} : reconnect),
    };
    this.#WebSocket = options.WebSocket;
    this.#inflate = options.inflate;
    this.#maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    void this.#open();
  }

  /** Channels this client asks for on every connect. */
  get channels(): ReadonlySet<string> {
    return this.#channels;
  }

  /** Whether the socket is open now. */
  get connected(): boolean {
    return this.#socket?.readyState === OPEN;
  }

  /** The position on every channel whose epoch is known: store it to recover after a page reload (`since`). */
  get positions(): Record<string, Position> {
    return this.#positions.snapshot();
  }

  /**
   * Subscribes to more channels (now if connected, and on every reconnect), each a name
   * or `{ channel, since }` to recover from a stored position. Throws
   * `InvalidChannelError` for an invalid name (a `,` included) and `InvalidConfigError`
   * for a malformed position, before sending anything.
   */
  subscribe(...subscriptions: Subscription[]): void {
    const channels = subscriptions.map((entry) => (typeof entry === 'string' ? entry : entry?.channel));
    checkChannels(channels);
    const positions = subscriptions.map((entry, i) => (typeof entry === 'object' && entry.since !== undefined ? checkPosition(channels[i]!, entry.since) : undefined));
    channels.forEach((channel, i) => {
      this.#channels.add(channel);
      if (positions[i] !== undefined) this.#positions.set(channel, positions[i]);
    });
    this.#send('subscribe', channels);
  }

  /** Unsubscribes from channels (and forgets their positions). Throws `InvalidChannelError` like {@link subscribe}. */
  unsubscribe(...channels: string[]): void {
    checkChannels(channels);
    for (const channel of channels) {
      this.#channels.delete(channel);
      this.#positions.delete(channel);
    }
    this.#send('unsubscribe', channels);
  }

  /** Closes the connection for good (no reconnect). */
  close(code = 1000, reason = ''): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#socket?.close(code, reason);
  }

  /** Sends `op` for `channels` if connected, in as many control messages as the limits need. */
  #send(op: 'subscribe' | 'unsubscribe', channels: readonly string[]): void {
    const socket = this.#socket;
    if (socket?.readyState !== OPEN) return;
    for (const message of controlMessages(op, channels, (channel) => this.#positions.get(channel))) socket.send(message);
  }

  protected override onListenerError(event: keyof ClientEvents, error: unknown): void {
    this.stats.listenerErrors++;
    // An 'error' listener that throws is only counted: reporting it to itself would loop.
    if (event !== 'error') this.emit('error', new CallbackError(`${String(event)} listener`, error));
  }

  async #open(): Promise<void> {
    try {
      this.#WebSocket ??= isNode ? await nodeWebSocket() : (globalThis as unknown as { WebSocket: WebSocketConstructor }).WebSocket;
      if (this.#inflate === undefined && isNode) {
        const zlib = await import('node:zlib');
        this.#inflate = (body, maxBytes) => zlib.inflateRawSync(body, { maxOutputLength: maxBytes });
      }
    } catch (error) {
      this.emit('error', error as Error);
      return;
    }
    if (this.#closed) return;
    let socket: MinimalWebSocket;
    try {
      // Channels with a position are asked for in a control message carrying it (recovery); the others can go in the URL.
      this.#urlChannels = new Set(urlChannels([...this.#channels].filter((channel) => this.#positions.get(channel) === undefined)));
      socket = new this.#WebSocket(this.#urlWithChannels());
    } catch (error) {
      // e.g. a browser refusing the URL: report it, and try again later like any failed connect.
      this.emit('error', error instanceof Error ? error : new Error(String(error)));
      if (!this.#closed && this.#reconnect !== null) this.#schedule();
      return;
    }
    socket.binaryType = 'arraybuffer';
    this.#socket = socket;
    socket.onopen = () => {
      this.#attempt = 0;
      this.#syncSubscriptions();
      this.emit('open');
    };
    socket.onmessage = (event) => this.#onMessage(event.data);
    socket.onerror = (event) => {
      const error = (event as { error?: unknown }).error;
      this.emit('error', error instanceof Error ? error : new Error(`WebSocket error on ${this.url}`));
    };
    socket.onclose = (event) => {
      const willReconnect = !this.#closed && this.#reconnect !== null;
      this.emit('close', { code: event.code, reason: event.reason, willReconnect });
      if (willReconnect) this.#schedule();
    };
  }

  /** Sends what changed between building the socket's URL and its opening (subscribe/unsubscribe while connecting). */
  #syncSubscriptions(): void {
    const added = [...this.#channels].filter((channel) => !this.#urlChannels.has(channel));
    const removed = [...this.#urlChannels].filter((channel) => !this.#channels.has(channel));
    this.#send('subscribe', added);
    this.#send('unsubscribe', removed);
  }

  #schedule(): void {
    const { initialDelayMs, maxDelayMs, factor } = this.#reconnect!;
    const base = Math.min(maxDelayMs, initialDelayMs * factor ** this.#attempt++);
    // Jitter spreads a crowd of clients reconnecting after a server restart.
    const delay = base / 2 + Math.random() * (base / 2);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.stats.reconnects++;
      void this.#open();
    }, delay);
  }

  #urlWithChannels(): string {
    if (this.#urlChannels.size === 0) return this.url;
    const url = new URL(this.url);
    url.searchParams.set('channels', [...this.#urlChannels].join(','));
    return url.toString();
  }

  #onMessage(data: unknown): void {
    // Frames wait, in order, while the inflater loads.
    if (this.#waiting !== null) {
      this.#waiting.push(data);
      return;
    }
    if (this.#inflate === undefined && isCompressedEnvelope(data)) {
      this.#loadInflater(data);
      return;
    }
    let frame: DecodedFrame;
    try {
      if (typeof data === 'string') return this.#onLegacyText(data);
      if (!(data instanceof ArrayBuffer) && !(data instanceof Uint8Array)) throw new ProtocolError(`unexpected message type ${Object.prototype.toString.call(data)}`);
      frame = decodeFrame(data instanceof ArrayBuffer ? new Uint8Array(data) : data, this.#inflate, this.#maxBodyBytes);
    } catch (error) {
      // decodeFrame throws ProtocolError only; anything else here would be our bug, reported the same way.
      this.emit('error', error instanceof ProtocolError ? error : new ProtocolError(`frame could not be read: ${(error as Error)?.message ?? String(error)}`));
      return;
    }
    if (frame.kind === 'notice') {
      for (const report of this.#positions.notice(frame.notice)) this.#report(report);
      this.emit('notice', frame.notice);
      return;
    }
    const { channel, firstSeq, messages } = frame;
    const stats = this.stats;
    stats.frames++;
    stats.wireBytes += frame.wireBytes;
    stats.rawBytes += frame.rawBytes;
    const { skip, gap, recovered } = this.#positions.batch(channel, firstSeq, messages.length);
    stats.duplicates += skip;
    stats.messages += messages.length - skip;
    if (gap !== null) this.#report(gap);
    if (skip < messages.length) {
      if (this.listens('batch')) this.emit('batch', skip === 0 ? frame : { ...frame, firstSeq: firstSeq + skip, messages: messages.slice(skip) });
      if (this.listens('message')) for (let i = skip; i < messages.length; i++) this.emit('message', { channel, seq: firstSeq + i, data: messages[i] });
    }
    if (recovered !== null) this.#report(recovered);
  }

  /**
   * The first envelope-compressed frame: loads pako (browsers; Node has node:zlib already),
   * then handles it and whatever arrived meanwhile. Over permessage-deflate the browser
   * inflates natively and the server sends no such frame, so pako is never fetched.
   */
  #loadInflater(first: unknown): void {
    this.#waiting = [first];
    const loaded = import('../protocol/pako-inflate.js').then(
      (module) => {
        this.#inflate = module.pakoInflate;
      },
      (error: unknown) => this.emit('error', new ProtocolError(`could not load pako to inflate a compressed frame: ${(error as Error)?.message ?? String(error)}`)),
    );
    void loaded.then(() => {
      const frames = this.#waiting ?? [];
      this.#waiting = null;
      // Without an inflater each compressed frame becomes an error event; the others still decode.
      if (this.#inflate === undefined) this.#inflate = FAILING_INFLATE;
      for (const data of frames) this.#onMessage(data);
    });
  }

  #report(report: Gap | Recovered): void {
    if ('reason' in report) {
      this.stats.gaps++;
      this.stats.missed += report.missed ?? 0;
      this.emit('gap', report);
    } else {
      this.stats.recoveries++;
      this.stats.recovered += report.messages;
      this.emit('recovered', report);
    }
  }

  /** Plain JSON text frames (the pre-batchcast frontend format): an array, `{channel, messages}`, or one message. */
  #onLegacyText(text: string): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.emit('error', new ProtocolError(`text frame is not JSON: ${text.slice(0, 60)}`));
      return;
    }
    let channel = '';
    let messages: unknown[];
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && Array.isArray((value as { messages?: unknown }).messages)) {
      const named = (value as { channel?: unknown }).channel;
      channel = typeof named === 'string' ? named : '';
      messages = (value as { messages: unknown[] }).messages;
    } else {
      messages = Array.isArray(value) ? value : [value];
    }
    this.stats.frames++;
    this.stats.wireBytes += text.length;
    this.stats.rawBytes += text.length;
    this.stats.messages += messages.length;
    for (const data of messages) this.emit('message', { channel, seq: null, data });
  }
}

/** Connects to a batchcast server. Listen for `message`, `gap`, `notice`, `open`, `close`, `error`. */
export function connect(url: string, options: ClientOptions = {}): BatchcastClient {
  return new BatchcastClient(url, options);
}

export { decodeFrame };
export type { DecodedFrame, Inflate };
