/**
 * WebSocket close codes batchcast sends or documents, each defined once
 * (RFC 6455 §7.4.1; docs/protocol.md says when each is used).
 */
export const CLOSE_CODES = {
  /** The client closed normally (`client.close()`). */
  NORMAL: 1000,
  /** The server is shutting down. */
  GOING_AWAY: 1001,
  /** A frame broke RFC 6455 (sent by ws, the WebSocket layer). */
  PROTOCOL_ERROR: 1002,
  /** The client sent a binary frame; control messages are JSON text. */
  UNSUPPORTED_DATA: 1003,
  /** A text frame that is not valid UTF-8 (sent by ws). */
  INVALID_PAYLOAD: 1007,
  /** A client frame over `maxPayload` (sent by ws). */
  MESSAGE_TOO_BIG: 1009,
  /** A slow consumer over `maxBufferedBytes` under the `close` policy ("Try Again Later"). */
  SLOW_CONSUMER: 1013,
} as const;
