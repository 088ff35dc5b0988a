/**
 * Plain-Pod mode against the stand-in: the pod and NetworkPolicy read back with every hardening
 * field; credentials from a Secret, read-only; an allowlist as a NetworkPolicy the pod is held to; re-attach by id; doctor; the dead man's switch (activeDeadlineSeconds) ending an
 * abandoned pod, and sweep removing what is left.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  const { clusterForFile, labels, runObjects, runPods, startEchoServers } = await import('./cluster.ts');
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
        // The stand-in holds a pod whose egress is denied to an empty routing table: nowhere to go.
        const r = await sandbox.exec([
          'sh',
          '-c',
          'id -u; ip route | wc -l; touch /x 2>/dev/null || echo ro',
        ]);
        expect(r.stdout.replace(/ +/g, '')).toBe('1000\n0\nro\n');
        // The session shells run from execute-only copies the sandbox user cannot read or replace,
        // so the kernel keeps their fds out of its reach in /proc.
        expect(spec.initContainers?.map((c) => [c.name, c.securityContext?.runAsUser])).toEqual([
          ['hide-shell', 65533],
        ]);
        expect(await (sandbox as unknown as { sessions: { warm(): Promise<boolean> } }).sessions.warm()).toBe(
          true,
        );
        const hidden = await sandbox.exec([
          'sh',
          '-c',
          [
            'stat -c "%A %u" /dev/.agentbox/sh /dev/.agentbox/setsid',
            'cat /dev/.agentbox/sh >/dev/null 2>&1 || echo unreadable',
            'rm -f /dev/.agentbox/sh 2>/dev/null || echo kept',
            // The session shell that runs this command: its fds are not the sandbox user's to open.
            'for p in /proc/[0-9]*; do case $(readlink $p/exe 2>/dev/null) in /dev/.agentbox/*) echo exposed $p;; esac; done',
            'n=0; for p in /proc/[0-9]*; do [ -r $p/cmdline ] && [ ! -r $p/fd ] && n=$((n+1)); done; [ $n -gt 0 ] && echo hidden-processes',
          ].join('; '),
        ]);
        expect(hidden.stdout).toBe(
          '---x--x--x 65533\n---x--x--x 65533\nunreadable\nkept\nhidden-processes\n',
        );
      } finally {
        await sandbox.close();
      }
      expect(await runObjects(kc)).toEqual([]);
    });

    it('mounts the credentials from a Secret, read-only, readable by the sandbox user only', async () => {
      const host = mkdtempSync(join(tmpdir(), 'agentbox-k8s-creds-'));
      try {
        writeFileSync(join(host, 'token'), 'tok-123\n', { mode: 0o600 });
        mkdirSync(join(host, 'aws/sub'), { recursive: true });
        writeFileSync(join(host, 'aws/config'), '[default]\n');
        writeFileSync(join(host, 'aws/sub/creds'), Buffer.from([0, 1, 2, 255]));
        const sandbox = await openSandbox({
          backend: 'kubernetes',
          config,
          policy: {
            labels,
            credentials: [
              { source: join(host, 'token'), target: '/run/creds/token' },
              { source: join(host, 'aws'), target: '/home/agent/.aws' },
            ],
          },
        });
        try {
          const name = (sandbox as unknown as { podName: string }).podName;
          const pod = await core.readNamespacedPod({ namespace: 'default', name });
          const main = pod.spec!.containers.find((c) => c.name === 'sandbox')!;
          const credentialMounts = main.volumeMounts!.filter((m) => m.name === 'credentials');
          expect(credentialMounts.map((m) => [m.mountPath, m.readOnly])).toEqual([
            ['/run/creds/token', true],
            ['/home/agent/.aws', true],
          ]);
          const helper = pod.spec!.containers.find((c) => c.name === 'checkpoint')!;
          expect(helper.volumeMounts!.some((m) => m.name === 'credentials')).toBe(false);
          const volume = pod.spec!.volumes!.find((v) => v.name === 'credentials')!;
          expect(volume.secret?.secretName).toBe(`${name}-credentials`);
          const secret = await core.readNamespacedSecret({
            namespace: 'default',
            name: `${name}-credentials`,
          });
          expect(Buffer.from(secret.data!['c0.0']!, 'base64').toString()).toBe('tok-123\n');
          expect(sandbox.enforcement.credentials).toEqual({
            status: 'enforced',
            detail: `/run/creds/token (Secret ${name}-credentials, read-only), /home/agent/.aws (Secret ${name}-credentials, read-only)`,
          });
          const r = await sandbox.exec([
            'sh',
            '-c',
            [
              'cat /run/creds/token /home/agent/.aws/config',
              'od -An -tu1 /home/agent/.aws/sub/creds',
              'stat -c %a /run/creds/token',
              'echo x > /run/creds/token 2>/dev/null || echo ro-file',
              'touch /home/agent/.aws/new 2>/dev/null || echo ro-dir',
            ].join('; '),
          ]);
          expect(r.stdout.replace(/ +/g, ' ')).toBe('tok-123\n[default]\n 0 1 2 255\n440\nro-file\nro-dir\n');
        } finally {
          await sandbox.close();
        }
        expect(await runObjects(kc)).toEqual([]);
        await expect(
          openSandbox({
            backend: 'kubernetes',
            config,
            policy: { labels, credentials: [{ source: join(host, 'missing'), target: '/run/x' }] },
          }),
        ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
        expect(await runObjects(kc)).toEqual([]);
      } finally {
        rmSync(host, { recursive: true, force: true });
      }
    });

    it('an allowlist becomes a NetworkPolicy of exactly those addresses and ports, and the pod reaches nothing else', async () => {
      // Two servers on the default bridge; the sandbox may reach the first only.
      const { a, b, stop } = startEchoServers();
      try {
        const sandbox = await openSandbox({
          backend: 'kubernetes',
          config,
          policy: { labels, network: { mode: 'allowlist', allow: [`${a}:8080`] } },
        });
        try {
          const name = (sandbox as unknown as { podName: string }).podName;
          const np = await networking.readNamespacedNetworkPolicy({
            namespace: 'default',
            name: `${name}-egress`,
          });
          expect(np.spec?.policyTypes).toEqual(['Ingress', 'Egress']);
          expect(np.spec?.egress).toEqual([
            { to: [{ ipBlock: { cidr: `${a}/32` } }], ports: [{ protocol: 'TCP', port: 8080 }] },
          ]);
          expect(sandbox.enforcement.network.status).toBe('enforced');
          expect(sandbox.enforcement.network.detail).toContain(`${a}:8080 (${a}/32)`);
          const r = await sandbox.exec([
            'sh',
            '-c',
            `nc -w 3 ${a} 8080 </dev/null; nc -w 3 ${b} 8080 </dev/null 2>&1 || echo refused`,
          ]);
          expect(r.stdout).toMatch(
            new RegExp(`^hello-a\\n.*${b.replace(/\./g, '\\.')}.*unreachable.*\\nrefused\\n$`, 's'),
          );
        } finally {
          await sandbox.close();
        }
      } finally {
        stop();
      }
      // Loopback is the pod's own: a NetworkPolicy cannot govern it, so the backend refuses it.
      await expect(
        openSandbox({
          backend: 'kubernetes',
          config,
          policy: { labels, network: { mode: 'allowlist', allow: ['127.0.0.1:80'] } },
        }),
      ).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE' });
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
