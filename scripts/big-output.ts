/**
 * The measuring half of the abuse tests' big-output fixtures (issue 18), shared by every backend:
 * run a command that prints `bytes` bytes in `sandbox`, print the result's sizes with this
 * process's peak RSS (VmHWM) as one JSON line, and close the sandbox.
 */
import { readFileSync } from 'node:fs';
import type { SandboxBackend } from '@agentbox/core';

export async function measureBigOutput(sandbox: SandboxBackend, bytes: number): Promise<void> {
  try {
    const before = peakKiB();
    const started = performance.now();
    const r = await sandbox.exec(`head -c ${bytes} /dev/zero`, { timeoutMs: 120_000 });
    console.log(
      JSON.stringify({
        exitCode: r.exitCode,
        totalBytes: r.totalBytes.stdout,
        keptBytes: r.stdoutBytes.length,
        truncated: r.truncated.stdout,
        seconds: (performance.now() - started) / 1000,
        peakBeforeKiB: before,
        peakKiB: peakKiB(),
      }),
    );
  } finally {
    await sandbox.close();
  }
}

function peakKiB(): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
}
