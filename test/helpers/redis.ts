/**
 * Redis for the cluster tests: the shared server on 127.0.0.1:6379 (`.ci/run` starts one
 * if none runs), and private `redis-server` processes on free ports for tests that kill
 * and restart Redis. Without Redis a test is skipped, except under CI=true where it fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
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

  private constructor(port: number) {
    this.port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts one on a free port; fails (or skips, outside CI) without the redis-server binary. */
  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.start();
    return redis;
  }

  /** (Re)starts the server on its port, empty. */
  async start(): Promise<void> {
    this.#child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
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
