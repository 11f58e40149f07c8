/**
 * The standalone server's HTTP side, in process: a real http.Server with the
 * broadcaster attached (as `batchcast serve` runs it). Bad requests get clear
 * errors and never take the server down; shutdown is visible to load balancers.
 */
import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect as tcpConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createBroadcaster, type Broadcaster, type BroadcasterOptions } from '../../src/index.js';
import { createHttpApi, isLoopbackAddress } from '../../src/server/http-api.js';
import { RawClient, waitFor } from '../helpers/harness.js';
import { closed, sleep, upgradeStatus } from './support.js';

interface Running {
  broadcaster: Broadcaster;
  server: Server;
  base: string;
  ws: string;
  port: number;
}

const running: Running[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate();
  for (const { broadcaster, server } of running.splice(0)) {
    await broadcaster.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function start(options: Omit<BroadcasterOptions, 'server' | 'port' | 'noServer'> = {}, publishToken?: string): Promise<Running> {
  const server = createServer();
  const broadcaster = createBroadcaster({ poolSize: 1, heartbeatIntervalMs: 0, env: {}, path: '/ws', ...options, server });
  server.on('request', createHttpApi(broadcaster, { publishToken, maxBodyBytes: 1 << 20 }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const started = { broadcaster, server, port, base: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws` };
  running.push(started);
  return started;
}

/** A broadcaster whose authorize() accepts only when `release` is called, and an upgrade waiting in it. */
async function upgradeWaitingForAuthorize() {
  let release!: () => void;
  const decided = new Promise<void>((resolve) => (release = resolve));
  let asked!: () => void;
  const authorizing = new Promise<void>((resolve) => (asked = resolve));
  const { broadcaster, ws } = await start({
    authorize: async () => {
      asked();
      await decided;
      return true;
    },
  });
  const attempt = upgradeStatus(ws);
  await authorizing;
  return { broadcaster, attempt, release };
}

/** A POST /publish from a chosen local (loopback) address. */
function postFrom(localAddress: string, port: number, path: string, body: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', localAddress }, (res: IncomingMessage) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('POST /publish/:channel', () => {
  it('answers 400 for a channel that is not valid percent-encoding, and keeps serving', async () => {
    const { base } = await start();
    const bad = await fetch(`${base}/publish/%E0%A4%A`, { method: 'POST', body: '1' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'BATCHCAST_INVALID_CHANNEL' });
    expect((await fetch(`${base}/publish/ok`, { method: 'POST', body: '1' })).status).toBe(202);
  });

  it('survives a producer that hangs up mid-upload', async () => {
    const { base, port, broadcaster } = await start();
    const socket = tcpConnect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write('POST /publish/feed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[{"a":');
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.destroy(); // the server sees 'aborted' while reading the body
    await new Promise((resolve) => setTimeout(resolve, 50));
    const after = await fetch(`${base}/publish/feed`, { method: 'POST', body: '[1,2]' });
    expect(after.status).toBe(202);
    expect(broadcaster.stats().messagesPublished).toBe(2);
  });

  it('without a token accepts 127.0.0.1 and refuses other peers with 403 (here 127.0.0.2)', async () => {
    expect(['127.0.0.1', '::1', '::ffff:127.0.0.1'].every(isLoopbackAddress)).toBe(true);
    expect(['127.0.0.2', '10.0.0.1', '::ffff:10.0.0.1', undefined].some(isLoopbackAddress)).toBe(false);
    const { port, broadcaster } = await start();
    expect(await postFrom('127.0.0.1', port, '/publish/feed', '1')).toEqual({ status: 202, body: { accepted: 1 } });
    const refused = await postFrom('127.0.0.2', port, '/publish/feed', '1');
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'BATCHCAST_UNAUTHORIZED', error: expect.stringMatching(/loopback only unless BATCHCAST_PUBLISH_TOKEN/) });
    expect(broadcaster.stats().messagesPublished).toBe(1);
  });

  it('with a token accepts any peer presenting it', async () => {
    const { port } = await start({}, 'tok-123');
    expect((await postFrom('127.0.0.2', port, '/publish/feed', '1')).status).toBe(401);
    const withToken = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/publish/feed', method: 'POST', localAddress: '127.0.0.2', headers: { authorization: 'Bearer tok-123' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end('1');
    });
    expect(withToken).toBe(202);
  });
});

describe('shutdown as seen from outside', () => {
  it('answers /healthz and new upgrades with 503 while close() drains a slow client', async () => {
    const { broadcaster, base, ws, port } = await start({ batchSize: 200, compressionLevel: 0, closeTimeoutMs: 3_000 });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const stuck = await RawClient.open(ws, ['feed']);
    clients.push(stuck);
    stuck.ws.pause();
    const pad = 'p'.repeat(1000);
    for (let i = 0; i < 10_000; i++) broadcaster.publish('feed', { seq: i, pad }); // more than the kernel buffers hold
    const closing = broadcaster.close();
    await waitFor(() => broadcaster.stats().pool.inFlight === 0, 5_000, 'encodes to finish');
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: 'closing' });
    expect((await upgradeStatus(`ws://127.0.0.1:${port}/ws`)).status).toBe(503);
    const stuckGone = closed(stuck.ws);
    stuck.ws.resume();
    await closing;
    await stuckGone;
  });

  it('refuses with 503 a client whose authorize() was still running when close() began', async () => {
    const { broadcaster, attempt, release } = await upgradeWaitingForAuthorize();
    const closing = broadcaster.close();
    release();
    expect((await attempt).status).toBe(503);
    await closing;
    expect(broadcaster.stats().connectionsTotal).toBe(0);
  });

  it('answers 503, not a hang-up, to a client whose authorize() is still running when shutdown ends', async () => {
    const { broadcaster, attempt, release } = await upgradeWaitingForAuthorize();
    await broadcaster.close();
    expect((await attempt).status).toBe(503);
    // The late verdict finds the upgrade answered: nothing is accepted or answered twice.
    release();
    await sleep(20);
    expect(broadcaster.stats()).toMatchObject({ connectionsTotal: 0, upgradesRejected: 1, upgradesPending: 0 });
  });
});
