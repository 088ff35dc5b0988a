import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { describe, it } from 'vitest';
import '../src/index.js';
import { RUN_LABEL, runId, runObjects, runscMissing, TEST_CONFIG } from './helpers.ts';

// The whole suite (tamper group included) under gVisor, once: the second Node.js pass of
// scripts/test-all.sh skips it (the runtime, not Node, is what differs from conformance.test.ts).
const secondPass = process.env.AGENTBOX_TEST_PASS === 'second';
const missing = secondPass ? undefined : await runscMissing();
if (secondPass || missing) {
  const why = secondPass ? 'skipped in the second Node.js pass (it ran in the first)' : `SKIPPED: ${missing}`;
  console.info(`docker + runsc conformance: ${why}`);
  describe.skip('docker + runsc (gVisor) conformance', () => it(why, () => {}));
} else {
  runConformance({
    name: 'docker + runsc (gVisor, hardened defaults)',
    open: (opts) =>
      openSandbox(
        {
          backend: 'docker',
          config: { ...TEST_CONFIG, runtime: 'runsc' },
          policy: { labels: { [RUN_LABEL]: runId } },
        },
        opts,
      ),
    leftovers: () => runObjects(),
    escapedProcessesDie: 'close',
    // gVisor on the ptrace platform: every docker exec and fork costs more than under runc, and
    // npm test runs another lane of tests beside this one.
    timeScale: 3,
    // The two heaviest cases test code that does not change with the runtime (the checkpoint
    // helper runs under runc; output limits are the library's); under ptrace each costs minutes
    // of the test budget, and the runc suite runs them.
    skip: {
      'checkpoints.large-tree':
        'runs in the runc suite: the checkpoint helper is the same runc container, and 10,000 file creations under ptrace take minutes',
      'output.large-bounded':
        'runs in the runc suite: the output cap is the library’s, and 200 MiB through ptrace takes most of a minute',
    },
  });
}
