/**
 * Plain-Pod mode against the stand-in: the pod and NetworkPolicy read back with every hardening
 * field; re-attach by id; doctor; the dead man's switch (activeDeadlineSeconds) ending an
 * abandoned pod, and sweep removing what is left.
 */
import { openSandbox } from '@agentbox/core';
import { describe, expect, it } from 'vitest';
import { unsupportedNode } from './support.ts';

const unsupported = unsupportedNode();
if (unsupported) {
  console.info(`kubernetes lifecycle tests: skipped: ${unsupported}`);
  describe.skip('kubernetes backend (plain pod)', () => it(unsupported, () => {}));
} else {
  const { KubernetesConfigSchema, kubernetes } = await import('../src/index.js');
  const { NetworkingV1Api } = await import('@kubernetes/client-node');
  const { clusterForFile, labels, runObjects, runPods } = await import('./cluster.ts');
  const { config, kc, core } = await clusterForFile();
  const networking = kc.makeApiClient(NetworkingV1Api);

  describe('kubernetes backend (plain pod)', () => {
    it('creates a hardened pod and a deny-all egress NetworkPolicy, and reports what it read back', async () => {
      const sandbox = await openSandbox({ backend: 'kubernetes', config, policy: { labels } });
      try {
        const name = (sandbox as unknown as { podName: string }).podName;
        const pod = await core.readNamespacedPod({ namespace: 'default', name });
        const spec = pod.spec!;
        expect(spec.automountServiceAccountToken).toBe(false);
        expect(spec.activeDeadlineSeconds).toBe(3600);
        expect(spec.securityContext).toMatchObject({
          runAsNonRoot: true,
          runAsUser: 1000,
          seccompProfile: { type: 'RuntimeDefault' },
        });
        const main = spec.containers.find((c) => c.name === 'sandbox')!;
        expect(main.securityContext).toMatchObject({
          runAsNonRoot: true,
          runAsUser: 1000,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          privileged: false,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(main.resources?.limits).toEqual({ cpu: '1', memory: '1024Mi', 'ephemeral-storage': '1024Mi' });
        const tmp = main.volumeMounts!.find((m) => m.mountPath === '/tmp')!;
        expect(spec.volumes!.find((v) => v.name === tmp.name)!.emptyDir).toEqual({
          medium: 'Memory',
          sizeLimit: '64Mi',
        });
        expect(main.volumeMounts!.some((m) => m.name === 'store')).toBe(false);
        const helper = spec.containers.find((c) => c.name === 'checkpoint')!;
        expect(helper.volumeMounts!.map((m) => m.name).sort()).toEqual(['store', 'workspace']);
        const np = await networking.readNamespacedNetworkPolicy({
          namespace: 'default',
          name: `${name}-egress`,
        });
        expect(np.spec).toMatchObject({ policyTypes: ['Ingress', 'Egress'], egress: [] });
        expect(np.spec!.podSelector?.matchLabels).toEqual({
          'agentbox.dev/sandbox-id': sandbox.id.toLowerCase(),
        });
        for (const control of [
          'readOnlyRoot',
          'dropCapabilities',
          'noNewPrivileges',
          'nonRootUser',
          'network',
        ] as const)
          expect(sandbox.enforcement[control].status, control).toBe('enforced');
        // The stand-in runs a pod whose egress is denied without a network: only loopback.
        const r = await sandbox.exec([
          'sh',
          '-c',
          'id -u; ls /sys/class/net; touch /x 2>/dev/null || echo ro',
        ]);
        expect(r.stdout).toBe('1000\nlo\nro\n');
      } finally {
        await sandbox.close();
      }
      expect(await runObjects(kc)).toEqual([]);
    });

    it('re-attaches by id to a kept sandbox, checkpoints intact', async () => {
      const first = await openSandbox({
        backend: 'kubernetes',
        config: { ...config, keep: true },
        policy: { labels },
      });
      await first.writeFile('note.txt', 'before');
      const cp = await first.checkpoint();
      await first.writeFile('note.txt', 'after');
      await first.close();
      const again = await openSandbox({ backend: 'kubernetes', id: first.id, config, policy: { labels } });
      try {
        expect(await again.readTextFile('note.txt')).toBe('after');
        await again.rollback(cp.id);
        expect(await again.readTextFile('note.txt')).toBe('before');
      } finally {
        await again.close();
      }
      expect(await runObjects(kc)).toEqual([]);
    });

    it('doctor reaches the cluster and finds the agent-sandbox CRD', async () => {
      const report = await kubernetes.doctor!({ config: KubernetesConfigSchema.parse(config) });
      expect(report.ok, JSON.stringify(report.checks)).toBe(true);
      expect(report.checks.find((c) => c.name === 'agent-sandbox')?.detail).toMatch(/installed/);
    });

    it('an abandoned pod ends at its activeDeadlineSeconds; sweep removes what is left', async () => {
      const kept = await openSandbox({
        backend: 'kubernetes',
        config: { ...config, keep: true, deadlineSeconds: 4 },
        policy: { labels },
      });
      const name = (kept as unknown as { podName: string }).podName;
      await kept.close();
      const ended = Date.now() + 15_000;
      let phase: string | undefined;
      while (Date.now() < ended) {
        phase = (await core.readNamespacedPod({ namespace: 'default', name })).status?.phase;
        if (phase === 'Failed') break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(phase).toBe('Failed');
      expect((await core.readNamespacedPod({ namespace: 'default', name })).status?.reason).toBe(
        'DeadlineExceeded',
      );
      const parsed = KubernetesConfigSchema.parse(config);
      const dry = await kubernetes.sweep!({ config: parsed, dryRun: true, labels });
      expect(dry.sandboxes.map((s) => [s.id, s.removed])).toEqual([[kept.id.toLowerCase(), false]]);
      expect(await runPods(core)).toEqual([`${name}:Failed`]);
      const swept = await kubernetes.sweep!({ config: parsed, dryRun: false, labels });
      expect(swept.sandboxes.map((s) => [s.id, s.removed])).toEqual([[kept.id.toLowerCase(), true]]);
      expect(await runObjects(kc)).toEqual([]);
    });

    it('refuses an unreadable kubeconfig with a typed error', async () => {
      await expect(
        openSandbox({ backend: 'kubernetes', config: { kubeconfig: '/nonexistent/kubeconfig' } }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    });
  });
}
