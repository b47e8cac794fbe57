import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Child-process tests start real bots; give them room on a busy 2-core box. A timeout is a
    // safety net for a hung test, never a speed check (benchmarks measure speed).
    testTimeout: 180_000,
    hookTimeout: 120_000,
    // Most files wait on child processes, sockets and SQLite rather than compute. Vitest's default
    // (CPUs - 1) is one worker on a 2-core box, which ran the files one by one (656 s); two workers
    // overlap the waiting (429 s) with the same results.
    maxWorkers: 2,
    reporters: ['default', './tests/support/summary-reporter.ts'],
  },
});
