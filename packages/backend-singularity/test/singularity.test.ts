import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openSandbox, SandboxUnavailableError } from '@agentbox/core';
import { afterAll, describe, expect, it } from 'vitest';
import { SingularityConfigSchema, type SingularitySandbox, singularity } from '../src/index.js';
import { busyboxRootfs, STANDIN, standinMissing, useStandinState } from './standin.ts';

const run = promisify(execFile);

/** Run the stand-in CLI; resolves with its exit code and output (a non-zero exit is a result here). */
async function standin(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(STANDIN, args).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
}

describe('refusal', () => {
  it('opening without apptainer or singularity on PATH is SANDBOX_UNAVAILABLE naming what to install', async () => {
    const path = process.env.PATH;
    const empty = mkdtempSync(join(tmpdir(), 'agentbox-empty-path-'));
    process.env.PATH = empty;
    try {
      const error = await openSandbox({
        backend: 'singularity',
        config: { image: '/nonexistent.sif' },
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SandboxUnavailableError);
      expect((error as SandboxUnavailableError).code).toBe('SANDBOX_UNAVAILABLE');
      expect((error as Error).message).toMatch(/neither apptainer nor singularity is on PATH/);
      expect((error as Error).message).toMatch(/install Apptainer/);
    } finally {
      process.env.PATH = path;
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('a configured binary that does not exist is refused the same way', async () => {
    const error = await openSandbox({
      backend: 'singularity',
      config: { image: '/nonexistent.sif', binary: '/nonexistent/apptainer' },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect((error as Error).message).toMatch(/config\.binary \/nonexistent\/apptainer is not an executable/);
  });
});

describe('the stand-in CLI', () => {
  it('rejects a flag the real apptainer does not have, as cobra does (exit 255)', async () => {
    const r = await standin(['instance', 'start', '--writable-overlay', '/tmp', 'img', 'x']);
    expect(r.code).toBe(255);
    expect(r.stderr).toBe('Error: unknown flag: --writable-overlay\n');
    const short = await standin(['exec', '-Z', 'instance://x', 'true']);
    expect(short.code).toBe(255);
    expect(short.stderr).toMatch(/unknown shorthand flag: 'Z'/);
  });

  it('rejects an unknown subcommand, and says so for a real flag it does not implement', async () => {
    const sub = await standin(['instance', 'pause', 'x']);
    expect(sub.code).toBe(255);
    expect(sub.stderr).toMatch(/unknown command "pause" for "apptainer instance"/);
    const real = await standin(['exec', '--nv', 'instance://x', 'true']);
    expect(real.code).toBe(255);
    expect(real.stderr).toMatch(/--nv is a real apptainer flag that this test stand-in does not implement/);
  });

  it('says it is a stand-in in its version', async () => {
    expect((await standin(['version'])).stdout).toMatch(/standin/);
  });
});

describe.skipIf(standinMissing)('singularity sandbox (stand-in)', () => {
  if (standinMissing) console.warn(`skipping the singularity sandbox tests: ${standinMissing}`);
  const root = mkdtempSync(join(tmpdir(), 'agentbox-singularity-test-'));
  const state = standinMissing ? '' : useStandinState();
  const image = standinMissing ? '' : busyboxRootfs();
  const config = { binary: STANDIN, image, root };
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
    if (state) await rm(state, { recursive: true, force: true });
  });

  it('a change outside the workspace (in the overlay) is kept by a checkpoint and restored by restarting the instance', async () => {
    const sb = (await openSandbox({ backend: 'singularity', config })) as SingularitySandbox;
    try {
      await sb.writeFile('/etc/agentbox-note', 'before');
      await sb.writeFile('kept.txt', 'one');
      const cp = await sb.checkpoint();
      const first = sb.instance.pid;
      // Only the workspace changes: restored in place, the instance goes on.
      await sb.writeFile('kept.txt', 'two');
      await sb.rollback(cp);
      expect(await sb.readTextFile('kept.txt')).toBe('one');
      expect(sb.instance.pid).toBe(first);
      // The overlay changes (a file of the image deleted, one changed, one added): the instance restarts.
      await sb.exec('rm /bin/vi && echo after > /etc/agentbox-note && echo new > /etc/agentbox-new');
      await sb.writeFile('kept.txt', 'three');
      await sb.rollback(cp);
      expect(sb.instance.pid).not.toBe(first);
      expect(await sb.readTextFile('/etc/agentbox-note')).toBe('before');
      expect((await sb.exec('test -e /etc/agentbox-new')).exitCode).toBe(1);
      expect((await sb.exec('test -e /bin/vi')).exitCode).toBe(0);
      expect(await sb.readTextFile('kept.txt')).toBe('one');
      // The same handle keeps working, and a second rollback to the same point needs no restart.
      const again = sb.instance.pid;
      await sb.rollback(cp);
      expect(sb.instance.pid).toBe(again);
      expect((await sb.exec(['echo', 'ok'])).stdout).toBe('ok\n');
    } finally {
      await sb.close();
    }
  });

  it('the store scrub covers the workspace objects and the overlay copies, and a rollback cut short in the overlay swap is finished on re-attach', async () => {
    const sb = (await openSandbox({
      backend: 'singularity',
      config: { ...config, keep: true },
    })) as SingularitySandbox;
    const dir = join(root, sb.id);
    let again: SingularitySandbox | undefined;
    try {
      await sb.writeFile('/etc/agentbox-note', 'checkpointed');
      await sb.writeFile('kept.txt', 'one');
      const cp = await sb.checkpoint();
      expect(await sb.verifyCheckpoints()).toMatchObject({
        ok: true,
        intact: [cp.id],
        interruptedRollback: undefined,
      });
      await sb.exec('echo later > /etc/agentbox-note && echo two > kept.txt');
      // The state a SIGKILL leaves between the two renames of the overlay swap: the instance
      // stopped, its layer moved aside, the checkpoint's copy half made, the record written.
      await sb.instance.stop({ backend: 'singularity' });
      const overlay = join(dir, 'overlay');
      await rename(join(overlay, 'upper'), join(overlay, 'upper.old-crash'));
      await mkdir(join(overlay, 'upper.restore-crash'));
      await writeFile(join(dir, 'checkpoints', 'overlay', 'rollback-in-progress'), cp.id);
      again = (await openSandbox({ backend: 'singularity', config, id: sb.id })) as SingularitySandbox;
      expect(await again.readTextFile('/etc/agentbox-note')).toBe('checkpointed');
      expect(await again.readTextFile('kept.txt')).toBe('one');
      expect((await readdir(overlay)).sort()).toEqual(['upper', 'work']);
      const report = await again.verifyCheckpoints();
      expect(report).toMatchObject({ ok: true, intact: [cp.id], interruptedRollback: undefined });
      // A checkpoint whose overlay copy is gone is named as damaged, not passed as whole.
      await rm(join(dir, 'checkpoints', 'overlay', 'layers'), { recursive: true, force: true });
      expect(await again.verifyCheckpoints()).toMatchObject({
        ok: false,
        intact: [],
        damagedManifests: [{ id: cp.id, reason: expect.stringContaining('overlay') }],
      });
    } finally {
      await (again ?? sb).close();
    }
  });

  it('small commands run down a session in the instance, not a CLI start each', async () => {
    const sb = (await openSandbox({ backend: 'singularity', config })) as SingularitySandbox;
    try {
      await sb.exec('true');
      expect(sb.sessions.lastPath).toBe('session');
    } finally {
      await sb.close();
    }
  });

  it('the policy reaches the instance: no network, read-only credentials, env only as given', async () => {
    const creds = mkdtempSync(join(tmpdir(), 'agentbox-singularity-creds-'));
    process.env.APPTAINERENV_LEAK = 'from-the-host';
    try {
      const sb = await openSandbox({
        backend: 'singularity',
        config,
        policy: { network: { mode: 'none' }, credentials: [{ source: creds, target: '/run/creds' }] },
      });
      try {
        expect(sb.enforcement.network.status).toBe('enforced');
        expect((await sb.exec('cat /proc/net/dev | grep -c :')).stdout.trim()).toBe('1');
        const write = await sb.exec('echo x > /run/creds/f');
        expect(write.exitCode).not.toBe(0);
        const env = await sb.exec('env', { env: { MINE: 'yes' } });
        expect(env.stdout).toMatch(/^MINE=yes$/m);
        expect(env.stdout).not.toMatch(/LEAK/);
        const plain = await sb.exec('env', { stdin: '' });
        expect(plain.stdout).not.toMatch(/LEAK/);
      } finally {
        await sb.close();
      }
    } finally {
      delete process.env.APPTAINERENV_LEAK;
      await rm(creds, { recursive: true, force: true });
    }
  });

  it('limits asked for hold inside the instance: a pids limit stops a fork flood', async () => {
    const sb = await openSandbox({ backend: 'singularity', config, policy: { limits: { pids: 40 } } });
    try {
      expect(sb.enforcement['limits.pids'].status).toBe('enforced');
      const r = await sb.exec('i=0; while [ $i -lt 80 ]; do sleep 5 & i=$((i+1)); done; echo started $i', {
        timeoutMs: 30_000,
      });
      // The shell cannot fork past the limit: it fails before starting all 80.
      expect(r.stdout).not.toBe('started 80\n');
      expect(r.stderr).toMatch(/can't fork/);
      const count = await sb.exec('ps | grep -c "[s]leep 5"');
      expect(Number(count.stdout.trim())).toBeLessThan(40);
    } finally {
      await sb.close();
    }
  });

  it('a read-only root (readOnlyRoot) has no overlay: only the workspace and /tmp are writable, and checkpoints still work', async () => {
    const sb = await openSandbox({ backend: 'singularity', config, policy: { readOnlyRoot: true } });
    try {
      expect(sb.enforcement.readOnlyRoot.status).toBe('enforced');
      expect((await sb.exec('echo x > /etc/agentbox-ro')).exitCode).not.toBe(0);
      expect((await sb.exec('echo x > /tmp/t && echo y > ok.txt')).exitCode).toBe(0);
      const cp = await sb.checkpoint();
      await sb.writeFile('ok.txt', 'changed');
      await sb.rollback(cp);
      expect(await sb.readTextFile('ok.txt')).toBe('y\n');
    } finally {
      await sb.close();
    }
  });

  it('strict mode refuses what apptainer cannot enforce (an egress allowlist)', async () => {
    const error = await openSandbox({
      backend: 'singularity',
      config,
      policy: { network: { mode: 'allowlist', allow: ['127.0.0.1:80'] } },
    }).catch((e: { code?: string }) => e.code);
    expect(error).toBe('POLICY_NOT_ENFORCEABLE');
  });

  it('sweep finds a kept sandbox by its labels and removes its instance and directory', async () => {
    const sb = await openSandbox({
      backend: 'singularity',
      config: { ...config, keep: true },
      policy: { labels: { owner: 'sweep-test' } },
    });
    await sb.close();
    const backend = singularity;
    const parsed = SingularityConfigSchema.parse(config);
    const other = await backend.sweep!({ config: parsed, dryRun: true, labels: { owner: 'someone-else' } });
    expect(other.sandboxes.map((s) => s.id)).not.toContain(sb.id);
    const report = await backend.sweep!({ config: parsed, dryRun: false, labels: { owner: 'sweep-test' } });
    const swept = report.sandboxes.find((s) => s.id === sb.id);
    expect(swept?.removed).toBe(true);
    expect(swept?.resources.map((r) => r.type).sort()).toEqual(['directory', 'instance']);
    expect(await readdir(root)).not.toContain(sb.id);
    expect((await standin(['instance', 'list', '--json'])).stdout).not.toContain(sb.id);
  });

  it('doctor names the CLI it found and what it supports', async () => {
    const report = await singularity.doctor!({ config: SingularityConfigSchema.parse(config) });
    const cli = report.checks.find((c) => c.name === 'cli');
    expect(cli?.ok).toBe(true);
    expect(cli?.detail).toMatch(/apptainer .*standin.* \(the test stand-in, not Apptainer\)/);
    expect(report.checks.find((c) => c.name === 'features')?.detail).toMatch(/--containall/);
    expect(report.ok).toBe(true);
  });
});
