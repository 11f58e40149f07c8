/**
 * Logging through any logger with pino's interface (`logger.warn({ ...fields }, 'message')`).
 * The broadcaster logs what an operator acts on: refused upgrades, worker faults, batches
 * that could not be encoded, slow clients, recoveries that lost messages, Redis trouble,
 * failing user code, adaptive tuning's changes, start and shutdown. Nothing is logged per message: events that can
 * come in floods (rejected messages, failed writes, throwing listeners, refused upgrades)
 * are logged once, then summed up once a second while they keep coming.
 */
import type { Broadcaster } from '../broadcaster.js';

/** The part of pino's logger interface batchcast uses. */
export interface Logger {
  debug(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

/** pino's levels (`serve --log-level`). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

type Level = 'debug' | 'info' | 'warn' | 'error';

/**
 * Logs one occurrence of a kind of event at once and counts the rest for a second; then
 * logs how many more there were. Bounded: one line per kind per second, at most.
 */
class Throttle {
  readonly #log: (level: Level, fields: object, message: string) => void;
  readonly #suppressed = new Map<string, { level: Level; count: number; message: string }>();
  #timer: NodeJS.Timeout | null = null;

  constructor(log: (level: Level, fields: object, message: string) => void) {
    this.#log = log;
  }

  log(kind: string, level: Level, fields: object, message: string): void {
    const suppressed = this.#suppressed.get(kind);
    if (suppressed !== undefined) {
      suppressed.count++;
      return;
    }
    this.#log(level, fields, message);
    this.#suppressed.set(kind, { level, count: 0, message });
    if (this.#timer === null) {
      this.#timer = setInterval(this.#flush, 1000);
      this.#timer.unref();
    }
  }

  readonly #flush = (): void => {
    for (const [kind, { level, count, message }] of this.#suppressed) {
      if (count === 0) this.#suppressed.delete(kind);
      else {
        this.#log(level, { kind, repeated: count }, `${message} (and ${count} more like it in the last second)`);
        this.#suppressed.set(kind, { level, count: 0, message });
      }
    }
    if (this.#suppressed.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  };

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

/** Logs a broadcaster's events to `logger`. A logger that throws is reported like any listener (callbackError), never thrown into the pipeline. */
export function attachLogger(broadcaster: Broadcaster, logger: Logger): void {
  const log = (level: Level, fields: object, message: string): void => {
    try {
      logger[level](fields, message);
    } catch {
      // A logger that fails must not take the broadcaster down, and reporting it by logging would loop.
    }
  };
  const throttle = new Throttle(log);
  broadcaster.on('listening', (address) => log('info', { address: address.address, port: address.port }, 'listening'));
  broadcaster.on('listenError', (error) => log('error', { err: error }, error.message));
  broadcaster.on('serverError', (error) => log('error', { err: error }, `server error: ${error.message}`));
  broadcaster.on('upgradeRejected', ({ request, status, reason }) => throttle.log('upgradeRejected', 'info', {
    status, reason, url: request.url, remoteAddress: request.socket.remoteAddress,
  }, `upgrade refused with ${status}: ${reason}`));
  broadcaster.on('fault', (fault) => log('warn', { kind: fault.kind, channel: fault.channel, attempt: fault.attempt, recovery: fault.recovery, err: fault.error },
    `worker ${fault.kind} on channel "${fault.channel}" (attempt ${fault.attempt}); ${fault.recovery === 'retry' ? 'retrying' : 'encoding inline'}`));
  broadcaster.on('encodeError', (error) => log('error', { err: error, channel: error.channel }, error.message));
  broadcaster.on('messageError', (error) => throttle.log('messageError', 'warn', { code: error.code, channel: error.channel }, error.message));
  broadcaster.on('sendError', ({ connection, error }) => throttle.log('sendError', 'warn', { connection: connection.id, err: error }, `write to a client failed: ${error.message}`));
  broadcaster.on('slowClient', ({ connection, policy, bufferedBytes }) => throttle.log('slowClient', 'warn', { connection: connection.id, policy, bufferedBytes },
    policy === 'close' ? 'slow client closed (1013)' : 'slow client: batches skipped, it catches up from history when it drains'));
  broadcaster.on('recovery', ({ connection, channel, status, missed }) => {
    if (status === 'ok') log('debug', { connection: connection.id, channel, status }, `recovery of "${channel}": nothing lost`);
    else throttle.log(`recovery:${status}`, 'warn', { connection: connection.id, channel, status, missed },
      status === 'epoch' ? `recovery of "${channel}" failed: the position belongs to another history (epoch)` : `recovery of "${channel}": ${missed} messages no longer in history`);
  });
  broadcaster.on('brokerError', (error) => throttle.log('brokerError', 'error', { err: error }, error.message));
  broadcaster.on('callbackError', (error) => throttle.log('callbackError', 'warn', { code: error.code, callback: error.callback }, error.message));
  // At most one per knob per control interval: never a flood.
  broadcaster.on('adaptive', ({ knob, direction, settings, reason }) => log('info', { knob, direction, ...settings }, `adaptive: ${knob} ${direction} (${reason})`));
  broadcaster.on('closing', () => log('info', {}, 'shutting down: flushing batches and closing clients'));
  broadcaster.on('closed', () => {
    throttle.stop();
    const stats = broadcaster.stats();
    log('info', { messagesPublished: stats.messagesPublished, batches: stats.batches }, `closed after ${stats.messagesPublished} messages in ${stats.batches} batches`);
  });
}
