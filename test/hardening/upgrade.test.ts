/**
 * Peers that give up in the middle of an upgrade. Node drops its own socket error
 * listener before emitting 'upgrade'; if nothing else listens, a reset while an async
 * `authorize` runs (accept or reject path) or while the refusal is written crashes the
 * process. The broadcaster runs in a child process so a crash shows as its exit.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, waitFor } from '../helpers/harness.js';
import { fixture, Resources, sleep } from '../reliability/support.js';
import { FixtureProcess } from './child.js';

const children: FixtureProcess[] = [];
const resources = new Resources();
afterEach(async () => {
  for (const child of children.splice(0)) child.kill();
  await resources.cleanup();
});

/** Sends an upgrade request for `path` on a raw socket and resets the connection (RST) after `resetAfterMs`. */
async function upgradeThenReset(port: number, path: string, resetAfterMs: number): Promise<void> {
  const socket: Socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  if (resetAfterMs > 0) await sleep(resetAfterMs);
  socket.resetAndDestroy();
}

describe('upgrades abandoned by the peer', () => {
  it('survive resets while async authorize runs (accept and reject paths) and while a refusal is written', async () => {
    const server = new FixtureProcess(fixture('upgrade-server.mjs'));
    children.push(server);
    const { port } = await server.json<{ port: number }>('port');

    const whileAuthorizing = 12;
    await Promise.all([
      // authorize waits 150 ms; the peer resets after 30 ms, on the path that would accept and the one that would refuse.
      ...Array.from({ length: whileAuthorizing / 2 }, () => upgradeThenReset(port, '/?wait=150&channels=feed', 30)),
      ...Array.from({ length: whileAuthorizing / 2 }, () => upgradeThenReset(port, '/?wait=150&deny=1', 30)),
      // authorize answers at once and refuses; the peer resets as the 401 is being written.
      ...Array.from({ length: 12 }, () => upgradeThenReset(port, '/?wait=0&deny=1', 0)),
    ]);
    await sleep(300); // every authorize above has finished

    expect(server.alive).toBe(true);
    const healthy = new RawClient(`ws://127.0.0.1:${port}/?wait=0&channels=feed`);
    resources.sockets.push(healthy.ws);
    await healthy.waitFor(() => healthy.messages.length >= 50, 10_000, '50 messages on feed');
    type Stats = { upgradesAborted: number; upgradesPending: number; connections: number; subscriptions: number };
    // On a loaded machine authorize (150 ms) may still be running for some: poll until none is.
    let stats = await server.ask<Stats>('stats', 'upgradesAborted');
    for (let tries = 0; stats.upgradesPending > 0 && tries < 200; tries++) {
      await sleep(50);
      stats = await server.ask<Stats>('stats', 'upgradesAborted');
    }
    // A socket the peer reset is seen as gone once Node has read the reset: usually before authorize answers (then it
    // counts as aborted), on a loaded machine after (then the 101 or the refusal meets a dead socket), or before the
    // request was parsed at all (then it never reaches us). The process lives through all three.
    expect(stats.upgradesAborted).toBeLessThanOrEqual(whileAuthorizing + 12);
    expect(stats.upgradesPending).toBe(0);
    expect(stats.connections).toBe(1);
    expect(stats.subscriptions).toBe(1);
    expect(server.alive).toBe(true);
  });
});

describe('subscriptions abandoned by the peer', () => {
  it('a client that goes while an async canSubscribe runs leaves no subscription, channel or queued message behind', async () => {
    let decided = 0;
    const { broadcaster, url } = await resources.start({
      canSubscribe: async () => {
        await sleep(200);
        decided++;
        return true;
      },
    });
    const client = new RawClient(`${url}?channels=a,b,c`);
    await once(client.ws, 'open');
    // A second control message queues behind the pending decision.
    client.ws.send(JSON.stringify({ op: 'subscribe', channels: ['d'] }));
    await waitFor(() => broadcaster.stats().controlPending === 1, 5_000, 'the decision to be pending');
    client.ws.terminate();
    await waitFor(() => broadcaster.stats().connections === 0, 5_000, 'the disconnect');
    await waitFor(() => decided >= 3, 5_000, 'canSubscribe to answer');
    await sleep(50);
    const stats = broadcaster.stats();
    expect(stats.subscriptions).toBe(0);
    expect(stats.subscribers).toEqual({});
    expect(stats.channels).toBe(0);
    expect(stats.controlPending).toBe(0);
    expect(decided).toBe(3); // the queued subscribe to "d" was never evaluated for a client that had gone
  });
});
