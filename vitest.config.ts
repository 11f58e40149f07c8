import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Each file starts its own worker pools and servers; two cores means two files at a time at most.
    maxWorkers: 2,
  },
});
