import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SERVER_SETTINGS, SETTINGS, resolveServerConfig } from '../src/config.js';
import { InvalidConfigError, PRESETS, createBroadcaster, resolveConfig } from '../src/index.js';

describe('resolveConfig', () => {
  it('defaults to the balanced preset', () => {
    const config = resolveConfig({}, {});
    expect(config).toMatchObject({ preset: 'balanced', batchSize: 500, batchDelayMs: 20, compressionThreshold: 1000, compressionLevel: 6, codec: 'json' });
    expect(config.poolSize).toBeGreaterThanOrEqual(1);
  });

  it.each(Object.entries(PRESETS))('preset %s sets its four values', (name, values) => {
    expect(resolveConfig({ preset: name as keyof typeof PRESETS }, {})).toMatchObject(values);
  });

  it('has the reference values for each preset', () => {
    expect(PRESETS.realtime).toEqual({ batchSize: 100, batchDelayMs: 10, compressionThreshold: 500, compressionLevel: 9 });
    expect(PRESETS.throughput).toEqual({ batchSize: 1000, batchDelayMs: 50, compressionThreshold: 2000, compressionLevel: 1 });
  });

  it('applies explicit option > environment > preset > default', () => {
    const env = { BATCHCAST_PRESET: 'throughput', BATCHCAST_BATCH_SIZE: '250', BATCHCAST_CODEC: 'msgpack' };
    const config = resolveConfig({ batchSize: 42 }, env);
    expect(config.batchSize).toBe(42); // option beats env
    expect(config.codec).toBe('msgpack'); // env beats default
    expect(config.batchDelayMs).toBe(50); // preset (from env) beats default
    expect(resolveConfig({}, env).batchSize).toBe(250); // env beats preset
    expect(resolveConfig({ preset: 'realtime' }, env).batchDelayMs).toBe(10); // option preset beats env preset
  });

  it('reads the pool size from BATCHCAST_POOL_SIZE and derives the queue bound from it', () => {
    const config = resolveConfig({}, { BATCHCAST_POOL_SIZE: '3' });
    expect(config.poolSize).toBe(3);
    expect(config.maxQueue).toBe(12);
  });

  it('parses booleans from the environment', () => {
    expect(resolveConfig({}, { BATCHCAST_VALIDATE_SERIALIZED: 'off' }).validateSerialized).toBe(false);
    expect(resolveConfig({}, { BATCHCAST_VALIDATE_SERIALIZED: 'yes' }).validateSerialized).toBe(true);
  });

  const bad: [string, () => unknown, string, RegExp][] = [
    ['non-number env', () => resolveConfig({}, { BATCHCAST_BATCH_SIZE: 'many' }), 'BATCHCAST_BATCH_SIZE', /not an integer; expected 1\.\.100000/],
    ['out-of-range env', () => resolveConfig({}, { BATCHCAST_COMPRESSION_LEVEL: '12' }), 'BATCHCAST_COMPRESSION_LEVEL', /expected an integer 0\.\.9/],
    ['fractional option', () => resolveConfig({ batchDelayMs: 2.5 }), 'batchDelayMs', /expected an integer 0\.\.60000/],
    ['zero pool size', () => resolveConfig({}, { BATCHCAST_POOL_SIZE: '0' }), 'BATCHCAST_POOL_SIZE', /expected an integer 1\.\.256/],
    ['unknown preset', () => resolveConfig({}, { BATCHCAST_PRESET: 'fast' }), 'BATCHCAST_PRESET', /expected one of realtime, balanced, throughput/],
    ['unknown codec option', () => resolveConfig({ codec: 'xml' as 'json' }), 'codec', /expected one of json, msgpack/],
    ['bad boolean', () => resolveConfig({}, { BATCHCAST_VALIDATE_SERIALIZED: 'maybe' }), 'BATCHCAST_VALIDATE_SERIALIZED', /not a boolean/],
  ];
  it.each(bad)('rejects a %s with BATCHCAST_INVALID_CONFIG naming the setting and range', (_label, run, setting, detail) => {
    let caught: unknown;
    try {
      run();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidConfigError);
    const error = caught as InvalidConfigError;
    expect(error.code).toBe('BATCHCAST_INVALID_CONFIG');
    expect(error.setting).toBe(setting);
    expect(error.message).toContain(setting);
    expect(error.message).toMatch(detail);
  });

  it('fails at start: createBroadcaster throws before opening anything', () => {
    expect(() => createBroadcaster({ noServer: true, env: { BATCHCAST_CODEC: 'protobuf' } })).toThrow(/BATCHCAST_CODEC.*expected one of json, msgpack/);
    expect(() => createBroadcaster({ env: {} })).toThrow(/exactly one of server, port or noServer/);
  });
});

describe('every setting', () => {
  type AnySetting = { env: string; kind: { type: string; min?: number; max?: number; off?: number; values?: readonly string[] } };
  /** One accepted and one refused text per kind, with the value the accepted text resolves to. */
  function samples(setting: AnySetting): { good: string; value: unknown; bad: string } {
    const { kind } = setting;
    if (kind.type === 'int') return { good: String(kind.max), value: kind.max, bad: String(kind.max! + 1) };
    if (kind.type === 'enum') return { good: kind.values!.at(-1)!, value: kind.values!.at(-1), bad: 'nope' };
    if (kind.type === 'bool') return { good: 'no', value: false, bad: 'maybe' };
    if (kind.type === 'list') return { good: 'https://a.example, https://b.example:8443', value: ['https://a.example', 'https://b.example:8443'], bad: 'not an origin' };
    return { good: '/feed', value: '/feed', bad: 'has space' };
  }

  /** Text settings whose accepted text is not a path. */
  const TEXT: Record<string, { good: string; bad: string }> = {
    redisUrl: { good: 'redis://127.0.0.1:6380/2', bad: 'http://127.0.0.1:6379' },
    redisPrefix: { good: 'app.bc:', bad: 'has space' },
  };

  it.each(Object.entries(SETTINGS))('%s is read from its variable, and a bad value fails naming it', (key, setting) => {
    const { good, value, bad } = TEXT[key] !== undefined ? { ...TEXT[key]!, value: TEXT[key]!.good } : samples(setting);
    expect((resolveConfig({}, { [setting.env]: good }) as unknown as Record<string, unknown>)[key]).toEqual(value);
    expect(() => resolveConfig({}, { [setting.env]: bad })).toThrow(new RegExp(`^${setting.env}: `));
  });

  it.each(Object.entries(SERVER_SETTINGS))('server setting %s is read from its variable, and a bad value fails naming it', (key, setting) => {
    const { good, value, bad } = samples(setting);
    const goodText = key === 'host' ? 'example.com' : key === 'publishToken' ? 'tok3n' : good;
    const expected = key === 'host' ? 'example.com' : key === 'publishToken' ? 'tok3n' : value;
    expect((resolveServerConfig({}, { [setting.env]: goodText }) as unknown as Record<string, unknown>)[key]).toEqual(expected);
    expect(() => resolveServerConfig({}, { [setting.env]: bad })).toThrow(new RegExp(`^${setting.env}: `));
  });

  it('accepts 0 for the heartbeat (off) but nothing between 0 and 100 ms', () => {
    expect(resolveConfig({ heartbeatIntervalMs: 0 }, {}).heartbeatIntervalMs).toBe(0);
    expect(() => resolveConfig({ heartbeatIntervalMs: 5 }, {})).toThrow(/expected an integer 100\.\.3600000, or 0 to turn it off/);
  });

  it('packs large batches over 2 ms turns by default; BATCHCAST_HANDOFF_SLICE_MS=0 packs them in one go', () => {
    expect(resolveConfig({}, {}).handoffSliceMs).toBe(2);
    expect(resolveConfig({}, { BATCHCAST_HANDOFF_SLICE_MS: '0' }).handoffSliceMs).toBe(0);
    expect(() => resolveConfig({}, { BATCHCAST_HANDOFF_SLICE_MS: '-1' })).toThrow(/^BATCHCAST_HANDOFF_SLICE_MS: /);
  });

  it('has busy workers poll every 1 ms by default; BATCHCAST_WORKER_POLL_MS=0 wakes them per batch', () => {
    expect(resolveConfig({}, {}).workerPollMs).toBe(1);
    expect(resolveConfig({}, { BATCHCAST_WORKER_POLL_MS: '0' }).workerPollMs).toBe(0);
    expect(resolveConfig({ workerPollMs: 5 }, { BATCHCAST_WORKER_POLL_MS: '0' }).workerPollMs).toBe(5);
    expect(() => resolveConfig({}, { BATCHCAST_WORKER_POLL_MS: '51' })).toThrow(/^BATCHCAST_WORKER_POLL_MS: /);
  });

  it('checks the broadcaster\'s path and allowedOrigins options', () => {
    expect(() => createBroadcaster({ noServer: true, env: {}, path: 'ws' })).toThrow(/path: "ws" is not accepted; expected a URL path starting with "\/"/);
    expect(() => createBroadcaster({ noServer: true, env: {}, allowedOrigins: ['app.example'] })).toThrow(/allowedOrigins: .* expected comma-separated origins/);
  });

  it('README documents exactly these variables, each with its option or flag', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const documented = new Set([...readme.matchAll(/^\| `[^`]+` \| `([A-Z_]+)` \|/gm)].map((m) => m[1]));
    documented.add('BATCHCAST_PUBLISH_TOKEN'); // its row has no flag: "| (none) |"
    const known = [...Object.values(SETTINGS), ...Object.values(SERVER_SETTINGS)].map((s) => s.env);
    expect([...documented].sort()).toEqual([...known].sort());
    for (const [key, setting] of Object.entries(SETTINGS)) expect(readme).toContain(`| \`${key}\` | \`${setting.env}\` |`);
    expect(readme).toContain('| (none) | `BATCHCAST_PUBLISH_TOKEN` |');
  });
});
