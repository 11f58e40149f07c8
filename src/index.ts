/** batchcast: high-rate WebSocket broadcasting with worker-encoded batches. */
export { Broadcaster, createBroadcaster } from './broadcaster.js';
export type { BroadcasterEvents, BroadcasterOptions } from './broadcaster.js';
export type { AuthorizeResult } from './server/upgrade-gate.js';
export { PRESETS, SERVER_SETTINGS, SETTINGS, resolveConfig, resolveServerConfig } from './config.js';
export type { ConfigOptions, PresetName, ResolvedConfig, ServerConfig, SlowClientPolicy } from './config.js';
export type { CanSubscribe } from './server/control-handler.js';
export type { WorkerFault, FaultKind } from './encode/pool.js';
export {
  BatchcastError,
  BrokerError,
  CallbackError,
  ClosedError,
  ERROR_CODES,
  EncodeError,
  InvalidChannelError,
  InvalidConfigError,
  InvalidMessageError,
  ListenError,
  MessageTooLargeError,
  ProtocolError,
} from './errors.js';
export type { ErrorCode } from './errors.js';
export { CLOSE_CODES } from './protocol/close-codes.js';
export type { Notice } from './fanout/notice.js';
export { isValidChannel } from './protocol/channel.js';
export { decodeFrame } from './protocol/decode.js';
export type { DecodedFrame } from './protocol/decode.js';
export type { Codec } from './protocol/envelope.js';
export { Connection } from './server/connection.js';
export { BatchcastMetrics, OTHER_CHANNELS } from './observe/metrics.js';
export type { MetricsOption, MetricsSettings } from './observe/metrics.js';
export type { Percentiles, Stats } from './stats.js';
