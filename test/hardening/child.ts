/** A test fixture script run in a child process, talked to by JSON lines on stdin/stdout. */
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from '../helpers/harness.js';

/** A fixture process: its output, its exit, and a request/answer line protocol. */
export class FixtureProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  #partial = '';

  constructor(script: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const text = this.#partial + chunk.toString();
      const parts = text.split('\n');
      this.#partial = parts.pop()!;
      this.lines.push(...parts.filter((line) => line !== ''));
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
  }

  /** Still running? */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Waits for the next JSON line holding `key`, from line `from` on. */
  async json<T>(key: string, from = 0, timeoutMs = 15_000): Promise<T> {
    let found: T | undefined;
    await waitFor(() => {
      if (!this.alive) throw new Error(`fixture exited (${this.child.exitCode ?? this.child.signalCode}): ${this.stderr}`);
      for (const line of this.lines.slice(from)) {
        if (!line.startsWith('{')) continue;
        const value = JSON.parse(line) as Record<string, unknown>;
        if (key in value) {
          found = value as T;
          return true;
        }
      }
      return false;
    }, timeoutMs, `a line with "${key}" from the fixture`);
    return found!;
  }

  /** Sends a command line and waits for the JSON answer holding `key`. */
  async ask<T>(command: string, key: string): Promise<T> {
    const from = this.lines.length;
    this.child.stdin!.write(`${command}\n`);
    return this.json<T>(key, from);
  }

  kill(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }
}
