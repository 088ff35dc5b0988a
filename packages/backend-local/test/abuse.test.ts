/**
 * Resource abuse inside a bubblewrap sandbox (issue 18): the jail's cgroup holds a fork bomb at
 * its pids limit and reports a memory bomb as out of memory; the workspace has no quota (the
 * report says so and strict mode refuses one); a GiB of output keeps the library's memory
 * bounded; a command that kills everything it can reach leaves the next command working.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openSandbox, type SandboxBackend, SandboxUnavailableError, TimeoutError } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forkFlood, untilFewProcesses } from '../../../scripts/fork-flood.ts';
import '../src/index.js';
import type { LocalSandbox } from '../src/index.js';
import { cgroupLayout } from '../src/jail-cgroup.js';
import { bwrapMissing } from './bwrap-available.js';

const run = promisify(execFile);
const LIMITS = { pids: 32, memoryMiB: 64 };
const layout = bwrapMissing ? 'bubblewrap is missing' : cgroupLayout();
const noCgroup = typeof layout === 'string' ? layout : undefined;
/** 256 MiB in `npm test` (a GiB takes half a minute on a loaded host); AGENTBOX_ABUSE_OUTPUT_MIB=1024 for the full run. */
const OUTPUT_MIB = Number(process.env.AGENTBOX_ABUSE_OUTPUT_MIB ?? 256);

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'agentbox-local-abuse-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Whether the library still takes the jail for alive. */
function jailAlive(jail: NonNullable<LocalSandbox['jail']>): boolean {
  try {
    jail.assertAlive();
    return true;
  } catch {
    return false;
  }
}

const open = (policy = {}, strict?: boolean) =>
  openSandbox({
    backend: 'local',
    config: { root, isolation: 'bwrap' },
    policy,
    ...(strict === undefined ? {} : { strict }),
  });

describe.skipIf(bwrapMissing !== undefined || noCgroup !== undefined)(
  `bwrap sandbox with cgroup limits${bwrapMissing ? ` (skipped: ${bwrapMissing})` : noCgroup ? ` (skipped: no cgroup here: ${noCgroup})` : ''}`,
  () => {
    let sandbox: SandboxBackend;
    let cgroupDirs: string[];
    beforeAll(async () => {
      sandbox = await open({ limits: LIMITS });
      const parents = typeof layout === 'string' ? [] : [...new Set(Object.values(layout.parents))];
      cgroupDirs = parents.map((p) => join(p, `agentbox-local-${sandbox.id}`));
    });
    afterAll(async () => {
      await sandbox?.close();
      // close() removes the sandbox's cgroup.
      expect(cgroupDirs.filter((d) => existsSync(d))).toEqual([]);
    });

    it('reports the pids and memory limits as enforced by a cgroup of its own, which exists', () => {
      expect(sandbox.enforcement['limits.pids']).toMatchObject({ status: 'enforced' });
      expect(sandbox.enforcement['limits.pids'].detail).toMatch(/cgroup/);
      expect(sandbox.enforcement['limits.memoryMiB']).toMatchObject({ status: 'enforced' });
      expect(cgroupDirs.length).toBeGreaterThan(0);
      expect(cgroupDirs.filter((d) => !existsSync(d))).toEqual([]);
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
        `bwrap: the fork bomb's timeout came after ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
      const r = await sandbox.exec('echo alive; ls /proc | grep -c "^[0-9]"', { timeoutMs: 20_000 });
      expect(r.stdout).toMatch(/^alive\n/);
      expect(Number(r.stdout.split('\n')[1])).toBeLessThan(LIMITS.pids);
    });

    it('a memory bomb is killed and reported as out of memory: exit 137 and oomKilled', async () => {
      const r = await sandbox.exec('dd if=/dev/zero of=/dev/null bs=200M count=1', { timeoutMs: 20_000 });
      // The jail's shells report dd's death as status 137.
      expect(r.exitCode).toBe(137);
      expect(r.oomKilled).toBe(true);
      const killed = await sandbox.exec('kill -9 $$');
      expect(killed.exitCode).toBe(137);
      expect(killed.oomKilled).toBe(false);
    });

    // Last: it ends the jail. There is no runner on the local backend (each command enters the
    // jail anew), but the jail's holder is a process of the sandbox's user in its PID namespace.
    it('a command that kills every process it can reach takes the jail down: the next call is SANDBOX_UNAVAILABLE, not a hang', async () => {
      const r = await sandbox.exec('kill -9 -1; echo survived', { timeoutMs: 20_000 });
      // The echo races the jail's end (the holder is gone, and the jail goes with it): either the
      // shell got to it, or it ended with the jail. Never a hang, never a silent success.
      if (r.stdout !== 'survived\n') {
        expect(r.stdout).toBe('');
        expect(r.exitCode).not.toBe(0);
      }
      // The library learns of the jail's end when its holder's exit arrives, a moment later.
      const jail = (sandbox as LocalSandbox).jail!;
      const deadline = Date.now() + 5_000;
      while (Date.now() < deadline && jailAlive(jail))
        await new Promise((resolve) => setTimeout(resolve, 20));
      await expect(sandbox.exec('echo next', { timeoutMs: 20_000 })).rejects.toBeInstanceOf(
        SandboxUnavailableError,
      );
      await expect(sandbox.writeFile('x.txt', 'x')).rejects.toMatchObject({ code: 'SANDBOX_UNAVAILABLE' });
    });
  },
);

describe.skipIf(bwrapMissing !== undefined || noCgroup === undefined)(
  `bwrap sandbox without a cgroup${noCgroup === undefined ? ' (skipped: this host can make cgroups; the test above ran)' : ''}`,
  () => {
    it('reports the limits as not enforced, strict mode refuses them, and a timeout still ends a fork flood', async () => {
      await expect(open({ limits: LIMITS })).rejects.toMatchObject({ code: 'POLICY_NOT_ENFORCEABLE' });
      const sandbox = await open({ limits: LIMITS }, false);
      try {
        expect(sandbox.enforcement['limits.pids']).toMatchObject({ status: 'not-supported' });
        // Bounded: without a pids limit a real fork bomb would take the host down.
        const error = await sandbox
          .exec('i=0; while [ $i -lt 50 ]; do sleep 300 & i=$((i+1)); done; wait', { timeoutMs: 2_000 })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(TimeoutError);
        const left = await sandbox.exec('ls /proc | grep -c "^[0-9]"');
        expect(Number(left.stdout.trim())).toBeLessThan(5);
      } finally {
        await sandbox.close();
      }
    });
  },
);

describe.skipIf(bwrapMissing !== undefined)(
  `bwrap workspace quota and output${bwrapMissing ? ` (skipped: ${bwrapMissing})` : ''}`,
  () => {
    it('a workspace size limit is reported as not enforced, and strict mode refuses it', async () => {
      await expect(open({ limits: { diskMiB: 8 } })).rejects.toMatchObject({
        code: 'POLICY_NOT_ENFORCEABLE',
      });
      const sandbox = await open({ limits: { diskMiB: 8 } }, false);
      try {
        expect(sandbox.enforcement['limits.diskMiB']).toMatchObject({ status: 'not-supported' });
      } finally {
        await sandbox.close();
      }
      expect(await readdir(root)).toEqual([]);
    });

    it(`${OUTPUT_MIB} MiB of output keep the library's memory bounded (peak RSS of the process that ran it, printed)`, async () => {
      const fixture = fileURLToPath(new URL('./fixtures/big-output.ts', import.meta.url));
      const bytes = OUTPUT_MIB * 1024 * 1024;
      const { stdout } = await run('npx', ['tsx', fixture, root, String(bytes)], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
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
        `bwrap: ${OUTPUT_MIB} MiB of output in ${r.seconds.toFixed(1)} s; peak RSS ${(r.peakKiB / 1024).toFixed(0)} MiB (${(r.peakBeforeKiB / 1024).toFixed(0)} MiB before the command)`,
      );
      expect(r).toMatchObject({ exitCode: 0, totalBytes: bytes, truncated: true });
      expect(r.keptBytes).toBeLessThanOrEqual(10 * 1024 * 1024);
      expect(r.peakKiB - r.peakBeforeKiB).toBeLessThan(150 * 1024);
    }, 120_000);
  },
);
