import { mkdtempSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { afterAll, describe, it } from 'vitest';
import '../src/index.js';
import { bwrapMissing } from './bwrap-available.js';

// The whole suite again, every sandbox in its own bubblewrap jail.
// The whole suite runs once, in the first Node.js pass of scripts/test-all.sh.
if (process.env.AGENTBOX_TEST_PASS === 'second') {
  console.info('local (bwrap) conformance: skipped in the second Node.js pass (it ran in the first)');
  describe.skip('local (bwrap) conformance', () => it('ran in the first pass', () => {}));
} else if (bwrapMissing) console.warn(`skipping the bubblewrap conformance run: ${bwrapMissing}`);
else {
  // Made only when the suite runs: a skipped file runs no afterAll to remove it.
  const root = mkdtempSync(join(tmpdir(), 'agentbox-local-bwrap-conformance-'));
  afterAll(() => rm(root, { recursive: true, force: true }));
  const spec = { backend: 'local', config: { root, isolation: 'bwrap' } } as const;
  runConformance({
    name: 'local (bwrap)',
    open: (opts) => openSandbox(spec, opts),
    // The warm-pool cases open pools of the same spec.
    pool: spec,
    leftovers: () => readdir(root),
    // The jail's PID namespace ends every process at close; a timeout reaches the command's group
    // and whoever holds its output, not an escape that let go of it.
    escapedProcessesDie: 'close',
  });
}
