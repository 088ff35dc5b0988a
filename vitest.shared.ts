import { defineConfig } from 'vitest/config';

/** Tests run against each package's TypeScript source (the "@agentbox/source" export condition), no build needed. */
export default defineConfig({
  resolve: { conditions: ['@agentbox/source'] },
  ssr: { resolve: { conditions: ['@agentbox/source'] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 180_000,
    reporters: ['default'],
    pool: 'forks',
  },
});
