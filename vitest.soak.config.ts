import { defineConfig } from 'vitest/config';

/** `npm run soak -- --minutes N`: the long fault-injection run, kept out of `npm test`. */
export default defineConfig({
  test: {
    include: ['test/soak/**/*.soak.ts'],
    setupFiles: ['test/setup.ts'],
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
