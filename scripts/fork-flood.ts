/**
 * A fork flood against a pids limit, shared by the abuse tests of the backends whose timeout
 * kills the whole tree (local under bubblewrap, singularity): the flood never starts all of its
 * 100 sleeps, and once its timeout has ended them the sandbox forks normally again.
 */
import { type ExecResult, type SandboxBackend, TimeoutError } from '@agentbox/core';
import { expect } from 'vitest';

export async function forkFloodStops(sandbox: SandboxBackend, pidsLimit: number): Promise<void> {
  // The shell may give up at its first failed fork (a result), or keep going until the timeout
  // kills its tree (a TimeoutError with the output so far): either way it never started them all.
  const outcome = (await sandbox
    .exec('i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done; echo started $i; wait', {
      timeoutMs: 3_000,
    })
    .catch((e: unknown) => e)) as TimeoutError | ExecResult;
  if (!(outcome instanceof TimeoutError)) expect(outcome.exitCode).not.toBe(0);
  expect(outcome.stdout).not.toBe('started 100\n');
  expect(outcome.stderr).toMatch(/fork|Resource temporarily unavailable/i);
  // The killed processes are gone a moment after the kill (their parent reaps them): count
  // until they are, for up to 10 s.
  let count = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 20 && !(count < pidsLimit / 2); i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 500));
    const r = await sandbox.exec('ls /proc | grep -c "^[0-9]"', { timeoutMs: 20_000 });
    expect(r.exitCode).toBe(0);
    count = Number(r.stdout.trim());
  }
  expect(count).toBeLessThan(pidsLimit / 2);
}
