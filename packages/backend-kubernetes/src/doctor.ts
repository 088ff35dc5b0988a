/** What the kubernetes backend needs: a reachable API server, and what the cluster offers. */
import type { DoctorCheck, DoctorReport } from '@agentbox/core';
import { type Cluster, connect, SANDBOX_GROUP, statusOf, WARM_POOL_GROUP } from './client.js';
import type { KubernetesResolvedConfig } from './config.js';
import { readEnforcement } from './enforcement.js';

export async function doctorKubernetes({
  config,
}: {
  config: KubernetesResolvedConfig;
}): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const controls = readEnforcement({}, undefined, undefined);
  let cluster: Cluster;
  try {
    cluster = connect(config, { backend: 'kubernetes', operation: 'doctor' });
  } catch (error) {
    checks.push({ name: 'kubeconfig', ok: false, detail: (error as Error).message });
    return { ok: false, checks, controls };
  }
  checks.push({ name: 'kubeconfig', ok: true, detail: `${cluster.server}, namespace ${cluster.namespace}` });
  try {
    const v = await cluster.version.getCode();
    checks.push({ name: 'cluster', ok: true, detail: `Kubernetes ${v.gitVersion}` });
  } catch (error) {
    checks.push({ name: 'cluster', ok: false, detail: (error as Error).message });
    return { ok: false, checks, controls };
  }
  try {
    await cluster.core.listNamespacedPod({ namespace: cluster.namespace, limit: 1 });
    checks.push({ name: 'namespace', ok: true, detail: `pods can be listed in ${cluster.namespace}` });
  } catch (error) {
    checks.push({ name: 'namespace', ok: false, detail: (error as Error).message });
  }
  try {
    await cluster.custom.listNamespacedCustomObject({
      ...SANDBOX_GROUP,
      namespace: cluster.namespace,
      limit: 1,
    });
    checks.push({
      name: 'agent-sandbox',
      ok: true,
      detail: 'the Sandbox CRD (agents.x-k8s.io/v1beta1) is installed: mode "sandbox" works',
    });
  } catch (error) {
    const missing = statusOf(error) === 404;
    checks.push({
      name: 'agent-sandbox',
      // Only mode "sandbox" needs it.
      ok: config.mode !== 'sandbox' || !missing,
      detail: missing ? 'the Sandbox CRD is not installed: use mode "pod"' : (error as Error).message,
    });
  }
  if (config.mode === 'claim') {
    // Mode "claim" needs the extensions and the pool it names.
    try {
      const pool = await cluster.custom.getNamespacedCustomObject({
        ...WARM_POOL_GROUP,
        namespace: cluster.namespace,
        name: config.warmPool ?? '',
      });
      const status = (pool as { status?: { readyReplicas?: number } }).status;
      checks.push({
        name: 'warm pool',
        ok: true,
        detail: `SandboxWarmPool ${config.warmPool}: ${status?.readyReplicas ?? 0} ready`,
      });
    } catch (error) {
      checks.push({
        name: 'warm pool',
        ok: false,
        detail:
          statusOf(error) === 404
            ? `no SandboxWarmPool ${config.warmPool ?? '(config.warmPool is not set)'} in ${cluster.namespace}, or agent-sandbox's extensions are not installed`
            : (error as Error).message,
      });
    }
  }
  try {
    const classes = await cluster.node.listRuntimeClass();
    const found = classes.items.map((c) => c.metadata?.name).filter(Boolean);
    const wanted = config.runtimeClassName;
    checks.push({
      name: 'runtime classes',
      ok: wanted === undefined || found.includes(wanted),
      detail:
        found.length > 0 ? `available: ${found.join(', ')}` : 'none (pods run under the default runtime)',
    });
  } catch (error) {
    checks.push({
      name: 'runtime classes',
      ok: config.runtimeClassName === undefined,
      detail: (error as Error).message,
    });
  }
  checks.push({
    name: 'network policy',
    ok: true,
    detail:
      'NetworkPolicy objects are enforced only by a network plugin that implements them (Calico, Cilium...); the API server accepts them either way',
  });
  return { ok: checks.every((c) => c.ok), checks, controls };
}
