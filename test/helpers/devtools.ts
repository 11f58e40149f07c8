/**
 * Headless Chromium driven over the DevTools protocol, for pages the test does not serve
 * itself (the live page of `serve`): evaluate expressions in the page, collect its console
 * errors and warnings, uncaught exceptions and failed loads, record the URLs it requested,
 * resize the viewport and take screenshots. One WebSocket to the browser, one flat session
 * per page. Chromium is /usr/bin/chromium (see chromium.ts for skipping when it is missing).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { CHROMIUM } from './chromium.js';

/** Something the page reported that a healthy page does not. */
export interface PageProblem {
  /** `console.error`, `console.warning`, `exception`, or the Log domain's source (`network`, `javascript`, …). */
  kind: string;
  text: string;
}

interface Reply {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  sessionId?: string;
  result?: Record<string, unknown>;
  error?: { message: string };
}

type Listener = (params: Record<string, unknown>, sessionId: string | undefined) => void;

/** A browser started with --remote-debugging-port=0 and the protocol connection to it. */
export class DevToolsBrowser {
  readonly #process: ChildProcess;
  readonly #socket: WebSocket;
  readonly #profile: string;
  readonly #pending = new Map<number, { resolve: (result: Record<string, unknown>) => void; reject: (error: Error) => void; method: string }>();
  readonly #listeners = new Map<string, Listener[]>();
  #nextId = 1;
  #closed = false;

  private constructor(process: ChildProcess, socket: WebSocket, profile: string) {
    this.#process = process;
    this.#socket = socket;
    this.#profile = profile;
    socket.on('message', (data: Buffer) => this.#receive(JSON.parse(data.toString()) as Reply));
    socket.on('close', () => {
      for (const call of this.#pending.values()) call.reject(new Error(`DevTools connection closed during ${call.method}`));
      this.#pending.clear();
    });
  }

  /** Starts headless Chromium with a fresh profile; resolves once its DevTools endpoint answers. */
  static async launch(options: { width?: number; height?: number; timeoutMs?: number } = {}): Promise<DevToolsBrowser> {
    const { width = 1200, height = 900, timeoutMs = 20_000 } = options;
    const profile = mkdtempSync(join(tmpdir(), 'bc-devtools-'));
    // Real time, real sockets; nothing throttles a page that the (invisible) window hides.
    const child = spawn(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--no-default-browser-check',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-extensions',
      '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows',
      '--hide-scrollbars', '--remote-debugging-port=0', `--user-data-dir=${profile}`, `--window-size=${width},${height}`, 'about:blank',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const url = await endpoint(child, timeoutMs);
      const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 256 << 20 });
      await once(socket, 'open');
      return new DevToolsBrowser(child, socket, profile);
    } catch (error) {
      child.kill('SIGKILL');
      rmSync(profile, { recursive: true, force: true });
      throw error;
    }
  }

  /** Sends a command (to the browser, or to a page's session) and resolves with its result. */
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    if (this.#closed) return Promise.reject(new Error(`browser closed: cannot send ${method}`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, method });
      this.#socket.send(JSON.stringify({ id, method, params, ...(sessionId === undefined ? {} : { sessionId }) }));
    });
  }

  /** Calls `listener` for every `method` event (e.g. `Runtime.consoleAPICalled`). */
  on(method: string, listener: Listener): void {
    this.#listeners.set(method, [...(this.#listeners.get(method) ?? []), listener]);
  }

  /**
   * Opens a new tab on about:blank, attaches to it, starts collecting what it reports, then
   * navigates to `url`: problems from the very first byte of the page are caught.
   */
  async open(url: string, viewport?: { width: number; height: number }): Promise<DevToolsPage> {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new DevToolsPage(this, sessionId as string);
    await Promise.all(['Runtime.enable', 'Log.enable', 'Page.enable', 'Network.enable'].map((method) => page.send(method)));
    if (viewport !== undefined) await page.resize(viewport.width, viewport.height);
    const navigated = await page.send('Page.navigate', { url });
    if (typeof navigated.errorText === 'string') throw new Error(`navigating to ${url} failed: ${navigated.errorText}`);
    return page;
  }

  /** Closes the browser (politely, then SIGKILL after 5 s) and removes its profile. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const exited = this.#process.exitCode !== null || this.#process.signalCode !== null ? Promise.resolve() : once(this.#process, 'exit').then(() => {});
    await Promise.race([this.send('Browser.close').catch(() => {}), delay(2_000)]);
    this.#closed = true;
    this.#socket.terminate();
    const timer = setTimeout(() => this.#process.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    rmSync(this.#profile, { recursive: true, force: true, maxRetries: 3 });
  }

  #receive(message: Reply): void {
    if (message.id !== undefined) {
      const call = this.#pending.get(message.id);
      if (call === undefined) return;
      this.#pending.delete(message.id);
      if (message.error !== undefined) call.reject(new Error(`${call.method}: ${message.error.message}`));
      else call.resolve(message.result ?? {});
      return;
    }
    for (const listener of this.#listeners.get(message.method ?? '') ?? []) listener(message.params ?? {}, message.sessionId);
  }
}

/** One tab, through its flat session. */
export class DevToolsPage {
  /** Console errors and warnings, uncaught exceptions, Log entries at warning or error (failed loads…). */
  readonly problems: PageProblem[] = [];
  /** Every URL the page requested, in order. */
  readonly requested: string[] = [];
  readonly #browser: DevToolsBrowser;
  readonly #sessionId: string;

  constructor(browser: DevToolsBrowser, sessionId: string) {
    this.#browser = browser;
    this.#sessionId = sessionId;
    const mine = (listener: (params: Record<string, unknown>) => void): Listener => (params, session) => {
      if (session === sessionId) listener(params);
    };
    browser.on('Runtime.consoleAPICalled', mine((params) => {
      const type = params.type as string;
      if (type !== 'error' && type !== 'warning' && type !== 'assert') return;
      const args = params.args as { value?: unknown; description?: string }[];
      this.problems.push({ kind: `console.${type}`, text: args.map((arg) => arg.description ?? String(arg.value)).join(' ') });
    }));
    browser.on('Runtime.exceptionThrown', mine((params) => {
      const details = params.exceptionDetails as { text: string; exception?: { description?: string } };
      this.problems.push({ kind: 'exception', text: details.exception?.description ?? details.text });
    }));
    browser.on('Log.entryAdded', mine((params) => {
      const entry = params.entry as { source: string; level: string; text: string; url?: string };
      if (entry.level === 'error' || entry.level === 'warning') this.problems.push({ kind: entry.source, text: `${entry.text}${entry.url === undefined ? '' : ` (${entry.url})`}` });
    }));
    browser.on('Network.requestWillBeSent', mine((params) => this.requested.push((params.request as { url: string }).url)));
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.#browser.send(method, params, this.#sessionId);
  }

  /** The value of `expression` in the page (awaited when a promise), as JSON. */
  async evaluate<T>(expression: string): Promise<T> {
    const reply = await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    const thrown = reply.exceptionDetails as { text: string; exception?: { description?: string } } | undefined;
    if (thrown !== undefined) throw new Error(`in the page: ${thrown.exception?.description ?? thrown.text}`);
    return (reply.result as { value: T }).value;
  }

  /**
   * Evaluates `expression` every 250 ms until `done` holds of its value or `timeoutMs` passes;
   * returns the last value either way, so the caller's assertions say what was missing.
   */
  async poll<T>(expression: string, done: (value: T) => boolean, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await this.evaluate<T>(expression);
      if (done(value) || Date.now() >= deadline) return value;
      await delay(250);
    }
  }

  /** Sets the viewport (the page sees a window resize). */
  async resize(width: number, height: number): Promise<void> {
    await this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
  }

  /** A PNG of the viewport. */
  async screenshot(): Promise<Buffer> {
    const { data } = await this.send('Page.captureScreenshot', { format: 'png' });
    return Buffer.from(data as string, 'base64');
  }
}

/** Reads Chromium's stderr until it prints its DevTools WebSocket URL. */
function endpoint(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const fail = (why: string) => {
      cleanup();
      reject(new Error(`${why}; Chromium's stderr:\n${stderr.slice(-2_000)}`));
    };
    const onData = (chunk: Buffer) => {
      stderr += chunk.toString();
      const found = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
      if (found === null) return;
      cleanup();
      // Keep draining stderr so Chromium never blocks on a full pipe.
      child.stderr!.resume();
      resolve(found[1]!);
    };
    const onExit = (code: number | null, signal: string | null) => fail(`Chromium exited (${code ?? signal}) before its DevTools endpoint was up`);
    const timer = setTimeout(() => fail(`no DevTools endpoint within ${timeoutMs} ms`), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.stderr!.off('data', onData);
      child.off('exit', onExit);
    };
    child.stderr!.on('data', onData);
    child.once('exit', onExit);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
