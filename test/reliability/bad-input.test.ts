/**
 * Bad input from producers. What publish can judge at once it refuses synchronously
 * with a stable `code`; what only serialization reveals arrives as a 'messageError'
 * naming channel and batch index, and the rest of the batch is delivered with
 * contiguous sequence numbers. Neither is a worker fault. Both codecs.
 */
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broadcaster } from '../../src/index.js';
import type { WorkerFault } from '../../src/encode/pool.js';
import type { InvalidMessageError, MessageTooLargeError } from '../../src/errors.js';
import type { RawClient } from '../helpers/harness.js';
import { firstBreak, Resources } from './support.js';

const resources = new Resources();
afterEach(() => resources.cleanup());

const packr = new Packr({ useRecords: false });
const pack = (value: unknown): Uint8Array => Uint8Array.prototype.slice.call(packr.pack(value));
const LIMIT = 1000;

type Codec = 'json' | 'msgpack';
type Outcome = { ok: true } | { ok: false; code: 'BATCHCAST_INVALID_MESSAGE' | 'BATCHCAST_MESSAGE_TOO_LARGE' };
interface Item {
  what: string;
  value: unknown;
  serialized?: boolean;
  outcome: Outcome;
}
const OK: Outcome = { ok: true };
const INVALID: Outcome = { ok: false, code: 'BATCHCAST_INVALID_MESSAGE' };
const TOO_LARGE: Outcome = { ok: false, code: 'BATCHCAST_MESSAGE_TOO_LARGE' };

function circular(): unknown {
  const value: Record<string, unknown> = { name: 'loop' };
  value.self = value;
  return value;
}

/** A batch mixing good messages with ones only the encoder can find bad. */
function mixedBatch(codec: Codec): Item[] {
  let good = 0;
  const g = (): Item => ({ what: 'good', value: { good: good++ }, outcome: OK });
  const gs = (): Item => ({ what: 'good pre-serialized', value: codec === 'json' ? JSON.stringify({ good: good++ }) : pack({ good: good++ }), serialized: true, outcome: OK });
  const items: Item[] = [
    g(),
    { what: 'circular', value: circular(), outcome: INVALID },
    g(),
    codec === 'json'
      ? { what: 'nested BigInt', value: { n: 10n }, outcome: INVALID }
      : { what: 'BigInt past 64 bits', value: { n: 2n ** 70n }, outcome: INVALID },
    g(),
    { what: 'over maxMessageBytes', value: { blob: 'x'.repeat(LIMIT) }, outcome: TOO_LARGE },
    gs(),
    codec === 'json'
      ? { what: 'invalid pre-serialized JSON', value: '{"a":', serialized: true, outcome: INVALID }
      : { what: 'truncated pre-serialized msgpack', value: Uint8Array.of(0x92, 0x01), serialized: true, outcome: INVALID },
    g(),
    codec === 'json'
      ? { what: 'pre-serialized JSON with trailing text', value: '{"a":1} and more', serialized: true, outcome: INVALID }
      : { what: 'two msgpack values where one is expected', value: Uint8Array.of(0x01, 0x02), serialized: true, outcome: INVALID },
    gs(),
    { what: 'pre-serialized empty', value: codec === 'json' ? '' : new Uint8Array(0), serialized: true, outcome: INVALID },
    g(),
  ];
  return items;
}

async function start(codec: Codec) {
  const { broadcaster, url } = await resources.start({ codec, batchSize: 10_000, batchDelayMs: 1000, maxMessageBytes: LIMIT });
  const messageErrors: (InvalidMessageError | MessageTooLargeError)[] = [];
  const faults: WorkerFault[] = [];
  broadcaster.on('messageError', (e) => messageErrors.push(e));
  broadcaster.on('fault', (f) => faults.push(f));
  const client = await resources.client(url, ['feed']);
  return { broadcaster, client, messageErrors, faults };
}

function publishItems(broadcaster: Broadcaster, items: Item[]): void {
  for (const item of items) {
    if (item.serialized === true) broadcaster.publishSerialized('feed', item.value as string | Uint8Array);
    else broadcaster.publish('feed', item.value);
  }
  broadcaster.flush();
}

function goods(client: RawClient): number[] {
  return client.messages.map((m) => (m.data as { good: number }).good);
}

function expectSyncError(fn: () => void, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'expected a synchronous throw').toBeInstanceOf(Error);
  expect((thrown as { code?: unknown }).code).toBe(code);
}

describe.each(['json', 'msgpack'] as const)('bad input from producers, %s codec', (codec) => {
  it('refuses at once what publish can judge, with a stable code, and counts nothing', async () => {
    const { broadcaster, client } = await start(codec);
    for (const channel of ['', 'has space', 'x'.repeat(129), 'ünïcode', 'a,b', 42, null, undefined]) {
      expectSyncError(() => broadcaster.publish(channel as string, { ok: 1 }), 'BATCHCAST_INVALID_CHANNEL');
      expectSyncError(() => broadcaster.publishSerialized(channel as string, codec === 'json' ? '1' : pack(1)), 'BATCHCAST_INVALID_CHANNEL');
    }
    expectSyncError(() => broadcaster.publish('feed', () => 1), 'BATCHCAST_INVALID_MESSAGE');
    expectSyncError(() => broadcaster.publish('feed', Symbol('s')), 'BATCHCAST_INVALID_MESSAGE');
    expectSyncError(() => broadcaster.publish('feed', undefined), 'BATCHCAST_INVALID_MESSAGE');
    if (codec === 'json') {
      expectSyncError(() => broadcaster.publish('feed', 10n), 'BATCHCAST_INVALID_MESSAGE');
      expectSyncError(() => broadcaster.publishSerialized('feed', pack(1)), 'BATCHCAST_INVALID_MESSAGE');
      expectSyncError(() => broadcaster.publishSerialized('feed', JSON.stringify('x'.repeat(LIMIT))), 'BATCHCAST_MESSAGE_TOO_LARGE');
      // Fewer UTF-16 units than the limit, more UTF-8 bytes: still refused at once.
      expectSyncError(() => broadcaster.publishSerialized('feed', JSON.stringify('€'.repeat(Math.ceil(LIMIT / 3)))), 'BATCHCAST_MESSAGE_TOO_LARGE');
    } else {
      broadcaster.publish('feed', 10n); // msgpack has 64-bit integers
      expectSyncError(() => broadcaster.publishSerialized('feed', '{"a":1}' as unknown as Uint8Array), 'BATCHCAST_INVALID_MESSAGE');
      expectSyncError(() => broadcaster.publishSerialized('feed', new Uint8Array(LIMIT + 1)), 'BATCHCAST_MESSAGE_TOO_LARGE');
    }
    const accepted = codec === 'json' ? 0 : 1;
    expect(broadcaster.stats().messagesPublished).toBe(accepted);
    broadcaster.publish('feed', { after: true });
    broadcaster.flush();
    await client.waitFor(() => client.messages.length === accepted + 1, 10_000, 'the messages that were accepted');
    expect(client.messages.map((m) => m.seq)).toEqual([...Array(accepted + 1).keys()]);
    expect(client.messages.at(-1)?.data).toEqual({ after: true });
  });

  it('reports what the encoder finds as messageError (channel, index, code) and delivers the rest of the batch', async () => {
    const { broadcaster, client, messageErrors, faults } = await start(codec);
    const items = mixedBatch(codec);
    const goodCount = items.filter((i) => i.outcome.ok).length;
    const bad = items.flatMap((item, index) => (item.outcome.ok ? [] : [{ index, code: item.outcome.code, what: item.what }]));

    publishItems(broadcaster, items);
    await client.waitFor(() => client.messages.length === goodCount && messageErrors.length === bad.length, 10_000, 'the good messages and every error');
    expect(messageErrors.map((e) => ({ index: e.index, code: e.code, what: items[e.index!]!.what }))).toEqual(bad);
    for (const error of messageErrors) {
      expect(error.channel).toBe('feed');
      expect(error.message).toContain('"feed"');
      expect(error.message).toContain(`#${error.index}`);
    }
    expect(goods(client)).toEqual([...Array(goodCount).keys()]);
    // Rejected messages leave no gap: sequence numbers stay contiguous, into the next batch too.
    publishItems(broadcaster, [{ what: 'next', value: { good: goodCount }, outcome: OK }]);
    await client.waitFor(() => client.messages.length === goodCount + 1, 10_000, 'the next batch');
    expect(firstBreak(client.messages.map((m) => m.seq))).toBeNull();
    expect(goods(client)).toEqual([...Array(goodCount + 1).keys()]);
    expect(client.frames.filter((f) => f.kind === 'batch')).toHaveLength(2);

    const stats = broadcaster.stats();
    expect(stats.messagesRejected).toBe(bad.length);
    expect(faults).toEqual([]);
    expect(stats.pool.faults).toEqual({ error: 0, crash: 0, timeout: 0, inline: 0 });
  });

  it('a value structured clone cannot copy to a worker is not a worker fault', async () => {
    const { broadcaster, client, messageErrors, faults } = await start(codec);
    broadcaster.publish('feed', { good: 0 });
    broadcaster.publish('feed', { good: 1, f: () => 1, s: Symbol('s') });
    broadcaster.publish('feed', { good: 2 });
    broadcaster.flush();
    if (codec === 'json') {
      // As JSON.stringify does: function- and symbol-valued properties are left out.
      await client.waitFor(() => client.messages.length === 3, 10_000, 'three messages');
      expect(client.messages.map((m) => m.data)).toEqual([{ good: 0 }, { good: 1 }, { good: 2 }]);
      expect(messageErrors).toEqual([]);
    } else {
      // msgpack has no symbol type: that message is rejected, its batch-mates delivered.
      await client.waitFor(() => client.messages.length === 2 && messageErrors.length === 1, 10_000, 'two messages and an error');
      expect(client.messages.map((m) => m.data)).toEqual([{ good: 0 }, { good: 2 }]);
      expect(messageErrors[0]).toMatchObject({ code: 'BATCHCAST_INVALID_MESSAGE', channel: 'feed', index: 1 });
    }
    expect(firstBreak(client.messages.map((m) => m.seq))).toBeNull();
    expect(faults).toEqual([]);
    expect(broadcaster.stats().pool.faults).toEqual({ error: 0, crash: 0, timeout: 0, inline: 0 });
    expect(broadcaster.stats().pool.uncloneable).toBe(1);
  });
});
