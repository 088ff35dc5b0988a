/** Re-attach by id (after a rollback too), doctor, and strict mode on the Daytona backend. */
import { openSandbox } from '@agentbox/core';
import { describe, expect, it } from 'vitest';
import { DaytonaConfigSchema, daytona } from '../src/index.js';
import { emulatorForFile, RUN_LABEL, runId, runSandboxes } from './emulator.ts';

const { config, sdk } = await emulatorForFile();
const labels = { [RUN_LABEL]: runId };

describe('daytona backend', () => {
  it('re-attaches by id to a kept sandbox, after a rollback swapped the Daytona sandbox underneath', async () => {
    const first = await openSandbox({
      backend: 'daytona',
      config: { ...config, keep: true },
      policy: { labels },
    });
    await first.writeFile('note.txt', 'before');
    const cp = await first.checkpoint();
    await first.writeFile('note.txt', 'after');
    await first.rollback(cp);
    expect(await first.readTextFile('note.txt')).toBe('before');
    await first.close();
    // One Daytona sandbox is left (kept): the one the rollback started.
    expect(await runSandboxes(sdk)).toHaveLength(1);

    const again = await openSandbox({ backend: 'daytona', id: first.id, config, policy: { labels } });
    expect(again.id).toBe(first.id);
    expect(await again.readTextFile('note.txt')).toBe('before');
    await again.close();
    expect(await runSandboxes(sdk)).toEqual([]);
  });

  it('doctor reaches the API; strict mode refuses what Daytona cannot enforce before creating anything', async () => {
    const report = await daytona.doctor!({ config: DaytonaConfigSchema.parse(config) });
    expect(report.ok, JSON.stringify(report.checks)).toBe(true);
    expect(report.controls.network?.status).toBe('enforced');
    await expect(
      openSandbox({
        backend: 'daytona',
        config,
        policy: { labels, network: { mode: 'allowlist', allow: ['example.com:443'] } },
      }),
    ).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE' });
    await expect(
      openSandbox({ backend: 'daytona', config, policy: { labels, readOnlyRoot: true } }),
    ).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE' });
    expect(await runSandboxes(sdk)).toEqual([]);
  });

  it('network none is networkBlockAll, read back from the sandbox', async () => {
    const sandbox = await openSandbox({
      backend: 'daytona',
      config,
      policy: { labels, network: { mode: 'none' } },
    });
    try {
      expect(sandbox.enforcement.network).toEqual({ status: 'enforced', detail: 'networkBlockAll' });
      const ifaces = await sandbox.exec(['sh', '-c', 'ls /sys/class/net']);
      expect(ifaces.stdout.trim()).toBe('lo');
    } finally {
      await sandbox.close();
    }
  });

  it('refuses autoStopMinutes 0 (a sandbox that never stops)', async () => {
    await expect(
      openSandbox({ backend: 'daytona', config: { ...config, autoStopMinutes: 0 } }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});
