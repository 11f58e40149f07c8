/**
 * The package as users load it, and the documentation of its codes: `require` works
 * where Node can require an ES module, and README/protocol list exactly the error
 * codes and close codes the code defines.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLOSE_CODES, ERROR_CODES } from '../src/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('package', () => {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const requireEsm = (major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major >= 23;

  it.runIf(requireEsm)(`require('batchcast') and require('batchcast/client') work on Node ${process.versions.node}`, () => {
    const script = "const b = require('batchcast'); const c = require('batchcast/client');" +
      "console.log(JSON.stringify([typeof b.createBroadcaster, typeof c.connect, b.ERROR_CODES.CLOSED]))";
    const out = execFileSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(JSON.parse(out)).toEqual(['function', 'function', 'BATCHCAST_CLOSED']);
  });

  it('importing batchcast does not load ioredis (it slows msgpackr down); a broadcaster with Redis loads it', () => {
    // Counts ioredis's modules in the CommonJS cache, after the import and after making a broker (no connection needed).
    const count = "const r = (await import('node:module')).createRequire(import.meta.url); const n = () => Object.keys(r.cache).filter((k) => k.includes('/ioredis/')).length;";
    const script = `${count} const { RedisBroker } = await import('./dist/src/broker/redis.js'); await import('./dist/src/index.js'); const before = n();` +
      " new RedisBroker({ redis: 'redis://127.0.0.1:1', cluster: false, prefix: 'x:', maxPending: 1, streamLength: 1, keyTtlMs: 1000, connectTimeoutMs: 100 });" +
      ' console.log(JSON.stringify([before, n() > 0])); process.exit(0);';
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(JSON.parse(out)).toEqual([0, true]);
  });

  it('making a Redis broker leaves String.prototype a fast object, which loading ioredis alone does not', () => {
    // %HasFastProperties needs --allow-natives-syntax; ioredis's `class … extends String` turns the prototype slow.
    const run = (body: string): unknown => {
      const script = `const r = (await import('node:module')).createRequire(import.meta.url); const fast = () => %HasFastProperties(String.prototype); ${body}`;
      return JSON.parse(execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
    };
    expect(run("const before = fast(); r('ioredis'); console.log(JSON.stringify([before, fast()]));")).toEqual([true, false]);
    const broker = "const { RedisBroker } = await import('./dist/src/broker/redis.js');" +
      " new RedisBroker({ redis: 'redis://127.0.0.1:1', cluster: false, prefix: 'x:', maxPending: 1, streamLength: 1, keyTtlMs: 1000, connectTimeoutMs: 100 });";
    expect(run(`${broker} console.log(JSON.stringify(fast())); process.exit(0);`)).toBe(true);
    // An application that loaded ioredis itself first: making the broker still restores the prototype.
    expect(run(`r('ioredis'); const slow = !fast(); ${broker} console.log(JSON.stringify([slow, fast()])); process.exit(0);`)).toEqual([true, true]);
  });

  it('README lists every error code, and only those', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('| code | class | where it appears |'));
    const listed = [...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| `(BATCHCAST_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(Object.values(ERROR_CODES).sort());
  });

  it('docs/protocol.md lists every close code, and only those', () => {
    const protocol = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');
    const listed = [...protocol.matchAll(/^\| (\d{4}) \| `([A-Z_]+)` \|/gm)].map((m) => [m[2], Number(m[1])]);
    expect(Object.fromEntries(listed)).toEqual(CLOSE_CODES);
  });
});
