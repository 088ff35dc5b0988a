/**
 * What the modal backend adds to the contract, against the Modal emulator: rollbacks swap in a
 * new Modal sandbox under the same handle (the old one terminated), a timeout kills only its
 * command's tree, re-attach by id, sweep, doctor and strict mode.
 */
import { openSandbox, TimeoutError } from '@agentbox/core';
import { describe, expect, it } from 'vitest';
import { ModalConfigSchema, type ModalSandbox, modal } from '../src/index.js';
import { emulatorForFile, RUN_LABEL, runId } from './emulator.ts';

const { emulator, config } = await emulatorForFile();
const labels = { [RUN_LABEL]: runId };

describe('modal backend', () => {
  it('rolls back twice on one handle; each replaced Modal sandbox is terminated', async () => {
    const sandbox = await openSandbox({ backend: 'modal', config, policy: { labels } });
    const seen: string[] = [];
    try {
      const id = sandbox.id;
      seen.push((sandbox as ModalSandbox).modalSandbox.sandboxId);
      await sandbox.writeFile('note.txt', 'before');
      const cp = await sandbox.checkpoint({ label: 'before' });
      for (const round of [1, 2]) {
        await sandbox.writeFile('note.txt', `after ${round}`);
        await sandbox.writeFile('extra.txt', 'x');
        await sandbox.rollback(cp);
        expect(sandbox.id).toBe(id);
        seen.push((sandbox as ModalSandbox).modalSandbox.sandboxId);
        expect(await sandbox.readTextFile('note.txt')).toBe('before');
        expect((await sandbox.exec(['test', '-e', 'extra.txt'])).exitCode).toBe(1);
        // Only the sandbox behind the handle runs.
        expect(emulator.runningSandboxes()).toEqual([seen.at(-1)]);
      }
      expect(new Set(seen).size).toBe(3);
    } finally {
      await sandbox.close();
    }
    expect(emulator.runningSandboxes()).toEqual([]);
  });

  it('a timeout kills its command and the processes it started, and nothing else', async () => {
    const sandbox = await openSandbox({ backend: 'modal', config, policy: { labels } });
    try {
      await sandbox.writeFile('kept.txt', 'still here');
      const other = sandbox.spawn(['sh', '-c', 'read line; echo "got $line"']);
      const timedOut = await sandbox
        .exec('sleep 300 & echo $! > child.pid; sleep 300', { timeoutMs: 1500 })
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(timedOut).toBeInstanceOf(TimeoutError);
      const child = (await sandbox.readTextFile('child.pid')).trim();
      expect(child).toMatch(/^\d+$/);
      // The background child died with its parent: gone, or a zombie awaiting its reaper.
      const state = await sandbox.exec([
        'sh',
        '-c',
        'cat /proc/$1/stat 2>/dev/null | cut -d" " -f3',
        'sh',
        child,
      ]);
      expect(['', 'Z']).toContain(state.stdout.trim());
      // The sandbox, its files and its other command are alive.
      expect(await sandbox.readTextFile('kept.txt')).toBe('still here');
      await other.writeStdin('ping\n');
      await other.closeStdin();
      expect((await other.wait()).stdout).toBe('got ping\n');
    } finally {
      await sandbox.close();
    }
  });

  it('re-attaches by id to a kept sandbox after a rollback, and sweep finds what is left', async () => {
    const kept = { ...config, keep: true };
    const first = await openSandbox({ backend: 'modal', config: kept, policy: { labels } });
    await first.writeFile('note.txt', 'before');
    const cp = await first.checkpoint();
    await first.writeFile('note.txt', 'after');
    await first.rollback(cp);
    await first.close();
    expect(emulator.runningSandboxes()).toHaveLength(1);

    const again = await openSandbox({ backend: 'modal', id: first.id, config: kept, policy: { labels } });
    expect(again.id).toBe(first.id);
    expect(await again.readTextFile('note.txt')).toBe('before');
    await again.close();

    const parsed = ModalConfigSchema.parse(config);
    const dry = await modal.sweep!({ config: parsed, dryRun: true, labels });
    expect(dry.sandboxes.map((s) => [s.id, s.removed])).toEqual([[first.id, false]]);
    const swept = await modal.sweep!({ config: parsed, dryRun: false, labels });
    expect(swept.sandboxes.map((s) => [s.id, s.removed])).toEqual([[first.id, true]]);
    expect(emulator.runningSandboxes()).toEqual([]);
  });

  it('doctor reaches the control plane; strict mode refuses what Modal cannot enforce before creating anything', async () => {
    const report = await modal.doctor!({ config: ModalConfigSchema.parse(config) });
    expect(report.ok, JSON.stringify(report.checks)).toBe(true);
    await expect(
      openSandbox({
        backend: 'modal',
        config,
        policy: { labels, network: { mode: 'allowlist', allow: ['example.com:443'] } },
      }),
    ).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE' });
    expect(emulator.runningSandboxes()).toEqual([]);
    const bad = await modal.doctor!({ config: ModalConfigSchema.parse({ ...config, tokenSecret: 'wrong' }) });
    expect(bad.ok).toBe(false);
  });

  it('sets the sandbox timeout and idle timeout by default, so an abandoned sandbox ends', async () => {
    const parsed = ModalConfigSchema.parse({});
    expect(parsed.sandboxTimeoutMs).toBe(30 * 60_000);
    expect(parsed.idleTimeoutMs).toBe(10 * 60_000);
    // Short ones, to watch the emulator end an idle sandbox nobody closed.
    const sandbox = await openSandbox({
      backend: 'modal',
      config: { ...config, idleTimeoutMs: 1000 },
      policy: { labels },
    });
    expect((await sandbox.exec('echo alive')).stdout).toBe('alive\n');
    const remote = (sandbox as ModalSandbox).modalSandbox.sandboxId;
    const end = Date.now() + 10_000;
    while (emulator.runningSandboxes().includes(remote) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 100));
    expect(emulator.runningSandboxes()).not.toContain(remote);
    await sandbox.close();
  });
});
