import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { describe, it } from 'vitest';
import { unsupportedNode } from './support.ts';

// The suite runs on the plain-Pod mode against the API server stand-in (each pod Docker containers).
const unsupported = unsupportedNode();
if (unsupported) {
  console.info(`kubernetes conformance (pod): skipped: ${unsupported}`);
  describe.skip('kubernetes conformance (pod)', () => it(unsupported, () => {}));
} else {
  await import('../src/index.js');
  const { clusterForFile, labels, runObjects } = await import('./cluster.ts');
  const { config, kc } = await clusterForFile();
  const spec = { backend: 'kubernetes', config: { ...config, mode: 'pod' }, policy: { labels } } as const;
  runConformance({
    name: 'kubernetes (plain pod, stand-in)',
    open: (opts) => openSandbox(spec, opts),
    // The warm-pool cases open pools of the same spec.
    pool: spec,
    leftovers: () => runObjects(kc),
    // An escape that let go of its output is out of reach of a command's kill; closing deletes the pod.
    escapedProcessesDie: 'close',
    // Every exec and every kill is a WebSocket to the stand-in and a docker exec behind it.
    timeScale: 2,
  });
}
