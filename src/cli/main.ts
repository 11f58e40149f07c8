#!/usr/bin/env node
/** The `batchcast` command: `serve` (default) and `tail`. */
import { parseArgs } from 'node:util';
import {
  SERVER_SETTINGS,
  SETTINGS,
  parseServerSetting,
  parseSetting,
  resolveServerConfig,
  type ConfigOptions,
  type ResolvedConfig,
  type ServerConfig,
} from '../config.js';
import { BatchcastError, InvalidConfigError } from '../errors.js';
import { closeOnSignals, serve } from './serve.js';
import { tail } from './tail.js';

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const SETTING_FLAGS = Object.fromEntries(Object.keys(SETTINGS).map((key) => [kebab(key), { type: 'string' as const }]));
// The publish token is read from the environment only: a flag would show it in `ps` output.
const SERVER_FLAG_KEYS = (Object.keys(SERVER_SETTINGS) as (keyof ServerConfig)[]).filter((key) => key !== 'publishToken');
const SERVER_FLAGS = Object.fromEntries(SERVER_FLAG_KEYS.map((key) => [kebab(key), { type: 'string' as const }]));

const USAGE = `Usage:
  batchcast serve [--port N] [--host H] [--path /ws] [--allowed-origins LIST] [--demo] [--demo-rate N] [--log-level L] [--<setting> value ...]
  batchcast tail <ws-url> <channel...> [--json] [--duration S] [--messages]

serve  WebSocket endpoint at --path (default /ws), a live page at GET /, POST /publish/:channel, GET /stats,
       GET /metrics (Prometheus), GET /healthz. Logs JSON lines (pino) on stdout: --log-level (env
       BATCHCAST_LOG_LEVEL: fatal, error, warn, info (default), debug, trace, silent).
       --port (env PORT, default 8080), --host (env HOST, default 0.0.0.0), --path (env BATCHCAST_PATH),
       --allowed-origins (env BATCHCAST_ALLOWED_ORIGINS, comma list; default any origin).
       --demo publishes a synthetic ticker feed (--demo-rate msgs/s, env BATCHCAST_DEMO_RATE, default 2000).
       Publish token: env BATCHCAST_PUBLISH_TOKEN only (never a flag, which ps would show).
       Settings (flag or env var; flags win):
${Object.entries(SETTINGS).map(([key, s]) => `         --${kebab(key).padEnd(30)} ${s.env}`).join('\n')}
tail   Subscribes and prints messages/s, bytes/s and the compression ratio once a second.
`;

async function main(argv: string[]): Promise<void> {
  const command = argv[0] !== undefined && !argv[0].startsWith('-') ? argv[0] : 'serve';
  const rest = command === argv[0] ? argv.slice(1) : argv;
  if (command === 'help' || rest.includes('--help') || rest.includes('-h')) {
    console.log(USAGE);
    return;
  }
  if (command === 'serve') return runServe(rest);
  if (command === 'tail') return runTail(rest);
  throw new InvalidConfigError('command', `unknown command "${command}"; expected serve or tail\n\n${USAGE}`);
}

async function runServe(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { demo: { type: 'boolean', default: false }, ...SERVER_FLAGS, ...SETTING_FLAGS },
    strict: true,
  });
  const flags = values as Record<string, unknown>;
  const settings: ConfigOptions = {};
  for (const key of Object.keys(SETTINGS) as (keyof ResolvedConfig)[]) {
    const raw = flags[kebab(key)];
    if (typeof raw === 'string') (settings as Record<string, unknown>)[key] = parseSetting(key, raw, `--${kebab(key)}`);
  }
  const server: Partial<ServerConfig> = {};
  for (const key of SERVER_FLAG_KEYS) {
    const raw = flags[kebab(key)];
    if (typeof raw === 'string') (server as Record<string, unknown>)[key] = parseServerSetting(key, raw, `--${kebab(key)}`);
  }
  const served = await serve({ ...resolveServerConfig(server, process.env), demo: values.demo === true, settings });
  closeOnSignals(served, served.logger);
}

async function runTail(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: { json: { type: 'boolean', default: false }, duration: { type: 'string' }, messages: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const [url, ...channels] = positionals;
  if (url === undefined || channels.length === 0) throw new InvalidConfigError('tail', `expected a URL and at least one channel\n\n${USAGE}`);
  await tail({ url, channels, json: values.json === true, durationSeconds: integer(values.duration, '--duration', 0, 0, 86_400), messages: values.messages === true });
}

function integer(raw: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || value < min || value > max) throw new InvalidConfigError(name, `"${raw}" is not accepted; expected an integer ${min}..${max}`);
  return value;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof BatchcastError) {
    console.error(`batchcast: ${error.code}: ${error.message}`);
    process.exit(2);
  }
  if (error instanceof TypeError && (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    console.error(`batchcast: ${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
});
