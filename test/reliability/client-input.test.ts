/**
 * Bad input from clients: each mistake gets a clear error notice or close code,
 * the offending connection stays usable where the protocol allows, and the server
 * and other clients carry on.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broadcaster } from '../../src/index.js';
import type { Connection } from '../../src/server/connection.js';
import type { RawClient } from '../helpers/harness.js';
import { clientFrame, closed, rawUpgrade, Resources } from './support.js';

const resources = new Resources();
afterEach(() => resources.cleanup());

/** A healthy subscriber that must keep receiving, whatever other clients do. */
async function stillDelivers(broadcaster: Broadcaster, healthy: RawClient): Promise<void> {
  const before = healthy.messages.length;
  broadcaster.publish('feed', { n: before });
  broadcaster.flush();
  await healthy.waitFor(() => healthy.messages.length === before + 1, 5_000, 'delivery to the healthy client');
  expect(healthy.messages.map((m) => m.seq)).toEqual([...Array(before + 1).keys()]);
}

function errors(client: RawClient) {
  return client.notices.filter((n) => n.op === 'error');
}

describe('bad input from clients', () => {
  it('closes a client frame over maxPayload with 1009', async () => {
    const { broadcaster, url } = await resources.start({ maxPayload: 1024 });
    const healthy = await resources.client(url, ['feed']);
    const offender = await resources.client(url, ['feed']);
    const closing = closed(offender.ws);
    offender.ws.send(JSON.stringify({ op: 'subscribe', channels: ['x'], pad: 'x'.repeat(2000) }));
    expect((await closing).code).toBe(1009);
    await healthy.waitFor(() => broadcaster.stats().connections === 1, 5_000, 'the offender to be gone');
    await stillDelivers(broadcaster, healthy);
  });

  it('closes a client that sends a binary frame with 1003', async () => {
    const { broadcaster, url } = await resources.start();
    const healthy = await resources.client(url, ['feed']);
    const offender = await resources.client(url, ['feed']);
    const closing = closed(offender.ws);
    offender.ws.send(Buffer.from([0xbc, 0x01, 0x02, 0x00, 0xff]));
    expect((await closing).code).toBe(1003);
    await healthy.waitFor(() => broadcaster.stats().connections === 1, 5_000, 'the offender to be gone');
    expect(broadcaster.stats().subscribers).toEqual({ feed: 1 });
    await stillDelivers(broadcaster, healthy);
  });

  it('answers malformed and unknown control messages with error notices and keeps the connection', async () => {
    const { broadcaster, url } = await resources.start();
    const healthy = await resources.client(url, ['feed']);
    const accepted = once(broadcaster, 'connection') as Promise<[Connection]>;
    const client = await resources.client(url);
    const [connection] = await accepted;
    const cases: [string, string][] = [
      ['not json', 'BATCHCAST_BAD_CONTROL'],
      ['', 'BATCHCAST_BAD_CONTROL'],
      ['null', 'BATCHCAST_BAD_CONTROL'],
      ['42', 'BATCHCAST_BAD_CONTROL'],
      ['[{"op":"subscribe","channels":["feed"]}]', 'BATCHCAST_BAD_CONTROL'],
      ['{"op":"dance","channels":["feed"]}', 'BATCHCAST_BAD_CONTROL'],
      ['{"op":"SUBSCRIBE","channels":["feed"]}', 'BATCHCAST_BAD_CONTROL'],
      ['{"channels":["feed"]}', 'BATCHCAST_BAD_CONTROL'],
      ['{"op":"subscribe"}', 'BATCHCAST_BAD_CONTROL'],
      ['{"op":"subscribe","channels":[]}', 'BATCHCAST_BAD_CONTROL'],
      ['{"op":"subscribe","channels":"feed"}', 'BATCHCAST_BAD_CONTROL'],
      [JSON.stringify({ op: 'subscribe', channels: Array.from({ length: 1001 }, (_, i) => `c${i}`) }), 'BATCHCAST_BAD_CONTROL'],
      ['{"op":"subscribe","channels":["feed"],"__proto__":{"op":"x"}}', 'OK'],
      ['{"op":"subscribe","channels":["bad name"]}', 'BATCHCAST_INVALID_CHANNEL'],
      ['{"op":"subscribe","channels":[42]}', 'BATCHCAST_INVALID_CHANNEL'],
      [`{"op":"subscribe","channels":["${'x'.repeat(129)}"]}`, 'BATCHCAST_INVALID_CHANNEL'],
      ['{"op":"unsubscribe","channels":["ünï"]}', 'BATCHCAST_INVALID_CHANNEL'],
    ];
    for (const [text] of cases) client.ws.send(text);
    const expected = cases.filter(([, code]) => code !== 'OK');
    await client.waitFor(() => errors(client).length === expected.length, 5_000, 'an error notice per bad message');
    expect(errors(client).map((n) => n.code)).toEqual(expected.map(([, code]) => code));
    for (const notice of errors(client)) expect(typeof notice.message === 'string' && notice.message.length > 0).toBe(true);
    expect(connection.badMessages).toBe(expected.length);
    // The one well-formed message among them took effect (a "__proto__" key changes nothing).
    expect(client.notices.filter((n) => n.op === 'subscribed')).toMatchObject([{ op: 'subscribed', channels: ['feed'] }]);
    await stillDelivers(broadcaster, healthy);
    await client.waitFor(() => client.messages.length === 1, 5_000, 'delivery to the client that erred');
    expect(client.ws.readyState).toBe(client.ws.OPEN);
  });

  it('reports invalid channel names on the URL and subscribes the valid ones', async () => {
    const { broadcaster, url } = await resources.start();
    const client = await resources.client(`${url}?channels=feed,bad%20name,,${'y'.repeat(129)}`);
    await client.waitFor(() => client.notices.length === 4, 5_000, 'three errors and a subscribed notice');
    expect(errors(client).map((n) => n.code)).toEqual(['BATCHCAST_INVALID_CHANNEL', 'BATCHCAST_INVALID_CHANNEL', 'BATCHCAST_INVALID_CHANNEL']);
    expect(client.notices.at(-1)).toMatchObject({ op: 'subscribed', channels: ['feed'] });
    expect(broadcaster.stats().subscribers).toEqual({ feed: 1 });
    await stillDelivers(broadcaster, client);
  });

  it('refuses subscriptions past maxSubscriptionsPerClient, naming each refused channel', async () => {
    const { broadcaster, url } = await resources.start({ maxSubscriptionsPerClient: 3 });
    const client = await resources.client(url, ['feed', 'a']);
    client.ws.send(JSON.stringify({ op: 'subscribe', channels: ['a', 'b', 'c', 'd'] }));
    await client.waitFor(() => errors(client).length === 2 && client.notices.filter((n) => n.op === 'subscribed').length === 2, 5_000, 'notices');
    expect(errors(client).map((n) => [n.code, n.channel])).toEqual([
      ['BATCHCAST_TOO_MANY_SUBSCRIPTIONS', 'c'],
      ['BATCHCAST_TOO_MANY_SUBSCRIPTIONS', 'd'],
    ]);
    expect(client.notices.filter((n) => n.op === 'subscribed').at(-1)).toMatchObject({ op: 'subscribed', channels: ['a', 'b'] });
    expect(broadcaster.stats().subscribers).toEqual({ feed: 1, a: 1, b: 1 });
    // Making room makes the next subscription succeed.
    client.ws.send(JSON.stringify({ op: 'unsubscribe', channels: ['a'] }));
    client.ws.send(JSON.stringify({ op: 'subscribe', channels: ['d'] }));
    await client.waitFor(() => client.notices.filter((n) => n.op === 'subscribed').length === 3, 5_000, 'subscribed to d');
    expect(client.notices.at(-1)).toMatchObject({ op: 'subscribed', channels: ['d'] });
    expect(broadcaster.stats().subscribers).toEqual({ feed: 1, b: 1, d: 1 });
    await stillDelivers(broadcaster, client);
  });

  it.each(['drop', 'close'] as const)('bounds what it queues for a client that sends requests but never reads the replies (%s)', async (policy) => {
    const maxBufferedBytes = 64 * 1024;
    const { broadcaster, url } = await resources.start({ maxBufferedBytes, slowClientPolicy: policy });
    const healthy = await resources.client(url, ['feed']);
    const accepted = once(broadcaster, 'connection') as Promise<[Connection]>;
    const flooder = await resources.client(url);
    const [connection] = await accepted;
    flooder.ws.pause();
    // Each 1-byte request earns a ~150-byte error notice: 100 000 of them would be ~15 MB of replies.
    let maxBuffered = 0;
    for (let burst = 0; burst < 100; burst++) {
      for (let i = 0; i < 1000; i++) flooder.ws.send('x');
      await new Promise((resolve) => setTimeout(resolve, 5));
      maxBuffered = Math.max(maxBuffered, connection.bufferedBytes);
    }
    await healthy.waitFor(() => connection.badMessages === 100_000, 15_000, 'the server to read every request');
    maxBuffered = Math.max(maxBuffered, connection.bufferedBytes);
    // Over the bound by at most one notice.
    expect(maxBuffered).toBeGreaterThan(maxBufferedBytes);
    expect(maxBuffered).toBeLessThanOrEqual(maxBufferedBytes + 512);
    if (policy === 'drop') {
      expect(connection.noticesDropped).toBeGreaterThan(0);
      expect(connection.ws.readyState).toBe(connection.ws.OPEN);
    } else {
      expect(broadcaster.stats().slowClientsClosed).toBe(1);
      const closing = closed(flooder.ws);
      flooder.ws.resume();
      expect((await closing).code).toBe(1013);
    }
    await stillDelivers(broadcaster, healthy);
  });
  it('cuts off a client that floods pings and never reads the pongs', async () => {
    // ws terminates a peer with too many auto-pongs pending (maxPendingAutoPongs); this guards that it stays so.
    const maxBufferedBytes = 64 * 1024;
    const { broadcaster, url } = await resources.start({ maxBufferedBytes });
    const healthy = await resources.client(url, ['feed']);
    const accepted = once(broadcaster, 'connection') as Promise<[Connection]>;
    const socket = await rawUpgrade(broadcaster.address()!.port);
    resources.cleanups.push(() => socket.destroy());
    const [connection] = await accepted;
    const disconnected = once(broadcaster, 'disconnect') as Promise<[Connection, number]>;
    socket.pause();
    const ping = clientFrame(0x9, Buffer.alloc(125, 0x61));
    let maxBuffered = 0;
    for (let burst = 0; burst < 100 && !socket.destroyed; burst++) {
      socket.write(Buffer.concat(Array(1000).fill(ping))); // 1000 pings, ~130 KB
      await new Promise((resolve) => setTimeout(resolve, 5));
      maxBuffered = Math.max(maxBuffered, connection.bufferedBytes);
    }
    const [gone, code] = await disconnected;
    expect(gone).toBe(connection);
    expect(code).toBe(1006);
    expect(maxBuffered).toBeLessThanOrEqual(maxBufferedBytes);
    await stillDelivers(broadcaster, healthy);
  });
});
