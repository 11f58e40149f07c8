import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, freePort, waitFor, waitForAsync } from './helpers/harness.js';

const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Runs the built CLI in a child process, collecting its output. */
function run(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.on('data', (chunk: Buffer) => (out.stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  return { child, out, exited };
}

async function serve(args: string[] = [], env: Record<string, string> = {}) {
  const server = run(['serve', '--port', '0', '--host', '127.0.0.1', '--pool-size', '1', ...args], env);
  await waitFor(() => /listening on ws:\/\/127\.0\.0\.1:\d+\/ws/.test(server.out.stdout) || server.child.exitCode !== null, 15_000, 'serve to listen');
  const port = Number(/127\.0\.0\.1:(\d+)\/ws/.exec(server.out.stdout)?.[1]);
  return { ...server, port, base: `http://127.0.0.1:${port}` };
}

describe('batchcast CLI (child processes)', () => {
  it('serve --demo feeds tail, which reports rate, bytes and compression', async () => {
    const server = await serve(['--demo', '--demo-rate', '3000']);
    const tail = run(['tail', `ws://127.0.0.1:${server.port}/ws`, 'trades', 'ticker.BTC-USD', '--json', '--duration', '3']);
    const [code] = await tail.exited;
    expect(code).toBe(0);
    const lines = tail.out.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, number>);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    const last = lines.at(-1)!;
    expect(last.messages).toBeGreaterThan(1000);
    expect(last.gaps).toBe(0);
    expect(lines.some((l) => l.messagesPerSecond! > 0 && l.wireBytesPerSecond! > 0)).toBe(true);
    expect(last.compressionRatio).toBeGreaterThan(2);

    server.child.kill('SIGTERM');
    const [serverCode] = await server.exited;
    expect(serverCode).toBe(0);
    expect(server.out.stdout).toMatch(/SIGTERM: flushing batches[\s\S]*closed after \d+ messages/);    // pino: every line on stdout is one JSON object with a level, a time and a message.
    const logged = server.out.stdout.trim().split('\n').map((line) => JSON.parse(line) as { level: number; time: number; msg: string; name: string });
    expect(logged.every((entry) => typeof entry.level === 'number' && typeof entry.time === 'number' && typeof entry.msg === 'string' && entry.name === 'batchcast')).toBe(true);
  });

  it('--log-level warn keeps info lines out (and BATCHCAST_LOG_LEVEL is checked)', async () => {
    const port = await freePort();
    const quiet = run(['serve', '--port', String(port), '--host', '127.0.0.1', '--pool-size', '1', '--log-level', 'warn']);
    await waitForAsync(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.status === 200, 15_000, 'serve to answer');
    quiet.child.kill('SIGTERM');
    expect((await quiet.exited)[0]).toBe(0);
    expect(quiet.out.stdout).toBe('');
    const bad = run(['serve', '--port', '0'], { BATCHCAST_LOG_LEVEL: 'loud' });
    expect((await bad.exited)[0]).not.toBe(0);
    expect(bad.out.stderr).toContain('BATCHCAST_LOG_LEVEL');
  });

  it('serves /healthz, /stats and POST /publish/:channel (loopback without a token)', async () => {
    const server = await serve();
    expect(await (await fetch(`${server.base}/healthz`)).json()).toEqual({ status: 'ok' });
    const published = await fetch(`${server.base}/publish/news`, { method: 'POST', body: JSON.stringify([{ a: 1 }, { b: 2 }]) });
    expect(published.status).toBe(202);
    expect(await published.json()).toEqual({ accepted: 2 });
    const single = await fetch(`${server.base}/publish/news`, { method: 'POST', body: '"one"' });
    expect(await single.json()).toEqual({ accepted: 1 });
    const bad = await fetch(`${server.base}/publish/news`, { method: 'POST', body: '{oops' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'BATCHCAST_INVALID_MESSAGE' });
    const badChannel = await fetch(`${server.base}/publish/${encodeURIComponent('no spaces')}`, { method: 'POST', body: '1' });
    expect(badChannel.status).toBe(400);
    expect(await badChannel.json()).toMatchObject({ code: 'BATCHCAST_INVALID_CHANNEL' });
    const stats = (await (await fetch(`${server.base}/stats`)).json()) as { messagesPublished: number; pool: { threads: number } };
    expect(stats.messagesPublished).toBe(3);
    expect(stats.pool.threads).toBe(1);
    expect((await fetch(`${server.base}/nowhere`)).status).toBe(404);
  });

  it('requires the publish token when BATCHCAST_PUBLISH_TOKEN is set', async () => {
    const server = await serve([], { BATCHCAST_PUBLISH_TOKEN: 's3cret' });
    const url = `${server.base}/publish/x`;
    expect((await fetch(url, { method: 'POST', body: '1' })).status).toBe(401);
    expect((await fetch(url, { method: 'POST', body: '1', headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(url, { method: 'POST', body: '1', headers: { authorization: 'Bearer s3cret' } })).status).toBe(202);
  });

  it('fails at start with exit code 2 and a message naming a bad variable and its range', async () => {
    const bad = run(['serve', '--port', '0'], { BATCHCAST_BATCH_SIZE: 'lots' });
    const [code] = await bad.exited;
    expect(code).toBe(2);
    expect(bad.out.stderr).toContain('BATCHCAST_INVALID_CONFIG');
    expect(bad.out.stderr).toContain('BATCHCAST_BATCH_SIZE: "lots" is not an integer; expected 1..100000');
    const flag = run(['serve', '--port', '0', '--codec', 'xml']);
    expect((await flag.exited)[0]).toBe(2);
    expect(flag.out.stderr).toContain('--codec');
    const path = run(['serve', '--port', '0'], { BATCHCAST_PATH: 'ws' });
    expect((await path.exited)[0]).toBe(2);
    expect(path.out.stderr).toContain('BATCHCAST_PATH: "ws" is not accepted; expected a URL path starting with "/"');
  });

  it('on SIGTERM delivers every published message to a connected client, then closes it with 1001', async () => {
    // A long batch delay: the messages are still in an open batch when the signal comes.
    const server = await serve(['--batch-delay-ms', '10000']);
    const client = await RawClient.open(`ws://127.0.0.1:${server.port}/ws`, ['news']);
    const closedWith = new Promise<number>((resolve) => client.ws.once('close', (code) => resolve(code)));
    const body = JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ i })));
    expect((await fetch(`${server.base}/publish/news`, { method: 'POST', body })).status).toBe(202);
    expect(client.messages).toHaveLength(0);
    server.child.kill('SIGTERM');
    expect(await closedWith).toBe(1001);
    expect(client.messages.map((m) => (m.data as { i: number }).i)).toEqual([...Array(300).keys()]);
    expect((await server.exited)[0]).toBe(0);
  });

  it('tail prints one human-readable line a second', async () => {
    const server = await serve(['--demo', '--demo-rate', '1000']);
    const tail = run(['tail', `ws://127.0.0.1:${server.port}/ws`, 'trades', '--duration', '2']);
    expect((await tail.exited)[0]).toBe(0);
    expect(tail.out.stderr).toContain(`connected to ws://127.0.0.1:${server.port}/ws, channels trades`);
    const lines = tail.out.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(1);
    for (const line of lines) expect(line).toMatch(/^\s*\d+s\s+\d+ msg\/s\s+\d+ frames\/s\s+[\d.]+ (B|KiB|MiB)\/s\s+ratio [\d.]+x\s+total \d+\s+gaps 0$/);
  });
});
