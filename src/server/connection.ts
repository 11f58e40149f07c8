/** Server-side state of one WebSocket client. */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { StoredFrame } from '../broker/relay.js';
import type { ChannelState } from '../channels.js';
import { formKey, negotiatedWindow, type FormKey } from '../fanout/forms.js';
import type { Format } from '../protocol/formats.js';

/**
 * A channel on which a connection is behind the live stream (a slow client, or a
 * recovery): from `cursor` on it gets frames from history, not live, until it catches up.
 */
export interface Lag {
  readonly state: ChannelState;
  /** The next sequence number to send it. */
  cursor: number;
  /** Older frames than local history holds, read from the cluster's stream for a recovery; sent first. */
  prefix: StoredFrame[] | null;
}

let nextId = 1;
/** `WebSocket.OPEN`, without importing ws's runtime here. */
const OPEN = 1;

/** One connected client: its socket, its channels and its liveness. */
export class Connection {
  readonly id = nextId++;
  readonly ws: WebSocket;
  /** The underlying TCP socket; fan-out writes prepared frames here directly. */
  readonly socket: Duplex;
  readonly request: IncomingMessage;
  /** What `authorize` returned for this client (any value other than `true`), for `canSubscribe`. */
  readonly identity: unknown;
  /** The wire format it asked for (`?format=`, or the server's default). */
  readonly format: Format;
  /** Its wire form: format and transport compression (fanout/forms.ts). */
  readonly form: FormKey;
  readonly channels = new Set<string>();
  /** Answered the last ping. */
  alive = true;
  /** Malformed control messages received so far. */
  badMessages = 0;
  /** Notices left out because the client was over `maxBufferedBytes` (`drop` policy). */
  noticesDropped = 0;
  /** Channels it is catching up on from history, by name; null when it is live on all. */
  lags: Map<string, Lag> | null = null;
  /**
   * Where it went live again on channels that had a sliced fan-out going on (fanout/slices.ts):
   * batches below this were replayed from history and are not sent again. Null when none.
   */
  liveFrom: Map<string, number> | null = null;

  constructor(ws: WebSocket, request: IncomingMessage, identity: unknown, format: Format = 'batchcast') {
    this.ws = ws;
    // ws keeps the net.Socket private; writing prepared frames there is the whole point of fan-out.
    this.socket = (ws as unknown as { _socket: Duplex })._socket;
    this.request = request;
    this.identity = identity;
    this.format = format;
    // ws keeps the negotiated extension private too; its accepted parameters say what window the client allows.
    const deflate = (ws as unknown as { _extensions: Record<string, { params?: Record<string, unknown> } | undefined> })._extensions['permessage-deflate'];
    this.form = formKey(format, negotiatedWindow(deflate?.params));
  }

  /** Whether the client negotiated permessage-deflate and gets transport-compressed frames. */
  get transportCompressed(): boolean {
    return (this.form & 15) !== 0;
  }

  /** Whether the WebSocket is open (not connecting, closing or closed). */
  get open(): boolean {
    return this.ws.readyState === OPEN;
  }

  /** Bytes queued on this client's socket and not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.socket.writableLength;
  }
}
