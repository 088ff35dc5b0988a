import { mkdtempSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { afterAll, describe, it } from 'vitest';
import '../src/index.js';

// Every sandbox of this run lives under one root, so `leftovers` can list exactly what exists.

// The whole suite runs once: the second Node.js pass of scripts/test-all.sh skips it (the
// package's other tests run the backend on that Node too).
if (process.env.AGENTBOX_TEST_PASS === 'second') {
  console.info('local conformance: skipped in the second Node.js pass (it ran in the first)');
  describe.skip('local conformance', () => it('ran in the first pass', () => {}));
} else {
  // Made only when the suite runs: a skipped file runs no afterAll to remove it.
  const root = mkdtempSync(join(tmpdir(), 'agentbox-local-conformance-'));
  afterAll(() => rm(root, { recursive: true, force: true }));
  const spec = { backend: 'local', config: { root } } as const;
  runConformance({
    name: 'local',
    open: (opts) => openSandbox(spec, opts),
    // The warm-pool cases open pools of the same spec.
    pool: spec,
    leftovers: () => readdir(root),
    // What only isolation can promise (test/conformance-bwrap.test.ts runs these on isolation 'bwrap').
    skip: {
      'tamper.symlink-swap-checkpoint':
        "isolation 'none' isolates nothing: the sandbox's processes are the host's and cannot be frozen while a checkpoint reads the tree, so a swapped symlink redirects it; use isolation 'bwrap'",
      'tamper.cross-sandbox':
        "isolation 'none' isolates nothing: commands see the whole host filesystem, other sandboxes included; use isolation 'bwrap'",
      'tamper.double-fork-escape':
        "isolation 'none' isolates nothing: a process that left the command's group and let go of its output is just another host process, which neither a timeout nor close can tell apart; use isolation 'bwrap'",
    },
  });
}
