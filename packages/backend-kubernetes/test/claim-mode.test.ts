/**
 * Claim mode (agent-sandbox's extensions: SandboxTemplate, SandboxWarmPool, SandboxClaim) against
 * the stand-in: a pool made from a policy keeps hardened pods running; a claim takes one (its
 * labels reach the pod, so the sandbox's NetworkPolicy holds it from then on), the pool makes
 * another; re-attach by id, the claim's shutdownTime and sweep.
 */
import { execFileSync } from 'node:child_process';
import { openSandbox } from '@agentbox/core';
import { afterAll, describe, expect, it } from 'vitest';
import { unsupportedNode } from './support.ts';

const unsupported = unsupportedNode();
if (unsupported) {
  console.info(`kubernetes claim-mode tests: skipped: ${unsupported}`);
  describe.skip('kubernetes backend (SandboxClaim on a warm pool)', () => it(unsupported, () => {}));
} else {
  const { createKubernetesWarmPool, KubernetesConfigSchema, kubernetes } = await import('../src/index.js');
  const { CustomObjectsApi } = await import('@kubernetes/client-node');
  const { clusterForFile, labels, runId, runObjects, startEchoServers } = await import('./cluster.ts');
  const { config, kc, core } = await clusterForFile();
  const custom = kc.makeApiClient(CustomObjectsApi);
  const extensions = { group: 'extensions.agents.x-k8s.io', version: 'v1beta1', namespace: 'default' };
  const poolName = `pool-${runId
    .slice(-6)
    .toLowerCase()
    .replace(/[^a-z0-9]/g, 'x')}`;
  const claimConfig = { ...config, mode: 'claim' as const, warmPool: poolName };
  const podName = (sandbox: unknown) => (sandbox as { podName: string }).podName;
  /** This run's objects but the pool's own (its pods and NetworkPolicy). */
  const sandboxObjects = async () => (await runObjects(kc)).filter((o) => !o.includes(poolName));

  const poolStatus = async () =>
    (
      (await custom.getNamespacedCustomObject({
        ...extensions,
        plural: 'sandboxwarmpools',
        name: poolName,
      })) as {
        status?: { replicas?: number; readyReplicas?: number };
      }
    ).status ?? {};
  const until = async (what: string, check: () => Promise<boolean>, ms = 30_000) => {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const pool = await createKubernetesWarmPool({ config, policy: { labels }, name: poolName, replicas: 2 });
  afterAll(() => pool.close(), 60_000);

  describe('kubernetes backend (SandboxClaim on a warm pool)', () => {
    it('a claim gets a running pod of the pool, hardened as the template says; the pool makes another', async () => {
      await until('2 ready pods in the pool', async () => (await poolStatus()).readyReplicas === 2);
      const doctor = await kubernetes.doctor!({ config: KubernetesConfigSchema.parse(claimConfig) });
      expect(doctor.checks.find((c) => c.name === 'warm pool')).toEqual({
        name: 'warm pool',
        ok: true,
        detail: `SandboxWarmPool ${poolName}: 2 ready`,
      });
      const sandbox = await openSandbox({ backend: 'kubernetes', config: claimConfig, policy: { labels } });
      try {
        const first = await sandbox.exec(['id', '-u']);
        expect(first.stdout).toBe('1000\n');
        expect(podName(sandbox)).toMatch(new RegExp(`^${poolName}-`));
        const claim = (await custom.getNamespacedCustomObject({
          ...extensions,
          plural: 'sandboxclaims',
          name: `agentbox-${sandbox.id.toLowerCase()}`,
        })) as { spec: { warmPoolRef: { name: string }; lifecycle: { shutdownPolicy: string } } };
        expect(claim.spec.warmPoolRef.name).toBe(poolName);
        expect(claim.spec.lifecycle.shutdownPolicy).toBe('Delete');
        const pod = await core.readNamespacedPod({ namespace: 'default', name: podName(sandbox) });
        expect(pod.metadata?.labels?.['agentbox.dev/sandbox-id']).toBe(sandbox.id.toLowerCase());
        for (const control of ['readOnlyRoot', 'dropCapabilities', 'nonRootUser', 'network'] as const)
          expect(sandbox.enforcement[control].status, control).toBe('enforced');
        // The pool's deny-all policy and the sandbox's own both select the pod: no way out.
        const gateway = execFileSync('docker', [
          'network',
          'inspect',
          '-f',
          '{{(index .IPAM.Config 0).Gateway}}',
          'bridge',
        ])
          .toString()
          .trim();
        const out = await sandbox.exec(['sh', '-c', `nc -w 2 ${gateway} 1 </dev/null 2>&1 || echo refused`]);
        expect(out.stdout).toMatch(/unreachable.*\nrefused\n$/s);
        await sandbox.writeFile('a.txt', 'one');
        const cp = await sandbox.checkpoint();
        await sandbox.writeFile('a.txt', 'two');
        await sandbox.rollback(cp.id);
        expect(await sandbox.readTextFile('a.txt')).toBe('one');
        await until('the pool to make another pod', async () => (await poolStatus()).readyReplicas === 2);
      } finally {
        await sandbox.close();
      }
      expect(await sandboxObjects()).toEqual([]);
    });

    it('an allowlist on a claimed pod: its NetworkPolicy holds it as soon as the claim labels it', async () => {
      const { a, b, stop } = startEchoServers();
      try {
        const sandbox = await openSandbox({
          backend: 'kubernetes',
          config: claimConfig,
          policy: { labels, network: { mode: 'allowlist', allow: [`${a}:8080`] } },
        });
        try {
          expect(sandbox.enforcement.network.status).toBe('enforced');
          const r = await sandbox.exec([
            'sh',
            '-c',
            `nc -w 3 ${a} 8080 </dev/null; nc -w 3 ${b} 8080 </dev/null 2>&1 || echo refused`,
          ]);
          expect(r.stdout).toMatch(/^hello-a\n.*unreachable.*\nrefused\n$/s);
        } finally {
          await sandbox.close();
        }
      } finally {
        stop();
      }
    });

    it('re-attaches to a kept claim by id; the claim ends at its shutdownTime; sweep finds what is kept', async () => {
      const kept = await openSandbox({
        backend: 'kubernetes',
        config: { ...claimConfig, keep: true },
        policy: { labels },
      });
      await kept.writeFile('note.txt', 'kept');
      await kept.close();
      const again = await openSandbox({
        backend: 'kubernetes',
        id: kept.id,
        config: claimConfig,
        policy: { labels },
      });
      expect(podName(again)).toBe(podName(kept));
      expect(await again.readTextFile('note.txt')).toBe('kept');
      await again.close();
      expect(await sandboxObjects()).toEqual([]);

      const abandoned = await openSandbox({
        backend: 'kubernetes',
        config: { ...claimConfig, keep: true, deadlineSeconds: 3 },
        policy: { labels },
      });
      const name = podName(abandoned);
      await abandoned.close();
      await until('the claim and its pod to end', async () => {
        const pods = await core.listNamespacedPod({ namespace: 'default' });
        return !pods.items.some((p) => p.metadata?.name === name);
      });
      const parsed = KubernetesConfigSchema.parse(claimConfig);
      const leftover = await openSandbox({
        backend: 'kubernetes',
        config: { ...claimConfig, keep: true },
        policy: { labels },
      });
      await leftover.close();
      const dry = await kubernetes.sweep!({ config: parsed, dryRun: true, labels });
      // The abandoned one left its NetworkPolicy and Secret; the kept one has its claim and pod.
      expect(dry.sandboxes.map((s) => s.id).sort()).toEqual(
        [abandoned.id, leftover.id].map((i) => i.toLowerCase()).sort(),
      );
      expect(
        dry.sandboxes.find((s) => s.id === leftover.id.toLowerCase())?.resources.map((r) => r.type),
      ).toContain('SandboxClaim (sandbox)');
      const swept = await kubernetes.sweep!({ config: parsed, dryRun: false, labels });
      expect(swept.sandboxes.every((s) => s.removed)).toBe(true);
      await until('the swept pod to go', async () => {
        const pods = await core.listNamespacedPod({ namespace: 'default' });
        return !pods.items.some((p) => p.metadata?.name === podName(leftover));
      });
      expect(await sandboxObjects()).toEqual([]);
    });

    it('refuses what a claim cannot do, with typed errors, and leaves nothing', async () => {
      await expect(
        openSandbox({ backend: 'kubernetes', config: { ...config, mode: 'claim' }, policy: { labels } }),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      // A pool's pods exist before any claim: per-sandbox credentials cannot be mounted into them.
      await expect(
        openSandbox({
          backend: 'kubernetes',
          config: claimConfig,
          policy: { labels, credentials: [{ source: '/etc/hostname', target: '/run/creds/host' }] },
        }),
      ).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE' });
      expect(await sandboxObjects()).toEqual([]);
    });

    it('closing the pool removes its pods', async () => {
      await pool.close();
      await until('the pool pods to go', async () => (await runObjects(kc)).length === 0);
    });
  });
}
