/**
 * Every tunable, validated in one place. Precedence, per setting:
 * explicit option > environment variable > preset > built-in default.
 */
import { availableParallelism } from 'node:os';
import { InvalidConfigError } from './errors.js';
import type { Codec } from './protocol/envelope.js';

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
  codec: Codec;
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
}

/** Tunables as options: any subset, each overriding its environment variable. */
export type ConfigOptions = Partial<ResolvedConfig>;

type Kind =
  | { type: 'int'; min: number; max: number }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'bool' };

interface Setting {
  env: string;
  kind: Kind;
  /** Built-in default; presets override the settings they name. */
  fallback: (partial: Partial<ResolvedConfig>) => unknown;
}

const MiB = 1024 * 1024;

/** The one table of settings. Keep docs/configuration in README.md in step with it. */
export const SETTINGS: Readonly<Record<keyof ResolvedConfig, Setting>> = {
  preset: { env: 'BATCHCAST_PRESET', kind: { type: 'enum', values: Object.keys(PRESETS) }, fallback: () => 'balanced' },
  batchSize: { env: 'BATCHCAST_BATCH_SIZE', kind: { type: 'int', min: 1, max: 100_000 }, fallback: (c) => PRESETS[c.preset!].batchSize },
  batchDelayMs: { env: 'BATCHCAST_BATCH_DELAY_MS', kind: { type: 'int', min: 0, max: 60_000 }, fallback: (c) => PRESETS[c.preset!].batchDelayMs },
  compressionThreshold: { env: 'BATCHCAST_COMPRESSION_THRESHOLD', kind: { type: 'int', min: 0, max: 2 ** 31 - 1 }, fallback: (c) => PRESETS[c.preset!].compressionThreshold },
  compressionLevel: { env: 'BATCHCAST_COMPRESSION_LEVEL', kind: { type: 'int', min: 0, max: 9 }, fallback: (c) => PRESETS[c.preset!].compressionLevel },
  codec: { env: 'BATCHCAST_CODEC', kind: { type: 'enum', values: ['json', 'msgpack'] }, fallback: () => 'json' },
  poolSize: { env: 'BATCHCAST_POOL_SIZE', kind: { type: 'int', min: 1, max: 256 }, fallback: () => Math.max(1, availableParallelism() - 1) },
  maxQueue: { env: 'BATCHCAST_MAX_QUEUE', kind: { type: 'int', min: 1, max: 1_000_000 }, fallback: (c) => c.poolSize! * 4 },
  encodeTimeoutMs: { env: 'BATCHCAST_ENCODE_TIMEOUT_MS', kind: { type: 'int', min: 10, max: 600_000 }, fallback: () => 5_000 },
  maxPendingMessages: { env: 'BATCHCAST_MAX_PENDING_MESSAGES', kind: { type: 'int', min: 1, max: 100_000_000 }, fallback: () => 100_000 },
  maxMessageBytes: { env: 'BATCHCAST_MAX_MESSAGE_BYTES', kind: { type: 'int', min: 1, max: 2 ** 31 - 1 }, fallback: () => 16 * MiB },
  validateSerialized: { env: 'BATCHCAST_VALIDATE_SERIALIZED', kind: { type: 'bool' }, fallback: () => true },
  maxBufferedBytes: { env: 'BATCHCAST_MAX_BUFFERED_BYTES', kind: { type: 'int', min: 1024, max: 2 ** 40 }, fallback: () => 16 * MiB },
  slowClientPolicy: { env: 'BATCHCAST_SLOW_CLIENT_POLICY', kind: { type: 'enum', values: ['drop', 'close'] }, fallback: () => 'drop' },
  maxPayload: { env: 'BATCHCAST_MAX_PAYLOAD', kind: { type: 'int', min: 64, max: 2 ** 30 }, fallback: () => 64 * 1024 },
  maxSubscriptionsPerClient: { env: 'BATCHCAST_MAX_SUBSCRIPTIONS', kind: { type: 'int', min: 1, max: 1_000_000 }, fallback: () => 1_000 },
  heartbeatIntervalMs: { env: 'BATCHCAST_HEARTBEAT_INTERVAL_MS', kind: { type: 'int', min: 0, max: 3_600_000 }, fallback: () => 30_000 },
  closeTimeoutMs: { env: 'BATCHCAST_CLOSE_TIMEOUT_MS', kind: { type: 'int', min: 0, max: 600_000 }, fallback: () => 5_000 },
};

// Resolution order matters where a fallback reads another setting (preset first, poolSize before maxQueue).
const ORDER = Object.keys(SETTINGS) as (keyof ResolvedConfig)[];

/**
 * Resolves options against the environment, the preset and the defaults, and
 * validates every value. Throws {@link InvalidConfigError} naming the option or
 * variable at fault and the accepted values.
 */
export function resolveConfig(options: ConfigOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  if (options === null || typeof options !== 'object') throw new InvalidConfigError('options', 'expected an object');
  const resolved: Partial<ResolvedConfig> = {};
  for (const key of ORDER) {
    const setting = SETTINGS[key];
    const explicit = (options as Record<string, unknown>)[key];
    const raw = env[setting.env];
    let value: unknown;
    if (explicit !== undefined) value = checkValue(key, explicit, setting.kind);
    else if (raw !== undefined && raw !== '') value = parseSetting(key, raw, setting.env);
    else value = setting.fallback(resolved);
    (resolved as Record<string, unknown>)[key] = value;
  }
  return resolved as ResolvedConfig;
}

/**
 * Parses a setting given as text (an environment variable or a CLI flag) and
 * validates it; `source` names it in the error.
 */
export function parseSetting(key: keyof ResolvedConfig, raw: string, source: string): unknown {
  const kind = SETTINGS[key].kind;
  return checkValue(source, parseEnv(source, raw, kind), kind);
}

function parseEnv(name: string, raw: string, kind: Kind): unknown {
  const text = raw.trim();
  if (kind.type === 'int') {
    if (!/^-?\d+$/.test(text)) throw new InvalidConfigError(name, `"${raw}" is not an integer; expected ${kind.min}..${kind.max}`);
    return Number(text);
  }
  if (kind.type === 'bool') {
    if (/^(1|true|yes|on)$/i.test(text)) return true;
    if (/^(0|false|no|off)$/i.test(text)) return false;
    throw new InvalidConfigError(name, `"${raw}" is not a boolean; expected true/false, 1/0, yes/no or on/off`);
  }
  return text;
}

function checkValue(name: string, value: unknown, kind: Kind): unknown {
  switch (kind.type) {
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < kind.min || value > kind.max) {
        throw new InvalidConfigError(name, `${JSON.stringify(value) ?? String(value)} is out of range; expected an integer ${kind.min}..${kind.max}`);
      }
      return value;
    case 'enum':
      if (typeof value !== 'string' || !kind.values.includes(value)) {
        throw new InvalidConfigError(name, `${JSON.stringify(value) ?? String(value)} is not accepted; expected one of ${kind.values.join(', ')}`);
      }
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw new InvalidConfigError(name, `${String(value)} is not a boolean`);
      return value;
  }
}
