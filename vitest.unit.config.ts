import { defineConfig } from 'vitest/config';

// The unit tier (`npm run test:unit`): pure rules and mechanisms, no global setup,
// no root, no loop devices; seconds. The kernel tier is vitest.config.ts.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    testTimeout: 10_000,
  },
});
