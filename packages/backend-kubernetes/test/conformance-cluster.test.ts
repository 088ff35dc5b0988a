import { runConformance } from '@agentbox/conformance';
import { openSandbox } from '@agentbox/core';
import { describe, it } from 'vitest';
import { unsupportedNode } from './support.ts';

// The same suite against a real cluster, when one is given: AGENTBOX_K8S_KUBECONFIG (a path), with
// AGENTBOX_K8S_NAMESPACE, AGENTBOX_K8S_IMAGE and AGENTBOX_K8S_MODE (pod | sandbox) optional.
const kubeconfig = process.env.AGENTBOX_K8S_KUBECONFIG;
const skipped = !kubeconfig
  ? 'AGENTBOX_K8S_KUBECONFIG is not set (no real cluster to run against)'
  : unsupportedNode();
if (skipped) {
  console.info(`kubernetes conformance (real cluster): skipped: ${skipped}`);
  describe.skip('kubernetes conformance (real cluster)', () => it(skipped, () => {}));
} else {
  await import('../src/index.js');
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { labels, runObjects } = await import('./cluster.ts');
  const env = process.env;
  const mode = env.AGENTBOX_K8S_MODE === 'sandbox' ? 'sandbox' : 'pod';
  const config = {
    kubeconfig: kubeconfig!,
    mode,
    ...(env.AGENTBOX_K8S_NAMESPACE ? { namespace: env.AGENTBOX_K8S_NAMESPACE } : {}),
    ...(env.AGENTBOX_K8S_IMAGE ? { image: env.AGENTBOX_K8S_IMAGE } : {}),
  } as const;
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig!);
  runConformance({
    name: `kubernetes (real cluster, ${mode})`,
    open: (opts) => openSandbox({ backend: 'kubernetes', config, policy: { labels } }, opts),
    leftovers: () =>
      runObjects(
        kc,
        env.AGENTBOX_K8S_NAMESPACE ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default',
      ),
    escapedProcessesDie: 'close',
    // Image pulls and scheduling on a real cluster take longer than the stand-in.
    timeScale: 3,
  });
}
