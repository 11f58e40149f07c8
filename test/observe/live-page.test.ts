/**
 * The live page of `serve`, in headless Chromium driven over the DevTools protocol: the
 * server with the demo feed and a WebSocket subscriber; the page must fill its tiles and
 * its four uPlot charts from the Server-Sent Events, follow a window resize, and log no
 * console error or warning, uncaught exception or failed load on the way.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { serve } from '../../src/cli/serve.js';
import { resolveServerConfig } from '../../src/index.js';
import { requireChromium } from '../helpers/chromium.js';
import { DevToolsBrowser } from '../helpers/devtools.js';
import { MemoryLogger } from '../helpers/logger.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** What the page shows, read in the page. */
interface Shown {
  ready: boolean;
  title: string;
  status: string;
  snapshots: number;
  points: number;
  last: { time: number; messagesPerSecond: number; framesPerSecond: number; connections: number } | null;
  tiles: Record<string, string>;
  settings: string;
  charts: { width: number; height: number; cssWidth: number }[];
}

const SHOWN = `(() => {
  const live = window.batchcastLive;
  const text = (id) => document.getElementById(id)?.textContent ?? '';
  const tiles = Object.fromEntries(['messages', 'frames', 'wire', 'ratio', 'connections', 'delay', 'pool', 'loop', 'slow'].map((name) => [name, text('v-' + name)]));
  const charts = [...document.querySelectorAll('.chart canvas')].map((canvas) => ({ width: canvas.width, height: canvas.height, cssWidth: canvas.getBoundingClientRect().width }));
  return { ready: live !== undefined, title: document.title, status: text('status'), snapshots: live?.snapshots ?? 0, points: live?.points() ?? 0, last: live?.last ?? null, tiles, settings: text('settings'), charts };
})()`;

/** A tile's number: "1,234" → 1234, "–" → NaN. */
const number = (text: string | undefined) => Number((text ?? '').replace(/,/g, ''));

describe('live page of serve in headless Chromium', () => {
  it('fills the tiles and four uPlot charts from the event stream, follows a resize, and logs no error or warning', async (context) => {
    requireChromium(() => context.skip());
    const served = await serve({
      ...resolveServerConfig({ port: 0, host: '127.0.0.1' }, {}),
      demo: true,
      settings: { poolSize: 1, heartbeatIntervalMs: 0 },
      logger: new MemoryLogger(),
    });
    cleanups.push(() => served.close());

    // A subscriber, so frames and wire bytes flow and the page has a connection to count.
    const subscriber = new WebSocket(`ws://127.0.0.1:${served.port}/ws?channels=trades`);
    cleanups.push(() => subscriber.terminate());
    let frames = 0;
    subscriber.on('message', () => frames++);
    await once(subscriber, 'open');

    const browser = await DevToolsBrowser.launch({ width: 1200, height: 900 });
    cleanups.push(() => browser.close());
    const page = await browser.open(`http://127.0.0.1:${served.port}/`, { width: 1200, height: 900 });

    // One snapshot a second from a fresh server: 3 take ~3 s; 20 s leaves room for a loaded 2-core machine.
    const shown = await page.poll<Shown>(SHOWN, (s) => s.ready && s.snapshots >= 3 && s.points >= 3 && number(s.tiles.messages) > 0
      && number(s.tiles.frames) > 0 && number(s.tiles.connections) >= 1, 20_000);
    expect(shown.title).toBe('batchcast live');
    expect(shown.ready).toBe(true);
    expect(shown.status).toBe('live');
    expect(shown.snapshots).toBeGreaterThanOrEqual(3);
    expect(shown.points).toBeGreaterThanOrEqual(3);
    expect(number(shown.tiles.messages)).toBeGreaterThan(0);
    expect(number(shown.tiles.frames)).toBeGreaterThan(0);
    expect(number(shown.tiles.connections)).toBeGreaterThanOrEqual(1);
    expect(shown.tiles.connections).toBe(String(shown.last!.connections));
    expect(shown.tiles.wire).toMatch(/^\d+(\.\d)? (B|kB|MB|GB)\/s$/);
    expect(shown.tiles.ratio).toMatch(/^\d+\.\d\d×$/);
    expect(shown.tiles.pool).toMatch(/^\d+%$/);
    expect(shown.settings).toMatch(/preset \S+ · codec \S+ · batch size [\d,]+ · batch delay [\d.]+ ms · compression threshold .+ · level -?\d+ · adaptive (on|off)/);
    expect(frames).toBeGreaterThan(0);
    // uPlot draws each chart on a canvas of real size.
    expect(shown.charts).toHaveLength(4);
    for (const chart of shown.charts) {
      expect(chart.width).toBeGreaterThan(100);
      expect(chart.height).toBeGreaterThan(100);
    }

    // A narrower window: every chart follows it (still two columns at 1000 px, each narrower than at 1200).
    await page.resize(1000, 900);
    const narrow = await page.poll<Shown>(SHOWN, (s) => s.charts.every((chart, i) => chart.cssWidth < shown.charts[i]!.cssWidth), 10_000);
    expect(narrow.charts).toHaveLength(4);
    for (const [i, chart] of narrow.charts.entries()) {
      expect(chart.cssWidth).toBeLessThan(shown.charts[i]!.cssWidth - 50);
      expect(chart.cssWidth).toBeGreaterThan(300);
    }

    // Live, not polled: the page read the event stream and never asked for /stats.
    const paths = page.requested.map((url) => new URL(url).pathname);
    expect(paths).toContain('/live/events');
    expect(paths).toEqual(expect.arrayContaining(['/', '/live/uPlot.min.css', '/live/uPlot.iife.min.js', '/live/live.js']));
    expect(paths).not.toContain('/stats');
    expect(page.problems).toEqual([]);
  }, 60_000);

  it('says reconnecting while the server is away, and goes on live when it is back', async (context) => {
    requireChromium(() => context.skip());
    const options = { demo: true, settings: { poolSize: 1, heartbeatIntervalMs: 0 }, logger: new MemoryLogger() };
    const first = await serve({ ...resolveServerConfig({ port: 0, host: '127.0.0.1' }, {}), ...options });
    let firstOpen = true;
    cleanups.push(() => firstOpen && first.close());
    const browser = await DevToolsBrowser.launch();
    cleanups.push(() => browser.close());
    const page = await browser.open(`http://127.0.0.1:${first.port}/`);
    const before = await page.poll<Shown>(SHOWN, (s) => s.snapshots >= 2 && s.status === 'live', 20_000);
    expect(before.snapshots).toBeGreaterThanOrEqual(2);
    expect(before.status).toBe('live');

    // The server goes: its streams end and connecting is refused; EventSource keeps retrying.
    firstOpen = false;
    await first.close();
    const away = await page.poll<Shown>(SHOWN, (s) => s.status === 'reconnecting', 20_000);
    expect(away.status).toBe('reconnecting');

    // Back on the same port: the page reconnects by itself and adds the new server's seconds after the old ones.
    const second = await serve({ ...resolveServerConfig({ port: first.port, host: '127.0.0.1' }, {}), ...options });
    cleanups.push(() => second.close());
    const back = await page.poll<Shown>(SHOWN, (s) => s.status === 'live' && s.snapshots >= away.snapshots + 2, 20_000);
    expect(back.status).toBe('live');
    expect(back.snapshots).toBeGreaterThanOrEqual(away.snapshots + 2);
    expect(back.last!.time).toBeGreaterThan(before.last!.time);
    // Only the refused reconnects were reported: no exception, nothing from the page's script.
    expect(page.problems.filter((problem) => problem.kind !== 'network' || !problem.text.includes('/live/events'))).toEqual([]);
  }, 90_000);
});
