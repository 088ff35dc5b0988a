import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { configDefaults, defineConfig } from 'vitest/config';

// scripts/test-all.sh sets this to collect every package's counts for one closing summary line.
const resultsDir = process.env.AGENTBOX_TEST_RESULTS;

/**
 * Tests run against each package's TypeScript source, no build needed: the workspace packages
 * resolve through the `paths` of tsconfig.base.json (one list, which tsc and tsx read too).
 */
const base = JSON.parse(readFileSync(join(import.meta.dirname, 'tsconfig.base.json'), 'utf8')) as {
  compilerOptions: { paths: Record<string, string[]> };
};
const alias = Object.entries(base.compilerOptions.paths).map(([name, [target]]) => ({
  // Exact names only: `@agentbox/core` must not swallow `@agentbox/core/backend`.
  find: new RegExp(`^${name.replace(/[/.]/g, '\\$&')}$`),
  replacement: resolve(import.meta.dirname, target!),
}));

/**
 * The fault, crash, load and bad-input suites test the library's behaviour, not the runtime's:
 * scripts/test-all.sh runs them in its first pass only (they take minutes, and the budget is 45).
 */
const RUNTIME_INDEPENDENT = [
  '**/faults.test.ts',
  '**/daemon-faults.test.ts',
  '**/crash.test.ts',
  '**/load.test.ts',
  '**/hostile-input.test.ts',
];
const secondPass = process.env.AGENTBOX_TEST_PASS === 'second';
if (secondPass)
  console.info(`second pass: skipping ${RUNTIME_INDEPENDENT.join(', ')} (they ran in the first pass)`);

export default defineConfig({
  resolve: { alias },
  test: {
    exclude: secondPass ? [...configDefaults.exclude, ...RUNTIME_INDEPENDENT] : configDefaults.exclude,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: 'forks',
    reporters: resultsDir ? ['default', 'json'] : ['default'],
    outputFile: resultsDir ? { json: join(resultsDir, `${basename(process.cwd())}.json`) } : {},
  },
});
