/**
 * Headless Chromium for browser tests: an HTTP server that serves a test page, the
 * built package (`/dist/…`) and `node_modules` files, records every path the browser
 * fetched, and takes the page's result as a POST to `/report`. Under CI=true a missing
 * Chromium fails the test (.ci/run installs it); elsewhere the test is skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Skips the test when Chromium is missing, or fails it under CI=true. */
export function requireChromium(skip: () => void): void {
  if (existsSync(CHROMIUM)) return;
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: the browser test cannot run (apt-get install chromium)`);
  skip();
}

/** A page server and the browser pointed at it. */
export class BrowserRun {
  readonly server: Server;
  /** Paths the browser requested, in order. */
  readonly fetched: string[] = [];
  #browser: ChildProcess | null = null;
  readonly #profiles: string[] = [];
  #reported: (body: string) => void = () => {};
  readonly #report = new Promise<string>((resolve) => (this.#reported = resolve));

  /** `pages` maps a path (`/`) to the HTML served there. */
  constructor(pages: Record<string, string>) {
    this.server = createServer((request, response) => {
      const path = (request.url ?? '/').split('?')[0]!;
      this.fetched.push(path);
      const page = pages[path];
      if (page !== undefined) return response.writeHead(200, { 'content-type': 'text/html' }).end(page);
      if (path === '/report') {
        let body = '';
        request.on('data', (chunk: Buffer) => (body += chunk.toString()));
        request.on('end', () => this.#reported(body));
        return response.writeHead(204).end();
      }
      if (!path.startsWith('/dist/') && !path.startsWith('/node_modules/')) return response.writeHead(404).end();
      readFile(join(ROOT, path)).then(
        (body) => response.writeHead(200, { 'content-type': 'text/javascript' }).end(body),
        () => response.writeHead(404).end(),
      );
    });
  }

  /** Listens on a free loopback port; returns it. */
  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  /** Opens `path` in headless Chromium and resolves with what the page reported (parsed JSON). */
  async run<T>(path: string): Promise<T> {
    const { port } = this.server.address() as AddressInfo;
    // Real sockets and real timers: no virtual time. The page posts its result to /report.
    const profile = mkdtempSync(join(tmpdir(), 'bc-chromium-'));
    this.#profiles.push(profile);
    const browser = spawn(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`,
      `http://127.0.0.1:${port}${path}`,
    ], { stdio: 'ignore', detached: true });
    this.#browser = browser;
    const text = await Promise.race([this.#report, once(browser, 'exit').then(() => JSON.stringify({ error: 'browser exited before reporting' }))]);
    killGroup(browser);
    return JSON.parse(text) as T;
  }

  /** Kills the browser, deletes its profile and closes the server. */
  close(): void {
    const browser = this.#browser;
    if (browser !== null) killGroup(browser);
    // Chromium writes to its profile until it is gone: delete the profiles once the process has exited.
    const remove = () => this.#profiles.splice(0).forEach((profile) => rmSync(profile, { recursive: true, force: true }));
    if (browser === null || browser.exitCode !== null || browser.signalCode !== null) remove();
    else browser.once('exit', remove);
    this.server.closeAllConnections();
    this.server.close();
  }
}

/** /usr/bin/chromium is a shell script: kill its whole process group, or the browser it started lives on (and writes to its profile). */
function killGroup(browser: ChildProcess): void {
  try {
    if (browser.pid !== undefined) process.kill(-browser.pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}

/** The script of a page: posts `body` (JSON) to /report. */
export const REPORT_SCRIPT = "const report = (body) => fetch('/report', { method: 'POST', body: JSON.stringify(body) });";
