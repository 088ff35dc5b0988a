import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import '../src/index.js';
import { RUN_LABEL, runId, runObjects } from './helpers.ts';

runConformance({
  name: 'docker (hardened defaults)',
  // Default policy: read-only root, tmpfs /tmp, cgroup limits, no capabilities, uid 1000, no network.
  open: (opts) => openSandbox({ backend: 'docker', policy: { labels: { [RUN_LABEL]: runId } } }, opts),
  leftovers: () => runObjects(),
  // An escape that let go of its output is out of reach of a command's kill; closing removes the container.
  escapedProcessesDie: 'close',
  skip: {
    'tamper.output-injection':
      "fast path: core's session runner reuses a session when a process that left the command's group still holds its output (core change needed; see the docker README's limits)",
  },
});
