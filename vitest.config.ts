import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two files at a time even on two cores: the multi-node tests spend most of their time waiting
    // (consensus timeouts, restarts), so two of them overlap well; vitest's default would be one.
    maxWorkers: 2,
  },
});
