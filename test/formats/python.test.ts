/**
 * A client not written here: Python `websockets` (Debian python3-websockets, installed by
 * .ci/run) with its default compression, reading the `batchcast` and `json` formats as
 * docs/protocol.md describes them. Its default offer (websockets 10.4) takes the server's
 * full window: the canonical deflate serves it, no extra deflate is made.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broadcaster } from '../../src/index.js';
import { startBroadcaster, waitFor } from '../helpers/harness.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../fixtures/py-client.py', import.meta.url));
const COUNT = 1000;

let broadcaster: Broadcaster | undefined;
let feed: NodeJS.Timeout | undefined;
afterEach(async () => {
  clearInterval(feed);
  await broadcaster?.close();
});

/** Whether Debian's python3 has `websockets`; under CI=true its absence fails the test. */
async function requireWebsockets(skip: () => void): Promise<void> {
  const ok = existsSync(PYTHON) && (await new Promise<boolean>((resolve) => execFile(PYTHON, ['-c', 'import websockets'], (error) => resolve(error === null))));
  if (ok) return;
  if (process.env.CI === 'true') throw new Error(`${PYTHON} cannot import websockets: the interop test cannot run (apt-get install python3-websockets)`);
  skip();
}

describe('Python websockets, default compression', () => {
  it.for(['batchcast', 'json'] as const)('reads format=%s: every message, in order, transport-compressed', async (format, context) => {
    await requireWebsockets(() => context.skip());
    const started = await startBroadcaster({ batchDelayMs: 5 });
    broadcaster = started.broadcaster;
    const b = broadcaster;
    const compressed: boolean[] = [];
    b.on('connection', (connection) => compressed.push(connection.transportCompressed));
    const output = new Promise<string>((resolve, reject) => {
      execFile(PYTHON, [SCRIPT, `${started.url}?channels=py&format=${format}`, format, String(COUNT)], { timeout: 20_000 }, (error, stdout, stderr) => {
        if (error !== null) reject(new Error(`python client failed: ${stderr || error.message}`));
        else resolve(stdout);
      });
    });
    await waitFor(() => b.stats().subscribers.py === 1, 10_000, 'the python client to subscribe');
    let n = 0;
    feed = setInterval(() => {
      for (let i = 0; i < 100; i++) b.publish('py', { n: n++, note: 'repetitive text compresses well '.repeat(2) });
    }, 10);
    const result = JSON.parse(await output) as { extensions: string; seqs: number[]; ns: number[] };
    expect(result.extensions).toMatch(/^permessage-deflate/);
    expect(result.seqs.slice(0, COUNT)).toEqual([...Array(COUNT).keys()]);
    expect(result.ns.slice(0, COUNT)).toEqual([...Array(COUNT).keys()]);
    const stats = b.stats();
    expect(compressed).toEqual([true]);
    expect(stats.forms.smallDeflates).toBe(0); // its window is at least the canonical deflate's: that one serves it
    expect(stats.bytesSent * 2).toBeLessThan(stats.rawBytes);
  });
});
