#!/usr/bin/env node
/**
 * Makes docs/live-page.png, the README's picture of the live page: starts the built server
 * (dist/, so `npm run build` first) with the demo feed on a free loopback port, subscribes a
 * few WebSocket clients, lets it run ~15 s, then opens the page in headless Chromium over
 * the DevTools protocol (the page gets the 15 s as its backlog), waits for live updates
 * and captures the viewport.
 *
 *   npm run build && node scripts/screenshot-live.mjs [out.png] [seconds]
 *
 * Chromium: /usr/bin/chromium, or $CHROMIUM.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { serve } from '../dist/src/cli/serve.js';
import { resolveServerConfig } from '../dist/src/index.js';

const OUT = process.argv[2] ?? fileURLToPath(new URL('../docs/live-page.png', import.meta.url));
const SECONDS = Number(process.argv[3] ?? 15);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const [WIDTH, HEIGHT] = [1200, 900];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Quiet: only trouble is printed.
const quiet = { debug() {}, info() {}, warn: (_f, m) => console.warn(m), error: (_f, m) => console.error(m) };
const served = await serve({
  ...resolveServerConfig({ port: 0, host: '127.0.0.1' }, {}),
  demo: true, settings: { poolSize: 1, heartbeatIntervalMs: 0 }, logger: quiet,
});
const base = `127.0.0.1:${served.port}`;
const clients = [];
let browser;
let profile;
try {
  // A couple of subscribers, so frames, wire bytes and connections are not zero.
  for (const channels of ['trades', 'trades', 'ticker.BTC-USD,ticker.ETH-USD']) {
    const client = new WebSocket(`ws://${base}/ws?channels=${channels}`);
    clients.push(client);
    await once(client, 'open');
  }
  console.log(`server on http://${base}/ with ${clients.length} subscribers; waiting ${SECONDS} s`);
  await sleep(SECONDS * 1000);

  profile = mkdtempSync(join(tmpdir(), 'bc-shot-'));
  browser = spawn(CHROMIUM, [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--hide-scrollbars', '--remote-debugging-port=0', `--user-data-dir=${profile}`, `--window-size=${WIDTH},${HEIGHT}`, 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const cdp = await devtools(browser);
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
  const page = (method, params) => cdp.send(method, params, sessionId);
  await page('Emulation.setDeviceMetricsOverride', { width: WIDTH, height: HEIGHT, deviceScaleFactor: 1, mobile: false });
  await page('Page.navigate', { url: `http://${base}/` });

  // The backlog plus a few live seconds, so the tiles show a current second and the status says live.
  const deadline = Date.now() + 20_000;
  const seen = async () => (await page('Runtime.evaluate', { expression: 'window.batchcastLive?.snapshots ?? 0', returnByValue: true })).result.value;
  while ((await seen()) === 0 && Date.now() < deadline) await sleep(100);
  await sleep(500); // the backlog comes in one piece: count from after it
  const start = await seen();
  while ((await seen()) < start + 2 && Date.now() < deadline) await sleep(250);
  await sleep(300); // one more frame for uPlot

  const { data } = await page('Page.captureScreenshot', { format: 'png' });
  writeFileSync(OUT, Buffer.from(data, 'base64'));
  console.log(`wrote ${OUT}`);
  await cdp.send('Browser.close').catch(() => {});
  cdp.close();
} finally {
  for (const client of clients) client.terminate();
  if (browser !== undefined && browser.exitCode === null) {
    const exited = once(browser, 'exit');
    const timer = setTimeout(() => browser.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  if (profile !== undefined) rmSync(profile, { recursive: true, force: true, maxRetries: 3 });
  await served.close();
}

/** Waits for Chromium's DevTools URL on its stderr and connects: send(method, params, sessionId) → result. */
async function devtools(child) {
  const url = await new Promise((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`no DevTools endpoint from ${CHROMIUM}:\n${stderr}`)), 20_000);
    child.once('exit', (code) => reject(new Error(`${CHROMIUM} exited (${code}):\n${stderr}`)));
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      const found = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
      if (found !== null) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
  });
  const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 << 20 });
  await once(socket, 'open');
  const pending = new Map();
  let nextId = 1;
  socket.on('message', (raw) => {
    const message = JSON.parse(raw.toString());
    const call = pending.get(message.id);
    if (call === undefined) return;
    pending.delete(message.id);
    if (message.error) call.reject(new Error(`${call.method}: ${message.error.message}`));
    else call.resolve(message.result);
  });
  socket.on('close', () => pending.forEach((call) => call.reject(new Error(`DevTools closed during ${call.method}`))));
  return {
    send: (method, params = {}, session) => new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject, method });
      socket.send(JSON.stringify({ id, method, params, ...(session === undefined ? {} : { sessionId: session }) }));
    }),
    close: () => socket.terminate(),
  };
}
