/**
 * The HTTP side of `serve`: a 413 reaches a client that writes its whole body before
 * reading (the reset of a socket closed with unread data must not overtake it), and
 * server errors after start are reported while the server keeps serving.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serve, type Served } from '../../src/cli/serve.js';
import { resolveServerConfig } from '../../src/config.js';
import { createBroadcaster } from '../../src/index.js';
import { createHttpApi } from '../../src/server/http-api.js';
import { MemoryLogger } from '../helpers/logger.js';

const running: { close: () => Promise<void> }[] = [];
afterEach(async () => {
  for (const served of running.splice(0)) await served.close();
});

/** The HTTP API on a server of its own, publishing to a broadcaster. */
async function startApi(maxBodyBytes: number): Promise<number> {
  const server = createServer();
  const broadcaster = createBroadcaster({ server, env: {}, poolSize: 1, heartbeatIntervalMs: 0 });
  server.on('request', createHttpApi(broadcaster, { maxBodyBytes }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  running.push({
    close: async () => {
      await broadcaster.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  });
  return (server.address() as AddressInfo).port;
}

async function start(maxMessageBytes = 1 << 20): Promise<{ served: Served; logger: MemoryLogger }> {
  const logger = new MemoryLogger();
  const served = await serve({
    ...resolveServerConfig({ port: 0, host: '127.0.0.1' }, {}),
    demo: false,
    settings: { poolSize: 1, maxMessageBytes, heartbeatIntervalMs: 0 },
    logger,
  });
  running.push(served);
  return { served, logger };
}

/** Writes a POST with a `size`-byte body completely, reading nothing until the last byte is written; then reads the answer. */
async function writeAllThenRead(port: number, size: number): Promise<{ written: boolean; answer: string; error: string | null }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.pause();
  let error: string | null = null;
  socket.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
  const head = `POST /publish/big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`;
  const written = await new Promise<boolean>((resolve) => {
    socket.write(head);
    socket.write(Buffer.alloc(size, 0x20), (e) => resolve(e == null));
  });
  let answer = '';
  const complete = () => {
    const end = answer.indexOf('\r\n\r\n');
    const length = /content-length: (\d+)/i.exec(answer)?.[1];
    return end !== -1 && length !== undefined && answer.length - end - 4 >= Number(length);
  };
  const answered = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (complete()) resolve();
    });
    socket.once('close', () => resolve());
  });
  socket.resume();
  await answered;
  socket.destroy();
  return { written, answer, error };
}

describe('POST /publish over maxMessageBytes', () => {
  it('answers 413 to a client that writes its whole body before reading', async () => {
    const port = await startApi(1 << 20);
    for (let i = 0; i < 3; i++) {
      const { written, answer, error } = await writeAllThenRead(port, 20 << 20);
      expect({ written, error }).toEqual({ written: true, error: null });
      expect(answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'BATCHCAST_MESSAGE_TOO_LARGE' });
    }
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
  });
});

describe('serve after start', () => {
  it('reports server errors (e.g. EMFILE on accept) and keeps serving', async () => {
    const { served, logger } = await start();
    // Node's http.Server emits 'error' for a failed accept(); this is that event, as libuv reports it.
    served.server.emit('error', Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' }));
    expect(logger.messages('error').filter((line) => line.includes('server error'))).toEqual(['server error EMFILE: accept EMFILE']);
    const health = await fetch(`http://127.0.0.1:${served.port}/healthz`);
    expect(health.status).toBe(200);
  });
});
