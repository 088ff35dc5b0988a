/**
 * Sandbox-resource mode (agent-sandbox agents.x-k8s.io/v1beta1 Sandbox) against the stand-in:
 * the pod comes from the Sandbox's podTemplate; an abandoned Sandbox ends at its shutdownTime
 * (shutdownPolicy Delete takes its pod with it) and sweep removes what is left; without the
 * CRD, doctor says so and open fails with a typed error (never falling back to a plain pod).
 */
import { openSandbox } from '@agentbox/core';
import { describe, expect, it } from 'vitest';
import { unsupportedNode } from './support.ts';

const unsupported = unsupportedNode();
if (unsupported) {
  console.info(`kubernetes sandbox-mode tests: skipped: ${unsupported}`);
  describe.skip('kubernetes backend (agent-sandbox Sandbox)', () => it(unsupported, () => {}));
} else {
  const { KubernetesConfigSchema, kubernetes } = await import('../src/index.js');
  const { CustomObjectsApi } = await import('@kubernetes/client-node');
  const { clusterForFile, labels, runObjects, runPods } = await import('./cluster.ts');
  const { config, kc, core } = await clusterForFile();
  const bare = await clusterForFile({ agentSandbox: false });
  const custom = kc.makeApiClient(CustomObjectsApi);
  const sandboxes = {
    group: 'agents.x-k8s.io',
    version: 'v1beta1',
    plural: 'sandboxes',
    namespace: 'default',
  };

  describe('kubernetes backend (agent-sandbox Sandbox)', () => {
    it('an abandoned Sandbox ends at its shutdownTime, its pod with it; sweep removes the rest', async () => {
      const kept = await openSandbox({
        backend: 'kubernetes',
        config: { ...config, mode: 'sandbox', keep: true, deadlineSeconds: 6 },
        policy: { labels },
      });
      const name = (kept as unknown as { podName: string }).podName;
      const resource = (await custom.getNamespacedCustomObject({ ...sandboxes, name })) as {
        spec: {
          shutdownTime: string;
          shutdownPolicy: string;
          podTemplate: { spec: { activeDeadlineSeconds?: number } };
        };
        status: { conditions: { type: string; status: string }[] };
      };
      expect(resource.spec.shutdownPolicy).toBe('Delete');
      expect(Date.parse(resource.spec.shutdownTime) - Date.now()).toBeLessThanOrEqual(6000);
      expect(resource.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
      const pod = await core.readNamespacedPod({ namespace: 'default', name });
      expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Sandbox', name });
      expect(pod.spec?.containers.find((c) => c.name === 'sandbox')?.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      expect((await kept.exec('echo ok')).stdout).toBe('ok\n');
      await kept.close();
      const ended = Date.now() + 15_000;
      while (Date.now() < ended && (await runPods(core)).length > 0)
        await new Promise((r) => setTimeout(r, 250));
      expect(await runPods(core)).toEqual([]);
      expect(await runObjects(kc)).toEqual([`networkpolicy/${name}-egress`, `secret/${name}-key`]);
      const swept = await kubernetes.sweep!({
        config: KubernetesConfigSchema.parse(config),
        dryRun: false,
        labels,
      });
      expect(swept.sandboxes.map((s) => [s.id, s.removed])).toEqual([[kept.id.toLowerCase(), true]]);
      expect(await runObjects(kc)).toEqual([]);
    });

    it('without the agent-sandbox CRD: doctor says so, and open fails rather than making a plain pod', async () => {
      const sandboxConfig = { ...bare.config, mode: 'sandbox' as const };
      const report = await kubernetes.doctor!({ config: KubernetesConfigSchema.parse(sandboxConfig) });
      expect(report.ok).toBe(false);
      expect(report.checks.find((c) => c.name === 'agent-sandbox')).toMatchObject({ ok: false });
      await expect(
        openSandbox({ backend: 'kubernetes', config: sandboxConfig, policy: { labels } }),
      ).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      expect(await runObjects(bare.kc)).toEqual([]);
    });
  });
}
