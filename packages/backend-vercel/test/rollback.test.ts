/**
 * A checkpoint is a Vercel snapshot, which stops the session: the same handle keeps working (the
 * SDK resumes the sandbox) and rolls back into a new sandbox; re-attach by id, doctor, strict mode.
 */
import { openSandbox } from '@agentbox/core';
import { Sandbox } from '@vercel/sandbox';
import { describe, expect, it } from 'vitest';
import { VercelConfigSchema, type VercelSandbox, vercel } from '../src/index.js';
import { emulatorForFile, RUN_LABEL, runId, runSandboxes } from './emulator.ts';

const { config, sdk } = await emulatorForFile();
const labels = { [RUN_LABEL]: runId };

describe('vercel backend', () => {
  it('rolls back after a snapshot stopped the session, and keeps using the same handle', async () => {
    const sandbox = await openSandbox({ backend: 'vercel', config, policy: { labels } });
    try {
      await sandbox.writeFile('note.txt', 'before');
      const first = (sandbox as VercelSandbox).vercelSandbox.name;
      const cp = await sandbox.checkpoint({ label: 'before' });
      // The snapshot stopped the Vercel session.
      const remote = await Sandbox.get({ ...sdk, name: first });
      expect(remote.status).toBe('stopped');
      // The next call resumes it, files kept.
      expect((await sandbox.exec('cat note.txt; echo " $(id -u)"')).stdout).toBe('before 1000\n');
      await sandbox.writeFile('note.txt', 'after');
      await sandbox.writeFile('extra.txt', 'x');
      await sandbox.rollback(cp);
      expect((sandbox as VercelSandbox).vercelSandbox.name).not.toBe(first);
      expect(await sandbox.readTextFile('note.txt')).toBe('before');
      expect((await sandbox.exec(['test', '-e', 'extra.txt'])).exitCode).toBe(1);
      // The old Vercel sandbox is gone; the handle is the same.
      expect(await runSandboxes(sdk)).toHaveLength(1);
      await sandbox.rollback(cp.id);
      expect(await sandbox.readTextFile('note.txt')).toBe('before');
    } finally {
      await sandbox.close();
    }
    expect(await runSandboxes(sdk)).toEqual([]);
  });

  it('re-attaches by id to a kept sandbox, after a rollback swapped the Vercel sandbox underneath', async () => {
    const first = await openSandbox({
      backend: 'vercel',
      config: { ...config, keep: true },
      policy: { labels },
    });
    await first.writeFile('note.txt', 'before');
    const cp = await first.checkpoint();
    await first.writeFile('note.txt', 'after');
    await first.rollback(cp);
    await first.close();
    expect(await runSandboxes(sdk)).toHaveLength(1);
    const again = await openSandbox({ backend: 'vercel', id: first.id, config, policy: { labels } });
    expect(again.id).toBe(first.id);
    expect(await again.readTextFile('note.txt')).toBe('before');
    await again.close();
    expect(await runSandboxes(sdk)).toEqual([]);
  });

  it('doctor reaches the API; strict mode refuses what Vercel cannot enforce before creating anything', async () => {
    const report = await vercel.doctor!({ config: VercelConfigSchema.parse(config) });
    expect(report.ok, JSON.stringify(report.checks)).toBe(true);
    await expect(
      openSandbox({
        backend: 'vercel',
        config,
        policy: { labels, network: { mode: 'allowlist', allow: ['example.com:443'] } },
      }),
    ).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE' });
    await expect(
      openSandbox({ backend: 'vercel', config, policy: { labels, readOnlyRoot: true } }),
    ).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE' });
    await expect(
      openSandbox({ backend: 'vercel', config, policy: { labels, limits: { cpus: 1.5 } } }),
    ).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE' });
    expect(await runSandboxes(sdk)).toEqual([]);
  });

  it('network none is the deny-all network policy, read back from the sandbox', async () => {
    const sandbox = await openSandbox({
      backend: 'vercel',
      config,
      policy: { labels, network: { mode: 'none' } },
    });
    try {
      expect(sandbox.enforcement.network).toEqual({ status: 'enforced', detail: 'networkPolicy deny-all' });
      expect((await sandbox.exec(['sh', '-c', 'ls /sys/class/net'])).stdout.trim()).toBe('lo');
    } finally {
      await sandbox.close();
    }
  });

  it('sweep deletes a sandbox left behind (kept), by its tags', async () => {
    const kept = await openSandbox({
      backend: 'vercel',
      config: { ...config, keep: true },
      policy: { labels },
    });
    await kept.close();
    const parsed = VercelConfigSchema.parse(config);
    const dry = await vercel.sweep!({ config: parsed, dryRun: true, labels });
    expect(dry.sandboxes.map((s) => [s.id, s.removed])).toEqual([[kept.id, false]]);
    const swept = await vercel.sweep!({ config: parsed, dryRun: false, labels });
    expect(swept.sandboxes.map((s) => [s.id, s.removed])).toEqual([[kept.id, true]]);
    expect(await runSandboxes(sdk)).toEqual([]);
  });

  it('refuses a token without its team and project ids', async () => {
    await expect(
      openSandbox({ backend: 'vercel', config: { apiUrl: config.apiUrl, token: 'x' } }),
    ).rejects.toMatchObject({ code: 'AUTHENTICATION' });
  });
});
