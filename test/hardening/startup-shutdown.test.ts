/**
 * Start-up and shutdown edges: close() before our own server listens, a listen that
 * fails, and batches still encoding when the close deadline passes.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createBroadcaster, type ListenError, type WorkerFault } from '../../src/index.js';
import { freePort } from '../helpers/harness.js';
import { fixture, Resources, sleep } from '../reliability/support.js';

const resources = new Resources();
const servers: Server[] = [];
afterEach(async () => {
  await resources.cleanup();
  for (const server of servers.splice(0)) server.close();
});

/** Resolves true if something accepts TCP connections on 127.0.0.1:port. */
async function accepting(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('start-up', () => {
  it('close() before ready (port + a host name) leaves nothing listening', async () => {
    const port = await freePort();
    const broadcaster = createBroadcaster({ port, host: 'localhost', env: {}, poolSize: 1 });
    let listening = false;
    broadcaster.on('listening', () => (listening = true));
    await broadcaster.close();
    await broadcaster.ready;
    expect(listening).toBe(false);
    expect(await accepting(port)).toBe(false);
    expect(broadcaster.address()).toBeNull();
  });

  it('a failed listen rejects ready with ListenError, emits listenError, and closes; no unhandled rejection', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    servers.push(taken);
    await once(taken, 'listening');
    const { port } = taken.address() as { port: number };
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const quiet = createBroadcaster({ port, host: '127.0.0.1', env: {}, poolSize: 1 }); // nobody awaits its ready
      const loud = createBroadcaster({ port, host: '127.0.0.1', env: {}, poolSize: 1 });
      const events: ListenError[] = [];
      loud.on('listenError', (error) => events.push(error));
      await expect(loud.ready).rejects.toMatchObject({ code: 'BATCHCAST_LISTEN_FAILED', message: expect.stringMatching(/127\.0\.0\.1:\d+: EADDRINUSE/) });
      expect(events).toHaveLength(1);
      await sleep(50);
      expect(quiet.closing).toBe(true);
      expect(loud.closing).toBe(true);
      await Promise.all([quiet.close(), loud.close()]);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});

describe('shutdown past its deadline', () => {
  it('batches still encoding are abandoned: no fault, no retry, no inline encode', async () => {
    const { broadcaster } = await resources.start({ workerFilename: fixture('slow-worker.mjs'), closeTimeoutMs: 200, batchDelayMs: 5 });
    const faults: WorkerFault[] = [];
    broadcaster.on('fault', (fault) => faults.push(fault));
    broadcaster.publish('slow-3000/a', { i: 1 }); // holds the worker for 3 s
    broadcaster.publish('b', { i: 2 }); // waits for the worker
    broadcaster.flush();
    const started = Date.now();
    await broadcaster.close();
    expect(Date.now() - started).toBeLessThan(2_500);
    await sleep(50);
    const stats = broadcaster.stats();
    expect(faults).toEqual([]);
    expect(stats.pool.faults).toEqual({ error: 0, crash: 0, timeout: 0, inline: 0 });
    expect(stats.pool.abandoned).toBe(2);
    expect(stats.batches).toBe(0);
  });
});
