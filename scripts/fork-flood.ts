/**
 * A fork flood against a pids limit, shared by the backends' abuse tests: 100 background
 * sleeps under a 3 s timeout. It never starts them all; `untilFewProcesses` then waits for the
 * sandbox to be back to normal.
 */
import { type ExecResult, type SandboxBackend, TimeoutError } from '@agentbox/core';
import { expect } from 'vitest';

export async function forkFlood(sandbox: SandboxBackend, sleepSeconds: number): Promise<void> {
  // The shell may give up at its first failed fork (a result), or keep going until the timeout
  // (a TimeoutError with the output so far): either way it never started them all.
  const outcome = (await sandbox
    .exec(`i=0; while [ $i -lt 100 ]; do sleep ${sleepSeconds} & i=$((i+1)); done; echo started $i; wait`, {
      timeoutMs: 3_000,
    })
    .catch((e: unknown) => e)) as TimeoutError | ExecResult;
  if (!(outcome instanceof TimeoutError)) expect(outcome.exitCode).not.toBe(0);
  expect(outcome.stdout).not.toBe('started 100\n');
  expect(outcome.stderr).toMatch(/fork|Resource temporarily unavailable/i);
}

/**
 * Count the sandbox's processes until fewer than `bar` remain, every 500 ms for up to 10 s
 * (killed processes are gone only once their parent has reaped them).
 */
export async function untilFewProcesses(sandbox: SandboxBackend, bar: number): Promise<void> {
  let count = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 20 && !(count < bar); i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 500));
    const r = await sandbox.exec('ls /proc | grep -c "^[0-9]"', { timeoutMs: 20_000 });
    expect(r.exitCode).toBe(0);
    count = Number(r.stdout.trim());
  }
  expect(count).toBeLessThan(bar);
}
