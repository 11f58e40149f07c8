/**
 * Redis for the cluster tests: the shared server on 127.0.0.1:6379 (`.ci/run` starts one
 * if none runs), and private `redis-server` processes on free ports for tests that kill
 * and restart Redis. Without Redis a test is skipped, except under CI=true where it fails.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './harness.js';

export const SHARED_REDIS = 'redis://127.0.0.1:6379';

/** True if a Redis server answers PING at host:port. */
export async function redisAnswers(port = 6379, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data: Buffer) => done(data.toString().startsWith('+PONG')));
  });
}

/** Skips the calling test when Redis is missing, or fails it under CI=true. */
export async function requireRedis(skip: () => void): Promise<void> {
  if (await redisAnswers()) return;
  if (process.env.CI === 'true') throw new Error(`no Redis answers at ${SHARED_REDIS}: .ci/run starts one (redis-server)`);
  skip();
}

/** A key prefix of its own for one test, so tests sharing a Redis never see each other's channels. */
export function uniquePrefix(): string {
  return `bct${process.pid}.${Date.now()}.${Math.floor(Math.random() * 1e6)}:`;
}

/** A `redis-server` of the test's own (no persistence), that it may kill and start again on the same port. */
export class PrivateRedis {
  readonly port: number;
  #child: ChildProcess | null = null;
  #extra: string[] = [];
  #cwd: string | undefined;

  private constructor(port: number) {
    this.port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts one on a free port. */
  static async start(extra: string[] = [], cwd?: string): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.start(extra, cwd);
    redis.#extra = extra;
    redis.#cwd = cwd;
    return redis;
  }

  /** (Re)starts the server on its port, empty. `extra`: more redis-server arguments; `cwd`: where it keeps files. */
  async start(extra: string[] = this.#extra, cwd: string | undefined = this.#cwd): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra];
    this.#child = spawn('redis-server', args, { stdio: 'ignore', cwd });
    const failed = once(this.#child, 'error').then(([error]) => {
      throw new Error(`redis-server could not start: ${(error as Error).message}`);
    });
    const deadline = Date.now() + 10_000;
    while (!(await Promise.race([redisAnswers(this.port), failed]))) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Kills it (SIGKILL: no shutdown, like a crash). */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    this.#child = null;
  }
}

/** A Redis Cluster of the test's own: three masters on free ports, no replicas, all slots covered. */
export class PrivateRedisCluster {
  readonly masters: PrivateRedis[];
  readonly #dir: string;

  private constructor(masters: PrivateRedis[], dir: string) {
    this.masters = masters;
    this.#dir = dir;
  }

  /** Seed URLs, comma-separated (what `redisUrl` takes with `redisCluster`). */
  get url(): string {
    return this.masters.map((master) => master.url).join(',');
  }

  static async start(): Promise<PrivateRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'bc-redis-cluster-'));
    const masters: PrivateRedis[] = [];
    for (let i = 0; i < 3; i++) {
      const master = await PrivateRedis.start(['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`], dir);
      masters.push(master);
    }
    const cluster = new PrivateRedisCluster(masters, dir);
    await new Promise<void>((resolve, reject) => {
      execFile('redis-cli', ['--cluster', 'create', ...masters.map((m) => `127.0.0.1:${m.port}`), '--cluster-replicas', '0', '--cluster-yes'], (error, _out, err) => {
        if (error !== null) reject(new Error(`redis-cli --cluster create failed: ${err || error.message}`));
        else resolve();
      });
    });
    const deadline = Date.now() + 20_000;
    while (!(await cluster.#allOk())) {
      if (Date.now() > deadline) throw new Error('the Redis Cluster did not reach cluster_state:ok');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return cluster;
  }

  /** Keys on each master matching `pattern` (SCAN on each node). */
  async keysPerMaster(pattern: string): Promise<number[]> {
    return Promise.all(this.masters.map((master) => new Promise<number>((resolve, reject) => {
      execFile('redis-cli', ['-p', String(master.port), '--scan', '--pattern', pattern], (error, out) => {
        if (error !== null) reject(error);
        else resolve(out.split('\n').filter((line) => line !== '').length);
      });
    })));
  }

  async stop(): Promise<void> {
    await Promise.all(this.masters.map((master) => master.kill()));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #allOk(): Promise<boolean> {
    const states = await Promise.all(this.masters.map((master) => new Promise<string>((resolve) => {
      execFile('redis-cli', ['-p', String(master.port), 'cluster', 'info'], (_error, out) => resolve(String(out)));
    })));
    return states.every((info) => info.includes('cluster_state:ok'));
  }
}
