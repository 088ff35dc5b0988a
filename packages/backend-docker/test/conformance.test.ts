import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import '../src/index.js';
import { RUN_LABEL, runId, runObjects, TEST_CONFIG } from './helpers.ts';

runConformance({
  name: 'docker (hardened defaults)',
  // Default policy: read-only root, tmpfs /tmp, cgroup limits, no capabilities, uid 1000, no network.
  open: (opts) =>
    openSandbox({ backend: 'docker', config: TEST_CONFIG, policy: { labels: { [RUN_LABEL]: runId } } }, opts),
  leftovers: () => runObjects(),
  // An escape that let go of its output is out of reach of a command's kill; closing removes the container.
  escapedProcessesDie: 'close',
});
