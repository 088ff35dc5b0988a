/**
 * A warm pool for mode `claim`: a SandboxTemplate whose pod is the backend's hardened pod for a
 * policy, a SandboxWarmPool of it that agent-sandbox keeps running, and a NetworkPolicy denying
 * the pool's pods all egress until a claim adds the sandbox's own. They carry no managed label:
 * sweep leaves a pool alone, `close()` removes it.
 */
import { type Policy, PolicySchema } from '@agentbox/core';
import { type Cluster, connect, kubeFailure, statusOf, TEMPLATE_GROUP, WARM_POOL_GROUP } from './client.js';
import { type KubernetesConfig, KubernetesConfigSchema } from './config.js';
import { defaultOwner, ID_LABEL, MANAGED_LABEL, OWNER_ANNOTATION, WARM_POOL_LABEL } from './labels.js';
import { planFor, podFor } from './pod-spec.js';

export interface KubernetesWarmPoolOptions {
  /** Where (kubeconfig, namespace) and what (image, uid, workdir...), as for `openSandbox`. */
  config: KubernetesConfig;
  /** The hardening of every pod of the pool. Credentials cannot be per claim: they are refused. */
  policy?: Policy;
  /** The pool's name (and its template's): a DNS label. */
  name: string;
  /** How many pods it keeps ready. */
  replicas: number;
}

export interface KubernetesWarmPool {
  name: string;
  namespace: string;
  /** Delete the pool (its unclaimed sandboxes go with it), its template and its NetworkPolicy. */
  close(): Promise<void>;
}

export async function createKubernetesWarmPool(
  options: KubernetesWarmPoolOptions,
): Promise<KubernetesWarmPool> {
  const context = { backend: 'kubernetes', operation: 'createWarmPool' };
  const config = KubernetesConfigSchema.parse(options.config);
  const policy = PolicySchema.parse(options.policy ?? {});
  const cluster = connect(config, context);
  const { name } = options;
  const namespace = cluster.namespace;
  const plan = planFor(policy);
  const pod = podFor(name, plan, config, config.owner ?? defaultOwner(), false);
  const labels = { ...plan.labels, [WARM_POOL_LABEL]: name };
  // Its pods are the pool's until claimed: no sandbox id, no managed label (a claim adds both).
  const podLabels: Record<string, string> = { ...pod.metadata.labels, [WARM_POOL_LABEL]: name };
  delete podLabels[ID_LABEL];
  delete podLabels[MANAGED_LABEL];
  const metadata = {
    name,
    labels,
    annotations: { [OWNER_ANNOTATION]: pod.metadata.annotations[OWNER_ANNOTATION] },
  };
  const pool: KubernetesWarmPool = {
    name,
    namespace,
    close: () => removeWarmPool(cluster, name, context),
  };
  try {
    await cluster.networking.createNamespacedNetworkPolicy({
      namespace,
      body: {
        metadata: { ...metadata, name: `agentbox-pool-${name}` },
        spec: {
          podSelector: { matchLabels: { [WARM_POOL_LABEL]: name } },
          policyTypes: ['Ingress', 'Egress'],
          ingress: [],
          egress: [],
        },
      },
    });
    await cluster.custom.createNamespacedCustomObject({
      ...TEMPLATE_GROUP,
      namespace,
      body: {
        apiVersion: `${TEMPLATE_GROUP.group}/${TEMPLATE_GROUP.version}`,
        kind: 'SandboxTemplate',
        metadata,
        spec: {
          podTemplate: {
            metadata: { labels: podLabels, annotations: pod.metadata.annotations },
            spec: pod.spec,
          },
          // The pool's NetworkPolicy above, and each claim's own, govern the pods.
          networkPolicyManagement: 'Unmanaged',
        },
      },
    });
    await cluster.custom.createNamespacedCustomObject({
      ...WARM_POOL_GROUP,
      namespace,
      body: {
        apiVersion: `${WARM_POOL_GROUP.group}/${WARM_POOL_GROUP.version}`,
        kind: 'SandboxWarmPool',
        metadata,
        spec: { replicas: options.replicas, sandboxTemplateRef: { name } },
      },
    });
  } catch (error) {
    await pool.close().catch(() => {});
    throw kubeFailure(error, context);
  }
  return pool;
}

async function removeWarmPool(
  cluster: Cluster,
  name: string,
  context: { backend: string; operation: string },
) {
  const namespace = cluster.namespace;
  const gone = (error: unknown) => {
    if (statusOf(error) !== 404) throw kubeFailure(error, context);
  };
  await cluster.custom.deleteNamespacedCustomObject({ ...WARM_POOL_GROUP, namespace, name }).catch(gone);
  await cluster.custom.deleteNamespacedCustomObject({ ...TEMPLATE_GROUP, namespace, name }).catch(gone);
  await cluster.networking
    .deleteNamespacedNetworkPolicy({ namespace, name: `agentbox-pool-${name}` })
    .catch(gone);
}
