/**
 * What the server does with a client's control messages (and the `?channels=`
 * of its upgrade URL): validate, ask `canSubscribe`, apply, and answer with a
 * notice. `canSubscribe` may be async; a client's later control messages then
 * wait for it, so replies and subscriptions keep the order the client sent them in.
 */
import type { RawData } from 'ws';
import { ERROR_CODES, InvalidChannelError } from '../errors.js';
import type { Notice } from '../fanout/notice.js';
import type { Subscriptions } from '../fanout/subscriptions.js';
import type { StoredFrame } from '../broker/relay.js';
import type { ChannelState, ChannelTable } from '../channels.js';
import { Recovery } from '../history/recovery.js';
import { parsePosition, type Position } from '../protocol/position.js';
import { CLOSE_CODES } from '../protocol/close-codes.js';
import { isValidChannel } from '../protocol/channel.js';
import type { Connection } from './connection.js';
import { parseControl, type ControlMessage } from './control.js';

/** Decides one subscription; a refusal (false, a throw or a rejection) reaches the client as a `BATCHCAST_FORBIDDEN` notice. */
export type CanSubscribe = (connection: Connection, channel: string) => boolean | Promise<boolean>;

export interface ControlHandlerOptions {
  subscriptions: Subscriptions;
  channels: ChannelTable;
  recovery: Recovery;
  maxSubscriptionsPerClient: number;
  canSubscribe: CanSubscribe | undefined;
  notify: (connection: Connection, notice: Notice) => void;
  /** `canSubscribe` threw or rejected (the subscription was refused), or applying a message failed (a bug). */
  onCallbackError: (callback: string, error: unknown) => void;
  /** In a cluster (broker/relay.ts): links each channel to Redis first, and reads what a recovery needs from the stream. */
  cluster?: {
    prepare: (state: ChannelState, since: Position | undefined) => Promise<StoredFrame[] | null>;
    /** After the admission: a channel that ended with no local subscriber is unlinked. */
    settle: (state: ChannelState) => void;
  };
}

/** Applies control messages, one client at a time, in order. */
export class ControlHandler {
  readonly #options: ControlHandlerOptions;
  /** Per client: the tail of its control messages still waiting for an async `canSubscribe`. */
  readonly #queues = new Map<Connection, Promise<void>>();

  constructor(options: ControlHandlerOptions) {
    this.#options = options;
  }

  /** Clients with control messages waiting for an async `canSubscribe`. */
  get pending(): number {
    return this.#queues.size;
  }

  /** Handles one frame a client sent. Binary frames close the connection with 1003. */
  onMessage(connection: Connection, data: RawData, isBinary: boolean): void {
    if (isBinary) {
      connection.ws.close(CLOSE_CODES.UNSUPPORTED_DATA, 'binary frames are not accepted; control messages are JSON text');
      return;
    }
    const control = parseControl(data.toString());
    if ('code' in control) {
      connection.badMessages++;
      this.#options.notify(connection, { op: 'error', code: control.code, message: control.message });
      return;
    }
    this.#inOrder(connection, () => this.#apply(connection, control));
  }

  /** Subscribes a new connection to the channels of its upgrade URL, as if it had sent a subscribe. */
  subscribeFromUrl(connection: Connection, channels: string[]): void {
    if (channels.length > 0) this.#inOrder(connection, () => this.#subscribe(connection, channels, null));
  }

  /** The client is gone: its waiting messages are dropped (an async `canSubscribe` still running finds it closed). */
  forget(connection: Connection): void {
    this.#queues.delete(connection);
  }

  #inOrder(connection: Connection, step: () => void | Promise<void>): void {
    const queued = this.#queues.get(connection);
    if (queued !== undefined) {
      this.#track(connection, queued.then(() => (connection.open ? step() : undefined)));
      return;
    }
    let pending: void | Promise<void>;
    try {
      pending = step();
    } catch (error) {
      this.#options.onCallbackError('control message handling', error);
      return;
    }
    if (pending !== undefined) this.#track(connection, pending);
  }

  #track(connection: Connection, pending: Promise<void>): void {
    // Every rejection ends here, so the tail never rejects: no unhandled rejection, and later messages still run.
    const tail: Promise<void> = pending
      .catch((error: unknown) => this.#options.onCallbackError('control message handling', error))
      .finally(() => {
        if (this.#queues.get(connection) === tail) this.#queues.delete(connection);
      });
    this.#queues.set(connection, tail);
  }

  #apply(connection: Connection, control: ControlMessage): void | Promise<void> {
    if (control.op === 'subscribe') return this.#subscribe(connection, control.channels, control.since);
    const removed = control.channels.filter((channel) => this.#options.subscriptions.remove(connection, channel));
    this.#options.notify(connection, { op: 'unsubscribed', channels: removed });
  }

  #subscribe(connection: Connection, channels: string[], since: Record<string, unknown> | null): void | Promise<void> {
    const { notify } = this.#options;
    const valid: string[] = [];
    const positions = new Map<string, Position>();
    for (const channel of channels) {
      if (!isValidChannel(channel)) {
        notify(connection, { op: 'error', code: ERROR_CODES.INVALID_CHANNEL, message: new InvalidChannelError(channel).message });
        continue;
      }
      if (since !== null && Object.hasOwn(since, channel)) {
        const position = parsePosition(since[channel]);
        if (typeof position === 'string') {
          notify(connection, { op: 'error', code: ERROR_CODES.INVALID_POSITION, channel, message: `subscription to "${channel}" refused: ${position}` });
          continue;
        }
        positions.set(channel, position);
      }
      valid.push(channel);
    }
    if (since !== null) {
      for (const channel of Object.keys(since)) {
        if (!channels.includes(channel)) {
          notify(connection, { op: 'error', code: ERROR_CODES.INVALID_POSITION, message: `"since" names ${JSON.stringify(channel.slice(0, 140))}, which is not in "channels"` });
        }
      }
    }
    const verdicts = valid.map((channel) => this.#decide(connection, channel));
    const cluster = this.#options.cluster;
    if (cluster !== undefined) return Promise.all(verdicts).then((allowed) => this.#prepared(connection, valid, allowed, positions, cluster));
    if (!verdicts.some((verdict) => verdict instanceof Promise)) return this.#admit(connection, valid, verdicts as boolean[], positions, null);
    return Promise.all(verdicts).then((resolved) => this.#admit(connection, valid, resolved, positions, null));
  }

  /** In a cluster: links the allowed channels (and reads older frames for recoveries), then admits. */
  async #prepared(
    connection: Connection,
    channels: string[],
    allowed: boolean[],
    since: Map<string, Position>,
    cluster: NonNullable<ControlHandlerOptions['cluster']>,
  ): Promise<void> {
    const states = channels.map((channel, i) => (allowed[i] && connection.open ? this.#options.channels.open(channel) : null));
    const answered = channels.map(() => false);
    const older = await Promise.all(states.map((state, i) => {
      if (state === null) return null;
      return cluster.prepare(state, since.get(channels[i]!)).catch((error: unknown) => {
        answered[i] = true;
        this.#options.notify(connection, { op: 'error', code: ERROR_CODES.BROKER, channel: channels[i], message: `subscription to "${channels[i]}" failed: ${(error as Error).message}` });
        return null;
      });
    }));
    try {
      this.#admit(connection, channels.filter((_c, i) => !answered[i]), allowed.filter((_a, i) => !answered[i]), since, older.filter((_o, i) => !answered[i]));
    } finally {
      for (const state of states) if (state !== null) cluster.settle(state);
    }
  }

  /** Asks the hook; anything but `true` (or a promise of it) is a refusal, and so is a throw (reported). */
  #decide(connection: Connection, channel: string): boolean | Promise<boolean> {
    const { canSubscribe, onCallbackError } = this.#options;
    if (canSubscribe === undefined) return true;
    const refuse = (error: unknown): false => {
      onCallbackError('canSubscribe', error);
      return false;
    };
    try {
      const verdict: unknown = canSubscribe(connection, channel);
      if (isThenable(verdict)) return Promise.resolve(verdict).then((value) => value === true, refuse);
      return verdict === true;
    } catch (error) {
      return refuse(error);
    }
  }

  /**
   * Subscribes the allowed channels, recovering those with a position, all in this one
   * tick: no release can fall between a subscription, its replay and its live stream.
   */
  #admit(connection: Connection, channels: string[], allowed: boolean[], since: Map<string, Position>, older: (StoredFrame[] | null)[] | null): void {
    const { subscriptions, maxSubscriptionsPerClient, notify, channels: table, recovery } = this.#options;
    // The client may have gone while an async canSubscribe ran.
    if (!connection.open) return;
    const accepted: string[] = [];
    const positions: Record<string, Position> = {};
    channels.forEach((channel, i) => {
      if (!connection.channels.has(channel) && connection.channels.size >= maxSubscriptionsPerClient) {
        notify(connection, {
          op: 'error', code: ERROR_CODES.TOO_MANY_SUBSCRIPTIONS, channel,
          message: `subscription to "${channel}" refused: limit of ${maxSubscriptionsPerClient} channels per client reached`,
        });
      } else if (!allowed[i]) {
        notify(connection, { op: 'error', code: ERROR_CODES.FORBIDDEN, channel, message: `subscription to "${channel}" is not allowed` });
      } else {
        const state = table.open(channel);
        const position = since.get(channel);
        const fresh = !connection.channels.has(channel);
        if (position !== undefined && fresh) {
          // Checked before subscribing: a position past the end of the stream refuses the channel.
          const refusal = Recovery.refusal(state, position);
          if (refusal !== null) {
            notify(connection, { op: 'error', code: ERROR_CODES.INVALID_POSITION, channel, message: `subscription to "${channel}" refused: ${refusal}` });
            table.dropIfIdle(state);
            return;
          }
          subscriptions.add(connection, channel);
          notify(connection, recovery.recover(connection, state, position, older?.[i] ?? null));
        } else {
          subscriptions.add(connection, channel);
        }
        accepted.push(channel);
        positions[channel] = { epoch: state.epoch, seq: state.nextSeq };
      }
    });
    if (accepted.length > 0) notify(connection, { op: 'subscribed', channels: accepted, positions });
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}
