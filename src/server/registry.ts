/**
 * The open connections: what happens when a WebSocket is accepted and when it
 * closes, heartbeats, and closing everyone at shutdown. Nothing kept per connection
 * outlives its close: subscriptions, queued control messages and the registry entry
 * all go in its 'close' handler.
 */
import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import { whenFlushed } from '../fanout/fanout.js';
import type { Subscriptions } from '../fanout/subscriptions.js';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import type { Format } from '../protocol/formats.js';
import { Connection } from './connection.js';
import { channelsFromUrl } from './control.js';
import type { ControlHandler } from './control-handler.js';

export interface RegistryOptions {
  heartbeatIntervalMs: number;
  subscriptions: Subscriptions;
  control: ControlHandler;
  /** A socket error or failed write on one connection (the others are unaffected). */
  onSendError: (connection: Connection, error: Error) => void;
  onConnection: (connection: Connection) => void;
  onDisconnect: (connection: Connection, code: number) => void;
}

/** Connection counters, for stats. */
export interface RegistryCounters {
  connectionsTotal: number;
  heartbeatTerminated: number;
}

/** Tracks open connections and keeps them alive (heartbeats) or closes them. */
export class ConnectionRegistry {
  readonly connections = new Set<Connection>();
  readonly counters: RegistryCounters = { connectionsTotal: 0, heartbeatTerminated: 0 };
  /** Open connections per wire format, and how many of them negotiated transport compression. */
  readonly formats: Record<Format, number> & { transportCompressed: number } = { batchcast: 0, json: 0, seed: 0, transportCompressed: 0 };
  readonly #options: RegistryOptions;
  readonly #heartbeat: NodeJS.Timeout | null = null;

  constructor(options: RegistryOptions) {
    this.#options = options;
    if (options.heartbeatIntervalMs > 0) {
      this.#heartbeat = setInterval(this.#beat, options.heartbeatIntervalMs);
      this.#heartbeat.unref();
    }
  }

  /** Registers an accepted WebSocket and subscribes it to the channels of its URL. */
  accept(ws: WebSocket, request: IncomingMessage, identity: unknown, format: Format): void {
    const { subscriptions, control, onSendError } = this.#options;
    const connection = new Connection(ws, request, identity, format);
    this.connections.add(connection);
    this.counters.connectionsTotal++;
    this.#count(connection, 1);
    ws.on('pong', () => {
      connection.alive = true;
    });
    ws.on('message', (data, isBinary) => control.onMessage(connection, data, isBinary));
    ws.on('error', () => {
      // ws closes the connection after a protocol error (e.g. maxPayload); 'close' cleans up.
    });
    // A reset or broken pipe surfaces here (ws also listens, and closes the connection).
    connection.socket.on('error', (error) => onSendError(connection, error));
    ws.on('close', (code) => {
      this.connections.delete(connection);
      this.#count(connection, -1);
      subscriptions.removeAll(connection);
      control.forget(connection);
      this.#options.onDisconnect(connection, code);
    });
    this.#options.onConnection(connection);
    control.subscribeFromUrl(connection, channelsFromUrl(request.url));
  }

  #count(connection: Connection, delta: 1 | -1): void {
    this.formats[connection.format] += delta;
    if (connection.transportCompressed) this.formats.transportCompressed += delta;
  }

  /** Stops heartbeats. */
  stop(): void {
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
  }

  /**
   * Closes every connection with 1001 as soon as its own socket has flushed, so one
   * stalled reader cannot use up the others' time; at `deadline`, terminates the rest.
   */
  async closeAll(deadline: number): Promise<void> {
    await Promise.all([...this.connections].map((connection) => closeWhenFlushed(connection, deadline)));
  }

  readonly #beat = (): void => {
    for (const connection of this.connections) {
      if (!connection.alive) {
        this.counters.heartbeatTerminated++;
        connection.ws.terminate();
        continue;
      }
      connection.alive = false;
      try {
        connection.ws.ping();
      } catch {
        // a socket closing under us; the next beat or its 'close' cleans up
      }
    }
  };
}

/** After terminate(), how long to wait for ws's 'close' (it follows the socket's, a turn or two later). */
const CLOSE_EVENT_GRACE_MS = 1_000;

async function closeWhenFlushed(connection: Connection, deadline: number): Promise<void> {
  const { ws } = connection;
  if (ws.readyState === WebSocket.CLOSED) return;
  let isClosed = false;
  const closed = new Promise<void>((resolve) =>
    ws.once('close', () => {
      isClosed = true;
      resolve();
    }),
  );
  if (ws.readyState === WebSocket.OPEN) await withDeadline(whenFlushed(connection), deadline);
  if (!isClosed) {
    ws.close(CLOSE_CODES.GOING_AWAY, 'server shutting down');
    await withDeadline(closed, deadline);
  }
  if (isClosed) return;
  // Cut off at the deadline. Wait for 'close' too, so the connection has left the registry
  // (and onDisconnect has run) by the time close() resolves.
  ws.terminate();
  await withDeadline(closed, Date.now() + CLOSE_EVENT_GRACE_MS);
}

/** Waits for `promise` until the wall-clock `deadline` (ms since the epoch), whichever comes first. */
export async function withDeadline(promise: Promise<unknown>, deadline: number): Promise<void> {
  const remaining = deadline - Date.now();
  if (remaining <= 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, remaining)))]);
  clearTimeout(timer);
}
