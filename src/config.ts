/**
 * Every tunable, validated in one place. Precedence, per setting:
 * explicit option > environment variable > preset > built-in default.
 */
import { availableParallelism } from 'node:os';
import { InvalidConfigError } from './errors.js';
import { THREAD_PRIORITY_SUPPORTED } from './encode/priority.js';
import type { Codec } from './protocol/envelope.js';
import { FORMATS, type Format } from './protocol/formats.js';
import { LOG_LEVELS, type LogLevel } from './observe/logger.js';

export type PresetName = 'realtime' | 'balanced' | 'throughput';
export type SlowClientPolicy = 'drop' | 'close';

/** Values each preset sets (from the reference design). */
export const PRESETS: Readonly<Record<PresetName, Readonly<Pick<ResolvedConfig, 'batchSize' | 'batchDelayMs' | 'compressionThreshold' | 'compressionLevel'>>>> = {
  realtime: { batchSize: 100, batchDelayMs: 10, compressionThreshold: 500, compressionLevel: 9 },
  balanced: { batchSize: 500, batchDelayMs: 20, compressionThreshold: 1000, compressionLevel: 6 },
  throughput: { batchSize: 1000, batchDelayMs: 50, compressionThreshold: 2000, compressionLevel: 1 },
};

/** The settings after resolution: every field present and valid. */
export interface ResolvedConfig {
  preset: PresetName;
  batchSize: number;
  batchDelayMs: number;
  compressionThreshold: number;
  compressionLevel: number;
  compressionWindowBits: number;
  codec: Codec;
  perMessageDeflate: boolean;
  format: Format;
  workerNice: number;
  workerPollMs: number;
  poolSize: number;
  maxQueue: number;
  encodeTimeoutMs: number;
  maxPendingMessages: number;
  maxMessageBytes: number;
  validateSerialized: boolean;
  maxBufferedBytes: number;
  slowClientPolicy: SlowClientPolicy;
  maxPayload: number;
  maxSubscriptionsPerClient: number;
  heartbeatIntervalMs: number;
  closeTimeoutMs: number;
  historyMessages: number;
  historyBytes: number;
  historyTtlMs: number;
  historyTotalBytes: number;
  redisUrl: string | undefined;
  redisCluster: boolean;
  redisPrefix: string;
  redisMaxPending: number;
  redisStreamLength: number;
  redisKeyTtlMs: number;
  redisConnectTimeoutMs: number;
  /** Adaptive tuning (0: off): broadcast delay p95 to stay under. */
  targetLatencyMs: number;
  /** Adaptive tuning (0: off): bytes written to sockets per second to stay under. */
  targetBytesPerSecond: number;
  adaptiveIntervalMs: number;
  fanoutSliceMs: number;
  handoffSliceMs: number;
}

/** Tunables as options: any subset, each overriding its environment variable. */
export type ConfigOptions = Partial<ResolvedConfig>;

type Kind =
  /** `off`: one more accepted value outside min..max that turns the feature off (e.g. 0). */
  | { type: 'int'; min: number; max: number; off?: number }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'bool' }
  /** Free text matching `pattern`, described to users as `expected`. */
  | { type: 'text'; pattern: RegExp; expected: string }
  /** Comma-separated items, each matching `pattern`. */
  | { type: 'list'; pattern: RegExp; expected: string };

interface Setting<T = ResolvedConfig> {
  env: string;
  kind: Kind;
  /** Built-in default; presets override the settings they name. */
  fallback: (partial: Partial<T>) => unknown;
}

const MiB = 1024 * 1024;

/**
 * One encoder thread per core when encoders run below the event loop's priority (they
 * take only what it leaves: BENCHMARKS.md, "Pool size"); otherwise one core is left to
 * the event loop.
 */
export function defaultPoolSize(workerNice: number): number {
  const cores = availableParallelism();
  return THREAD_PRIORITY_SUPPORTED && workerNice > 0 ? cores : Math.max(1, cores - 1);
}

/** The one table of settings. Keep docs/configuration in README.md in step with it. */
export const SETTINGS: Readonly<Record<keyof ResolvedConfig, Setting>> = {
  preset: { env: 'BATCHCAST_PRESET', kind: { type: 'enum', values: Object.keys(PRESETS) }, fallback: () => 'balanced' },
  batchSize: { env: 'BATCHCAST_BATCH_SIZE', kind: { type: 'int', min: 1, max: 100_000 }, fallback: (c) => PRESETS[c.preset!].batchSize },
  batchDelayMs: { env: 'BATCHCAST_BATCH_DELAY_MS', kind: { type: 'int', min: 0, max: 60_000 }, fallback: (c) => PRESETS[c.preset!].batchDelayMs },
  compressionThreshold: { env: 'BATCHCAST_COMPRESSION_THRESHOLD', kind: { type: 'int', min: 0, max: 2 ** 31 - 1 }, fallback: (c) => PRESETS[c.preset!].compressionThreshold },
  compressionLevel: { env: 'BATCHCAST_COMPRESSION_LEVEL', kind: { type: 'int', min: 0, max: 9 }, fallback: (c) => PRESETS[c.preset!].compressionLevel },
  // 12 (4 KiB) compressed feed JSON as small as 15 or smaller, and faster, in every shape measured (README "Compression").
  compressionWindowBits: { env: 'BATCHCAST_COMPRESSION_WINDOW_BITS', kind: { type: 'int', min: 9, max: 15 }, fallback: () => 12 },
  codec: { env: 'BATCHCAST_CODEC', kind: { type: 'enum', values: ['json', 'msgpack'] }, fallback: () => 'json' },
  perMessageDeflate: { env: 'BATCHCAST_PER_MESSAGE_DEFLATE', kind: { type: 'bool' }, fallback: () => true },
  format: { env: 'BATCHCAST_FORMAT', kind: { type: 'enum', values: FORMATS }, fallback: () => 'batchcast' },
  // Encoder threads yield the core to the event loop (encode/priority.ts); where they can, they may also use every core.
  workerNice: { env: 'BATCHCAST_WORKER_NICE', kind: { type: 'int', min: 0, max: 19 }, fallback: () => 10 },
  // A busy worker looks for its next batch this often, so handing it one does not have to wake it (encode/mailbox.ts).
  workerPollMs: { env: 'BATCHCAST_WORKER_POLL_MS', kind: { type: 'int', min: 1, max: 50, off: 0 }, fallback: () => 1 },
  poolSize: { env: 'BATCHCAST_POOL_SIZE', kind: { type: 'int', min: 1, max: 256 }, fallback: (c) => defaultPoolSize(c.workerNice!) },
  maxQueue: { env: 'BATCHCAST_MAX_QUEUE', kind: { type: 'int', min: 1, max: 1_000_000 }, fallback: (c) => c.poolSize! * 4 },
  encodeTimeoutMs: { env: 'BATCHCAST_ENCODE_TIMEOUT_MS', kind: { type: 'int', min: 100, max: 600_000 }, fallback: () => 5_000 },
  maxPendingMessages: { env: 'BATCHCAST_MAX_PENDING_MESSAGES', kind: { type: 'int', min: 1, max: 100_000_000 }, fallback: () => 100_000 },
  maxMessageBytes: { env: 'BATCHCAST_MAX_MESSAGE_BYTES', kind: { type: 'int', min: 1, max: 2 ** 31 - 1 }, fallback: () => 16 * MiB },
  validateSerialized: { env: 'BATCHCAST_VALIDATE_SERIALIZED', kind: { type: 'bool' }, fallback: () => true },
  maxBufferedBytes: { env: 'BATCHCAST_MAX_BUFFERED_BYTES', kind: { type: 'int', min: 1024, max: 2 ** 40 }, fallback: () => 16 * MiB },
  slowClientPolicy: { env: 'BATCHCAST_SLOW_CLIENT_POLICY', kind: { type: 'enum', values: ['drop', 'close'] }, fallback: () => 'drop' },
  maxPayload: { env: 'BATCHCAST_MAX_PAYLOAD', kind: { type: 'int', min: 64, max: 2 ** 30 }, fallback: () => 64 * 1024 },
  maxSubscriptionsPerClient: { env: 'BATCHCAST_MAX_SUBSCRIPTIONS', kind: { type: 'int', min: 1, max: 1_000_000 }, fallback: () => 1_000 },
  // Below 100 ms a client on a busy network could not answer in time: every one would be cut off.
  heartbeatIntervalMs: { env: 'BATCHCAST_HEARTBEAT_INTERVAL_MS', kind: { type: 'int', min: 100, max: 3_600_000, off: 0 }, fallback: () => 30_000 },
  closeTimeoutMs: { env: 'BATCHCAST_CLOSE_TIMEOUT_MS', kind: { type: 'int', min: 0, max: 600_000 }, fallback: () => 5_000 },
  // History keeps finished frames (compressed batches): see README "History and recovery" for the measured cost.
  historyMessages: { env: 'BATCHCAST_HISTORY_MESSAGES', kind: { type: 'int', min: 0, max: 100_000_000 }, fallback: () => 1_000_000 },
  historyBytes: { env: 'BATCHCAST_HISTORY_BYTES', kind: { type: 'int', min: 0, max: 2 ** 40 }, fallback: () => 16 * MiB },
  historyTtlMs: { env: 'BATCHCAST_HISTORY_TTL_MS', kind: { type: 'int', min: 0, max: 86_400_000 }, fallback: () => 120_000 },
  historyTotalBytes: { env: 'BATCHCAST_HISTORY_TOTAL_BYTES', kind: { type: 'int', min: 0, max: 2 ** 42 }, fallback: () => 128 * MiB },
  // A cluster: see README "Several nodes (Redis)".
  redisUrl: { env: 'BATCHCAST_REDIS_URL', kind: { type: 'text', pattern: /^rediss?:\/\/[^\s,]+(,rediss?:\/\/[^\s,]+)*$/, expected: 'a redis:// or rediss:// URL (comma-separated seed URLs for a Redis Cluster)' }, fallback: () => undefined },
  redisCluster: { env: 'BATCHCAST_REDIS_CLUSTER', kind: { type: 'bool' }, fallback: () => false },
  redisPrefix: { env: 'BATCHCAST_REDIS_PREFIX', kind: { type: 'text', pattern: /^[A-Za-z0-9_.:-]{0,64}$/, expected: 'up to 64 characters of [A-Za-z0-9_.:-]' }, fallback: () => 'bc:' },
  redisMaxPending: { env: 'BATCHCAST_REDIS_MAX_PENDING', kind: { type: 'int', min: 1, max: 1_000_000 }, fallback: () => 1_000 },
  redisStreamLength: { env: 'BATCHCAST_REDIS_STREAM_LENGTH', kind: { type: 'int', min: 1, max: 100_000_000 }, fallback: () => 10_000 },
  redisKeyTtlMs: { env: 'BATCHCAST_REDIS_KEY_TTL_MS', kind: { type: 'int', min: 1_000, max: 2 ** 31 - 1 }, fallback: () => 7 * 24 * 3_600_000 },
  redisConnectTimeoutMs: { env: 'BATCHCAST_REDIS_CONNECT_TIMEOUT_MS', kind: { type: 'int', min: 100, max: 600_000 }, fallback: () => 10_000 },
  // Adaptive tuning: see README "Adaptive tuning"; both targets off by default.
  targetLatencyMs: { env: 'BATCHCAST_TARGET_LATENCY_MS', kind: { type: 'int', min: 1, max: 600_000, off: 0 }, fallback: () => 0 },
  targetBytesPerSecond: { env: 'BATCHCAST_TARGET_BYTES_PER_SECOND', kind: { type: 'int', min: 1, max: 2 ** 45, off: 0 }, fallback: () => 0 },
  adaptiveIntervalMs: { env: 'BATCHCAST_ADAPTIVE_INTERVAL_MS', kind: { type: 'int', min: 100, max: 60_000 }, fallback: () => 1_000 },
  // A batch's writes to a large audience are spread over event-loop turns of at most this long (fanout/slices.ts).
  fanoutSliceMs: { env: 'BATCHCAST_FANOUT_SLICE_MS', kind: { type: 'int', min: 1, max: 1_000 }, fallback: () => 4 },
  // A channel whose batch took this long to pack for its worker is packed in segments over event-loop turns (encode/sliced-handoff.ts).
  handoffSliceMs: { env: 'BATCHCAST_HANDOFF_SLICE_MS', kind: { type: 'int', min: 1, max: 1_000, off: 0 }, fallback: () => 2 },
};

/**
 * Resolves options against the environment, the preset and the defaults, and
 * validates every value. Throws {@link InvalidConfigError} naming the option or
 * variable at fault and the accepted values.
 */
export function resolveConfig(options: ConfigOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  const config = resolveTable(SETTINGS, options, env);
  if (config.format !== 'batchcast' && config.codec !== 'json') {
    throw new InvalidConfigError('format', `"${config.format}" carries JSON text; it needs codec "json" (the codec is "${config.codec}")`);
  }
  return config;
}

/** Settings of the standalone server (`batchcast serve`) beyond the broadcaster's own. */
export interface ServerConfig {
  port: number;
  host: string;
  path: string;
  /** Bearer token for `POST /publish`; unset: publishing over HTTP from loopback peers only. */
  publishToken: string | undefined;
  /** Accepted `Origin`s for WebSocket upgrades; unset: any. */
  allowedOrigins: string[] | undefined;
  demoRate: number;
  /** What `serve` logs (pino levels). */
  logLevel: LogLevel;
}

/** The server's settings table (CLI flags and environment variables), validated like {@link SETTINGS}. */
export const SERVER_SETTINGS: Readonly<Record<keyof ServerConfig, Setting<ServerConfig>>> = {
  port: { env: 'PORT', kind: { type: 'int', min: 0, max: 65_535 }, fallback: () => 8080 },
  host: { env: 'HOST', kind: { type: 'text', pattern: /^[^\s/]+$/, expected: 'a host name or IP address' }, fallback: () => '0.0.0.0' },
  path: { env: 'BATCHCAST_PATH', kind: { type: 'text', pattern: /^\/[^\s?#]*$/, expected: 'a URL path starting with "/"' }, fallback: () => '/ws' },
  publishToken: { env: 'BATCHCAST_PUBLISH_TOKEN', kind: { type: 'text', pattern: /^\S+$/, expected: 'a token without spaces' }, fallback: () => undefined },
  allowedOrigins: {
    env: 'BATCHCAST_ALLOWED_ORIGINS',
    kind: { type: 'list', pattern: /^(null|[a-z][a-z0-9+.-]*:\/\/[^\s/]+)$/i, expected: 'comma-separated origins such as https://example.com' },
    fallback: () => undefined,
  },
  demoRate: { env: 'BATCHCAST_DEMO_RATE', kind: { type: 'int', min: 1, max: 10_000_000 }, fallback: () => 2000 },
  logLevel: { env: 'BATCHCAST_LOG_LEVEL', kind: { type: 'enum', values: LOG_LEVELS }, fallback: () => 'info' },
};

/** Validates one server setting given as an option (e.g. the broadcaster's `path`); returns it. */
export function checkServerOption<K extends keyof ServerConfig>(key: K, value: ServerConfig[K]): ServerConfig[K] {
  return checkValue(key, value, SERVER_SETTINGS[key].kind) as ServerConfig[K];
}

/** Resolves and validates the server's settings: option (CLI flag) > environment > default. */
export function resolveServerConfig(options: Partial<ServerConfig> = {}, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  return resolveTable(SERVER_SETTINGS, options, env);
}

// Resolution follows the table's order where a fallback reads another setting (preset first, poolSize before maxQueue).
function resolveTable<T>(table: Readonly<Record<keyof T, Setting<T>>>, options: Partial<T>, env: NodeJS.ProcessEnv): T {
  if (options === null || typeof options !== 'object') throw new InvalidConfigError('options', 'expected an object');
  const resolved: Partial<T> = {};
  for (const key of Object.keys(table) as (keyof T & string)[]) {
    const setting = table[key];
    const explicit = (options as Record<string, unknown>)[key];
    const raw = env[setting.env];
    let value: unknown;
    if (explicit !== undefined) value = checkValue(key, explicit, setting.kind);
    else if (raw !== undefined && raw !== '') value = checkValue(setting.env, parseText(setting.env, raw, setting.kind), setting.kind);
    else value = setting.fallback(resolved);
    (resolved as Record<string, unknown>)[key] = value;
  }
  return resolved as T;
}

/**
 * Parses a setting given as text (an environment variable or a CLI flag) and
 * validates it; `source` names it in the error.
 */
export function parseSetting(key: keyof ResolvedConfig, raw: string, source: string): unknown {
  return parseAndCheck(SETTINGS[key].kind, raw, source);
}

/** {@link parseSetting} for the server's settings. */
export function parseServerSetting(key: keyof ServerConfig, raw: string, source: string): unknown {
  return parseAndCheck(SERVER_SETTINGS[key].kind, raw, source);
}

function parseAndCheck(kind: Kind, raw: string, source: string): unknown {
  return checkValue(source, parseText(source, raw, kind), kind);
}

function parseText(name: string, raw: string, kind: Kind): unknown {
  const text = raw.trim();
  switch (kind.type) {
    case 'int':
      if (!/^-?\d+$/.test(text)) throw new InvalidConfigError(name, `"${raw}" is not an integer; expected ${intRange(kind)}`);
      return Number(text);
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(text)) return true;
      if (/^(0|false|no|off)$/i.test(text)) return false;
      throw new InvalidConfigError(name, `"${raw}" is not a boolean; expected true/false, 1/0, yes/no or on/off`);
    case 'list':
      return text.split(',').map((item) => item.trim()).filter((item) => item !== '');
    default:
      return text;
  }
}

function intRange(kind: { min: number; max: number; off?: number }): string {
  return `${kind.min}..${kind.max}${kind.off === undefined ? '' : `, or ${kind.off} to turn it off`}`;
}

function checkValue(name: string, value: unknown, kind: Kind): unknown {
  const shown = () => JSON.stringify(value) ?? String(value);
  switch (kind.type) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value) || ((value < kind.min || value > kind.max) && value !== kind.off)) {
        throw new InvalidConfigError(name, `${shown()} is out of range; expected an integer ${intRange(kind)}`);
      }
      return value;
    case 'enum':
      if (typeof value !== 'string' || !kind.values.includes(value)) {
        throw new InvalidConfigError(name, `${shown()} is not accepted; expected one of ${kind.values.join(', ')}`);
      }
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw new InvalidConfigError(name, `${String(value)} is not a boolean`);
      return value;
    case 'text':
      if (typeof value !== 'string' || !kind.pattern.test(value)) throw new InvalidConfigError(name, `${shown()} is not accepted; expected ${kind.expected}`);
      return value;
    case 'list':
      if (!Array.isArray(value) || value.length === 0 || !value.every((item) => typeof item === 'string' && kind.pattern.test(item))) {
        throw new InvalidConfigError(name, `${shown()} is not accepted; expected ${kind.expected}`);
      }
      return value;
  }
}
