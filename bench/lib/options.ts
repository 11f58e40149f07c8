/** Command line of `node dist/bench/run.js`: flags, the quick / full / smoke profiles, and validation. */
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { PRESETS, resolveConfig, type PresetName } from '../../src/config.js';
import { VARIANTS, type Scenario, type VariantName } from './ipc.js';
import { SHAPES, type Shape } from './workload.js';

export type ScenarioName = Scenario | 'encode' | 'history' | 'cluster';
export const SCENARIOS: readonly ScenarioName[] = ['fanout', 'large', 'overload', 'encode', 'saturation', 'history', 'cluster'];

export interface BenchOptions {
  profile: 'quick' | 'full' | 'smoke';
  scenarios: ScenarioName[];
  /** Variants for fanout / large / saturation (each scenario keeps its own default unless set). */
  fanoutVariants: VariantName[];
  largeVariants: VariantName[];
  /** Variants also run at every payload size below the largest (stall vs payload size). */
  sizeVariants: VariantName[];
  saturationVariants: VariantName[];
  overloadVariants: VariantName[];
  clients: number[];
  rate: number;
  shape: Shape;
  warmupMs: number;
  durationMs: number;
  graceMs: number;
  tickMs: number;
  probes: number;
  repeat: number;
  poolSize: number;
  workerNice: number;
  fanoutSliceMs: number;
  handoffSliceMs: number;
  workerPollMs: number;
  preset: PresetName;
  batchSize: number;
  batchDelayMs: number;
  compressionThreshold: number;
  compressionLevel: number;
  eldResolutionMs: number | null;
  largeSizesKB: number[];
  largeRate: number;
  largeClients: number;
  satClients: number;
  /** Overload: subscribers, rate, and µs of work per frame on each client (so they cannot keep up). */
  overloadClients: number;
  overloadRate: number;
  overloadWorkUs: number;
  satStart: number;
  satMax: number;
  satBisect: number;
  satDurationMs: number;
  encodeLevels: number[];
  encodeCodecs: ('json' | 'msgpack')[];
  encodePools: number[];
  encodeRoundMs: number;
  encodeRounds: number;
  /** History: seconds of publishing per memory row, and the reconnect storm. */
  historySeconds: number;
  historyRate: number;
  stormClients: number;
  stormRate: number;
  stormOutageMs: number;
  /** Cluster: the Redis to use, and clients per node. */
  redisUrl: string;
  clusterClients: number;
  /** Cluster: also run Socket.IO with its Redis adapter. */
  clusterSocketIo: boolean;
  out: string;
  charts: boolean;
  /** Re-render the charts of an earlier results JSON into --out, and run nothing. */
  chartsFrom: string | null;
}

/** The library's own defaults on this machine (no options, no environment). */
const LIBRARY = resolveConfig({}, {});

export const HELP = `batchcast benchmark suite: batchcast next to the servers you would write instead.

Usage: npm run bench -- [flags]        (or: node dist/bench/run.js [flags] after npm run build)

Profiles (flags given after a profile override it):
  (default)              quick suite, about 2-3 minutes on 2 cores
  --full                 longer windows, more payload sizes, saturation bisection (~10-15 min)
  --smoke                seconds; tiny workload (what npm test runs)

Selection:
  --scenarios LIST       fanout,large,encode,saturation,history,cluster (default: all; cluster needs Redis)
  --variants LIST        variants for fanout/large/saturation: ${VARIANTS.join(',')}
  --codec C              batchcast codecs to run: json, msgpack or both (default both)
  --clients LIST         fan-out subscriber counts (default 20,200)
  --rate N               fan-out publish rate, msgs/s (default 20000)
  --shape S              fan-out/saturation message shape: ${SHAPES.filter((s) => s !== 'snapshot').join(', ')} (default trade, ~160 B)
  --duration MS          measured window per row (quick 1500, full 5000)
  --warmup MS            publishing before the window (quick 500, full 1000)
  --repeat N             run fan-out and large rows N times, interleaved; medians reported (default 1)

batchcast and baselines:
  --pool N               batchcast worker threads (default: the library's, ${LIBRARY.poolSize} here)
  --worker-nice N        batchcast encoder threads' nice increment, 0-19 (default: the library's, ${LIBRARY.workerNice})
  --fanout-slice-ms N    batchcast's longest fan-out slice per event-loop turn, ms (default: the library's, ${LIBRARY.fanoutSliceMs})
  --handoff-slice-ms N   batchcast's longest packing of one batch per event-loop turn, ms; 0: always in one go (default: the library's, ${LIBRARY.handoffSliceMs})
  --worker-poll-ms N     how often a busy batchcast worker looks for its next batch, ms; 0: woken per batch (default: the library's, ${LIBRARY.workerPollMs})
  --preset P             ${Object.keys(PRESETS).join(', ')} (default balanced: 500 msgs / 20 ms, threshold 1000, level 6)
  --batch-size N, --batch-delay MS, --threshold BYTES, --level 0-9    override the preset

Scenario settings:
  --large-sizes LIST     large-payload sizes in KB (quick 128,1024; full 16,128,1024,4096)
  --large-rate N         large messages per second (default 10)
  --large-clients N      subscribers in the large scenario (default 10)
  --sat-clients N        subscribers in the saturation scenario (default 20)
  --overload-clients N   subscribers in the overload scenario (default 200)
  --overload-rate N      msgs/s in the overload scenario (default 10000)
  --overload-work-us N   CPU µs each client spends per frame there, so the clients cannot keep up (default 120)
  --sat-start N          first saturation rate (default 50000); doubles until a variant falls behind
  --sat-max N            highest rate tried (default 3200000)
  --sat-bisect N         bisection steps after the first failure (quick 0, full 2)
  --encode-levels LIST   deflate levels for encode-only (default 1,6,9)
  --encode-pools LIST    pool sizes for encode-only (default 1..cores)
  --history-seconds N    history memory: seconds of publishing per row (quick 8, full 30)
  --history-rate N       history memory: msgs/s (default 20000)
  --storm-clients N      reconnect storm: clients that drop and recover at once (default 1000)
  --storm-rate N         reconnect storm: msgs/s on the channel (default 5000)
  --storm-outage MS      reconnect storm: how long the clients are away (default 2000)
  --redis-url URL        cluster: the Redis to use (default redis://127.0.0.1:6379)
  --cluster-clients N    cluster: clients per node (default 20)
  --no-socketio          cluster: skip the Socket.IO rows (e.g. with many clients: it sends 14x the bytes)

Measurement:
  --tick-ms N            publish a burst every N ms (default 5)
  --eld-resolution MS    monitorEventLoopDelay resolution (default 10 for fanout/saturation, 1 for large)
  --probes N             clients per row that decode everything and measure latency (default 2)
  --out DIR              results directory (default bench/results)
  --no-charts            skip the SVG charts
  --charts-from FILE     only re-render the charts of a results JSON into --out (default: next to FILE)
  -h, --help             this text
`;

const list = (text: string) => text.split(',').map((s) => s.trim()).filter((s) => s !== '');
const ints = (text: string, name: string) => list(text).map((s) => int(s, name));

function int(text: string, name: string, min = 0): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name}: "${text}" is not an integer >= ${min}`);
  return value;
}

function oneOf<T extends string>(value: string, allowed: readonly T[], name: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`--${name}: "${value}" is not one of ${allowed.join(', ')}`);
  return value as T;
}

/** Parses argv into options; throws with a message naming the bad flag. Returns null for --help. */
export function parseOptions(argv: string[], defaultOut: string): BenchOptions | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      full: { type: 'boolean' },
      smoke: { type: 'boolean' },
      scenarios: { type: 'string' },
      variants: { type: 'string' },
      codec: { type: 'string' },
      clients: { type: 'string' },
      rate: { type: 'string' },
      shape: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      repeat: { type: 'string' },
      pool: { type: 'string' },
      'worker-nice': { type: 'string' },
      'fanout-slice-ms': { type: 'string' },
      'handoff-slice-ms': { type: 'string' },
      'worker-poll-ms': { type: 'string' },
      preset: { type: 'string' },
      'batch-size': { type: 'string' },
      'batch-delay': { type: 'string' },
      threshold: { type: 'string' },
      level: { type: 'string' },
      'large-sizes': { type: 'string' },
      'large-rate': { type: 'string' },
      'large-clients': { type: 'string' },
      'sat-clients': { type: 'string' },
      'overload-clients': { type: 'string' },
      'overload-rate': { type: 'string' },
      'overload-work-us': { type: 'string' },
      'sat-start': { type: 'string' },
      'sat-max': { type: 'string' },
      'sat-bisect': { type: 'string' },
      'encode-levels': { type: 'string' },
      'encode-pools': { type: 'string' },
      'tick-ms': { type: 'string' },
      'eld-resolution': { type: 'string' },
      probes: { type: 'string' },
      out: { type: 'string' },
      'no-charts': { type: 'boolean' },
      'charts-from': { type: 'string' },
      'history-seconds': { type: 'string' },
      'history-rate': { type: 'string' },
      'storm-clients': { type: 'string' },
      'storm-rate': { type: 'string' },
      'storm-outage': { type: 'string' },
      'redis-url': { type: 'string' },
      'cluster-clients': { type: 'string' },
      'no-socketio': { type: 'boolean' },
    },
  });
  if (values.help === true) return null;
  if (values.full === true && values.smoke === true) throw new Error('--full and --smoke exclude each other');
  const cores = availableParallelism();
  const profile = values.smoke === true ? 'smoke' : values.full === true ? 'full' : 'quick';
  const preset = oneOf(values.preset ?? 'balanced', Object.keys(PRESETS) as PresetName[], 'preset');
  const p = PRESETS[preset];
  const allPools = Array.from({ length: cores }, (_, i) => i + 1);

  const o: BenchOptions = {
    profile,
    scenarios: [...SCENARIOS],
    fanoutVariants: ['producer', 'producer-pre', 'naive', 'seed-inline', 'inline-async', 'ws-pmd', 'write-floor', 'batchcast', 'batchcast-pre', 'batchcast-msgpack', 'batchcast-pmd'],
    largeVariants: ['producer', 'naive', 'seed-inline', 'inline-async', 'ws-pmd', 'batchcast', 'batchcast-pre', 'batchcast-msgpack', 'batchcast-pmd'],
    sizeVariants: ['seed-inline', 'inline-async', 'batchcast', 'batchcast-pre'],
    saturationVariants: ['seed-inline', 'inline-async', 'batchcast', 'batchcast-pre'],
    overloadVariants: ['seed-inline', 'inline-async', 'write-floor', 'batchcast'],
    clients: [20, 200],
    rate: 20_000,
    shape: 'trade',
    warmupMs: 500,
    durationMs: 1500,
    graceMs: 1500,
    tickMs: 5,
    probes: 2,
    repeat: 1,
    poolSize: LIBRARY.poolSize,
    workerNice: LIBRARY.workerNice,
    fanoutSliceMs: LIBRARY.fanoutSliceMs,
    handoffSliceMs: LIBRARY.handoffSliceMs,
    workerPollMs: LIBRARY.workerPollMs,
    preset,
    batchSize: p.batchSize,
    batchDelayMs: p.batchDelayMs,
    compressionThreshold: p.compressionThreshold,
    compressionLevel: p.compressionLevel,
    eldResolutionMs: null,
    largeSizesKB: [128, 1024],
    largeRate: 10,
    largeClients: 10,
    satClients: 20,
    overloadClients: 200,
    overloadRate: 10_000,
    overloadWorkUs: 120,
    satStart: 50_000,
    satMax: 3_200_000,
    satBisect: 0,
    satDurationMs: 1000,
    encodeLevels: [1, 6, 9],
    encodeCodecs: ['json', 'msgpack'],
    encodePools: allPools,
    encodeRoundMs: 300,
    encodeRounds: 2,
    historySeconds: 8,
    historyRate: 20_000,
    stormClients: 1000,
    stormRate: 5000,
    stormOutageMs: 2000,
    redisUrl: 'redis://127.0.0.1:6379',
    clusterClients: 20,
    clusterSocketIo: true,
    out: defaultOut,
    charts: true,
    chartsFrom: null,
  };
  if (profile === 'full') {
    Object.assign(o, {
      warmupMs: 1000, durationMs: 5000, graceMs: 3000, largeSizesKB: [16, 128, 1024, 4096], satBisect: 2, satDurationMs: 3000,
      saturationVariants: ['naive', 'seed-inline', 'inline-async', 'ws-pmd', 'batchcast', 'batchcast-pre', 'batchcast-msgpack'],
      sizeVariants: ['naive', 'seed-inline', 'inline-async', 'ws-pmd', 'batchcast', 'batchcast-pre', 'batchcast-msgpack'],
      encodeRoundMs: 1000, encodeRounds: 3, historySeconds: 30,
    } satisfies Partial<BenchOptions>);
  }
  if (profile === 'smoke') {
    Object.assign(o, {
      clients: [3], rate: 2000, warmupMs: 200, durationMs: 400, graceMs: 3000, largeSizesKB: [16], largeClients: 2, largeRate: 20,
      sizeVariants: [], overloadClients: 3, overloadRate: 2000, overloadWorkUs: 2000, overloadVariants: ['seed-inline', 'batchcast'], satClients: 2, satStart: 2000, satMax: 2000, satDurationMs: 300, saturationVariants: ['seed-inline', 'batchcast'],
      encodeLevels: [6], encodePools: [1], encodeRoundMs: 50, encodeRounds: 1,
      historySeconds: 1, historyRate: 2000, stormClients: 20, stormRate: 1000, stormOutageMs: 300, clusterClients: 3,
    } satisfies Partial<BenchOptions>);
  }

  if (values.scenarios !== undefined) o.scenarios = list(values.scenarios).map((s) => oneOf(s, SCENARIOS, 'scenarios'));
  if (values.variants !== undefined) {
    const chosen = list(values.variants).map((v) => oneOf(v, VARIANTS, 'variants'));
    o.fanoutVariants = chosen;
    o.largeVariants = chosen;
    o.sizeVariants = chosen;
    o.saturationVariants = chosen.filter((v) => !v.startsWith('producer'));
    o.overloadVariants = chosen.filter((v) => !v.startsWith('producer'));
  }
  if (values.codec !== undefined) {
    const codec = oneOf(values.codec, ['json', 'msgpack', 'both'] as const, 'codec');
    const drop = (v: VariantName) => (codec === 'json' && v === 'batchcast-msgpack') || (codec === 'msgpack' && (v === 'batchcast' || v === 'batchcast-pre' || v === 'batchcast-pmd' || v === 'batchcast-adaptive'));
    o.fanoutVariants = o.fanoutVariants.filter((v) => !drop(v));
    o.largeVariants = o.largeVariants.filter((v) => !drop(v));
    o.sizeVariants = o.sizeVariants.filter((v) => !drop(v));
    o.saturationVariants = o.saturationVariants.filter((v) => !drop(v));
    o.overloadVariants = o.overloadVariants.filter((v) => !drop(v));
    o.encodeCodecs = codec === 'both' ? ['json', 'msgpack'] : [codec];
  }
  if (values.clients !== undefined) o.clients = ints(values.clients, 'clients').map((n) => Math.max(1, n));
  if (values.rate !== undefined) o.rate = int(values.rate, 'rate', 1);
  if (values.shape !== undefined) o.shape = oneOf(values.shape, SHAPES, 'shape');
  if (values.duration !== undefined) o.durationMs = o.satDurationMs = int(values.duration, 'duration', 100);
  if (values.warmup !== undefined) o.warmupMs = int(values.warmup, 'warmup');
  if (values.repeat !== undefined) o.repeat = int(values.repeat, 'repeat', 1);
  if (values.pool !== undefined) o.poolSize = int(values.pool, 'pool', 1);
  if (values['fanout-slice-ms'] !== undefined) o.fanoutSliceMs = int(values['fanout-slice-ms'], 'fanout-slice-ms', 1);
  if (values['handoff-slice-ms'] !== undefined) o.handoffSliceMs = int(values['handoff-slice-ms'], 'handoff-slice-ms', 0);
  if (values['worker-poll-ms'] !== undefined) o.workerPollMs = int(values['worker-poll-ms'], 'worker-poll-ms', 0);
  if (values['worker-nice'] !== undefined) o.workerNice = Math.min(19, int(values['worker-nice'], 'worker-nice'));
  if (values['batch-size'] !== undefined) o.batchSize = int(values['batch-size'], 'batch-size', 1);
  if (values['batch-delay'] !== undefined) o.batchDelayMs = int(values['batch-delay'], 'batch-delay');
  if (values.threshold !== undefined) o.compressionThreshold = int(values.threshold, 'threshold');
  if (values.level !== undefined) o.compressionLevel = int(values.level, 'level');
  if (o.compressionLevel > 9) throw new Error('--level: expected 0-9');
  if (values['large-sizes'] !== undefined) o.largeSizesKB = ints(values['large-sizes'], 'large-sizes').map((n) => Math.max(1, n));
  if (values['large-rate'] !== undefined) o.largeRate = int(values['large-rate'], 'large-rate', 1);
  if (values['large-clients'] !== undefined) o.largeClients = int(values['large-clients'], 'large-clients', 1);
  if (values['sat-clients'] !== undefined) o.satClients = int(values['sat-clients'], 'sat-clients', 1);
  if (values['overload-clients'] !== undefined) o.overloadClients = int(values['overload-clients'], 'overload-clients', 1);
  if (values['overload-rate'] !== undefined) o.overloadRate = int(values['overload-rate'], 'overload-rate', 1);
  if (values['overload-work-us'] !== undefined) o.overloadWorkUs = int(values['overload-work-us'], 'overload-work-us');
  if (values['sat-start'] !== undefined) o.satStart = int(values['sat-start'], 'sat-start', 1);
  if (values['sat-max'] !== undefined) o.satMax = int(values['sat-max'], 'sat-max', 1);
  if (values['sat-bisect'] !== undefined) o.satBisect = int(values['sat-bisect'], 'sat-bisect');
  if (values['encode-levels'] !== undefined) o.encodeLevels = ints(values['encode-levels'], 'encode-levels');
  if (o.encodeLevels.some((l) => l > 9)) throw new Error('--encode-levels: expected levels 0-9');
  if (values['encode-pools'] !== undefined) o.encodePools = ints(values['encode-pools'], 'encode-pools').filter((n) => n >= 1);
  if (values['history-seconds'] !== undefined) o.historySeconds = int(values['history-seconds'], 'history-seconds', 1);
  if (values['history-rate'] !== undefined) o.historyRate = int(values['history-rate'], 'history-rate', 1);
  if (values['storm-clients'] !== undefined) o.stormClients = int(values['storm-clients'], 'storm-clients', 1);
  if (values['storm-rate'] !== undefined) o.stormRate = int(values['storm-rate'], 'storm-rate', 1);
  if (values['storm-outage'] !== undefined) o.stormOutageMs = int(values['storm-outage'], 'storm-outage', 1);
  if (values['redis-url'] !== undefined) o.redisUrl = values['redis-url'];
  if (values['cluster-clients'] !== undefined) o.clusterClients = int(values['cluster-clients'], 'cluster-clients', 1);
  if (values['no-socketio'] === true) o.clusterSocketIo = false;
  if (values['tick-ms'] !== undefined) o.tickMs = int(values['tick-ms'], 'tick-ms', 1);
  if (values['eld-resolution'] !== undefined) o.eldResolutionMs = int(values['eld-resolution'], 'eld-resolution', 1);
  if (values.probes !== undefined) o.probes = int(values.probes, 'probes', 1);
  if (values['charts-from'] !== undefined) {
    o.chartsFrom = values['charts-from'];
    if (values.out === undefined) o.out = dirname(o.chartsFrom);
  }
  if (values.out !== undefined) o.out = values.out;
  if (values['no-charts'] === true) o.charts = false;
  if (o.shape === 'snapshot') throw new Error('--shape snapshot is the large scenario\'s shape; use --large-sizes');
  return o;
}
