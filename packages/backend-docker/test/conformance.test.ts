import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { describe, it } from 'vitest';
import '../src/index.js';
import { RUN_LABEL, runId, runObjects, TEST_CONFIG } from './helpers.ts';

// The whole suite runs once: the second Node.js pass of scripts/test-all.sh skips it (the
// package's other tests run the backend on that Node too).
if (process.env.AGENTBOX_TEST_PASS === 'second') {
  console.info('docker conformance: skipped in the second Node.js pass (it ran in the first)');
  describe.skip('docker conformance', () => it('ran in the first pass', () => {}));
} else {
  const spec = {
    backend: 'docker',
    config: TEST_CONFIG,
    policy: { labels: { [RUN_LABEL]: runId } },
  } as const;
  runConformance({
    name: 'docker (hardened defaults)',
    // Default policy: read-only root, tmpfs /tmp, cgroup limits, no capabilities, uid 1000, no network.
    open: (opts) => openSandbox(spec, opts),
    // The warm-pool cases open pools of the same spec.
    pool: spec,
    leftovers: () => runObjects(),
    // An escape that let go of its output is out of reach of a command's kill; closing removes the container.
    escapedProcessesDie: 'close',
  });
}
