import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { describe, it } from 'vitest';
import { unsupportedNode } from './support.ts';

// The suite on the agent-sandbox mode: each sandbox a Sandbox resource whose controller (the stand-in) makes its pod.
const unsupported = unsupportedNode();
if (unsupported) {
  console.info(`kubernetes conformance (Sandbox resource): skipped: ${unsupported}`);
  describe.skip('kubernetes conformance (Sandbox resource)', () => it(unsupported, () => {}));
} else {
  await import('../src/index.js');
  const { clusterForFile, labels, runObjects } = await import('./cluster.ts');
  const { config, kc } = await clusterForFile();
  const spec = { backend: 'kubernetes', config: { ...config, mode: 'sandbox' }, policy: { labels } } as const;
  runConformance({
    name: 'kubernetes (agent-sandbox Sandbox, stand-in)',
    open: (opts) => openSandbox(spec, opts),
    // The warm-pool cases open pools of the same spec.
    pool: spec,
    leftovers: () => runObjects(kc),
    // An escape that let go of its output is out of reach of a command's kill; closing deletes the Sandbox and its pod.
    escapedProcessesDie: 'close',
    // Every exec and every kill is a WebSocket to the stand-in and a docker exec behind it.
    timeScale: 2,
  });
}
