/** Find what agentbox created on the cluster (by label) and delete it unless a dry run. */
import type { SweepOptions, SweepReport, SweptSandbox } from '@agentbox/core';
import { CLAIM_GROUP, type Cluster, connect, SANDBOX_GROUP, statusOf } from './client.js';
import type { KubernetesResolvedConfig } from './config.js';
import { ID_LABEL, MANAGED_LABEL, ROLE_LABEL } from './labels.js';

interface Found {
  type: string;
  name: string;
  labels: Record<string, string>;
  created: Date | undefined;
  remove(): Promise<unknown>;
}

/** Every labelled object of the backend in the namespace, any kind. */
async function listManaged(cluster: Cluster, selector: string): Promise<Found[]> {
  const namespace = cluster.namespace;
  const q = { namespace, labelSelector: selector };
  const meta = (
    m: { name?: string; labels?: Record<string, string>; creationTimestamp?: Date | string } | undefined,
  ) => ({
    name: m?.name ?? '',
    labels: m?.labels ?? {},
    created: m?.creationTimestamp ? new Date(m.creationTimestamp) : undefined,
  });
  const [pods, policies, secrets] = await Promise.all([
    cluster.core.listNamespacedPod(q),
    cluster.networking.listNamespacedNetworkPolicy(q),
    cluster.core.listNamespacedSecret(q),
  ]);
  type Custom = { metadata?: { name?: string; labels?: Record<string, string>; creationTimestamp?: string } };
  const custom = (group: typeof SANDBOX_GROUP | typeof CLAIM_GROUP) =>
    cluster.custom.listNamespacedCustomObject({ ...group, ...q }).then(
      (list: { items?: Custom[] }) => list.items ?? [],
      (error: unknown) => {
        // No agent-sandbox CRD: nothing of that kind to sweep.
        if (statusOf(error) === 404) return [];
        throw error;
      },
    );
  const [sandboxes, claims] = await Promise.all([custom(SANDBOX_GROUP), custom(CLAIM_GROUP)]);
  return [
    ...claims.map((c) => ({
      type: 'SandboxClaim',
      ...meta(c.metadata),
      remove: () =>
        cluster.custom.deleteNamespacedCustomObject({
          ...CLAIM_GROUP,
          namespace,
          name: c.metadata?.name ?? '',
        }),
    })),
    ...sandboxes.map((s) => ({
      type: 'Sandbox',
      ...meta(s.metadata),
      remove: () =>
        cluster.custom.deleteNamespacedCustomObject({
          ...SANDBOX_GROUP,
          namespace,
          name: s.metadata?.name ?? '',
        }),
    })),
    ...pods.items.map((p) => ({
      type: 'Pod',
      ...meta(p.metadata),
      remove: () =>
        cluster.core.deleteNamespacedPod({ namespace, name: p.metadata?.name ?? '', gracePeriodSeconds: 0 }),
    })),
    ...policies.items.map((p) => ({
      type: 'NetworkPolicy',
      ...meta(p.metadata),
      remove: () =>
        cluster.networking.deleteNamespacedNetworkPolicy({ namespace, name: p.metadata?.name ?? '' }),
    })),
    ...secrets.items.map((s) => ({
      type: 'Secret',
      ...meta(s.metadata),
      remove: () => cluster.core.deleteNamespacedSecret({ namespace, name: s.metadata?.name ?? '' }),
    })),
  ];
}

export async function sweepKubernetes(options: SweepOptions<KubernetesResolvedConfig>): Promise<SweepReport> {
  const cluster = connect(options.config, { backend: 'kubernetes', operation: 'sweep' });
  const selector = [
    `${MANAGED_LABEL}=true`,
    ...Object.entries(options.labels ?? {}).map(([k, v]) => `${k}=${v}`),
  ].join(',');
  const objects = await listManaged(cluster, selector);
  const byId = new Map<string, Found[]>();
  for (const o of objects) {
    const id = o.labels[ID_LABEL] ?? '';
    byId.set(id, [...(byId.get(id) ?? []), o]);
  }
  const now = Date.now();
  const found: SweptSandbox[] = [];
  for (const [id, list] of byId) {
    if (options.signal?.aborted) break;
    if (options.ids && !options.ids.map((i) => i.toLowerCase()).includes(id)) continue;
    const created = list.map((o) => o.created?.getTime()).filter((t): t is number => t !== undefined);
    const createdAt = created.length > 0 ? Math.min(...created) : undefined;
    if (
      options.olderThanMs !== undefined &&
      !(createdAt !== undefined && now - createdAt >= options.olderThanMs)
    )
      continue;
    const entry: SweptSandbox = {
      id,
      createdAt: createdAt !== undefined ? new Date(createdAt).toISOString() : undefined,
      resources: list.map((o) => ({ type: `${o.type} (${o.labels[ROLE_LABEL] ?? '?'})`, name: o.name })),
      removed: false,
    };
    if (!options.dryRun) {
      const errors: string[] = [];
      // A claim, then a Sandbox, first (what they own goes with them), then the rest.
      const rank = (o: Found) => (o.type === 'SandboxClaim' ? 2 : o.type === 'Sandbox' ? 1 : 0);
      for (const o of [...list].sort((a, b) => rank(b) - rank(a)))
        await o.remove().catch((error: unknown) => {
          if (statusOf(error) !== 404) errors.push(`${o.type} ${o.name}: ${(error as Error).message}`);
        });
      entry.removed = errors.length === 0;
      if (errors.length > 0) entry.error = errors.join('; ');
    }
    found.push(entry);
  }
  return { location: `namespace ${cluster.namespace} on ${cluster.server}`, sandboxes: found };
}
