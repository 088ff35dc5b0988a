import { basename, join } from 'node:path';
import { defineConfig } from 'vitest/config';

// scripts/test-all.sh sets this to collect every package's counts for one closing summary line.
const resultsDir = process.env.AGENTBOX_TEST_RESULTS;

/** Tests run against each package's TypeScript source (the "@agentbox/source" export condition), no build needed. */
export default defineConfig({
  resolve: { conditions: ['@agentbox/source'] },
  ssr: { resolve: { conditions: ['@agentbox/source'] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    reporters: resultsDir ? ['default', 'json'] : ['default'],
    outputFile: resultsDir ? { json: join(resultsDir, `${basename(process.cwd())}.json`) } : {},
  },
});
