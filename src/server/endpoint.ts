/**
 * The WebSocket endpoint: takes HTTP upgrade requests (from our own server, an
 * attached one, or `handleUpgrade`), runs the upgrade gate, and hands accepted
 * sockets to ws.
 *
 * Node removes its own socket 'error' listener before it emits 'upgrade'. Until ws
 * owns the socket, its errors are ours: a peer that resets the connection while an
 * async `authorize` runs, or while a refusal is being written, would otherwise crash
 * the process with an unhandled 'error' event. So the listener goes on first, before
 * any other step, and comes off only once ws has put its own in place.
 *
 * Accepting is spread over event-loop turns (at most ACCEPT_SLICE_MS each): a thousand
 * clients reconnecting at once (a network blip, a deploy) would otherwise hold the
 * loop for the whole handshake-and-subscribe burst.
 */
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ListenError } from '../errors.js';
import type { Format } from '../protocol/formats.js';
import { admitUpgrade, rejectUpgrade, type UpgradeGateOptions, type UpgradeVerdict } from './upgrade-gate.js';

export interface EndpointOptions {
  gate: UpgradeGateOptions;
  maxPayload: number;
  /** Negotiate permessage-deflate with clients that offer it (our frames arrive compressed once, see fanout/layout.ts). */
  perMessageDeflate: boolean;
  /** True once shutdown has begun: upgrades get 503. */
  closing: () => boolean;
  /** A WebSocket was accepted. */
  onConnection: (ws: WebSocket, request: IncomingMessage, identity: unknown, format: Format) => void;
  /** `authorize` threw or rejected (the upgrade was refused with 401), or accepting failed (a bug). */
  onCallbackError: (callback: string, error: unknown) => void;
  /** Our own server reported an error after it started listening (e.g. EMFILE on accept). */
  onServerError: (error: Error) => void;
  /** An upgrade was refused with an HTTP status. */
  onRejected: (request: IncomingMessage, status: number, reason: string) => void;
}

/** Counters of the endpoint, for stats. */
export interface EndpointCounters {
  upgradesRejected: number;
  /** Upgrades whose socket closed while `authorize` ran. */
  upgradesAborted: number;
}

const SHUTTING_DOWN: Refusal = { accept: false, status: 503, reason: 'server shutting down' };

type Refusal = Extract<UpgradeVerdict, { accept: false }>;

/** Longest stretch of handshakes done in one event-loop turn. */
const ACCEPT_SLICE_MS = 4;

interface Accepting {
  request: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  identity: unknown;
  format: Format;
}

/** Socket errors before ws owns the socket: the socket is destroyed by the error itself; nothing else to do. */
function ignoreSocketError(): void {}

/** Accepts WebSocket upgrades; optionally owns the HTTP server they arrive on. */
export class Endpoint {
  readonly counters: EndpointCounters = { upgradesRejected: 0, upgradesAborted: 0 };
  readonly #options: EndpointOptions;
  readonly #wss: WebSocketServer;
  /** Upgrades not answered yet (waiting for `authorize`, or for their handshake turn), with their request. */
  readonly #pending = new Map<Duplex, IncomingMessage>();
  #attached: HttpServer | HttpsServer | null = null;
  #own: HttpServer | null = null;
  #listening: Promise<void> | null = null;
  /** Upgrades admitted by the gate, waiting for their handshake turn. */
  #accepting: Accepting[] = [];
  #acceptTurn: NodeJS.Immediate | null = null;

  constructor(options: EndpointOptions) {
    this.#options = options;
    this.#wss = new WebSocketServer({
      noServer: true,
      // Negotiated only: ws never compresses our frames (fan-out writes them, compressed once, to the socket
      // itself), and it sends nothing else but control frames. It does inflate what clients compress,
      // bounded by maxPayload. server_no_context_takeover tells clients no message refers to an earlier one;
      // client_no_context_takeover asks the same of them, so clients such as ws leave small control
      // messages uncompressed (with context kept, ws compresses every message, and each costs the server
      // an inflate on the libuv pool: ~1 500 messages/s per client, measured).
      perMessageDeflate: options.perMessageDeflate ? { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: Number.MAX_SAFE_INTEGER } : false,
      maxPayload: options.maxPayload,
      clientTracking: false,
    });
  }

  /** Upgrades waiting for `authorize`. */
  get pendingUpgrades(): number {
    return this.#pending.size;
  }

  /** Takes the upgrades of an existing HTTP(S) server. */
  attach(server: HttpServer | HttpsServer): void {
    this.#attached = server;
    server.on('upgrade', this.handleUpgrade);
  }

  /** Listens on `port` (and `host`) with a server of our own; rejects with {@link ListenError}. */
  listen(port: number, host: string | undefined): Promise<void> {
    const server = createServer((_request, response) => {
      response.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket endpoint: upgrade required\n');
    });
    server.on('upgrade', this.handleUpgrade);
    this.#own = server;
    this.#listening = new Promise((resolve, reject) => {
      const failed = (error: Error) => reject(new ListenError(host, port, error));
      server.once('error', failed);
      server.listen(port, host, () => {
        server.off('error', failed);
        // From now on errors (EMFILE on accept...) are reported, never thrown as an unhandled 'error' event.
        server.on('error', this.#options.onServerError);
        resolve();
      });
    });
    return this.#listening;
  }

  /** The address of our own server while it listens; null otherwise. */
  address(): AddressInfo | null {
    const address = this.#own?.address();
    return address !== null && typeof address === 'object' ? address : null;
  }

  /** Runs the gate on one upgrade request, then accepts (ws) or refuses it with an HTTP status. */
  readonly handleUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', ignoreSocketError);
    if (this.#options.closing()) {
      this.#refuse(request, socket, SHUTTING_DOWN);
      return;
    }
    this.#pending.set(socket, request);
    admitUpgrade(request, this.#options.gate, (error) => this.#options.onCallbackError('authorize', error))
      .then((verdict) => this.#decided(request, socket, head, verdict))
      .catch((error: unknown) => {
        this.#pending.delete(socket);
        socket.destroy();
        this.#options.onCallbackError('upgrade', error);
      });
  };

  #decided(request: IncomingMessage, socket: Duplex, head: Buffer, verdict: UpgradeVerdict): void {
    // Answered already: close() refused every upgrade still waiting.
    if (!this.#pending.has(socket)) return;
    if (!verdict.accept) {
      this.#pending.delete(socket);
      if (socket.destroyed) this.counters.upgradesAborted++;
      else this.#refuse(request, socket, verdict);
      return;
    }
    this.#accepting.push({ request, socket, head, identity: verdict.identity, format: verdict.format });
    this.#acceptTurn ??= setImmediate(this.#acceptSome);
  }

  /** Completes queued handshakes for up to ACCEPT_SLICE_MS, then yields to the event loop. */
  readonly #acceptSome = (): void => {
    this.#acceptTurn = null;
    const deadline = performance.now() + ACCEPT_SLICE_MS;
    let done = 0;
    while (done < this.#accepting.length && performance.now() < deadline) this.#accept(this.#accepting[done++]!);
    this.#accepting = this.#accepting.slice(done);
    if (this.#accepting.length > 0) this.#acceptTurn = setImmediate(this.#acceptSome);
  };

  #accept({ request, socket, head, identity, format }: Accepting): void {
    this.#pending.delete(socket);
    if (socket.destroyed) {
      this.counters.upgradesAborted++;
      return;
    }
    // close() may have begun while authorize() ran or the handshake waited: a connection accepted now would miss its 1001.
    if (this.#options.closing()) {
      this.#refuse(request, socket, SHUTTING_DOWN);
      return;
    }
    this.#wss.handleUpgrade(request, socket, head, (ws) => this.#options.onConnection(ws, request, identity, format));
    // ws listens for the socket's errors from handleUpgrade on (and on the WebSocket after).
    socket.off('error', ignoreSocketError);
  }

  #refuse(request: IncomingMessage, socket: Duplex, verdict: Refusal): void {
    this.counters.upgradesRejected++;
    this.#options.onRejected(request, verdict.status, verdict.reason);
    // The error listener stays: the peer may reset while the refusal is written.
    rejectUpgrade(socket, verdict.status, verdict.reason);
  }

  /**
   * Stops taking upgrades: answers 503 to every upgrade still waiting (for `authorize`
   * or for its handshake turn), detaches from an attached server, and closes our own
   * once its listen attempt has settled (closing before it listens would leave it
   * listening for good).
   */
  async close(): Promise<void> {
    this.#attached?.off('upgrade', this.handleUpgrade);
    if (this.#acceptTurn !== null) clearImmediate(this.#acceptTurn);
    this.#acceptTurn = null;
    this.#accepting = [];
    // A client that got this far is told the server is going away, not hung up on.
    for (const [socket, request] of this.#pending) {
      if (socket.destroyed) this.counters.upgradesAborted++;
      else this.#refuse(request, socket, SHUTTING_DOWN);
    }
    this.#pending.clear();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    const server = this.#own;
    if (server === null) return;
    await this.#listening?.catch(() => {});
    if (!server.listening) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
