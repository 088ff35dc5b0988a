/**
 * Resource abuse inside a docker sandbox (issue 18): a fork bomb meets the pids limit, a memory
 * bomb is reported as out of memory, a full workspace quota is a typed error, a GiB of output
 * keeps the library's memory bounded, and a command that kills the fast path's runner fails
 * typed while the next one works. One small sandbox for the file.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openSandbox, SandboxUnavailableError, TimeoutError } from '@agentbox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forkFlood } from '../../../scripts/fork-flood.ts';
import '../src/index.js';
import type { DockerSandbox } from '../src/index.js';
import { RUN_LABEL, runId, runObjects, TEST_CONFIG } from './helpers.ts';

const run = promisify(execFile);
const LIMITS = { pids: 48, memoryMiB: 64, diskMiB: 8 };
/** 256 MiB in `npm test` (a GiB takes a minute on a loaded host); AGENTBOX_ABUSE_OUTPUT_MIB=1024 for the full run. */
const OUTPUT_MIB = Number(process.env.AGENTBOX_ABUSE_OUTPUT_MIB ?? 256);

let sandbox: DockerSandbox;

beforeAll(async () => {
  sandbox = (await openSandbox({
    backend: 'docker',
    config: TEST_CONFIG,
    policy: { limits: LIMITS, labels: { [RUN_LABEL]: runId } },
  })) as DockerSandbox;
});

afterAll(async () => {
  await sandbox?.close();
  expect(await runObjects()).toEqual([]);
});

describe('resource abuse (docker)', () => {
  it('reports the limits it sets as enforced', () => {
    expect(sandbox.enforcement['limits.pids']).toMatchObject({ status: 'enforced' });
    expect(sandbox.enforcement['limits.memoryMiB']).toMatchObject({ status: 'enforced' });
    expect(sandbox.enforcement['limits.diskMiB']).toMatchObject({ status: 'enforced' });
  });

  it('a fork flood stops at the pids limit, and the sandbox is usable again once its processes end', async () => {
    // At the limit a kill cannot always get a process of its own, so what the flood started may
    // outlive the timeout (the README says so); its sleeps are short, and forking must work again after.
    await forkFlood(sandbox, 4);
    let count = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 40 && !(count < LIMITS.pids / 2); i++) {
      const r = await sandbox
        .exec('ls /proc | grep -c "^[0-9]"', { timeoutMs: 5_000 })
        .catch(() => undefined);
      if (r?.exitCode === 0) count = Number(r.stdout.trim());
      if (!(count < LIMITS.pids / 2)) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(count).toBeLessThan(LIMITS.pids / 2);
  });

  it('a fork bomb that never ends is stopped by its timeout, typed; the next exec works', async () => {
    const started = performance.now();
    // The bomb starts in a subshell: its first child forks while the shell still forks the
    // pipeline's second one, and a shell whose fork fails exits 2. Out here nothing forks again.
    const error = await sandbox
      .exec('(b() { b | b & }; b); exec sleep 30', { timeoutMs: 2_000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TimeoutError);
    // At the limit the kill itself must wait for a free pid (it is a docker exec): bounded, not prompt.
    console.log(
      `docker: the fork bomb's timeout came after ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    const r = await sandbox.exec('echo alive; ps | wc -l', { timeoutMs: 20_000 });
    expect(r.stdout).toMatch(/^alive\n/);
    expect(Number(r.stdout.split('\n')[1])).toBeLessThan(LIMITS.pids);
  });

  it('a memory bomb is killed and reported as out of memory: exit 137 and oomKilled', async () => {
    // dd fills a 200 MiB buffer, three times the memory limit.
    const r = await sandbox.exec('dd if=/dev/zero of=/dev/null bs=200M count=1', { timeoutMs: 20_000 });
    expect(r.exitCode).toBe(137);
    expect(r.signal).toBe('SIGKILL');
    expect(r.oomKilled).toBe(true);
    // A plain SIGKILL afterwards is not an OOM kill.
    const killed = await sandbox.exec('kill -9 $$');
    expect(killed.exitCode).toBe(137);
    expect(killed.oomKilled).toBe(false);
    expect((await sandbox.exec('echo fine')).oomKilled).toBe(false);
  });

  it('filling the workspace quota: writeFile fails with NO_SPACE, a command exits non-zero saying so', async () => {
    const big = new Uint8Array((LIMITS.diskMiB + 1) * 1024 * 1024);
    await expect(sandbox.writeFile('big.bin', big)).rejects.toMatchObject({ code: 'NO_SPACE' });
    const r = await sandbox.exec(`dd if=/dev/zero of=fill.bin bs=1M count=${LIMITS.diskMiB + 1}`);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/No space left on device/);
    await sandbox.exec('rm -f fill.bin big.bin');
    await sandbox.writeFile('small.txt', 'fits again');
    expect(await sandbox.readTextFile('small.txt')).toBe('fits again');
  });

  it('a command that kills the fast-path runner fails with SANDBOX_UNAVAILABLE; the next exec works', async () => {
    expect(await sandbox.sessions.warm()).toBe(true);
    // On the session path the command's parent is its waiting shell (hidden programs: the command
    // runs in that shell's child), whose parent is the runner (field 4 of /proc/PID/stat).
    const error = await sandbox
      .exec('kill -9 $(cut -d" " -f4 /proc/$PPID/stat); sleep 5', { timeoutMs: 20_000 })
      .catch((e: unknown) => e);
    expect(sandbox.sessions.lastPath).toBe('session');
    expect(error).toBeInstanceOf(SandboxUnavailableError);
    expect((await sandbox.exec('echo next')).stdout).toBe('next\n');
  });
});

describe(`${OUTPUT_MIB} MiB of output`, () => {
  it("keeps the library's memory bounded (peak RSS of the process that ran it, printed)", async () => {
    const fixture = fileURLToPath(new URL('./fixtures/big-output.ts', import.meta.url));
    const bytes = OUTPUT_MIB * 1024 * 1024;
    const { stdout } = await run('npx', ['tsx', fixture, runId, String(bytes)], {
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
      `docker: ${OUTPUT_MIB} MiB of output in ${r.seconds.toFixed(1)} s; peak RSS ${(r.peakKiB / 1024).toFixed(0)} MiB (${(r.peakBeforeKiB / 1024).toFixed(0)} MiB before the command)`,
    );
    expect(r).toMatchObject({ exitCode: 0, totalBytes: bytes, truncated: true });
    // Head and tail of the default 10 MiB cap are kept, nothing more.
    expect(r.keptBytes).toBeLessThanOrEqual(10 * 1024 * 1024);
    expect(r.peakKiB - r.peakBeforeKiB).toBeLessThan(150 * 1024);
  }, 120_000);
});
