/**
 * Error classes with stable `code` strings. Match on `code`, never on `message`:
 * messages may gain detail between releases, codes do not change.
 */

/** Base class of every error batchcast throws or emits. */
export class BatchcastError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
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
    super('BATCHCAST_INVALID_CONFIG', `${setting}: ${message}`);
    this.setting = setting;
  }
}

/** A channel name is not a string of 1–128 allowed characters. */
export class InvalidChannelError extends BatchcastError {
  constructor(channel: unknown) {
    super(
      'BATCHCAST_INVALID_CHANNEL',
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
      'BATCHCAST_INVALID_MESSAGE',
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
      'BATCHCAST_MESSAGE_TOO_LARGE',
      `message${index === undefined ? '' : ` #${index} of its batch`} on channel "${channel}" is ${bytes} bytes, over maxMessageBytes (${limit})`,
    );
    this.channel = channel;
    this.index = index;
  }
}

/** The broadcaster is closing or closed and accepts no more work. */
export class ClosedError extends BatchcastError {
  constructor(operation: string) {
    super('BATCHCAST_CLOSED', `${operation}: the broadcaster is closed`);
  }
}

/** A batch could not be encoded by the worker pool nor inline. */
export class EncodeError extends BatchcastError {
  readonly channel: string;

  constructor(channel: string, message: string, options?: { cause?: unknown }) {
    super('BATCHCAST_ENCODE_FAILED', `encoding a batch of channel "${channel}" failed: ${message}`, options);
    this.channel = channel;
  }
}

/** A frame does not follow the batchcast wire protocol. */
export class ProtocolError extends BatchcastError {
  constructor(message: string) {
    super('BATCHCAST_PROTOCOL', message);
  }
}

/** Short, bounded description of an arbitrary value for error messages. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
  if (value === null) return 'null';
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return `${typeof value} ${String(value)}`;
}
