import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createBroadcaster, type Broadcaster } from '../src/index.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

// The page uses the built client exactly as the README tells browser users to: ESM + an import map, no bundler.
const PAGE = `<!doctype html><html><body><pre id="out">waiting</pre>
<script type="importmap">{ "imports": { "pako": "/node_modules/pako/dist/pako.mjs", "msgpackr": "/node_modules/msgpackr/index.js" } }</script>
<script type="module">
import { connect } from '/dist/src/client/index.js';
const seqs = [];
const client = connect('ws://' + location.host + '/ws', { channels: ['browser'] });
const report = (body) => fetch('/report', { method: 'POST', body: JSON.stringify(body) });
client.on('message', (m) => {
  seqs.push(m.seq);
  if (seqs.length === 300) report({ count: seqs.length, first: seqs[0], last: m, stats: client.stats });
});
client.on('error', (e) => report({ error: e.message }));
</script></body></html>`;

let broadcaster: Broadcaster | undefined;
let server: Server | undefined;
let browser: ChildProcess | undefined;
afterEach(async () => {
  browser?.kill('SIGKILL');
  await broadcaster?.close();
  server?.close();
});

/** Under CI=true a missing Chromium fails the test (.ci/run installs it); elsewhere the test is skipped. */
function requireChromium(skip: () => void): void {
  if (existsSync(CHROMIUM)) return;
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: the browser test cannot run (apt-get install chromium)`);
  skip();
}

describe('client in headless Chromium (ESM, import map, pako)', () => {
  it.for(['json', 'msgpack'] as const)('receives and decodes compressed %s batches', async (codec, context) => {
    requireChromium(() => context.skip());
    let reported: (body: string) => void = () => {};
    const report = new Promise<string>((resolve) => (reported = resolve));
    server = createServer((request, response) => {
      const path = (request.url ?? '/').split('?')[0]!;
      if (path === '/') return response.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
      if (path === '/report') {
        let body = '';
        request.on('data', (chunk: Buffer) => (body += chunk.toString()));
        request.on('end', () => reported(body));
        return response.writeHead(204).end();
      }
      if (!path.startsWith('/dist/') && !path.startsWith('/node_modules/')) return response.writeHead(404).end();
      readFile(join(ROOT, path)).then(
        (body) => response.writeHead(200, { 'content-type': 'text/javascript' }).end(body),
        () => response.writeHead(404).end(),
      );
    });
    broadcaster = createBroadcaster({ server, path: '/ws', env: {}, poolSize: 1, batchDelayMs: 5, codec });
    const b = broadcaster;
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const feed = setInterval(() => {
      for (let i = 0; i < 100; i++) b.publish('browser', { i, note: 'repetitive text compresses well '.repeat(2) });
    }, 20);
    // The page posts its result to /report; the browser runs until then (no virtual time: real sockets, real timers).
    browser = spawn(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${mkdtempSync(join(tmpdir(), 'bc-chromium-'))}`,
      `http://127.0.0.1:${port}/`,
    ], { stdio: 'ignore' });
    const text = await Promise.race([report, once(browser!, 'exit').then(() => 'browser exited before reporting')]).finally(() => {
      clearInterval(feed);
      browser!.kill('SIGKILL');
    });
    const result = JSON.parse(text) as { count: number; first: number; last: { channel: string; seq: number; data: { i: number } }; stats: { wireBytes: number; rawBytes: number; gaps: number } };
    expect(result).not.toHaveProperty('error');
    expect(result.count).toBe(300);
    // Contiguous from the first message seen: nothing lost or reordered in the browser path.
    expect(result.last.seq - result.first + 1).toBe(result.count);
    expect(result.last.channel).toBe('browser');
    expect(result.last.data.i).toBe(result.last.seq % 100); // 100 messages per tick from seq 0: i = seq mod 100
    expect(result.stats.rawBytes).toBeGreaterThan(result.stats.wireBytes * 2); // bodies arrived compressed and pako inflated them
    expect(result.stats.gaps).toBe(0);
  });
});
