/** Loads the protocol test vectors in test/vectors/ (shared by server-side and client tests). */
import { readFileSync, readdirSync } from 'node:fs';

export interface Vector {
  name: string;
  bytes: Uint8Array;
  expected: { kind: string; channel: string; firstSeq?: number; codec?: string; compressed?: boolean; messages?: unknown[]; notice?: unknown };
}

const dir = new URL('../vectors/', import.meta.url);

/** Every vector, by file name without extension. */
export function loadVectors(): Vector[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.hex'))
    .map((file) => {
      const name = file.slice(0, -4);
      return {
        name,
        bytes: new Uint8Array(Buffer.from(readFileSync(new URL(file, dir), 'utf8').trim(), 'hex')),
        expected: JSON.parse(readFileSync(new URL(`${name}.json`, dir), 'utf8')) as Vector['expected'],
      };
    });
}
