/**
 * Error classes with stable `code` strings, and every code defined once. Match on
 * `code`, never on `message`: messages may gain detail between releases, codes do not
 * change. Browser-safe (the client imports it).
 */

/**
 * Every error code batchcast uses: thrown or emitted errors, `error` notices sent to
 * clients, and HTTP error bodies. README.md lists where each appears.
 */
export const ERROR_CODES = {
  INVALID_CONFIG: 'BATCHCAST_INVALID_CONFIG',
  INVALID_CHANNEL: 'BATCHCAST_INVALID_CHANNEL',
  INVALID_MESSAGE: 'BATCHCAST_INVALID_MESSAGE',
  MESSAGE_TOO_LARGE: 'BATCHCAST_MESSAGE_TOO_LARGE',
  CLOSED: 'BATCHCAST_CLOSED',
  ENCODE_FAILED: 'BATCHCAST_ENCODE_FAILED',
  PROTOCOL: 'BATCHCAST_PROTOCOL',
  CALLBACK_FAILED: 'BATCHCAST_CALLBACK_FAILED',
  LISTEN_FAILED: 'BATCHCAST_LISTEN_FAILED',
  BROKER: 'BATCHCAST_BROKER',
  BAD_CONTROL: 'BATCHCAST_BAD_CONTROL',
  TOO_MANY_SUBSCRIPTIONS: 'BATCHCAST_TOO_MANY_SUBSCRIPTIONS',
  FORBIDDEN: 'BATCHCAST_FORBIDDEN',
  INVALID_POSITION: 'BATCHCAST_INVALID_POSITION',
  UNAUTHORIZED: 'BATCHCAST_UNAUTHORIZED',
} as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** Base class of every error batchcast throws or emits. */
export class BatchcastError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An option or environment variable is missing, malformed or out of range. */
export class InvalidConfigError extends BatchcastError {
  /** The option or environment variable at fault, e.g. `BATCHCAST_BATCH_SIZE`. */
  readonly setting: string;

  constructor(setting: string, message: string) {
    super(ERROR_CODES.INVALID_CONFIG, `${setting}: ${message}`);
    this.setting = setting;
  }
}

/** A channel name is not a string of 1–128 allowed characters. */
export class InvalidChannelError extends BatchcastError {
  constructor(channel: unknown) {
    super(
      ERROR_CODES.INVALID_CHANNEL,
      `invalid channel name ${describe(channel)}: expected 1-128 characters of [A-Za-z0-9_.:@/-]`,
    );
  }
}

/** A published message cannot be encoded (function, symbol, undefined, BigInt, circular, ...). */
export class InvalidMessageError extends BatchcastError {
  readonly channel: string;
  /** Position of the message in its batch, when the error was found while encoding the batch. */
  readonly index: number | undefined;

  constructor(channel: string, reason: string, index?: number) {
    super(
      ERROR_CODES.INVALID_MESSAGE,
      `message${index === undefined ? '' : ` #${index} of its batch`} on channel "${channel}" cannot be encoded: ${reason}`,
    );
    this.channel = channel;
    this.index = index;
  }
}

/** A published message is larger than `maxMessageBytes` once serialized. */
export class MessageTooLargeError extends BatchcastError {
  readonly channel: string;
  readonly index: number | undefined;

  constructor(channel: string, bytes: number, limit: number, index?: number) {
    super(
      ERROR_CODES.MESSAGE_TOO_LARGE,
      `message${index === undefined ? '' : ` #${index} of its batch`} on channel "${channel}" is ${bytes} bytes, over maxMessageBytes (${limit})`,
    );
    this.channel = channel;
    this.index = index;
  }
}

/** The broadcaster is closing or closed and accepts no more work. */
export class ClosedError extends BatchcastError {
  constructor(operation: string) {
    super(ERROR_CODES.CLOSED, `${operation}: the broadcaster is closed`);
  }
}

/** A batch could not be encoded by the worker pool nor inline. */
export class EncodeError extends BatchcastError {
  readonly channel: string;

  constructor(channel: string, message: string, options?: { cause?: unknown }) {
    super(ERROR_CODES.ENCODE_FAILED, `encoding a batch of channel "${channel}" failed: ${message}`, options);
    this.channel = channel;
  }
}

/** A frame does not follow the batchcast wire protocol. */
export class ProtocolError extends BatchcastError {
  constructor(message: string) {
    super(ERROR_CODES.PROTOCOL, message);
  }
}

/**
 * User code (an event listener, `authorize`, `canSubscribe`) threw or rejected. The
 * pipeline went on without it; `callback` names what failed, `cause` holds what it threw.
 */
export class CallbackError extends BatchcastError {
  readonly callback: string;

  constructor(callback: string, cause: unknown) {
    super(ERROR_CODES.CALLBACK_FAILED, `${callback} threw: ${cause instanceof Error ? cause.message : describe(cause)}`, { cause });
    this.callback = callback;
  }
}

/** The broadcaster's own server could not listen (`port` mode): address in use, permission, unknown host. */
export class ListenError extends BatchcastError {
  constructor(host: string | undefined, port: number, cause: unknown) {
    const reason = (cause as { code?: unknown } | null)?.code ?? (cause instanceof Error ? cause.message : String(cause));
    super(ERROR_CODES.LISTEN_FAILED, `cannot listen on ${host ?? '*'}:${port}: ${String(reason)}`, { cause });
  }
}

/** Redis (the cluster broker) cannot be reached, or a publish could not wait for it. */
export class BrokerError extends BatchcastError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ERROR_CODES.BROKER, message, options);
  }
}

/** Short, bounded description of an arbitrary value for error messages. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (value === null) return 'null';
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return `${typeof value} ${String(value)}`;
}
