/** Shared by the kubernetes tests: one API server stand-in per test file, and this run's objects in it. */
import { execFileSync } from 'node:child_process';
import { startKubernetesEmulator } from '@agentbox/emulators';
import { CoreV1Api, CustomObjectsApi, KubeConfig, NetworkingV1Api } from '@kubernetes/client-node';
import { afterAll } from 'vitest';
import { recordEmulatorInstance, sessionRunId } from '../../../scripts/leak-check.ts';
import type { KubernetesConfig } from '../src/index.js';

export const RUN_LABEL = 'agentbox.test-run';
/** Starts with the session id of the leak check (global-setup.ts), which looks for this run's objects by it. */
export const runId = sessionRunId();
export const labels = { [RUN_LABEL]: runId };
/** The test image (busybox-static, built by scripts/provision-docker.sh, never pulled). */
export const IMAGE = 'agentbox/busybox:test';

/** Start a stand-in for this file (closed after it); the backend config that reaches it. */
export async function clusterForFile(options: { agentSandbox?: boolean } = {}) {
  const emulator = await startKubernetesEmulator({ log: () => {}, ...options });
  recordEmulatorInstance(emulator.instance);
  afterAll(() => emulator.close(), 60_000);
  const config: KubernetesConfig = { kubeconfigText: emulator.kubeconfig, image: IMAGE };
  const kc = new KubeConfig();
  kc.loadFromString(emulator.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  return { emulator, config, kc, core };
}

/**
 * Two servers on Docker's default bridge, answering `hello-a` and `hello-b` on port 8080, for
 * the egress tests: their addresses, and `stop()`.
 */
export function startEchoServers(): { a: string; b: string; stop(): void } {
  const ids = ['a', 'b'].map((name) =>
    execFileSync('docker', [
      'run',
      '-d',
      '--rm',
      '--label',
      `${RUN_LABEL}=${runId}`,
      '--user',
      '1000:1000',
      IMAGE,
      'nc',
      '-ll',
      '-p',
      '8080',
      '-e',
      'echo',
      `hello-${name}`,
    ])
      .toString()
      .trim(),
  );
  const stop = () => void execFileSync('docker', ['rm', '-f', ...ids]);
  try {
    const [a = '', b = ''] = ids.map((id) =>
      execFileSync('docker', ['inspect', '-f', '{{.NetworkSettings.IPAddress}}', id]).toString().trim(),
    );
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(a) || !/^\d+\.\d+\.\d+\.\d+$/.test(b))
      throw new Error(`the echo servers have no bridge address: ${a} ${b}`);
    return { a, b, stop };
  } catch (error) {
    stop();
    throw error;
  }
}

/** This run's pods, as `name:phase`. */
export async function runPods(core: CoreV1Api): Promise<string[]> {
  const list = await core.listNamespacedPod({ namespace: 'default', labelSelector: `${RUN_LABEL}=${runId}` });
  return list.items.map((p) => `${p.metadata?.name}:${p.status?.phase}`).sort();
}

/** Every object of this run (pods, sandboxes, network policies, secrets), as `kind/name`. */
export async function runObjects(kc: KubeConfig, namespace = 'default'): Promise<string[]> {
  const q = { namespace, labelSelector: `${RUN_LABEL}=${runId}` };
  const core = kc.makeApiClient(CoreV1Api);
  const [pods, secrets, policies, sandboxes] = await Promise.all([
    core.listNamespacedPod(q),
    core.listNamespacedSecret(q),
    kc.makeApiClient(NetworkingV1Api).listNamespacedNetworkPolicy(q),
    kc
      .makeApiClient(CustomObjectsApi)
      .listNamespacedCustomObject({ group: 'agents.x-k8s.io', version: 'v1beta1', plural: 'sandboxes', ...q })
      .then(
        (list: { items: { metadata: { name: string } }[] }) => list.items,
        () => [],
      ),
  ]);
  return [
    ...pods.items.map((o) => `pod/${o.metadata?.name}`),
    ...secrets.items.map((o) => `secret/${o.metadata?.name}`),
    ...policies.items.map((o) => `networkpolicy/${o.metadata?.name}`),
    ...sandboxes.map((o) => `sandbox/${o.metadata.name}`),
  ].sort();
}
