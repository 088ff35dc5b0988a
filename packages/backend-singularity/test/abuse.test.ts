/**
 * Resource abuse inside a singularity sandbox on the stand-in CLI (issue 18): the instance's
 * cgroup holds a fork bomb at its pids limit and reports a memory bomb as out of memory; there
 * is no workspace quota (the report says so and strict mode refuses one); big output keeps the
 * library's memory bounded; a command that kills the session runner fails typed and the next
 * command works. One sandbox for the file.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openSandbox, SandboxUnavailableError, TimeoutError } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forkFlood, untilFewProcesses } from '../../../scripts/fork-flood.ts';
import type { SingularitySandbox } from '../src/index.js';
import '../src/index.js';
import { busyboxRootfs, STANDIN, standinMissing, useStandinState } from './standin.ts';

const run = promisify(execFile);
const LIMITS = { pids: 32, memoryMiB: 64 };
/** 256 MiB in `npm test` (a GiB takes a minute on a loaded host); AGENTBOX_ABUSE_OUTPUT_MIB=1024 for the full run. */
const OUTPUT_MIB = Number(process.env.AGENTBOX_ABUSE_OUTPUT_MIB ?? 256);

describe.skipIf(standinMissing)(
  `resource abuse (singularity stand-in)${standinMissing ? ` (skipped: ${standinMissing})` : ''}`,
  () => {
    const root = mkdtempSync(join(tmpdir(), 'agentbox-singularity-abuse-'));
    const state = standinMissing ? '' : useStandinState();
    const image = standinMissing ? '' : busyboxRootfs();
    const config = { binary: STANDIN, image, root };
    let sandbox: SingularitySandbox;

    beforeAll(async () => {
      sandbox = (await openSandbox({
        backend: 'singularity',
        config,
        policy: { limits: LIMITS },
      })) as SingularitySandbox;
    });
    afterAll(async () => {
      await sandbox?.close();
      await rm(root, { recursive: true, force: true });
      if (state) await rm(state, { recursive: true, force: true });
    });

    it('reports the pids and memory limits as enforced; a workspace quota as not, which strict mode refuses', async () => {
      expect(sandbox.enforcement['limits.pids']).toMatchObject({ status: 'enforced' });
      expect(sandbox.enforcement['limits.memoryMiB']).toMatchObject({ status: 'enforced' });
      expect(sandbox.enforcement['limits.diskMiB']).toMatchObject({ status: 'not-supported' });
      await expect(
        openSandbox({ backend: 'singularity', config, policy: { limits: { diskMiB: 8 } } }),
      ).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE' });
    });

    it('a fork flood stops at the pids limit; its timeout ends what it started, and the sandbox stays usable', async () => {
      // Its timeout kills the whole tree: forking works again once the killed sleeps are reaped.
      await forkFlood(sandbox, 30);
      await untilFewProcesses(sandbox, LIMITS.pids / 2);
    });

    it('a fork bomb that never ends is stopped by its timeout, typed; the next exec works', async () => {
      const started = performance.now();
      // The bomb starts in a subshell: its first child forks while the shell still forks the
      // pipeline's second one, and a shell whose fork fails exits 2. Out here nothing forks again.
      const error = await sandbox
        .exec('(b() { b | b & }; b); exec sleep 30', { timeoutMs: 2_000 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TimeoutError);
      console.log(
        `singularity: the fork bomb's timeout came after ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
      const r = await sandbox.exec('echo alive; ls /proc | grep -c "^[0-9]"', { timeoutMs: 20_000 });
      expect(r.stdout).toMatch(/^alive\n/);
      expect(Number(r.stdout.split('\n')[1])).toBeLessThan(LIMITS.pids);
    });

    it('a memory bomb is killed and reported as out of memory: exit 137 and oomKilled', async () => {
      const r = await sandbox.exec('dd if=/dev/zero of=/dev/null bs=200M count=1', { timeoutMs: 20_000 });
      expect(r.exitCode).toBe(137);
      expect(r.oomKilled).toBe(true);
      const killed = await sandbox.exec('kill -9 $$');
      expect(killed.exitCode).toBe(137);
      expect(killed.oomKilled).toBe(false);
    });

    it('a command that kills the session runner fails with SANDBOX_UNAVAILABLE; the next exec works', async () => {
      expect(await sandbox.sessions.warm()).toBe(true);
      const error = await sandbox
        .exec('kill -9 $PPID; sleep 5', { timeoutMs: 20_000 })
        .catch((e: unknown) => e);
      expect(sandbox.sessions.lastPath).toBe('session');
      expect(error).toBeInstanceOf(SandboxUnavailableError);
      expect((await sandbox.exec('echo next')).stdout).toBe('next\n');
    });

    it(`${OUTPUT_MIB} MiB of output keep the library's memory bounded (peak RSS of the process that ran it, printed)`, async () => {
      const fixture = fileURLToPath(new URL('./fixtures/big-output.ts', import.meta.url));
      const bytes = OUTPUT_MIB * 1024 * 1024;
      const { stdout } = await run('npx', ['tsx', fixture, STANDIN, image, root, String(bytes)], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env: { ...process.env, AGENTBOX_APPTAINER_STANDIN_STATE: state },
      });
      const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
        exitCode: number;
        totalBytes: number;
        keptBytes: number;
        truncated: boolean;
        seconds: number;
        peakBeforeKiB: number;
        peakKiB: number;
      };
      console.log(
        `singularity: ${OUTPUT_MIB} MiB of output in ${r.seconds.toFixed(1)} s; peak RSS ${(r.peakKiB / 1024).toFixed(0)} MiB (${(r.peakBeforeKiB / 1024).toFixed(0)} MiB before the command)`,
      );
      expect(r).toMatchObject({ exitCode: 0, totalBytes: bytes, truncated: true });
      expect(r.keptBytes).toBeLessThanOrEqual(10 * 1024 * 1024);
      expect(r.peakKiB - r.peakBeforeKiB).toBeLessThan(150 * 1024);
    }, 120_000);
  },
);
