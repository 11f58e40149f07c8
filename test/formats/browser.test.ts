/**
 * In headless Chromium, with the browser's own WebSocket (which always offers
 * permessage-deflate): our client over negotiated compression (pako never fetched),
 * our client without it (pako fetched on the first compressed envelope), and pages
 * with no SDK at all reading the `batchcast` and `json` formats, and the reference
 * design's frontend (pako.inflate when compressed, then JSON.parse) reading `seed`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createBroadcaster, type Broadcaster } from '../../src/index.js';
import { BrowserRun, REPORT_SCRIPT, requireChromium } from '../helpers/chromium.js';

const COUNT = 300;

// Our client exactly as the README tells browser users to load it: ESM + an import map, no bundler.
const CLIENT_PAGE = `<!doctype html><html><body>
<script type="importmap">{ "imports": { "pako": "/node_modules/pako/dist/pako.mjs", "msgpackr": "/node_modules/msgpackr/index.js" } }</script>
<script type="module">
import { connect } from '/dist/src/client/index.js';
${REPORT_SCRIPT}
const seqs = [];
const ns = [];
const client = connect('ws://' + location.host + '/ws', { channels: ['browser'] });
client.on('message', (m) => {
  seqs.push(m.seq);
  ns.push(m.data.n);
  if (seqs.length === ${COUNT}) report({ seqs, ns, channel: m.channel, stats: client.stats });
});
client.on('error', (e) => report({ error: e.message }));
</script></body></html>`;

// No SDK: the envelope read by hand with DataView and TextDecoder; the browser inflated the transport.
const NATIVE_BATCHCAST_PAGE = `<!doctype html><html><body><script type="module">
${REPORT_SCRIPT}
const seqs = [];
const ns = [];
const ws = new WebSocket('ws://' + location.host + '/ws?channels=browser&format=batchcast');
ws.binaryType = 'arraybuffer';
ws.onmessage = (event) => {
  const bytes = new Uint8Array(event.data);
  const view = new DataView(event.data);
  if (bytes[0] !== 0xbc || bytes[2] !== 1) return; // notices (kind 2) are not counted here
  if (bytes[3] & 1) return report({ error: 'an envelope-compressed body arrived: it needs an inflater' });
  const firstSeq = view.getUint32(8) * 2 ** 32 + view.getUint32(12);
  const nameLength = view.getUint16(16);
  const messages = JSON.parse(new TextDecoder().decode(bytes.subarray(18 + nameLength)));
  messages.forEach((m, i) => { seqs.push(firstSeq + i); ns.push(m.n); });
  if (seqs.length >= ${COUNT}) { ws.onmessage = null; report({ seqs, ns, extensions: ws.extensions }); }
};
ws.onerror = () => report({ error: 'WebSocket error' });
</script></body></html>`;

// No SDK: JSON.parse(event.data), nothing else.
const NATIVE_JSON_PAGE = `<!doctype html><html><body><script type="module">
${REPORT_SCRIPT}
const seqs = [];
const ns = [];
const notices = [];
const ws = new WebSocket('ws://' + location.host + '/ws?channels=browser&format=json');
ws.onmessage = (event) => {
  const frame = JSON.parse(event.data);
  if (frame.op !== undefined) return notices.push(frame.op);
  frame.messages.forEach((m, i) => { seqs.push(frame.seq + i); ns.push(m.n); });
  if (seqs.length >= ${COUNT}) { ws.onmessage = null; report({ seqs, ns, notices, extensions: ws.extensions, text: typeof event.data === 'string' }); }
};
ws.onerror = () => report({ error: 'WebSocket error' });
</script></body></html>`;

// The reference design's frontend, unchanged: binary → pako.inflate when compressed → JSON.parse.
const SEED_PAGE = `<!doctype html><html><body><script type="module">
import * as pako from '/node_modules/pako/dist/pako.mjs';
${REPORT_SCRIPT}
const ns = [];
let compressed = 0;
let plain = 0;
const ws = new WebSocket('ws://' + location.host + '/ws?channels=browser&format=seed');
ws.binaryType = 'arraybuffer';
ws.onmessage = (event) => {
  const data = new Uint8Array(event.data);
  let text;
  if (data[0] === 0x78) { compressed++; text = new TextDecoder().decode(pako.inflate(data)); } else { plain++; text = new TextDecoder().decode(data); }
  for (const message of JSON.parse(text)) ns.push(message.n);
  if (ns.length >= ${COUNT}) { ws.onmessage = null; report({ ns, compressed, plain }); }
};
ws.onerror = () => report({ error: 'WebSocket error' });
</script></body></html>`;

let run: BrowserRun | undefined;
let broadcaster: Broadcaster | undefined;
let feed: NodeJS.Timeout | undefined;
afterEach(async () => {
  clearInterval(feed);
  run?.close();
  await broadcaster?.close();
});

/** Serves `page`, starts a broadcaster on the same server, and publishes 100 numbered messages every 20 ms. */
async function start(page: string, options: Record<string, unknown> = {}): Promise<BrowserRun> {
  run = new BrowserRun({ '/': page });
  broadcaster = createBroadcaster({ server: run.server, path: '/ws', env: {}, poolSize: 1, batchDelayMs: 5, ...options });
  const b = broadcaster;
  await run.listen();
  let n = 0;
  feed = setInterval(() => {
    for (let i = 0; i < 100; i++) b.publish('browser', { n: n++, note: 'repetitive text compresses well '.repeat(2) });
  }, 20);
  return run;
}

/** Contiguous from the first value seen: nothing lost, repeated or reordered. */
function expectContiguous(values: number[]): void {
  expect(values.length).toBeGreaterThanOrEqual(COUNT);
  expect(values).toEqual(values.map((_v, i) => values[0]! + i));
}

type ClientReport = { error?: string; seqs: number[]; ns: number[]; channel: string; stats: { frames: number; wireBytes: number; rawBytes: number; gaps: number } };

describe('batchcast client in headless Chromium (ESM, import map)', () => {
  it.for(['json', 'msgpack'] as const)('%s codec over negotiated permessage-deflate: the browser inflates natively and pako is never fetched', async (codec, context) => {
    requireChromium(() => context.skip());
    const page = await start(CLIENT_PAGE, { codec });
    const result = await page.run<ClientReport>('/');
    expect(result).not.toHaveProperty('error');
    expectContiguous(result.seqs);
    expect(result.ns).toEqual(result.seqs); // message n was published as the n-th: its seq
    expect(result.channel).toBe('browser');
    expect(result.stats.gaps).toBe(0);
    // The envelopes reached the client with uncompressed bodies (wire = body + header): the transport carried them compressed.
    expect(result.stats.wireBytes - result.stats.rawBytes).toBe(result.stats.frames * (18 + 'browser'.length));
    expect([...broadcaster!.connections][0]!.transportCompressed).toBe(true);
    const stats = broadcaster!.stats();
    expect(stats.bytesSent * 2).toBeLessThan(stats.rawBytes);
    expect(page.fetched).toContain('/dist/src/client/index.js');
    expect(page.fetched.filter((path) => path.includes('pako'))).toEqual([]);
  });

  it('without permessage-deflate the client fetches pako on the first compressed envelope and decodes everything in order', async (context) => {
    requireChromium(() => context.skip());
    const page = await start(CLIENT_PAGE, { perMessageDeflate: false });
    const result = await page.run<ClientReport>('/');
    expect(result).not.toHaveProperty('error');
    expectContiguous(result.seqs);
    expect(result.ns).toEqual(result.seqs);
    expect(result.stats.rawBytes).toBeGreaterThan(result.stats.wireBytes * 2); // pako inflated the bodies
    expect([...broadcaster!.connections][0]!.transportCompressed).toBe(false);
    expect(page.fetched).toContain('/node_modules/pako/dist/pako.mjs');
  });
});

describe('standard WebSocket in headless Chromium, no SDK, no pako', () => {
  it('format=batchcast over negotiated permessage-deflate: every message, in order', async (context) => {
    requireChromium(() => context.skip());
    const page = await start(NATIVE_BATCHCAST_PAGE);
    const result = await page.run<{ error?: string; seqs: number[]; ns: number[]; extensions: string }>('/');
    expect(result).not.toHaveProperty('error');
    expectContiguous(result.seqs);
    expect(result.ns).toEqual(result.seqs);
    expect(result.extensions).toMatch(/^permessage-deflate/);
    expect(broadcaster!.stats().bytesSent * 2).toBeLessThan(broadcaster!.stats().rawBytes);
  });

  it('format=json: text frames read with JSON.parse alone, compressed by the transport; every message, in order', async (context) => {
    requireChromium(() => context.skip());
    const page = await start(NATIVE_JSON_PAGE);
    const result = await page.run<{ error?: string; seqs: number[]; ns: number[]; notices: string[]; extensions: string; text: boolean }>('/');
    expect(result).not.toHaveProperty('error');
    expect(result.text).toBe(true);
    expect(result.notices).toContain('subscribed');
    expectContiguous(result.seqs);
    expect(result.ns).toEqual(result.seqs);
    expect(result.extensions).toMatch(/^permessage-deflate/);
    expect(broadcaster!.stats().bytesSent * 2).toBeLessThan(broadcaster!.stats().rawBytes);
  });

  it("format=seed: the reference design's frontend (pako.inflate when compressed, JSON.parse) works unchanged", async (context) => {
    requireChromium(() => context.skip());
    const page = await start(SEED_PAGE);
    const result = await page.run<{ error?: string; ns: number[]; compressed: number; plain: number }>('/');
    expect(result).not.toHaveProperty('error');
    expectContiguous(result.ns);
    expect(result.compressed).toBeGreaterThan(0); // batches over the threshold came zlib-compressed
  });
});
