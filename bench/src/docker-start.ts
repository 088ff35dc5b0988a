/**
 * Time to a usable docker sandbox, beside `docker run --rm IMAGE true` in the same run: a cold
 * open to its first exec, and an open from a warm pool (createPool) to its first exec. The three
 * are interleaved so machine noise hits all alike; before each pool sample the pool is full
 * again (a pool in use refills between tasks), and closing is not counted. The pool figure is
 * also shown beside the next exec on the same sandbox: what a pooled open adds to a plain exec.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createPool, openSandbox, type SandboxBackend } from '@agentbox/core';
import { report, timeMs } from './harness.js';

const sh = promisify(execFile);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function benchStart(
  config: { image: string; helperImage: string; pull: 'never' },
  samples = 11,
): Promise<void> {
  const runs: number[] = [];
  const colds: number[] = [];
  const pooled: number[] = [];
  const closes: number[] = [];
  const nextExecs: number[] = [];
  await using pool = createPool({
    spec: { backend: 'docker', config },
    size: 2,
    name: `bench-${process.pid}`,
  });
  const firstExec = async (sandbox: SandboxBackend) => {
    const r = await sandbox.exec(['true']);
    if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`);
  };
  // One round of each first, uncounted: the first open in a process pays for what is cached after it.
  for (let i = -1; i < samples; i++) {
    const run = await timeMs(() => sh('docker', ['run', '--rm', '--network', 'none', config.image, 'true']));
    let cold: SandboxBackend | undefined;
    const coldMs = await timeMs(async () => {
      cold = await openSandbox({ backend: 'docker', config });
      await firstExec(cold);
    });
    const closeMs = await timeMs(() => cold!.close());
    await pool.ready();
    let warm: SandboxBackend | undefined;
    const poolMs = await timeMs(async () => {
      warm = await pool.open();
      await firstExec(warm);
    });
    const nextMs = await timeMs(() => firstExec(warm!));
    await warm!.close();
    if (i < 0) continue;
    runs.push(run);
    colds.push(coldMs);
    pooled.push(poolMs);
    closes.push(closeMs);
    nextExecs.push(nextMs);
  }
  console.error(`pool open to first exec, ms: ${pooled.map(Math.round).join(' ')}`);
  const baseline = 'docker run --rm IMAGE true';
  report({
    bench: 'open from a warm pool to first exec',
    backend: 'docker',
    value: median(pooled),
    unit: 'ms',
    baseline,
    baselineValue: median(runs),
  });
  report({
    bench: 'open from a warm pool to first exec',
    backend: 'docker',
    value: median(pooled),
    unit: 'ms',
    baseline: 'the next exec true on the same sandbox',
    baselineValue: median(nextExecs),
  });
  report({
    bench: 'open to first exec (cold)',
    backend: 'docker',
    value: median(colds),
    unit: 'ms',
    baseline,
    baselineValue: median(runs),
  });
  report({
    bench: 'close (container and volumes removed)',
    backend: 'docker',
    value: median(closes),
    unit: 'ms',
    baseline,
    baselineValue: median(runs),
  });
}
